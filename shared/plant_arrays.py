"""A plant's split arrays, aligned to an experiment's feature order and scaled: what training
(shared.training), evaluation (shared.evaluation) and personalization (shared.personalization) work on.
Its own module so that none of those three imports another for the type."""

from __future__ import annotations

import numpy as np
import torch

from shared.data.scaler import Scaler
from shared.errors import DataError
from shared.model_spec import ModelSpec


class PlantArrays:
    """A plant's split arrays, aligned to the experiment's feature order and scaled."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, index: np.ndarray,
                 plant_features: list[str], experiment_features: list[str], scaler: Scaler | None):
        position = {name: i for i, name in enumerate(plant_features)}
        if features.shape[1] != len(plant_features):
            raise DataError(f"the plant's data has {features.shape[1]} features but {len(plant_features)} names")
        aligned = np.zeros((len(features), len(experiment_features)), dtype=np.float32)
        for j, name in enumerate(experiment_features):
            if name in position:
                aligned[:, j] = features[:, position[name]]
        self.x = scaler.transform(aligned) if scaler is not None else aligned
        self.y = np.asarray(labels, dtype=np.float32)
        self.split = np.asarray(index)[:, 0]
        self.groups = np.asarray(index)[:, 1]

    def scale(self, scaler: Scaler) -> None:
        """Apply the global scaler (after the plant has checked it against its own statistics)."""
        self.x = scaler.transform(self.x)

    def rows(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def window_ends(self, split: int, length: int) -> np.ndarray:
        """Row positions that end a full window of `length` rows of one group within one split
        (rows are stored ordered by split, group and time)."""
        rows = self.rows(split)
        if len(rows) < length:
            return np.zeros(0, dtype=np.int64)
        starts = np.ones(len(rows), dtype=bool)
        starts[1:] = (self.groups[rows[1:]] != self.groups[rows[:-1]]) | (rows[1:] != rows[:-1] + 1)
        run_id = np.cumsum(starts)
        run_start = rows[np.flatnonzero(starts)][run_id - 1]
        return rows[rows - run_start >= length - 1]

    def batch(self, positions: np.ndarray, spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor]:
        if spec.is_sequence:
            offsets = np.arange(spec.sequence_length - 1, -1, -1)
            x = self.x[positions[:, None] - offsets[None, :]]
        else:
            x = self.x[positions]
        return torch.from_numpy(x), torch.from_numpy(self.y[positions])

    def examples(self, split: int, spec: ModelSpec) -> np.ndarray:
        return self.window_ends(split, spec.sequence_length) if spec.is_sequence else self.rows(split)
