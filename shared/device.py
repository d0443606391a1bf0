"""Where a plant's torch work runs: its GPU when torch sees one, else the CPU. One place, so that training,
evaluation and DP-SGD agree (and the heartbeat's `device`, factory_agent.agent.detect_device, tells the truth)."""

from __future__ import annotations

import torch


def compute_device() -> torch.device:
    """cuda when torch sees a GPU, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
