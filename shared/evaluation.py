"""Scoring a model on a plant's validation and test splits, inside the plant's datasite (shared.training's
sibling): loss, ROC-AUC and coarse score histograms, exact or as a Gaussian release. Runs on the plant's GPU when
it has one (shared.device); what it returns is on the CPU."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from shared.device import compute_device
from shared.metrics import coarsen_histograms, roc_auc, score_histograms
from shared.models import ModelSpec, build_model, set_weights
from shared.protocol import SplitEvaluation

if TYPE_CHECKING:
    from shared.plant_arrays import PlantArrays

EVAL_BATCH = 4096
LOSS_CLIP = 10.0  # a row's BCE loss counts at most this much in a private evaluation
PRIVATE_GROUPS = 100  # a private evaluation's noisy histogram values per class (groups of BINS // 100 bins)


def _scores(model: nn.Module, arrays: PlantArrays, positions: np.ndarray, spec: ModelSpec,
            device: torch.device) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(positions), EVAL_BATCH):
            x, _ = arrays.batch(positions[start:start + EVAL_BATCH], spec)
            out.append(model(x.to(device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def evaluate_local(arrays: PlantArrays, spec: ModelSpec, weights: dict[str, np.ndarray], min_rows: int,
                   noise_multiplier: float = 0.0, noise=None) -> tuple[SplitEvaluation, SplitEvaluation]:
    """Unweighted BCE loss, ROC-AUC and score histograms on validation and test.

    Exact (noise_multiplier 0): histogram bins are merged until every released group holds at least
    `min_rows` examples, and a split smaller than that releases nothing (n = 0).
    Private (noise_multiplier sigma > 0, the Gaussian mechanism, Dwork and Roth 2014 App. A): per split the
    plant releases its class histograms and its loss sum with every row's loss clipped to LOSS_CLIP, divided by
    LOSS_CLIP, plus N(0, (sigma * sqrt 2)^2) on every value: one row moves one histogram count by 1 and the
    scaled loss sum by at most 1, an L2 sensitivity of sqrt 2; the splits hold disjoint rows, so one call is
    one Gaussian release of RDP alpha / (2 sigma^2), which the caller charges to the plant's ledger. n, the loss
    and ROC-AUC are then computed from the noisy values (post-processing)."""
    device = compute_device()
    model = build_model(spec)
    set_weights(model, weights)
    model.to(device).eval()
    out = []
    for split in (1, 2):
        positions = arrays.examples(split, spec)
        labels = arrays.y[positions]
        logits = _scores(model, arrays, positions, spec, device)
        probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        pos, neg = score_histograms(probabilities, labels)
        if noise_multiplier > 0:
            out.append(_private_split(logits, labels, pos, neg, min_rows, noise_multiplier, noise))
            continue
        if len(positions) < max(min_rows, 1):
            empty = np.zeros_like(pos)
            out.append(SplitEvaluation(n=0, loss=None, auc=None, hist_pos=empty, hist_neg=empty.copy()))
            continue
        loss = float(nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels)))
        auc = roc_auc(labels, probabilities) if 0 < labels.sum() < len(labels) else None
        pos, neg = coarsen_histograms(pos, neg, min_rows)
        out.append(SplitEvaluation(n=int(len(positions)), loss=loss, auc=auc, hist_pos=pos, hist_neg=neg))
    return out[0], out[1]


def _private_split(logits: np.ndarray, labels: np.ndarray, pos: np.ndarray, neg: np.ndarray, min_rows: int,
                   sigma: float, noise) -> SplitEvaluation:
    from shared.metrics import auc_from_histograms

    losses = nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels),
                                                            reduction="none").numpy()
    scaled_sum = float(np.minimum(losses, LOSS_CLIP).sum()) / LOSS_CLIP
    std = sigma * math.sqrt(2.0)
    # noise on PRIVATE_GROUPS groups of adjacent bins (each group's count in its first bin, the coarsened form the
    # dashboard reads): noise on all BINS bins would add 4x the noise (and its clamp at 0, bias) to every sum
    first = np.arange(0, len(pos), len(pos) // PRIVATE_GROUPS)
    noisy_pos, noisy_neg = np.zeros_like(pos), np.zeros_like(neg)
    noisy_pos[first] = np.maximum(np.rint(np.add.reduceat(pos, first) + noise.normal(0.0, std, first.shape)), 0)
    noisy_neg[first] = np.maximum(np.rint(np.add.reduceat(neg, first) + noise.normal(0.0, std, first.shape)), 0)
    noisy_sum = scaled_sum + float(noise.normal(0.0, std, size=(1,))[0])
    n = int(noisy_pos.sum() + noisy_neg.sum())
    if n < max(min_rows, 1):
        empty = np.zeros_like(pos)
        return SplitEvaluation(n=0, loss=None, auc=None, hist_pos=empty, hist_neg=empty.copy())
    loss = float(min(max(noisy_sum * LOSS_CLIP / n, 0.0), LOSS_CLIP))
    noisy_pos, noisy_neg = coarsen_histograms(noisy_pos, noisy_neg, min_rows)
    return SplitEvaluation(n=n, loss=loss, auc=auc_from_histograms(noisy_pos, noisy_neg), hist_pos=noisy_pos,
                           hist_neg=noisy_neg)
