"""The context a plant masks under: the attempt (experiment:round:attempt) and a digest of everything in the
round's request that is the same for every member. Pairwise masks and sealing keys are derived from it
(shared.secagg.keys.pairwise_key), so they cancel in the sum only when every member was sent the same round.

Without it, a relay could send one member the real round and the others the same attempt with a tiny clip, a
tiny learning rate or few fraction bits: their contributions round to zero while their masks still cancel, and
the "sum" is the one member's update (found in review, issue 24). With it, such a sum is noise over the ring.

What differs between members by design stays out: the batch-order seed (`train.seed`, one per plant), the proof
(the transcripts a plant lacks), and whether an evaluation rides along.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

VERSION = "FactoryFL mask context v1"
MASK_CONTEXT = "mask_context"  # the key the plant's mask ledger keeps it under, beside the secure setup
BASE = "base"  # ... and the digest of the model the plant trained from (its twin check at reveal)


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """sha256 over each weight's name, dtype, shape and bytes, in name order (the plant's ledgers keep these)."""
    h = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        h.update(name.encode() + str(array.dtype).encode() + str(array.shape).encode() + array.tobytes())
    return h.hexdigest()


def mask_context(attempt_context: str, secagg: dict, train: dict, model: dict, weights: dict[str, np.ndarray]
                 ) -> str:
    """`attempt_context` ("e:r:a") bound to the round's common request: the secure setup's wire form, the
    training settings but the per-plant seed, the model part's features, scaler and spec, and the weights'
    digest. Honest members of one attempt all derive the same string."""
    common = {"version": VERSION, "attempt": attempt_context, "secagg": secagg,
              "train": {k: v for k, v in train.items() if k != "seed"}, "model": model,
              "weights": weights_digest(weights)}
    digest = hashlib.sha256(json.dumps(common, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{attempt_context}#{digest[:32]}"


def request_mask_context(request) -> str:
    """The mask context of a training request (shared.protocol.TrainRequest) with a secure setup, from the weights
    as sent: every member of an honest round is sent the same bytes, whatever its own policy then computes on."""
    model = {k: v for k, v in request.model.to_wire().items() if k != "weights"}
    return mask_context(request.ref.context, request.secagg.to_wire(), request.train.to_wire(), model,
                        request.model.weights)
