"""The learning that runs inside a plant's datasite, as functions over a plant's arrays.

Nothing here reads a file, a request or the environment: the plant's request handlers
(factory_agent.plant.handlers) check the request against the plant's policy, load and save state, and call
these. What they compute is what a plant may release: aggregates over many records, never a row.
- `compute_stats`: count, sum and sum of squares per feature of the training split (for the global scaler);
- `train_local`: local epochs from the global weights (plain, FedProx, FedDyn, DP-SGD with Opacus);
- `evaluate_local`: loss, ROC-AUC and coarse score histograms on the validation and test splits.

Class imbalance: the loss weights failures by the plant's own negative/positive ratio (capped), and
the decision threshold is chosen on the pooled validation histograms by the dashboard (shared.metrics).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from shared.data.scaler import Scaler
from shared.errors import DataError, FederatedLearningError
from shared.metrics import coarsen_histograms, roc_auc, score_histograms
from shared.models import ModelSpec, build_model, get_weights, set_weights
from shared.protocol import SplitEvaluation, TrainSettings

log = logging.getLogger(__name__)

MAX_POS_WEIGHT = 50.0
EVAL_BATCH = 4096
LOSS_CLIP = 10.0  # a row's BCE loss counts at most this much in a private evaluation


class PlantArrays:
    """A plant's split arrays, aligned to the experiment's feature order and scaled."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, index: np.ndarray,
                 plant_features: list[str], experiment_features: list[str], scaler: Scaler | None):
        position = {name: i for i, name in enumerate(plant_features)}
        if features.shape[1] != len(plant_features):
            raise DataError(f"the plant's data has {features.shape[1]} features but {len(plant_features)} names")
        aligned = np.zeros((len(features), len(experiment_features)), dtype=np.float32)
        for j, name in enumerate(experiment_features):
            if name in position:
                aligned[:, j] = features[:, position[name]]
        self.x = scaler.transform(aligned) if scaler is not None else aligned
        self.y = np.asarray(labels, dtype=np.float32)
        self.split = np.asarray(index)[:, 0]
        self.groups = np.asarray(index)[:, 1]

    def scale(self, scaler: Scaler) -> None:
        """Apply the global scaler (after the plant has checked it against its own statistics)."""
        self.x = scaler.transform(self.x)

    def rows(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def window_ends(self, split: int, length: int) -> np.ndarray:
        """Row positions that end a full window of `length` rows of one group within one split
        (rows are stored ordered by split, group and time)."""
        rows = self.rows(split)
        if len(rows) < length:
            return np.zeros(0, dtype=np.int64)
        starts = np.ones(len(rows), dtype=bool)
        starts[1:] = (self.groups[rows[1:]] != self.groups[rows[:-1]]) | (rows[1:] != rows[:-1] + 1)
        run_id = np.cumsum(starts)
        run_start = rows[np.flatnonzero(starts)][run_id - 1]
        return rows[rows - run_start >= length - 1]

    def batch(self, positions: np.ndarray, spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor]:
        if spec.is_sequence:
            offsets = np.arange(spec.sequence_length - 1, -1, -1)
            x = self.x[positions[:, None] - offsets[None, :]]
        else:
            x = self.x[positions]
        return torch.from_numpy(x), torch.from_numpy(self.y[positions])

    def examples(self, split: int, spec: ModelSpec) -> np.ndarray:
        return self.window_ends(split, spec.sequence_length) if spec.is_sequence else self.rows(split)


def compute_stats(arrays: PlantArrays) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, sum, sum of squares) per feature of the (unscaled, aligned) training split: no minimum or maximum,
    which would be single records' values."""
    x = np.asarray(arrays.x[arrays.rows(0)], dtype=np.float64)
    return len(x), x.sum(0), (x * x).sum(0)


@dataclass(frozen=True)
class PrivateTraining:
    """DP-SGD for one round: the noise multiplier the plant settled on and its own random sources, seeded
    from `secrets` (never from the experiment's seed, which the dashboard chooses)."""

    noise_multiplier: float
    max_grad_norm: float
    noise_seed: int
    sampling_seed: int


@dataclass
class TrainOutcome:
    weights: dict[str, np.ndarray]
    num_samples: int
    steps: int
    train_loss: float
    pos_weight: float
    train_seconds: float
    feddyn_term: dict[str, np.ndarray] = field(default_factory=dict)


def dp_steps(num_examples: int, batch_size: int, epochs: int) -> tuple[float, int]:
    """(sample rate q, steps) of Opacus's Poisson sampling: q = 1 / batches per epoch."""
    batches = math.ceil(num_examples / min(batch_size, num_examples))
    return 1.0 / batches, epochs * batches


