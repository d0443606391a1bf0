"""A plant's load (CPU, memory, disk) over a chosen time range, for the plant page's chart (DESIGN §4): its
heartbeats in the range, averaged into at most MAX_POINTS time buckets so a week of 5-second beats stays one small
answer. The bucketing is a pure function."""

from __future__ import annotations

from datetime import datetime, timedelta

from dashboard.extensions import db
from dashboard.models import Heartbeat
from dashboard.models.base import isoformat, utcnow
from shared.errors import ValidationError

RANGES_HOURS = (1, 6, 24, 168)  # the page's choices: an hour, six hours, a day, a week
DEFAULT_HOURS = 6
MAX_POINTS = 240
MAX_BEATS = 50_000  # heartbeats read for one answer (a week at 12 s); beyond it the newest are kept
METRICS = ("cpu_usage", "memory_usage", "disk_usage")


def range_hours(raw: str | None) -> int:
    """The `hours` query parameter: one of RANGES_HOURS (default DEFAULT_HOURS)."""
    if raw in (None, ""):
        return DEFAULT_HOURS
    if not raw.isdigit() or int(raw) not in RANGES_HOURS:
        raise ValidationError("hours", f"must be one of {', '.join(map(str, RANGES_HOURS))}, got {raw[:20]!r}")
    return int(raw)


def load_history(factory_id: int, hours: int, now: datetime | None = None) -> dict:
    now = now or utcnow()
    since = now - timedelta(hours=hours)
    rows = db.session.execute(
        db.select(Heartbeat.received_at, Heartbeat.cpu_usage, Heartbeat.memory_usage, Heartbeat.disk_usage)
        .where(Heartbeat.factory_id == factory_id, Heartbeat.received_at >= since)
        .order_by(Heartbeat.received_at.desc()).limit(MAX_BEATS)).all()
    points = bucketed([(r[0], r[1:]) for r in reversed(rows)], since, now, MAX_POINTS)
    return {"hours": hours, "since": isoformat(since), "until": isoformat(now), "heartbeats": len(rows),
            "points": points}


def bucketed(samples: list[tuple[datetime, tuple]], since: datetime, until: datetime, buckets: int) -> list[dict]:
    """Samples (time, (cpu, memory, disk)) in time order averaged per equal time bucket; empty buckets are left
    out, a missing value (None) is left out of its bucket's mean."""
    span = max((until - since).total_seconds(), 1e-9)
    sums: dict[int, list] = {}
    for at, values in samples:
        k = min(int((at - since).total_seconds() / span * buckets), buckets - 1)
        entry = sums.setdefault(k, [at, [0.0] * len(METRICS), [0] * len(METRICS)])
        entry[0] = at  # the bucket's newest time
        for j, v in enumerate(values):
            if v is not None:
                entry[1][j] += v
                entry[2][j] += 1
    return [{"at": isoformat(at), **{m: round(s[j] / n[j], 2) if n[j] else None for j, m in enumerate(METRICS)}}
            for _, (at, s, n) in sorted(sums.items())]
