"""Where code running inside a plant's datasite keeps per-experiment state between rounds (FedDyn's linear
term, the DP-SGD accountant, secure-aggregation reveal records, the secure-aggregation key): the agent's state
folder, passed to its datasite as FACTORYFL_STATE_DIR (mode 0700); a temporary folder outside an agent."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def state_directory() -> Path:
    return Path(os.environ.get("FACTORYFL_STATE_DIR") or Path(tempfile.gettempdir()) / "factoryfl")
