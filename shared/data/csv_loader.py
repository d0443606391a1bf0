"""Load a plant's own CSV into model-ready arrays, refusing bad data with a message that says where.

Rules (README "Your own data"):
- the label is binary: numbers (0 = normal, any other code = failure; two codes without 0, such as -1/1,
  mean the larger one is failure) or words such as yes/no, true/false, failure/normal;
- `--drop-columns` are removed; the group and time columns are kept aside (never features);
- text feature columns are one-hot encoded; a text column with more than MAX_CATEGORIES distinct
  values looks like an identifier and is dropped with a warning;
- a mostly-numeric column with a few non-numbers is an error naming the first bad row;
- missing numeric values are filled with the column's median (logged); a column with no values at
  all is dropped; a missing label is an error.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from shared.data.schema import FeatureSchema, describe_row, to_numeric_column
from shared.data.splits import split_rows
from shared.errors import DataError

log = logging.getLogger(__name__)

MAX_CATEGORIES = 30
MAX_HEADER_BYTES = 1 << 20  # the header line is looked at for its delimiter and duplicate names
TEXT_NUMERIC_TOLERANCE = 0.05  # up to 5 % non-numbers in a column means typos, not a text column
POSITIVE_WORDS = {"1", "true", "yes", "y", "failure", "fail", "failed", "fault", "faulty", "anomaly",
                  "abnormal", "broken", "error", "positive"}
NEGATIVE_WORDS = {"0", "false", "no", "n", "normal", "ok", "healthy", "none", "no failure", "pass",
                  "negative", "good"}


@dataclass
class PlantData:
    """A plant's data, encoded, split and ordered by (split, group, time) so windows stay in order."""

    features: np.ndarray  # float32 (n, d), unscaled, no NaN
    labels: np.ndarray  # int64 (n,), 0/1
    split: np.ndarray  # int64 (n,): 0 train, 1 validation, 2 test (shared.data.splits)
    groups: np.ndarray  # int64 (n,), 0 when there is no group column
    schema: FeatureSchema

    @property
    def num_samples(self) -> int:
        return int(len(self.labels))

    def split_counts(self) -> dict[str, int]:
        return {name: int((self.split == code).sum())
                for name, code in (("train", 0), ("validation", 1), ("test", 2))}

    def positive_rate(self) -> float:
        return float(self.labels.mean()) if len(self.labels) else 0.0


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV file, refusing missing files, empty files and duplicate column names."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    with path.open("rb") as fh:
        return read_csv_file(fh, str(path))


