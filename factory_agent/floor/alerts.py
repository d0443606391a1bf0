"""Alerts per machine (DESIGN §10): a score at or above the model's threshold opens an alert for its machine
(the group column; every row without one belongs to the plant's single key), and the alert stays open until a
later score of that machine falls below the threshold. An alert's peak is the highest probability scored while it
was open. Pure functions over one batch of scores in time order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PLANT_KEY = "(plant)"  # the alert key of rows without a machine


@dataclass(frozen=True)
class AlertChange:
    machine: str
    opened: bool  # False: cleared
    probability: float
    row: int
    peak: float  # opened: its own probability; cleared: the highest probability of the open run this batch saw


def machine_keys(scores: pd.DataFrame, group_column: str | None) -> pd.Series:
    """The alert key of each score: its machine id as text, PLANT_KEY without one."""
    if not group_column or group_column not in scores.columns:
        return pd.Series(PLANT_KEY, index=scores.index, dtype=object)
    keys = scores[group_column].astype("string").str.strip()
    return keys.mask(keys.isna() | (keys == ""), PLANT_KEY).astype(object)


def in_time_order(scores: pd.DataFrame, time_column: str | None) -> pd.DataFrame:
    """Scores sorted by their time column (numbers, else dates), then by input row; file order without one."""
    if not time_column or time_column not in scores.columns:
        return scores.sort_values("row", kind="stable")
    numbers = pd.to_numeric(scores[time_column], errors="coerce")
    key = numbers if numbers.notna().all() else pd.to_datetime(scores[time_column], utc=True, errors="coerce")
    return scores.assign(_t=np.asarray(key)).sort_values(["_t", "row"], kind="stable").drop(columns="_t")


def alert_changes(open_before: set[str], machines: pd.Series, probabilities: np.ndarray, rows: np.ndarray,
                  threshold: float) -> tuple[list[AlertChange], set[str], dict[str, float]]:
    """Walk each machine's scores in the given order: (the alerts opened and cleared, the machines open after, and
    for each machine open after the batch the highest probability of its open run within this batch)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    above = probabilities >= threshold
    changes: list[AlertChange] = []
    still_open = set(open_before)
    open_peaks: dict[str, float] = {}
    order = pd.Series(np.arange(len(above)), index=machines.index)
    for machine, positions in order.groupby(machines.to_numpy(), sort=True):
        name, idx = str(machine), positions.to_numpy()
        states = above[idx]
        previous = np.concatenate([[machine in open_before], states[:-1]])
        run_start = 0  # where the current open run began within idx (0: it may have begun before this batch)
        for i in np.flatnonzero(states != previous):
            j = idx[i]
            if states[i]:
                run_start = i
                changes.append(AlertChange(name, True, float(probabilities[j]), int(rows[j]), float(probabilities[j])))
            else:
                peak = float(probabilities[idx[run_start:i]].max()) if i > run_start else float("nan")
                changes.append(AlertChange(name, False, float(probabilities[j]), int(rows[j]), peak))
        if states[-1]:
            still_open.add(name)
            open_peaks[name] = float(probabilities[idx[run_start:]].max())
        else:
            still_open.discard(name)
    return changes, still_open, open_peaks