def train_local(arrays: PlantArrays, spec: ModelSpec, weights: dict[str, np.ndarray], config: TrainSettings,
                feddyn_term: dict[str, np.ndarray] | None = None, private: PrivateTraining | None = None) -> TrainOutcome:
    """Local epochs of Adam on the weighted BCE loss from the global weights.

    FedProx (Li et al. 2020): + mu/2 ||w - w_g||^2. FedDyn (Acar et al., ICLR 2021): - <lambda_k, w> +
    alpha/2 ||w - w_g||^2, and after training lambda_k <- lambda_k - alpha (w_k - w_g), returned for the plant
    to keep. DP-SGD (Abadi et al. 2016) through Opacus when `private` is given."""
    examples = arrays.examples(0, spec)
    if len(examples) == 0:
        raise DataError(f"no training example (rows or windows of {spec.sequence_length}) on this plant")
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(spec)
    set_weights(model, weights)
    global_params = [p.detach().clone() for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    dyn = _feddyn_start(names, global_params, feddyn_term) if config.feddyn_alpha > 0 else None
    pos_weight = _pos_weight(arrays.y[examples], config)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    dp = _make_private(model, optimizer, len(examples), config.batch_size, private) if private else None
    trained = dp[0] if dp else model
    step_optimizer = dp[1] if dp else optimizer
    trained.train()
    steps, loss_sum, seen = 0, 0.0, 0
    started = time.perf_counter()
    for _ in range(config.epochs):
        for positions in _epoch_batches(examples, config.batch_size, generator, dp[2] if dp else None):
            if len(positions) == 0:  # an empty Poisson sample releases nothing: skip it
                continue
            x, y = arrays.batch(positions, spec)
            step_optimizer.zero_grad()
            loss = _regularised(loss_fn(trained(x), y), model, global_params, dyn, config)
            loss.backward()
            if not dp:
                nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            step_optimizer.step()  # under DP-SGD: per-sample clipping and noise
            steps += 1
            loss_sum += float(loss.detach()) * len(y)
            seen += len(y)
    train_loss = loss_sum / max(seen, 1)
    if not math.isfinite(train_loss):
        raise FederatedLearningError("training diverged (loss is not finite); lower the learning rate")
    term = _feddyn_term(names, dyn, model, global_params, config.feddyn_alpha) if dyn is not None else {}
    new_weights = get_weights(model)
    if config.clip_update_norm:
        new_weights = clip_weights_update(weights, new_weights, config.clip_update_norm, config.clip_update_ord)
    return TrainOutcome(weights=new_weights, num_samples=int(len(examples)), steps=steps, train_loss=train_loss,
                        pos_weight=pos_weight, train_seconds=time.perf_counter() - started, feddyn_term=term)


def _pos_weight(labels: np.ndarray, config: TrainSettings) -> float:
    """The failure class's loss weight: the request's, or the plant's negative/positive ratio (capped)."""
    if config.pos_weight is not None:  # given: under DP-SGD the loss may not depend on the plant's label counts
        return config.pos_weight
    positives = float(labels.sum())
    return min(MAX_POS_WEIGHT, (len(labels) - positives) / positives) if positives else 1.0


def _epoch_batches(examples: np.ndarray, batch_size: int, generator: torch.Generator, poisson_loader):
    """One epoch's batches of example positions: Opacus's Poisson samples under DP-SGD, else a shuffle of all
    examples drawn from `generator` at the start of the epoch, cut into `batch_size` pieces."""
    if poisson_loader is not None:
        return (examples[idx.numpy()] for (idx,) in poisson_loader)
    order = examples[torch.randperm(len(examples), generator=generator).numpy()]
    return (order[start:start + batch_size] for start in range(0, len(order), batch_size))


def _regularised(loss: torch.Tensor, model: nn.Module, global_params: list[torch.Tensor],
                 dyn: list[torch.Tensor] | None, config: TrainSettings) -> torch.Tensor:
    """The batch loss plus FedProx's mu/2 ||w - w_g||^2 and FedDyn's - <lambda_k, w> + alpha/2 ||w - w_g||^2."""
    if config.proximal_mu > 0:
        prox = sum(((p - g) ** 2).sum() for p, g in zip(model.parameters(), global_params))
        loss = loss + config.proximal_mu / 2 * prox
    if dyn is not None:
        linear = sum((lam * p).sum() for lam, p in zip(dyn, model.parameters()))
        prox = sum(((p - g) ** 2).sum() for p, g in zip(model.parameters(), global_params))
        loss = loss - linear + config.feddyn_alpha / 2 * prox
    return loss


def _feddyn_start(names: list[str], global_params: list[torch.Tensor], saved: dict | None) -> list[torch.Tensor]:
    """FedDyn's lambda_k as the plant kept it; zeros for a parameter it has none of (or one of another shape)."""
    saved = saved or {}
    return [torch.as_tensor(saved[n]) if n in saved and np.shape(saved[n]) == tuple(g.shape) else torch.zeros_like(g)
            for n, g in zip(names, global_params)]


def _feddyn_term(names: list[str], dyn: list, model: nn.Module, global_params: list, alpha: float) -> dict:
    """lambda_k <- lambda_k - alpha (w_k - w_g), for the plant to keep until its next round."""
    return {n: (lam - alpha * (p.detach() - g)).numpy()
            for n, lam, p, g in zip(names, dyn, model.parameters(), global_params)}


def _make_private(model: nn.Module, optimizer, num_examples: int, batch_size: int, private: PrivateTraining):
    """(private model, private optimizer, Poisson loader of example positions) from Opacus."""
    from shared.privacy.dp_sgd import make_private

    return make_private(model, optimizer, num_examples, batch_size, private.noise_multiplier, private.max_grad_norm,
                        private.noise_seed, private.sampling_seed)


def clip_weights_update(global_weights: dict, weights: dict, max_norm: float, ord: int = 2) -> dict:
    """w_g + clip(w - w_g) over all floating-point parameters together (shared.privacy.central)."""
    from shared.aggregation.vectors import flatten, float_keys, unflatten
    from shared.privacy.central import clip_update

    keys = float_keys(global_weights)
    g = flatten(global_weights, keys)
    out = dict(weights)
    out.update(unflatten(g + clip_update(flatten(weights, keys) - g, max_norm, ord), global_weights, keys))
    return out


def _scores(model: nn.Module, arrays: PlantArrays, positions: np.ndarray, spec: ModelSpec) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(positions), EVAL_BATCH):
            x, _ = arrays.batch(positions[start:start + EVAL_BATCH], spec)
            out.append(model(x).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def evaluate_local(arrays: PlantArrays, spec: ModelSpec, weights: dict[str, np.ndarray], min_rows: int,
                   noise_multiplier: float = 0.0, noise=None) -> tuple[SplitEvaluation, SplitEvaluation]:
    """Unweighted BCE loss, ROC-AUC and score histograms on validation and test.

    Exact (noise_multiplier 0): histogram bins are merged until every released group holds at least
    `min_rows` examples, and a split smaller than that releases nothing (n = 0).
    Private (noise_multiplier sigma > 0, the Gaussian mechanism, Dwork and Roth 2014 App. A): per split the
    plant releases its class histograms and its loss sum with every row's loss clipped to LOSS_CLIP, divided by
    LOSS_CLIP, plus N(0, (sigma * sqrt 2)^2) on every value: one row moves one histogram count by 1 and the
    scaled loss sum by at most 1, an L2 sensitivity of sqrt 2; the splits hold disjoint rows, so one call is
    one Gaussian release of RDP alpha / (2 sigma^2), which the caller charges to the plant's ledger. n, the loss
    and ROC-AUC are then computed from the noisy values (post-processing)."""
    model = build_model(spec)
    set_weights(model, weights)
    model.eval()
    out = []
    for split in (1, 2):
        positions = arrays.examples(split, spec)
        labels = arrays.y[positions]
        logits = _scores(model, arrays, positions, spec)
        probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        pos, neg = score_histograms(probabilities, labels)
        if noise_multiplier > 0:
            out.append(_private_split(logits, labels, pos, neg, min_rows, noise_multiplier, noise))
            continue
        if len(positions) < max(min_rows, 1):
            empty = np.zeros_like(pos)
            out.append(SplitEvaluation(n=0, loss=None, auc=None, hist_pos=empty, hist_neg=empty.copy()))
            continue
        loss = float(nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels)))
        auc = roc_auc(labels, probabilities) if 0 < labels.sum() < len(labels) else None
        pos, neg = coarsen_histograms(pos, neg, min_rows)
        out.append(SplitEvaluation(n=int(len(positions)), loss=loss, auc=auc, hist_pos=pos, hist_neg=neg))
    return out[0], out[1]