def read_csv_file(fh: BinaryIO, label: str) -> pd.DataFrame:
    """`read_csv` over a binary file object at its start (the watch folder passes a file it opened itself, never
    following a link); `label` names it in errors."""
    lines = fh.readline(MAX_HEADER_BYTES).decode("utf-8-sig", errors="replace").splitlines()
    header_line = lines[0] if lines else ""
    fh.seek(0)
    delimiter = max((",", ";", "\t", "|"), key=header_line.count)
    header = next(csv.reader([header_line], delimiter=delimiter), None)
    if not header or not any(h.strip() for h in header):
        raise DataError(f"data file {label!r} is empty: it needs a header line and data rows")
    duplicates = sorted(name for name, count in Counter(h.strip() for h in header).items() if count > 1)
    if duplicates:
        raise DataError(f"data file {label!r} has duplicate column name(s): {', '.join(duplicates)}")
    try:  # comma, semicolon, tab or pipe: whichever the header line uses most
        frame = pd.read_csv(fh, sep=delimiter, low_memory=False, encoding="utf-8-sig", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"data file {label!r} is not a readable CSV: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"data file {label!r} has a header but no data rows")
    return frame


def binary_labels(series: pd.Series, column: str) -> np.ndarray:
    """Map a label column to 0/1 (see the module docstring); a DataError names the first bad row."""
    missing = series.isna() | (series.astype("string").str.strip() == "")
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(f"label column {column!r} is empty at {describe_row(row)} "
                        f"({int(missing.sum())} row(s) without a label); fill or remove them")
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.notna().all():
        values = np.unique(numeric.to_numpy())
        if 0 in values:  # 0 = normal; any other code (1, or a failure type 1..k) = failure
            return (numeric.to_numpy() != 0).astype(np.int64)
        if len(values) == 2:  # e.g. -1/1 (SECOM) or 1/2: the larger code is the failure
            log.warning("label column %r has the codes %s and %s: treating %s as failure", column,
                        values[0], values[1], values[1])
            return (numeric.to_numpy() == values[1]).astype(np.int64)
        raise DataError(f"label column {column!r} has the codes {', '.join(map(str, values[:10]))}: use 0 for "
                        "normal and non-zero for failure, or two codes (the larger one is failure)")
    words = series.astype("string").str.strip().str.lower()
    unknown = ~(words.isin(POSITIVE_WORDS) | words.isin(NEGATIVE_WORDS))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(f"label column {column!r}, {describe_row(row)}: {series.iloc[row]!r} is neither "
                        f"a number nor a known label word (e.g. 0/1, yes/no, failure/normal)")
    return words.isin(POSITIVE_WORDS).to_numpy().astype(np.int64)


def _classify_columns(frame: pd.DataFrame, columns: list[str]) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    numeric: list[str] = []
    categorical: dict[str, tuple[str, ...]] = {}
    for column in columns:
        series = frame[column]
        if series.isna().all():
            log.warning("column %r has no values at all: dropped", column)
            continue
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            numeric.append(column)
            continue
        present = series.dropna()
        as_numbers = pd.to_numeric(present, errors="coerce")
        non_numbers = int(as_numbers.isna().sum())
        if non_numbers == 0:
            numeric.append(column)
        elif non_numbers <= TEXT_NUMERIC_TOLERANCE * len(present):
            to_numeric_column(series, column)  # raises a DataError naming the first bad row
        else:
            categories = sorted(present.astype(str).str.strip().unique())
            if len(categories) > MAX_CATEGORIES:
                log.warning("text column %r has %d distinct values (an identifier?): dropped; "
                            "pass it as --group-column or in --drop-columns to silence this",
                            column, len(categories))
                continue
            categorical[column] = tuple(categories)
    return numeric, categorical


def _order_key(frame: pd.DataFrame, time_column: str | None) -> np.ndarray:
    if not time_column:
        return np.arange(len(frame), dtype=np.float64)
    series = frame[time_column]
    numbers = pd.to_numeric(series, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(dtype=np.float64)
    times = pd.to_datetime(series, errors="coerce", utc=True)
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise DataError(f"time column {time_column!r}, {describe_row(row)}: {series.iloc[row]!r} is "
                        "neither a number nor a date/time")
    return (times.astype("int64") // 10**9).to_numpy(dtype=np.float64)


def load_frame(frame: pd.DataFrame, label_column: str, drop_columns: tuple[str, ...] = (),
               group_column: str | None = None, time_column: str | None = None,
               seed: int = 0) -> PlantData:
    """Validate, encode and split a data frame (the CSV loader and the simulator both come here)."""
    named = {"--label-column": label_column, "--group-column": group_column, "--time-column": time_column}
    for flag, column in named.items():
        if column and column not in frame.columns:
            raise DataError(f"{flag} {column!r} is not a column of the data; columns are: "
                            f"{', '.join(frame.columns)}")
    unknown_drops = [c for c in drop_columns if c not in frame.columns]
    if unknown_drops:
        raise DataError(f"--drop-columns names unknown column(s): {', '.join(unknown_drops)}")

    labels = binary_labels(frame[label_column], label_column)
    if len(np.unique(labels)) < 2:
        only = "failure" if labels[0] == 1 else "no-failure"
        raise DataError(f"label column {label_column!r} has one class only (every row is {only}); "
                        "a model needs examples of both failures and normal operation")

    reserved = {label_column, group_column, time_column, *drop_columns} - {None}
    candidates = [c for c in frame.columns if c not in reserved]
    numeric, categorical = _classify_columns(frame, candidates)
    schema = FeatureSchema(label_column=label_column, numeric_columns=tuple(numeric),
                           categorical=categorical, group_column=group_column, time_column=time_column)
    if not schema.feature_names:
        raise DataError("no usable feature column is left after removing the label, group, time and "
                        "dropped columns")
    features = schema.encode(frame)
    missing = np.isnan(features)
    if missing.any():
        medians = np.nanmedian(features, axis=0)
        log.warning("%d missing numeric value(s) filled with their column's median", int(missing.sum()))
        features = np.where(missing, medians[None, :], features).astype(np.float32)

    if group_column:
        group_codes, _ = pd.factorize(frame[group_column].astype("string").fillna(""))
        groups = group_codes.astype(np.int64)
    else:
        groups = np.zeros(len(frame), dtype=np.int64)
    order_key = _order_key(frame, time_column)
    split = split_rows(labels, groups if group_column else None, order_key,
                       ordered=bool(time_column), seed=seed)
    order = np.lexsort((order_key, groups, split))
    return PlantData(features=features[order], labels=labels[order], split=split[order],
                     groups=groups[order], schema=schema)


def load_csv(path: str | Path, label_column: str, drop_columns: tuple[str, ...] = (),
             group_column: str | None = None, time_column: str | None = None, seed: int = 0) -> PlantData:
    """Read and load a plant's CSV (see the module docstring for the rules)."""
    frame = read_csv(path)
    return load_frame(frame, label_column, drop_columns, group_column, time_column, seed)
