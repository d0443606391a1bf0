"""The C-MAPSS FD001 data shape of bench/quality.py (`--data cmapss --data-dir DIR`, issue 25): four plants of 25
real run-to-failure engines each (DIR/plant_k.csv, label fail_30, group unit, time cycle), read through the
product's own CSV loader. Some engines of every plant are kept apart (seeded) and never reach the federation:
each is cut off at random cycles (seeded) and scored at its last cycle, as the official FD001 test is scored
(accuracy and F1 of "fails within 30 cycles" at the last cycle), through `shared.predict.score_frame` with the
global model and its pooled validation threshold, as a downloaded bundle would score it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factoryfl_testing.inprocess import InProcessPlant
from shared.bundle import ModelBundle
from shared.data.csv_loader import load_frame, read_csv
from shared.data.scaler import Scaler
from shared.data.schema import FeatureSchema
from shared.metrics import rates, roc_auc
from shared.predict import score_frame
from shared.protocol import ModelPart

LABEL, GROUP, TIME = "fail_30", "unit", "cycle"
PLANTS = 4
HELD_OUT = 5  # engines of each plant's 25 kept apart as its held-out test
CUTS = 5  # random cut-off cycles per held-out engine, each scored at its last cycle (100 scores per seed)
WINDOW = 50  # the LSTM's window: a cut leaves at least this many cycles, as a window needs


@dataclass
class HeldOut:
    """The truncated held-out engines of every plant: plant -> a frame of trajectories (one `unit` per cut)."""

    frames: dict[str, pd.DataFrame]
    schema: FeatureSchema

    def last_rows(self, plant: str) -> pd.DataFrame:
        """Each truncated trajectory's last cycle (what is scored)."""
        frame = self.frames[plant]
        return frame.loc[frame.groupby(GROUP)[TIME].idxmax()]

    def score(self, model: ModelPart, threshold: float, plants: list[str] | None = None) -> dict[str, float]:
        """Accuracy, precision, recall, F1 and AUC at each trajectory's last cycle over `plants` (default all)."""
        bundle = ModelBundle(spec=model.spec, schema=self.schema, scaler=Scaler(np.asarray(model.scaler.mean),
                                                                                np.asarray(model.scaler.scale)),
                             weights=model.weights, threshold=threshold)
        probabilities, labels = [], []
        for name in plants or list(self.frames):
            frame = self.frames[name]
            scores = score_frame(bundle, frame)
            last = scores.loc[scores.groupby(GROUP)[TIME].idxmax()]
            probabilities.append(last["probability"].to_numpy())
            labels.append(frame[LABEL].to_numpy()[last["row"].to_numpy()])
        return last_cycle_metrics(np.concatenate(labels), np.concatenate(probabilities), threshold)


def last_cycle_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = probabilities >= threshold
    positive = labels == 1
    tp, fp = float((predicted & positive).sum()), float((predicted & ~positive).sum())
    fn, tn = float((~predicted & positive).sum()), float((~predicted & ~positive).sum())
    auc = roc_auc(labels, probabilities) if 0 < positive.sum() < len(labels) else float("nan")
    return {**rates(tp, fp, tn, fn), "auc": auc}


def truncate(frame: pd.DataFrame, rng: np.random.Generator, cuts: int = CUTS, window: int = WINDOW) -> pd.DataFrame:
    """`cuts` copies of each engine of `frame`, each cut off at a cycle drawn uniformly from window..its last,
    each copy its own unit id (the engine's id * 100 + the cut's number)."""
    pieces = []
    for unit, engine in frame.groupby(GROUP):
        engine = engine.sort_values(TIME)
        for k in range(cuts):
            end = int(rng.integers(min(window, len(engine)), len(engine) + 1))
            piece = engine.iloc[:end].copy()
            piece[GROUP] = int(unit) * 100 + k
            pieces.append(piece)
    return pd.concat(pieces, ignore_index=True)


def cmapss_plants(data_dir: Path, root: Path, seed: int) -> tuple[list[InProcessPlant], HeldOut]:
    """The four plants (their engines but the held-out ones, loaded as the agent loads a CSV) and the held-out
    truncated engines; `seed` picks the held-out engines and the cuts."""
    rng = np.random.default_rng(10_000 + seed)
    plants, frames, schema = [], {}, None
    for k in range(1, PLANTS + 1):
        frame = read_csv(Path(data_dir) / f"plant_{k}.csv")
        units = np.unique(frame[GROUP].to_numpy())
        held = rng.choice(units, size=HELD_OUT, replace=False)
        kept = frame[~frame[GROUP].isin(held)].reset_index(drop=True)
        data = load_frame(kept, LABEL, (), GROUP, TIME, seed=seed)
        name = f"cmapss_{k}"
        plants.append(InProcessPlant.from_data(name, data, root))
        frames[name] = truncate(frame[frame[GROUP].isin(held)], rng)
        schema = schema or data.schema
    return plants, HeldOut(frames, schema)
