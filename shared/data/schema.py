"""The feature schema: how raw CSV columns become the model's input features.

The schema travels with the model bundle (DESIGN §7) so that `shared.predict` encodes new data exactly
as the plants encoded their training data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from shared.errors import DataError


@dataclass(frozen=True)
class FeatureSchema:
    label_column: str
    numeric_columns: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> categories
    group_column: str | None = None
    time_column: str | None = None

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric_columns)
        for column, categories in self.categorical.items():
            names.extend(f"{column}={c}" for c in categories)
        return names

    @property
    def input_columns(self) -> list[str]:
        return list(self.numeric_columns) + list(self.categorical)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["numeric_columns"] = list(self.numeric_columns)
        d["categorical"] = {k: list(v) for k, v in self.categorical.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSchema":
        return cls(label_column=d["label_column"],
                   numeric_columns=tuple(d["numeric_columns"]),
                   categorical={k: tuple(v) for k, v in d.get("categorical", {}).items()},
                   group_column=d.get("group_column"), time_column=d.get("time_column"))

    def encode(self, frame: pd.DataFrame, fill_values: np.ndarray | None = None) -> np.ndarray:
        """Encode `frame` into a float32 matrix in `feature_names` order.

        Numeric values that are missing are replaced by `fill_values` (one per numeric column) when
        given, else left as NaN; categories not seen in training encode as all zeros.
        """
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise DataError(f"missing column(s) {', '.join(map(repr, missing))}; the model needs "
                            f"{', '.join(map(repr, self.input_columns))}")
        parts = []
        for i, column in enumerate(self.numeric_columns):
            values = to_numeric_column(frame[column], column)
            if fill_values is not None:
                values = np.where(np.isnan(values), fill_values[i], values)
            parts.append(values[:, None])
        for column, categories in self.categorical.items():
            text = frame[column].astype("string").fillna("")
            parts.append(np.stack([(text == c).to_numpy(dtype=np.float64) for c in categories], axis=1))
        if not parts:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32)


def merge_schemas(schemas: list["FeatureSchema"]) -> "FeatureSchema":
    """One schema for a federation: numeric columns common to all plants, union of categories.

    Plants whose CSVs differ in extra columns still train together on what they share; a category
    that one plant never saw simply encodes as zero there.
    """
    if not schemas:
        raise DataError("no plant schema to merge")
    first = schemas[0]
    numeric = [c for c in first.numeric_columns if all(c in s.numeric_columns for s in schemas)]
    categorical: dict[str, tuple[str, ...]] = {}
    for column in first.categorical:
        if all(column in s.categorical for s in schemas):
            categorical[column] = tuple(sorted({c for s in schemas for c in s.categorical[column]}))
    if not numeric and not categorical:
        raise DataError("the plants share no feature column; check their CSV headers")
    return FeatureSchema(label_column=first.label_column, numeric_columns=tuple(numeric),
                         categorical=categorical, group_column=first.group_column,
                         time_column=first.time_column)


def to_numeric_column(series: pd.Series, column: str) -> np.ndarray:
    """Numbers as float64 (NaN where empty); a DataError naming the first row that is not a number."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float).to_numpy()
    values = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"column {column!r}, {describe_row(row)}: {excerpt(series.iloc[row])} is not a number")
    out = values.to_numpy(dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def describe_row(row: int) -> str:
    """Name a 0-based data row the way both pandas users and text editors can find it."""
    return f"row {row} (line {row + 2} of the file)"


def excerpt(value, limit: int = 20) -> str:
    """A cell's value as an error message may quote it: at most `limit` printable characters, quoted (a message
    lands in files and logs other people read; it must not carry a whole cell, nor control characters)."""
    text = "".join(c if c.isprintable() else "?" for c in str(value)[:limit + 1])
    return repr(text if len(text) <= limit else text[:limit] + "…")
