"""The local-only GBDT a plant engineer would train instead of joining (issue 25 item 3): scikit-learn's
HistGradientBoostingClassifier on the plant's own training split, the same encoded features the federation
uses (for window models: each window's last row, not the flattened window), its decision threshold the one that
maximises F1 on that plant's validation split; scored on that plant's test split (for window models the rows
that end a full window, the examples the federated model is scored on) or on the C-MAPSS held-out engines'
last cycles. The pooled GBDT is the same on the union of all plants' rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import precision_recall_curve

from bench.cmapss import HeldOut, last_cycle_metrics
from factoryfl_testing.inprocess import InProcessPlant, union_data
from shared.data.csv_loader import PlantData
from shared.metrics import rates
from shared.training import PlantArrays


def fit(data: list[PlantData], seed: int) -> tuple[HistGradientBoostingClassifier, float]:
    """(the model on the training rows of `data`, the F1-best threshold on their validation rows)."""
    x = np.concatenate([d.features[d.split == 0] for d in data])
    y = np.concatenate([d.labels[d.split == 0] for d in data])
    model = HistGradientBoostingClassifier(random_state=seed).fit(x, y)
    xv = np.concatenate([d.features[d.split == 1] for d in data])
    yv = np.concatenate([d.labels[d.split == 1] for d in data])
    return model, best_threshold(yv, model.predict_proba(xv)[:, 1])


def best_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The probability threshold of the highest F1 (0.5 without a failure among the labels)."""
    if labels.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def window_ends(data: PlantData, split: int, length: int) -> np.ndarray:
    """The examples the federated model is scored on: rows of `split` that end a full window of `length` rows
    (the plants' own rule, shared.training.PlantArrays), all the split's rows for a row model (length 1)."""
    names = list(data.schema.feature_names)
    arrays = PlantArrays(data.features, data.labels, np.stack([data.split, data.groups], 1), names, names, None)
    return arrays.window_ends(split, length) if length > 1 else arrays.rows(split)


def split_f1(model, threshold: float, data: PlantData, length: int) -> float:
    rows = window_ends(data, 2, length)
    predicted = model.predict_proba(data.features[rows])[:, 1] >= threshold
    positive = data.labels[rows] == 1
    return rates(float((predicted & positive).sum()), float((predicted & ~positive).sum()),
                 float((~predicted & ~positive).sum()), float((~predicted & positive).sum()))["f1"]


def held_out_f1(model, threshold: float, held: HeldOut, plant: str, schema=None) -> float:
    """F1 at the held-out engines' last cycles, features encoded by `schema` (the plants' unless given)."""
    last = held.last_rows(plant)
    x = (schema or held.schema).encode(last)
    return last_cycle_metrics(last["fail_30"].to_numpy(), model.predict_proba(x)[:, 1], threshold)["f1"]


def gbdt_rows(plants: list[InProcessPlant], length: int, seed: int, held: HeldOut | None = None
              ) -> dict[str, dict[str, float]]:
    """plant -> {"local GBDT": its own model's test F1, "pooled GBDT": the union's model's on its test}."""
    union = union_data(plants)  # features aligned by name across plants (their categories can differ)
    pooled = fit([union], seed)
    out, start = {}, 0
    for p in plants:
        local = fit([p.data], seed)
        if held is None:
            rows = slice(start, start + p.data.num_samples)
            mine = replace(p.data, features=union.features[rows], schema=union.schema)
            out[p.name] = {"local GBDT": split_f1(*local, p.data, length), "pooled GBDT": split_f1(*pooled, mine,
                                                                                                 length)}
            start += p.data.num_samples
        else:
            out[p.name] = {"local GBDT": held_out_f1(*local, held, p.name),
                           "pooled GBDT": held_out_f1(*pooled, held, p.name, union.schema)}
    return out

