"""SCAFFOLD at the plant (Karimireddy et al., ICML 2020; the maths in shared.aggregation.scaffold): the plant's
control variate c_i lives in its state folder (PlantState.scaffold_control), per experiment, and never leaves
it; the plant trains with the step correction c - c_i, then keeps c_i + Delta c_i and releases only Delta c_i,
clipped to the bound the request clips the model update to (one plant cannot blow up the server's c).

The server's c arrives checked by the protocol (shared.protocol.requests.control_variate: the model's names and
shapes, finite, bounded, zero in round 1). A plant that never trained the experiment starts from c_i = 0, as a
plant joining a SCAFFOLD federation late does in the paper; another experiment's c_i is never read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from shared.aggregation.scaffold import control_delta, plant_control_update
from shared.aggregation.vectors import flatten, unflatten
from shared.protocol import TrainRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlStart:
    """The round's c (the server's) and c_i (the plant's), flat over the model's parameters in sorted order."""

    keys: list[str]
    c: np.ndarray
    c_i: np.ndarray
    start: dict[str, np.ndarray]  # c_i as stored, by parameter name

    @property
    def correction(self) -> dict[str, np.ndarray]:
        """c - c_i per parameter: what every local step adds (shared.training)."""
        return unflatten(self.c - self.c_i, self.start, self.keys)


def control_start(state, request: TrainRequest) -> ControlStart:
    """c_i for this round from the plant's state (zeros for a parameter it has none of, or one of another
    shape: a model the experiment's earlier rounds did not use)."""
    ref, c = request.ref, request.control
    keys = sorted(c)
    saved = state.scaffold_control(ref.experiment, ref.round)
    start = {k: np.asarray(saved[k], dtype=np.float32) if k in saved and np.shape(saved[k]) == np.shape(c[k])
             else np.zeros_like(c[k], dtype=np.float32) for k in keys}
    return ControlStart(keys=keys, c=flatten(c, keys), c_i=flatten(start, keys), start=start)


def control_finish(state, request: TrainRequest, begun: ControlStart, weights: dict[str, np.ndarray],
                   steps: int) -> dict[str, np.ndarray]:
    """Delta c_i = clip(c_i+ - c_i), option II, from the global x and the plant's y = `weights` after `steps`
    local steps; c_i + Delta c_i is saved for the next round, Delta c_i returned for the reply."""
    x, y = flatten(request.model.weights, begun.keys), flatten(weights, begun.keys)
    c_i_plus = plant_control_update(begun.c_i, begun.c, x, y, steps, request.train.learning_rate)
    delta = control_delta(begun.c_i, c_i_plus, request.train.clip_update_norm)
    after = unflatten((begun.c_i + delta).astype(np.float32), begun.start, begun.keys)
    state.save_scaffold_control(request.ref.experiment, request.ref.round, begun.start, after)
    return unflatten(delta.astype(np.float32), begun.start, begun.keys)
