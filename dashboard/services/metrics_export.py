"""An experiment's metrics as CSV (issue 27 item 6): one row per recorded round for the aggregate (plant "all",
round 0 the initial model) and one per plant and round, every metric a column. Values a plant chose (metric
names, text) are neutralised against spreadsheet formula injection (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io

from dashboard.models import Experiment
from shared.enums import RoundStatus

FIXED = ["round", "plant", "participants", "duration_s", "threshold"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> object:
    """A CSV cell: numbers as they are, text that a spreadsheet would run as a formula prefixed with a quote."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def metric_rows(experiment: Experiment) -> list[dict]:
    """The rows, aggregate first within each round; metric values only where they are numbers."""
    rows = []
    if experiment.baseline:
        rows.append({"round": 0, "plant": "all", **_numbers(experiment.baseline)})
    for r in experiment.rounds:
        if r.status != RoundStatus.COMPLETED.value:
            continue
        rows.append({"round": r.number, "plant": "all", "participants": len(r.participants or []),
                     "duration_s": r.duration_s, "threshold": r.threshold, **_numbers(r.metrics)})
        for result in sorted(r.results, key=lambda x: x.factory_name):
            rows.append({"round": r.number, "plant": result.factory_name, **_numbers(result.metrics)})
    return rows


def _numbers(metrics: dict | None) -> dict:
    return {str(k): v for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and str(k) not in FIXED}


def metrics_csv(experiment: Experiment) -> str:
    rows = metric_rows(experiment)
    columns = FIXED + sorted({k for row in rows for k in row} - set(FIXED))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([cell(c) for c in columns])
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    return out.getvalue()
