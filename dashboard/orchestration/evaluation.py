"""A model's federated evaluation (DESIGN §6.3): the decision threshold from the pooled validation histograms
(max F1), then each plant's metrics at it and their sample-weighted means. Pure: plants' replies in, metrics out.
Each plant's released histograms are coarse (no group under its min_release_rows): they are read back spread
evenly over each group's bins (shared.metrics.spread_groups) before pooling and before any metric."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.metrics import best_threshold_bin, confusion_at, rates, spread_groups, threshold_of_bin
from shared.protocol import EvaluateReply, TrainReply


@dataclass(frozen=True)
class Evaluation:
    """One global model's scores: its threshold, the federation's metrics and each plant's."""

    threshold: float
    aggregate: dict = field(default_factory=dict)
    per_factory: dict[str, dict] = field(default_factory=dict)


def _metrics_from(evaluation: EvaluateReply, threshold_bin: int) -> dict:
    metrics: dict = {}
    for prefix, part in (("val", evaluation.val), ("test", evaluation.test)):
        if part.n == 0:  # nothing released: the split is below the plant's minimum
            continue
        metrics[f"{prefix}_loss"] = part.loss
        metrics[f"{prefix}_auc"] = part.auc
        counts = confusion_at(*spread_groups(part.hist_pos, part.hist_neg), threshold_bin)
        for key, value in rates(*counts).items():
            metrics[f"{prefix}_{key}"] = value
        metrics[f"{prefix}_samples"] = part.n
    return metrics


def weighted_mean(values: list[tuple[float | None, int]]) -> float | None:
    pairs = [(v, n) for v, n in values if v is not None and n > 0]
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else None


def evaluate(evaluations: dict[str, EvaluateReply]) -> Evaluation:
    """The threshold that maximises F1 on the pooled validation histograms, and the metrics at it."""
    spread = [spread_groups(e.val.hist_pos, e.val.hist_neg) for e in evaluations.values()]
    pos, neg = sum(p for p, _ in spread), sum(n for _, n in spread)
    threshold_bin = best_threshold_bin(pos, neg)
    per_factory = {name: _metrics_from(e, threshold_bin) for name, e in evaluations.items()}
    return Evaluation(threshold_of_bin(threshold_bin), pooled(per_factory), per_factory)


def pooled(per_factory: dict[str, dict]) -> dict:
    """Every metric's mean over plants, weighted by the samples it was measured on."""
    aggregate: dict = {}
    keys = {k for m in per_factory.values() for k in m if not k.endswith(("_samples", "_seconds"))}
    for key in sorted(keys):
        weight_key = "train_samples" if key.startswith("train") else f"{key.split('_')[0]}_samples"
        aggregate[key] = weighted_mean([(m.get(key), m.get(weight_key, 0)) for m in per_factory.values()])
    return aggregate


def training_metrics(answers: dict[str, TrainReply]) -> dict[str, dict]:
    """What each plant says of its own training: loss (withheld under DP-SGD or secure aggregation), rows, time."""
    return {name: {"train_loss": a.train_loss, "train_samples": a.num_samples, "train_seconds": a.train_seconds}
            for name, a in answers.items()}
