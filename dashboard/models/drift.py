"""A plant's drift as operators read it (DESIGN §10): the floor's drift score (factory_agent.floor.drift) as a ratio
to its baseline, the same score on the plant's own validation split against the released model's scaler.

The raw score is not 0 on healthy data: the model's scaler is the federation's pooled one, and a plant's own data
sits some way from the pool (0.6-0.85 on the simulator's plants). The baseline measures exactly that distance, on
the rows the model was chosen on, so a ratio near 1 is normal wherever the plant sits. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass

ELEVATED = 1.5  # ratio at which drift is worth a look
DRIFTED = 2.0  # ratio of the webhook's drift.high: the data moved as far again as the plant's own offset
MIN_BASELINE = 0.05  # a baseline below this (data right at the pool's moments) counts as this: no ratio explodes
LEVELS = ("unknown", "normal", "elevated", "drifted")


@dataclass(frozen=True)
class DriftReading:
    score: float | None
    baseline: float | None

    @property
    def ratio(self) -> float | None:
        if self.score is None or self.baseline is None:
            return None
        return round(self.score / max(self.baseline, MIN_BASELINE), 3)

    @property
    def level(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return "unknown"
        return "drifted" if ratio >= DRIFTED else "elevated" if ratio >= ELEVATED else "normal"

    def to_dict(self) -> dict:
        return {"score": self.score, "baseline": self.baseline, "ratio": self.ratio, "level": self.level,
                "elevated_at": ELEVATED, "drifted_at": DRIFTED}


def crossed_into_drift(before: DriftReading, after: DriftReading) -> bool:
    """Whether a heartbeat took the plant into "drifted" (once per crossing, not on every drifted beat)."""
    return after.level == "drifted" and before.level != "drifted"
