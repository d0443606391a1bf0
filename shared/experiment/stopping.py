"""Early stopping on pooled validation F1, and the best round (issue #15): pure functions over each round's
score, shared by the round engine (dashboard.orchestration.recording), the model download and release defaults
(dashboard.services.models) and the in-process federation (factoryfl_testing).

A round's model is scored with the next round's training calls, so when round n is recorded the scores known
are those of rounds 1..n-1 (and n's own after the last round)."""

from __future__ import annotations

import math


def validation_f1(metrics: dict | None) -> float | None:
    """A round's pooled validation F1, or None when it has none (not scored yet, or no plant released one)."""
    value = (metrics or {}).get("val_f1")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def best_round(scores: dict[int, float]) -> int | None:
    """The round with the best validation F1 (round -> score); ties go to the later round; None when none."""
    return max(scores, key=lambda r: (scores[r], r)) if scores else None


def stopped_early(scores: dict[int, float], patience: int) -> bool:
    """True when `patience` > 0 and the last `patience` scored rounds brought no improvement: the latest scored
    round is at least `patience` rounds after the first round that reached the best score (a tie is no
    improvement, so a plateau stops too)."""
    if patience <= 0 or not scores:
        return False
    top = max(scores.values())
    first_best = min(r for r, s in scores.items() if s == top)
    return max(scores) - first_best >= patience
