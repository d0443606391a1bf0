"""--byzantine (tests and demos only): how a plant that attacks the federation corrupts what it sends."""

from __future__ import annotations

import secrets

import numpy as np

def corrupt_update(mode: str, global_weights: dict, weights: dict) -> dict:
    """sign_flip: w_g - (w - w_g); scale:F: w_g + F (w - w_g); noise:S: w + N(0, S^2); label_flip is applied to
    the labels before training instead."""
    rng = np.random.default_rng(secrets.randbits(64))
    out = {}
    for k, w in weights.items():
        g = np.asarray(global_weights[k])
        if not np.issubdtype(np.asarray(w).dtype, np.floating):
            out[k] = w
        elif mode == "sign_flip":
            out[k] = (g - (w - g)).astype(w.dtype)
        elif mode.startswith("scale:"):
            out[k] = (g + float(mode.split(":", 1)[1]) * (w - g)).astype(w.dtype)
        elif mode.startswith("noise:"):
            out[k] = (w + rng.normal(0, float(mode.split(":", 1)[1]), np.shape(w))).astype(w.dtype)
        else:
            out[k] = w
    return out
