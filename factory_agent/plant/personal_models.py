"""`PersonalModels`: the folder where a plant keeps its own models (`personal/` in its state folder, 0700; files
0600), written by the personalization step (factory_agent.plant.personal) and read by the plant floor
(factory_agent.floor.personal). Files and metadata only: nothing here imports torch, so a plant floor at rest
stays lean (issue 26 item 5)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from factory_agent.plant.state import personal_models_dir, write_private
from shared.errors import ModelError, SecurityError
from shared.serialization import metadata_from_bytes, weights_from_bytes, weights_to_bytes

log = logging.getLogger(__name__)
KEPT = 32  # personal models of the most recent experiments; older ones are deleted (disk is bounded)


class PersonalModels:
    """`<state>/personal/experiment-<id>-<kind>.safetensors`: the personalized and local-only weights, with their
    own thresholds and validation scores (and the global model's) in the file's metadata."""

    def __init__(self, state_dir: Path):
        self.directory = personal_models_dir(state_dir)

    def path(self, experiment: int, kind: str) -> Path:
        if isinstance(experiment, bool) or not isinstance(experiment, int) or experiment < 1:
            raise SecurityError(f"experiment id {experiment!r} is not a positive integer")
        if kind not in ("personalized", "local"):
            raise SecurityError(f"no personal model kind {kind!r}")
        return self.directory / f"experiment-{experiment}-{kind}.safetensors"

    def save(self, experiment: int, kind: str, weights: dict[str, np.ndarray], meta: dict) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        write_private(self.path(experiment, kind), weights_to_bytes(weights, meta))
        kept = sorted(self.directory.glob("experiment-*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[2 * KEPT:]:
            old.unlink(missing_ok=True)

    def load(self, experiment: int, kind: str = "personalized") -> tuple[dict[str, np.ndarray], dict] | None:
        """(weights, metadata), or None when this plant keeps no such model (or its file is unreadable)."""
        path = self.path(experiment, kind)
        if not path.is_file():
            return None
        try:
            blob = path.read_bytes()
            return weights_from_bytes(blob), metadata_from_bytes(blob)
        except (OSError, ValueError, ModelError) as exc:
            log.warning("personal model %s cannot be read (%s): not used", path.name, exc)
            return None


def chosen_threshold(meta: dict) -> float | None:
    """The personalized model's own threshold from its metadata (None when it has none)."""
    value = ((meta.get("scores") or {}).get("personalized") or {}).get("threshold")
    return float(value) if isinstance(value, (int, float)) and 0.0 <= value <= 1.0 else None
