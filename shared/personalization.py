"""Personalization at a plant (issue #15 item 4), as pure functions over a model and a plant's released scores.

- `freeze_body` (shared.fedper): FedPer (Arivazhagan et al. 2019, "Federated learning with personalization
  layers"): the layers below the head keep the federated weights (requires_grad off), only the head's layers
  train on the plant's data;
- `train_selected`: training epoch by epoch, keeping the epoch whose validation F1 (at its own threshold) is best;
  a fine-tune starts its count at epoch 0, the global model itself, so the plant never keeps a personalized
  model worse than the global one on its own validation split (test is only reported, never used to choose);
- `f1_at`: F1 at one threshold from exact histograms merged into two groups there (each of min_release_rows);
- `own_threshold_scores`: a model's F1 at the threshold its own validation histogram gives (the F1-maximising bin
  edge, shared.metrics.best_threshold_bin), on validation and, at that same threshold, on test; and ROC-AUC.

Every network of shared.networks names its last layers `head.*`; the body is everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from shared.fedper import HEAD, freeze_body, is_head  # noqa: F401 (part of this module's API)
from shared.metrics import best_threshold_bin, confusion_at, rates, threshold_of_bin

if TYPE_CHECKING:
    from shared.model_spec import ModelSpec
    from shared.plant_arrays import PlantArrays
    from shared.protocol import ModelScores, SplitEvaluation, TrainSettings


def own_threshold_scores(val: SplitEvaluation, test: SplitEvaluation) -> ModelScores:
    """F1 at the bin b* = argmax_b F1(val histograms, b) (shared.metrics.best_threshold_bin), on validation and
    on test at the same b*; ROC-AUC of each split as the plant released it. Computed from the histograms the
    plant's release rules produced (coarsened, or noisy): post-processing, nothing finer leaves. None where a
    split released nothing (n = 0) or holds one class only."""
    from shared.protocol import ModelScores

    if val.n == 0 or val.hist_pos.sum() == 0 or val.hist_neg.sum() == 0:
        return ModelScores(val_f1=None, val_auc=val.auc, test_f1=None, test_auc=test.auc, threshold=None)
    b = best_threshold_bin(val.hist_pos, val.hist_neg)
    val_f1 = rates(*confusion_at(val.hist_pos, val.hist_neg, b))["f1"]
    test_f1 = rates(*confusion_at(test.hist_pos, test.hist_neg, b))["f1"] if test.n > 0 else None
    return ModelScores(val_f1=round(val_f1, 4), val_auc=_rounded(val.auc), test_f1=_rounded(test_f1),
                       test_auc=_rounded(test.auc), threshold=threshold_of_bin(b, len(val.hist_pos)))


def f1_at(pos: np.ndarray, neg: np.ndarray, threshold_bin: int, min_rows: int) -> float | None:
    """F1 at `threshold_bin` from a split's exact class histograms merged into two groups at that bin (scores below
    it, at or above it): the release rule of coarsened histograms (every released group holds at least `min_rows`
    rows, shared.metrics.coarsen_histograms) with its one edge at the threshold, so the F1 is exact there. None
    when either group holds fewer than `min_rows` rows, or the split has no failure."""
    pos, neg = np.asarray(pos), np.asarray(neg)
    above = int(pos[threshold_bin:].sum() + neg[threshold_bin:].sum())
    below = int(pos[:threshold_bin].sum() + neg[:threshold_bin].sum())
    if above < max(min_rows, 1) or below < max(min_rows, 1) or pos.sum() == 0:
        return None
    return round(rates(*confusion_at(pos, neg, threshold_bin))["f1"], 4)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def preferred(choice: str, global_f1: float | None, personal_f1: float | None) -> str:
    """Which model a plant scores with under `choice` (global | personalized | best): best is the personalized
    model when its validation F1 at its own threshold is strictly above the global model's, else the global one."""
    if choice == "global" or personal_f1 is None:
        return "global"
    if choice == "personalized":
        return "personalized"
    return "personalized" if global_f1 is None or personal_f1 > global_f1 else "global"


def validation_f1(arrays: PlantArrays, spec: ModelSpec, weights: dict[str, np.ndarray], min_rows: int = 1) -> float:
    """The validation F1 at the model's own threshold on histograms coarsened to `min_rows` per group (the
    plant's release rule, so that the choice agrees with the scores it releases), at the plant; never released:
    it only chooses."""
    from shared.evaluation import evaluate_local

    val, test = evaluate_local(arrays, spec, weights, min_rows=min_rows)
    return own_threshold_scores(val, test).val_f1 or 0.0


def train_selected(arrays: PlantArrays, spec: ModelSpec, weights: dict[str, np.ndarray], settings: TrainSettings,
                   head_only: bool = False, include_start: bool = True, min_rows: int = 1
                   ) -> tuple[dict[str, np.ndarray], int]:
    """(the weights of the best epoch, that epoch): settings.epochs epochs of shared.training.train_local, one at
    a time (each its own batch order), the weights after epoch e kept when their validation F1 is strictly above
    every earlier one's; with `include_start` the starting weights count as epoch 0 (a fine-tune), else the
    first epoch is always the first candidate (a model from scratch). Early stopping by validation, as model
    selection (Prechelt 1998, "Early stopping - but when?"), on the plant's own validation split."""
    import dataclasses

    from shared.training import train_local

    current, best, best_epoch, best_f1 = weights, weights, 0, -1.0
    if include_start:
        best_f1 = validation_f1(arrays, spec, weights, min_rows)
    for epoch in range(1, settings.epochs + 1):
        one = dataclasses.replace(settings, epochs=1, seed=settings.seed + epoch)
        current = train_local(arrays, spec, current, one, head_only=head_only).weights
        f1 = validation_f1(arrays, spec, current, min_rows)
        if f1 > best_f1:
            best, best_epoch, best_f1 = current, epoch, f1
    return best, best_epoch
