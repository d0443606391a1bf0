"""Score a CSV with a model bundle (DESIGN §7).

    python -m shared.predict --model BUNDLE --data NEW.csv [--output scores.csv]

Writes one row per scored input row (tabular models) or per window end (sequence models), with the
columns: row, [group column], [time column], probability, prediction.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import pandas as pd
import torch

from shared.bundle import ModelBundle
from shared.data.csv_loader import read_csv
from shared.errors import FederatedLearningError
from shared.models import build_model, set_weights

log = logging.getLogger(__name__)
BATCH = 4096


def _sequence_windows(frame: pd.DataFrame, bundle: ModelBundle) -> np.ndarray:
    """Positions (into `frame`'s rows) of every window end, windows taken per group in time order."""
    length = bundle.spec.sequence_length
    schema = bundle.schema
    group = frame[schema.group_column].astype("string").fillna("") if schema.group_column else pd.Series(
        "", index=frame.index)
    if schema.time_column:
        numbers = pd.to_numeric(frame[schema.time_column], errors="coerce")
        order_key = numbers if numbers.notna().all() else pd.to_datetime(frame[schema.time_column], utc=True,
                                                                          errors="coerce")
    else:
        order_key = pd.Series(np.arange(len(frame)), index=frame.index)
    ordered = pd.DataFrame({"g": group.to_numpy(), "t": np.asarray(order_key), "pos": np.arange(len(frame))})
    ordered = ordered.sort_values(["g", "t", "pos"], kind="stable")
    windows = []
    for _, part in ordered.groupby("g", sort=False):
        positions = part["pos"].to_numpy()
        for end in range(length - 1, len(positions)):
            windows.append(positions[end - length + 1:end + 1])
    return np.array(windows, dtype=np.int64).reshape(-1, length)


def score_frame(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """Probabilities and predictions for a data frame (extra columns are ignored)."""
    x = bundle.scaler.transform(bundle.schema.encode(frame, fill_values=bundle.fill_values))
    model = build_model(bundle.spec)
    set_weights(model, bundle.weights)
    model.eval()
    if bundle.spec.is_sequence:
        windows = _sequence_windows(frame, bundle)
        rows = windows[:, -1] if len(windows) else np.zeros(0, dtype=np.int64)
        inputs = x[windows] if len(windows) else np.zeros((0, bundle.spec.sequence_length, x.shape[1]), np.float32)
    else:
        rows = np.arange(len(frame))
        inputs = x
    logits = []
    with torch.no_grad():
        for start in range(0, len(inputs), BATCH):
            logits.append(model(torch.from_numpy(inputs[start:start + BATCH])).numpy())
    logit = np.concatenate(logits).astype(np.float64) if logits else np.zeros(0)
    probability = 1.0 / (1.0 + np.exp(-logit))
    out = pd.DataFrame({"row": rows})
    for column in (bundle.schema.group_column, bundle.schema.time_column):
        if column:
            out[column] = frame[column].to_numpy()[rows]
    out["probability"] = probability.round(6)
    out["prediction"] = (probability >= bundle.threshold).astype(int)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model bundle downloaded from the dashboard")
    parser.add_argument("--data", required=True, help="CSV with the same columns the model was trained on")
    parser.add_argument("--output", help="where to write the scores (default: standard output)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        bundle = ModelBundle.load(args.model)
        scores = score_frame(bundle, read_csv(args.data))
    except FederatedLearningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        scores.to_csv(args.output, index=False)
        print(f"wrote {len(scores)} scores to {args.output} (threshold {bundle.threshold:.3f}, "
              f"{int(scores['prediction'].sum())} predicted failures)", file=sys.stderr)
    else:
        scores.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
