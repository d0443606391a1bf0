"""The learning that runs inside a plant's datasite, as functions over a plant's arrays.

Nothing here reads a file, a request or the environment: the plant's request handlers
(factory_agent.plant.handlers) check the request against the plant's policy, load and save state, and call
these. What they compute is what a plant may release: aggregates over many records, never a row.
- `compute_stats`: count, sum and sum of squares per feature of the training split (for the global scaler);
- `train_local`: local epochs from the global weights (plain, FedProx, FedDyn, SCAFFOLD, DP-SGD with Opacus);
- `evaluate_local` (shared.evaluation): loss, ROC-AUC and coarse score histograms on the validation and test splits.

Class imbalance: the loss weights failures by the request's `pos_weight` (the federation's pooled
negative/positive ratio, one objective for every plant) or else by the plant's own ratio (capped), and the
decision threshold is chosen on the pooled validation histograms by the dashboard (shared.metrics).
Training runs on the plant's GPU when it has one (shared.device); on the CPU the numbers are those of the
code before GPUs were used (same seeds, same order of operations).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from shared.adam import FunctionalAdam
from shared.device import compute_device
from shared.errors import DataError, FederatedLearningError
from shared.evaluation import evaluate_local
from shared.fedper import freeze_body
from shared.models import ModelSpec, build_model, get_weights, set_weights
from shared.plant_arrays import PlantArrays
from shared.protocol import TrainSettings

log = logging.getLogger(__name__)

MAX_POS_WEIGHT = 50.0
__all__ = ["MAX_POS_WEIGHT", "PlantArrays", "PrivateTraining", "TrainOutcome", "clip_weights_update", "compute_stats",
           "count_positives", "dp_steps", "evaluate_local", "pooled_pos_weight", "train_local"]


def compute_stats(arrays: PlantArrays) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, sum, sum of squares) per feature of the (unscaled, aligned) training split: no minimum or maximum,
    which would be single records' values."""
    x = np.asarray(arrays.x[arrays.rows(0)], dtype=np.float64)
    return len(x), x.sum(0), (x * x).sum(0)


def count_positives(arrays: PlantArrays) -> int:
    """Failures among the training split's rows (the federation pools these into one class weight)."""
    return int(arrays.y[arrays.rows(0)].sum())


def pooled_pos_weight(counts: list[tuple[int, int]]) -> float | None:
    """The failure class's loss weight for every plant: sum of negatives / sum of positives over the plants'
    (rows, positives), capped at MAX_POS_WEIGHT as each plant's own ratio is; None without any positive.
    One objective for all plants (the weighted loss of the union), where each plant's own ratio would make
    the plants optimise different losses (a cause of client drift on non-IID data)."""
    rows, positives = sum(c for c, _ in counts), sum(p for _, p in counts)
    return min(MAX_POS_WEIGHT, (rows - positives) / positives) if positives else None


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
                feddyn_term: dict[str, np.ndarray] | None = None, private: PrivateTraining | None = None,
                head_only: bool = False, correction: dict[str, np.ndarray] | None = None) -> TrainOutcome:
    """Local epochs of Adam on the weighted BCE loss from the global weights, on the plant's GPU if it has one;
    `head_only`: the body frozen, only the head trained (FedPer, shared.fedper.freeze_body).

    FedProx (Li et al. 2020): + mu/2 ||w - w_g||^2. FedDyn (Acar et al., ICLR 2021): - <lambda_k, w> +
    alpha/2 ||w - w_g||^2, and after training lambda_k <- lambda_k - alpha (w_k - w_g), returned for the plant
    to keep. SCAFFOLD (Karimireddy et al., ICML 2020): every step also moves w by -lr (c - c_i), `correction`
    = c - c_i per parameter (shared.aggregation.scaffold says why on the step). DP-SGD (Abadi et al. 2016)
    through Opacus when `private` is given."""
    examples = arrays.examples(0, spec)
    if len(examples) == 0:
        raise DataError(f"no training example (rows or windows of {spec.sequence_length}) on this plant")
    device = compute_device()
    generator = torch.Generator().manual_seed(config.seed)  # batch order: on the CPU wherever the model runs
    torch.manual_seed(config.seed)
    model = build_model(spec)
    set_weights(model, weights)
    if head_only:
        freeze_body(model)
    model.to(device)
    global_params = [p.detach().clone() for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    dyn = _feddyn_start(names, global_params, feddyn_term) if config.feddyn_alpha > 0 else None
    pos_weight = _pos_weight(arrays.y[examples], config)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
    # Adam through torch's functional API (shared.adam: no torch._dynamo, ~90 MB); Opacus wraps the class;
    # FedPer personalization trains only the head (the body's parameters do not require gradients)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = (torch.optim.Adam(trainable, lr=config.learning_rate) if private
                 else FunctionalAdam(trainable, lr=config.learning_rate))
    dp = _make_private(model, optimizer, len(examples), config.batch_size, private, device) if private else None
    started = time.perf_counter()
    fix = _step_correction(names, global_params, correction)
    steps, train_loss = _epochs(arrays, spec, examples, config, model, global_params, dyn, loss_fn,
                                (dp[0], dp[1], fix) if dp else (model, optimizer, fix),
                                _batches(examples, config, generator, dp[2] if dp else None), device)
    if not math.isfinite(train_loss):
        raise FederatedLearningError("training diverged (loss is not finite); lower the learning rate")
    term = _feddyn_term(names, dyn, model, global_params, config.feddyn_alpha) if dyn is not None else {}
    new_weights = get_weights(model)
    if config.clip_update_norm:
        new_weights = clip_weights_update(weights, new_weights, config.clip_update_norm, config.clip_update_ord)
    return TrainOutcome(weights=new_weights, num_samples=int(len(examples)), steps=steps, train_loss=train_loss,
                        pos_weight=pos_weight, train_seconds=time.perf_counter() - started, feddyn_term=term)


