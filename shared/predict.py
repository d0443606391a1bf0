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
BATCH_VALUES = 1 << 24  # input values per batch (64 MiB of float32): a long window takes fewer windows at a time


def _sequence_windows(frame: pd.DataFrame, bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): `order` holds the positions of `frame`'s rows sorted per group in time order, and each
    window is order[s:s + sequence_length] for an s in `starts` (whole windows within one group). Windows are
    gathered batch by batch from these: windows x length positions are never held at once."""
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
    order, groups = ordered["pos"].to_numpy(dtype=np.int64), ordered["g"].to_numpy()
    if len(order) < length:
        return order, np.zeros(0, dtype=np.int64)
    same_group = groups[:len(order) - length + 1] == groups[length - 1:]  # sorted: the ends agree, so does all
    return order, np.flatnonzero(same_group).astype(np.int64)


def load_network(bundle: ModelBundle) -> torch.nn.Module:
    """The bundle's network with its weights, in evaluation mode (a caller scoring many batches keeps it)."""
    model = build_model(bundle.spec)
    set_weights(model, bundle.weights)
    model.eval()
    return model


def score_frame(bundle: ModelBundle, frame: pd.DataFrame, network: torch.nn.Module | None = None) -> pd.DataFrame:
    """Probabilities and predictions for a data frame (extra columns are ignored), with `network` when given
    (`load_network(bundle)`), else a network built for this call."""
    x = bundle.scaler.transform(bundle.schema.encode(frame, fill_values=bundle.fill_values))
    model = network if network is not None else load_network(bundle)
    length = bundle.spec.sequence_length if bundle.spec.is_sequence else 1
    if bundle.spec.is_sequence:
        order, starts = _sequence_windows(frame, bundle)
        rows = order[starts + length - 1]
    else:
        order, starts = np.arange(len(frame)), np.arange(len(frame))
        rows = starts
    batch = max(1, min(BATCH, BATCH_VALUES // max(1, length * x.shape[1])))  # a long window: fewer at a time
    logits = []
    with torch.no_grad():
        for first in range(0, len(starts), batch):
            if bundle.spec.is_sequence:  # this batch's windows, (batch, length, features)
                inputs = x[order[starts[first:first + batch, None] + np.arange(length)]]
            else:
                inputs = np.ascontiguousarray(x[first:first + batch])
            logits.append(model(torch.from_numpy(inputs)).numpy())
    logit = np.concatenate(logits).astype(np.float64) if logits else np.zeros(0)
    # rounded once, and the prediction (and the plant floor's alerts) compare this same value with the threshold:
    # 9 decimals resolve the top threshold bins (0.9999523 and 0.9999546 differ by 2.3e-6; 6 decimals did not)
    probability = (1.0 / (1.0 + np.exp(-logit))).round(9)
    out = pd.DataFrame({"row": rows})
    for column in (bundle.schema.group_column, bundle.schema.time_column):
        if column:
            out[column] = frame[column].to_numpy()[rows]
    out["probability"] = probability
    out["prediction"] = (probability >= bundle.threshold).astype(int)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model bundle downloaded from the dashboard")
    parser.add_argument("--data", required=True, help="CSV with the same columns the model was trained on")
    parser.add_argument("--output", help="where to write the scores (default: standard output)")
    args = parser.parse_args(argv)
    # the CLI's messages go to standard error through its own logger (standard output may carry the scores)
    cli = logging.getLogger("shared.predict.cli")
    handler = logging.StreamHandler(sys.stderr)
    cli.addHandler(handler)
    cli.setLevel(logging.INFO)
    cli.propagate = False
    try:
        return _run(args, cli)
    finally:
        cli.removeHandler(handler)


def _run(args: argparse.Namespace, cli: logging.Logger) -> int:
    try:
        bundle = ModelBundle.load(args.model)
        scores = score_frame(bundle, read_csv(args.data))
    except FederatedLearningError as exc:
        cli.error("error: %s", exc)
        return 2
    if args.output:
        scores.to_csv(args.output, index=False)
        cli.info("wrote %d scores to %s (threshold %.7g, %d predicted failures)", len(scores), args.output,
                 bundle.threshold, int(scores["prediction"].sum()))
    else:
        scores.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
