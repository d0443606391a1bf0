"""The plant floor's own records, in `floor.sqlite` in the plant's state folder (mode 0600): every score (the most
recent `keep_scores`), every alert (opened, cleared), the running totals behind the drift score, and the count of
scored rows. Scores never leave the plant; heartbeats carry `counts()`, the drift score and `alert_report()`: each
alert's id, times and model, and its machine and peak only where the plant's policy shares them (DESIGN §10).

One IMMEDIATE transaction per scored batch, so the watch folder, the live stream and the loopback endpoint can
score at the same time without losing an alert transition."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from factory_agent.sqlite_store import immediate_transaction
from factory_agent.floor.alerts import AlertChange
from factory_agent.floor.drift import FeatureTotals

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, source TEXT NOT NULL,
                                   model_id INTEGER NOT NULL, row INTEGER NOT NULL, machine TEXT NOT NULL,
                                   time TEXT, probability REAL NOT NULL, prediction INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, machine TEXT NOT NULL, model_id INTEGER,
                                   source TEXT, opened_at REAL NOT NULL, opened_probability REAL NOT NULL,
                                   cleared_at REAL, cleared_probability REAL, peak_probability REAL);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (machine) WHERE cleared_at IS NULL;
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY AUTOINCREMENT, model_id INTEGER NOT NULL, at REAL NOT NULL,
                                   count INTEGER NOT NULL, sum TEXT NOT NULL, sum_sq TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
KEEP_TOTALS = 500  # drift batches kept per store
ALERT_COLUMNS = ("id", "machine", "model_id", "source", "opened_at", "opened_probability", "cleared_at",
                 "cleared_probability", "peak_probability")


class FloorStore:
    def __init__(self, path: Path, keep_scores: int = 200_000):
        self.path = Path(path)
        self.keep_scores = keep_scores
        with self._transaction() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(alerts)")}
            if "peak_probability" not in columns:  # a store made before alerts had a peak
                db.execute("ALTER TABLE alerts ADD COLUMN peak_probability REAL")
        os.chmod(self.path, 0o600)

    def _transaction(self):
        return immediate_transaction(self.path, _SCHEMA)

    def open_alerts(self) -> set[str]:
        with self._transaction() as db:
            return {m for (m,) in db.execute("SELECT machine FROM alerts WHERE cleared_at IS NULL")}

    def record(self, model_id: int, source: str, scores: pd.DataFrame, machines: pd.Series,
               time_column: str | None, changes: list[AlertChange], totals: FeatureTotals,
               open_peaks: dict[str, float] | None = None) -> None:
        """Store one scored batch: its scores, its alert transitions and peaks, its drift totals, the row count."""
        now = time.time()
        times = scores[time_column].astype(str).tolist() if time_column and time_column in scores else \
            [None] * len(scores)
        rows = zip(scores["row"].astype(int).tolist(), machines.astype(str).tolist(), times,
                   scores["probability"].astype(float).tolist(), scores["prediction"].astype(int).tolist())
        with self._transaction() as db:
            db.executemany("INSERT INTO scores (at, source, model_id, row, machine, time, probability, prediction) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ((now, source, model_id, *r) for r in rows))
            for change in changes:
                if change.opened:
                    db.execute("INSERT OR IGNORE INTO alerts (machine, model_id, source, opened_at, "
                               "opened_probability, peak_probability) VALUES (?, ?, ?, ?, ?, ?)",
                               (change.machine, model_id, source, now, change.probability, change.probability))
                else:
                    db.execute(f"UPDATE alerts SET cleared_at = ?, cleared_probability = ?, {_PEAK} WHERE "
                               "machine = ? AND cleared_at IS NULL",
                               (now, change.probability, _finite(change.peak), change.machine))
            for machine, peak in (open_peaks or {}).items():
                db.execute(f"UPDATE alerts SET {_PEAK} WHERE machine = ? AND cleared_at IS NULL",
                           (_finite(peak), machine))
            db.execute("INSERT INTO totals (model_id, at, count, sum, sum_sq) VALUES (?, ?, ?, ?, ?)",
                       (model_id, now, totals.count, json.dumps(totals.sum.tolist()),
                        json.dumps(totals.sum_sq.tolist())))
            db.execute("INSERT INTO counters VALUES ('scored_rows', ?) ON CONFLICT (name) DO UPDATE SET "
                       "value = value + excluded.value", (len(scores),))
            db.execute("DELETE FROM scores WHERE id <= (SELECT MAX(id) FROM scores) - ?", (self.keep_scores,))
            db.execute("DELETE FROM totals WHERE id <= (SELECT MAX(id) FROM totals) - ?", (KEEP_TOTALS,))

    def counts(self) -> tuple[int, int]:
        """(rows scored since the plant began, alerts open now)."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM counters WHERE name = 'scored_rows'").fetchone()
            (alerts,) = db.execute("SELECT COUNT(*) FROM alerts WHERE cleared_at IS NULL").fetchone()
        return (row[0] if row else 0), alerts

    def recent_totals(self, model_id: int, rows: int) -> FeatureTotals | None:
        """The drift totals of the newest batches scored with this model, covering at least `rows` rows."""
        total: FeatureTotals | None = None
        with self._transaction() as db:
            for count, sums, squares in db.execute("SELECT count, sum, sum_sq FROM totals WHERE model_id = ? "
                                                   "ORDER BY id DESC", (model_id,)):
                part = FeatureTotals(count, np.asarray(json.loads(sums)), np.asarray(json.loads(squares)))
                total = part if total is None else total + part
                if total.count >= rows:
                    break
        return total

    def alerts(self, limit: int = 100) -> list[dict]:
        """The newest alerts (open and cleared), for the loopback endpoint."""
        with self._transaction() as db:
            return _rows(db.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts ORDER BY id DESC LIMIT ?",
                                    (limit,)))

    def alert(self, alert_id: int) -> dict | None:
        """One alert by its id (the id a heartbeat reports), or None."""
        with self._transaction() as db:
            found = _rows(db.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE id = ?", (alert_id,)))
        return found[0] if found else None

    def alert_report(self, limit: int) -> tuple[int, list[dict]]:
        """(alerts ever opened at this plant, the newest `limit` of them): what a heartbeat may count."""
        with self._transaction() as db:
            (opened,) = db.execute("SELECT COUNT(*) FROM alerts").fetchone()
            newest = _rows(db.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts ORDER BY id DESC LIMIT ?",
                                      (limit,)))
        return opened, newest


# an alert's peak: the highest of its opening probability, its stored peak and this batch's (NULL: nothing new)
_PEAK = "peak_probability = MAX(COALESCE(peak_probability, opened_probability), COALESCE(?, 0))"


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _rows(cursor) -> list[dict]:
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, r)) for r in cursor]