def _batches(examples: np.ndarray, config: TrainSettings, generator: torch.Generator, poisson_loader):
    """Every epoch's batches, epoch after epoch (each epoch's shuffle drawn when that epoch starts)."""
    for _ in range(config.epochs):
        yield from _epoch_batches(examples, config.batch_size, generator, poisson_loader)


def _epochs(arrays: PlantArrays, spec: ModelSpec, examples: np.ndarray, config: TrainSettings, model: nn.Module,
            global_params: list, dyn: list | None, loss_fn, trainer: tuple, batches, device: torch.device
            ) -> tuple[int, float]:
    """(steps, mean training loss per example) of the optimiser steps over `batches`; `trainer` is (model,
    optimizer, SCAFFOLD's correction or None), Opacus's private pair under DP-SGD (which clips per sample)."""
    trained, step_optimizer, correction = trainer
    private = trained is not model
    trained.train()
    steps, loss_sum, seen = 0, 0.0, 0
    for positions in batches:
        if len(positions) == 0:  # an empty Poisson sample releases nothing: skip it
            continue
        x, y = arrays.batch(positions, spec)
        x, y = x.to(device), y.to(device)
        step_optimizer.zero_grad()
        loss = _regularised(loss_fn(trained(x), y), model, global_params, dyn, config)
        loss.backward()
        if not private:
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        step_optimizer.step()  # under DP-SGD: per-sample clipping and noise
        if correction is not None:
            _correct(model, correction, config.learning_rate)
        steps += 1
        loss_sum += float(loss.detach()) * len(y)
        seen += len(y)
    return steps, loss_sum / max(seen, 1)


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
    return [torch.as_tensor(saved[n]).to(g.device) if n in saved and np.shape(saved[n]) == tuple(g.shape)
            else torch.zeros_like(g) for n, g in zip(names, global_params)]


def _feddyn_term(names: list[str], dyn: list, model: nn.Module, global_params: list, alpha: float) -> dict:
    """lambda_k <- lambda_k - alpha (w_k - w_g), for the plant to keep until its next round."""
    return {n: (lam - alpha * (p.detach() - g)).cpu().numpy()
            for n, lam, p, g in zip(names, dyn, model.parameters(), global_params)}


def _step_correction(names: list[str], global_params: list[torch.Tensor], correction: dict | None) -> list | None:
    """SCAFFOLD's c - c_i as tensors beside the parameters (shapes were checked where the request was parsed)."""
    if correction is None:
        return None
    return [torch.as_tensor(np.asarray(correction[n], dtype=np.float32)).to(g.device)
            for n, g in zip(names, global_params)]


@torch.no_grad()
def _correct(model: nn.Module, correction: list[torch.Tensor], learning_rate: float) -> None:
    """w <- w - lr (c - c_i) after the optimiser's step (Karimireddy et al. 2020, Algorithm 1, line 10)."""
    for p, delta in zip(model.parameters(), correction):
        p.sub_(learning_rate * delta)


def _make_private(model: nn.Module, optimizer, num_examples: int, batch_size: int, private: PrivateTraining,
                  device: torch.device):
    """(private model, private optimizer, Poisson loader of example positions) from Opacus."""
    from shared.privacy.dp_sgd import make_private

    return make_private(model, optimizer, num_examples, batch_size, private.noise_multiplier, private.max_grad_norm,
                        private.noise_seed, private.sampling_seed, device)


def clip_weights_update(global_weights: dict, weights: dict, max_norm: float, ord: int = 2) -> dict:
    """w_g + clip(w - w_g) over all floating-point parameters together (shared.privacy.central)."""
    from shared.aggregation.vectors import flatten, float_keys, unflatten
    from shared.privacy.central import clip_update

    keys = float_keys(global_weights)
    g = flatten(global_weights, keys)
    out = dict(weights)
    out.update(unflatten(g + clip_update(flatten(weights, keys) - g, max_norm, ord), global_weights, keys))
    return out
