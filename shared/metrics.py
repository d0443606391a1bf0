"""Classification metrics from score histograms, so that a decision threshold can be chosen
federatedly: each plant sends counts of its validation scores per bin (by class), never the scores.

With bins of equal width on [0, 1] and the threshold on a bin edge, the confusion counts at that
threshold are exact: a score is predicted positive when it falls in a bin at or above the threshold's bin.
"""

from __future__ import annotations

import numpy as np

BINS = 1000


def score_histograms(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts of positive and negative examples per score bin."""
    idx = np.clip((np.asarray(probabilities) * bins).astype(np.int64), 0, bins - 1)
    labels = np.asarray(labels).astype(bool)
    pos = np.bincount(idx[labels], minlength=bins)
    neg = np.bincount(idx[~labels], minlength=bins)
    return pos, neg


def confusion_at(pos: np.ndarray, neg: np.ndarray, threshold_bin: int) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) when bins >= threshold_bin are predicted as failures."""
    tp, fp = int(pos[threshold_bin:].sum()), int(neg[threshold_bin:].sum())
    return tp, fp, int(neg.sum()) - fp, int(pos.sum()) - tp


def rates(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """accuracy, precision, recall, F1 (0 where undefined, the usual convention of scikit-learn)."""
    total = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / total if total else 0.0, "precision": precision, "recall": recall, "f1": f1}


def best_threshold_bin(pos: np.ndarray, neg: np.ndarray) -> int:
    """The threshold bin that maximises F1 on (pooled validation) histograms; ties go to the higher bin.
    Without any positive example, fall back to 0.5."""
    bins = len(pos)
    if pos.sum() == 0:
        return bins // 2
    tp = np.cumsum(pos[::-1])[::-1]
    fp = np.cumsum(neg[::-1])[::-1]
    fn = pos.sum() - tp
    f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return int(bins - 1 - np.argmax(f1[::-1]))


def threshold_of_bin(threshold_bin: int, bins: int = BINS) -> float:
    return threshold_bin / bins
