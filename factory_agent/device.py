"""Which device this plant trains on, told without importing torch (a plant at rest never loads it, issue #17)."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path


def detect_device() -> str:
    """cuda when the installed torch is a CUDA build and the NVIDIA driver lists a GPU, without importing torch
    (~180 MB and ~2 s: a plant loads it when it first trains)."""
    if "torch" in sys.modules:
        return "cuda" if sys.modules["torch"].cuda.is_available() else "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return "cpu"
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return "cpu"
    try:
        version = (Path(spec.submodule_search_locations[0]) / "version.py").read_text()
    except OSError:
        return "cpu"
    cuda_build = re.search(r"^cuda\b[^=]*=\s*['\"]", version, re.MULTILINE) is not None
    gpus = Path("/proc/driver/nvidia/gpus")
    return "cuda" if cuda_build and gpus.is_dir() and any(gpus.iterdir()) else "cpu"
