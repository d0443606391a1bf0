"""Weights as one flat vector and back, so that robust statistics can work over whole updates."""

from __future__ import annotations

import numpy as np

Weights = dict[str, np.ndarray]


def flatten(weights: Weights, keys: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(weights[k], dtype=np.float64).ravel() for k in keys])


def unflatten(vector: np.ndarray, like: Weights, keys: list[str]) -> Weights:
    out, offset = {}, 0
    for k in keys:
        shape, dtype = np.shape(like[k]), np.asarray(like[k]).dtype
        size = int(np.prod(shape))
        out[k] = vector[offset:offset + size].reshape(shape).astype(dtype)
        offset += size
    return out


def float_keys(weights: Weights) -> list[str]:
    """Parameters that are learned (floating point); integer buffers are carried over, not averaged."""
    return [k for k in sorted(weights) if np.issubdtype(np.asarray(weights[k]).dtype, np.floating)]
