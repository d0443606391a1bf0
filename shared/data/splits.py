"""Train / validation / test splits that never put one machine in two splits."""

from __future__ import annotations

import numpy as np

FRACTIONS = (0.7, 0.15, 0.15)
_ATTEMPTS = 20


def _group_split(labels: np.ndarray, groups: np.ndarray, seed: int) -> np.ndarray:
    """Assign whole groups to splits; among a few seeded shuffles keep one with failures in every split."""
    unique = np.unique(groups)
    positives = np.array([labels[groups == g].sum() for g in unique])
    best, best_score = None, -1.0
    for attempt in range(_ATTEMPTS):
        rng = np.random.default_rng(seed + attempt)
        order = rng.permutation(len(unique))
        n_val = max(1, int(round(FRACTIONS[1] * len(unique))))
        n_test = max(1, int(round(FRACTIONS[2] * len(unique))))
        assignment = np.zeros(len(unique), dtype=np.int64)
        assignment[order[:n_val]] = 1
        assignment[order[n_val:n_val + n_test]] = 2
        pos = [positives[assignment == s].sum() for s in range(3)]
        score = sum(p > 0 for p in pos)
        if score > best_score:
            best, best_score = assignment, score
        if score == 3:
            break
    lookup = dict(zip(unique.tolist(), best.tolist()))
    return np.array([lookup[g] for g in groups.tolist()], dtype=np.int64)


def _ordered_split(order_key: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Earliest 70 % of each group trains, the next 15 % validates, the latest 15 % tests."""
    split = np.zeros(len(order_key), dtype=np.int64)
    for g in np.unique(within):
        idx = np.flatnonzero(within == g)
        idx = idx[np.argsort(order_key[idx], kind="stable")]
        n = len(idx)
        a, b = int(n * FRACTIONS[0]), int(n * (FRACTIONS[0] + FRACTIONS[1]))
        split[idx[a:b]] = 1
        split[idx[b:]] = 2
    return split


def _stratified_split(labels: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    split = np.zeros(len(labels), dtype=np.int64)
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n = len(idx)
        a, b = int(round(n * FRACTIONS[0])), int(round(n * (FRACTIONS[0] + FRACTIONS[1])))
        split[idx[a:b]] = 1
        split[idx[b:]] = 2
    return split


def split_rows(labels: np.ndarray, groups: np.ndarray | None, order_key: np.ndarray,
               ordered: bool, seed: int) -> np.ndarray:
    """Split codes (0 train, 1 validation, 2 test) for every row.

    - with 3 or more groups: whole groups go to one split (no machine in two splits);
    - with fewer groups but an order (time column): each group is split in time, past to future;
    - otherwise: a stratified random split of the rows.
    """
    if groups is not None and len(np.unique(groups)) >= 3:
        return _group_split(labels, groups, seed)
    if ordered or groups is not None:
        within = groups if groups is not None else np.zeros(len(labels), dtype=np.int64)
        return _ordered_split(order_key, within)
    return _stratified_split(labels, seed)
