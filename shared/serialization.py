"""Weights as bytes without pickle: safetensors for files and database blobs."""

from __future__ import annotations

import json

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from shared.errors import ModelError


def weights_to_bytes(weights: dict[str, np.ndarray], metadata: dict | None = None) -> bytes:
    tensors = {k: np.ascontiguousarray(v) for k, v in weights.items()}
    meta = {"factoryfl": json.dumps(metadata)} if metadata is not None else None
    return save(tensors, metadata=meta)


def weights_from_bytes(blob: bytes) -> dict[str, np.ndarray]:
    try:
        return dict(load(blob))
    except (SafetensorError, ValueError) as exc:
        raise ModelError(f"not a valid safetensors weights file: {exc}") from exc


def metadata_from_bytes(blob: bytes) -> dict:
    """The JSON metadata stored in a safetensors header under the key 'factoryfl'."""
    try:
        header_len = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + header_len])
        return json.loads(header["__metadata__"]["factoryfl"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError("this file is not a FactoryFL model bundle (no FactoryFL metadata)") from exc
