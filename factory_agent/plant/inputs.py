"""What a handler works on: the plant (its private arrays, name, policy and state) and a request's model inputs,
checked against the policy and the plant's own statistics before the arrays are scaled for the model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from factory_agent.plant import policy as rules
from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import PlantState
from shared.data.scaler import Scaler, scaler_mismatch
from shared.errors import PolicyRefusal
from shared.models import ModelSpec, build_model
from shared.protocol import ModelPart, RoundRef
from shared.training import PlantArrays, compute_stats


@dataclass(frozen=True)
class Plant:
    """Everything a handler may use: the private arrays, who this plant is, its policy and its state."""

    features: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    name: str
    own_features: list[str]
    policy: PlantPolicy
    state: PlantState
    attack: str | None = None  # --byzantine (tests and demos only): how this plant corrupts its updates

    def arrays(self, experiment_features) -> PlantArrays:
        """The plant's rows in the experiment's feature order, unscaled; a feature the plant lacks is 0, and at
        most max_missing_features of them are accepted (refused before the aligned copy is made)."""
        rules.check_features(self.policy, experiment_features, self.own_features)
        return PlantArrays(np.asarray(self.features), np.asarray(self.labels), np.asarray(self.index),
                           self.own_features, list(experiment_features), None)

    def split_rows(self) -> tuple[int, int, int]:
        """Rows of the training, validation and test splits, from the index alone (no feature is copied): an
        upper bound of a sequence model's windows."""
        split = np.asarray(self.index)[:, 0]
        return tuple(int(np.count_nonzero(split == s)) for s in (0, 1, 2))

    def scored_rows(self) -> int:
        """The rows one evaluation scores: its validation and test splits."""
        _, val, test = self.split_rows()
        return val + test


def parameters(spec: ModelSpec) -> int:
    """The model's size without allocating it (torch's meta device): a hostile spec costs nothing to refuse."""
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec).parameters())


def prepared_arrays(plant: Plant, ref: RoundRef, model: ModelPart, work: rules.Work) -> PlantArrays:
    """The plant's arrays scaled by the experiment's scaler, after four checks: the model fits the policy's
    size, the request's `work` fits its cost limits (both before any array is made), the scaler agrees with the plant's own statistics (a crafted scaler can turn a clipped sum into a
    counting query over a threshold), and the features, scaler and model family are the ones this plant
    first saw for the experiment."""
    rules.check_model_size(plant.policy, parameters(model.spec))
    rules.check_features(plant.policy, model.features, plant.own_features)
    rules.check_work(plant.policy, model.spec, work)
    arrays = plant.arrays(model.features)
    n, total, total_sq = compute_stats(arrays)
    rules.check_rows(plant.policy, n, "the training split")
    mismatch = scaler_mismatch(model.scaler.mean, model.scaler.scale, total, total_sq, n, plant.policy.scaler_tolerance)
    if mismatch:
        raise PolicyRefusal(f"the scaler does not fit this plant's own statistics: {mismatch}")
    digest = hashlib.sha256(json.dumps({"features": list(model.features), "scaler": model.scaler.to_wire(),
                                        "model": [model.spec.model_type, model.spec.sequence_length]},
                                       sort_keys=True).encode()).hexdigest()
    plant.state.pin_inputs(ref.experiment, digest)
    arrays.scale(Scaler(mean=model.scaler.mean, scale=model.scaler.scale))
    return arrays