def _private_split(logits: np.ndarray, labels: np.ndarray, pos: np.ndarray, neg: np.ndarray, min_rows: int,
                   sigma: float, noise) -> SplitEvaluation:
    from shared.metrics import auc_from_histograms

    losses = nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels),
                                                            reduction="none").numpy()
    scaled_sum = float(np.minimum(losses, LOSS_CLIP).sum()) / LOSS_CLIP
    std = sigma * math.sqrt(2.0)
    noisy_pos = np.maximum(np.rint(pos + noise.normal(0.0, std, size=pos.shape)), 0).astype(np.int64)
    noisy_neg = np.maximum(np.rint(neg + noise.normal(0.0, std, size=neg.shape)), 0).astype(np.int64)
    noisy_sum = scaled_sum + float(noise.normal(0.0, std, size=(1,))[0])
    n = int(noisy_pos.sum() + noisy_neg.sum())
    if n < max(min_rows, 1):
        empty = np.zeros_like(pos)
        return SplitEvaluation(n=0, loss=None, auc=None, hist_pos=empty, hist_neg=empty.copy())
    loss = float(min(max(noisy_sum * LOSS_CLIP / n, 0.0), LOSS_CLIP))
    noisy_pos, noisy_neg = coarsen_histograms(noisy_pos, noisy_neg, min_rows)
    return SplitEvaluation(n=n, loss=loss, auc=auc_from_histograms(noisy_pos, noisy_neg), hist_pos=noisy_pos,
                           hist_neg=noisy_neg)
