"""The plant's side of secure aggregation, as called by the vetted training step (shared.training): turn a
trained model into a masked contribution, and reveal shares. The long-term X25519 private key is read from
the agent's state folder (FACTORYFL_STATE_DIR, mode 0700, inherited by the datasite) and never returned."""

from __future__ import annotations

import numpy as np

from shared.aggregation.vectors import flatten, float_keys
from shared.errors import SecurityError
from shared.plant_state import state_directory
from shared.privacy.central import clip_update
from shared.secagg.keys import load_private_key
from shared.secagg.protocol import RevealLedger, RevealedShares, RoundSetup, mask_and_share, reveal
from shared.secagg.quantize import MAX_WEIGHT

KEY_FILE = "secagg_x25519.pem"
WEIGHTINGS = ("samples", "samples_per_step", "equal")


def private_key():
    path = state_directory() / KEY_FILE
    if not path.exists():
        raise SecurityError(f"this plant has no secure-aggregation key ({KEY_FILE} in its state folder); "
                            "restart its agent, which creates one")
    return load_private_key(path.read_bytes())


def aggregation_weight(weighting: str, num_samples: int, steps: int) -> float:
    """The weight a plant multiplies its update by before masking; samples are visible metadata, so the
    aggregator computes the same weights to divide the sum by. samples: FedAvg/FedProx; samples_per_step:
    FedNova (n_k / tau_k); equal: central DP and FedDyn."""
    if weighting not in WEIGHTINGS:
        raise SecurityError(f"unknown weighting {weighting!r}")
    if weighting == "equal":
        return 1.0
    n = min(float(num_samples), MAX_WEIGHT)
    return n / max(int(steps), 1) if weighting == "samples_per_step" else n


def contribution(global_weights: dict, weights: dict, clip: float, weight: float) -> np.ndarray:
    """weight * clip(w_k - w): clipping to the announced bound is what makes fixed point overflow-proof."""
    keys = float_keys(global_weights)
    return weight * clip_update(flatten(weights, keys) - flatten(global_weights, keys), clip)


def masked_answer(secagg: dict, global_weights: dict, body: dict) -> dict:
    """Replace the trained weights in a training answer by the masked contribution and the sealed shares."""
    setup = RoundSetup.from_dict(secagg)
    weight = aggregation_weight(secagg["weighting"], body["num_samples"], body["steps"])
    update = mask_and_share(setup, private_key(),
                            contribution(global_weights, body.pop("weights"), float(secagg["clip"]), weight))
    body.update(masked=update.masked, sealed=update.sealed, weight=weight)
    return body


def reveal_answer(request: dict) -> dict:
    setup = RoundSetup.from_dict(request["secagg"])
    shares: RevealedShares = reveal(setup, private_key(), list(request["survivors"]), dict(request["sealed"]),
                                    RevealLedger(state_directory() / "secagg"))
    return {"revealed": shares.to_dict()}
