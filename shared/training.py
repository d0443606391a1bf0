"""The code that runs inside a plant's datasite, called by the vetted syft function (shared.vetted).

Three operations, each returning only aggregates (never rows):
- `stats`: feature statistics of the training split (for the global scaler);
- `train`: local epochs from the global weights; returns the new weights, sample and step counts, loss;
- `evaluate`: loss, ROC-AUC and score histograms on the validation and test splits.

Class imbalance: the loss weights failures by the plant's own negative/positive ratio (capped), and
the decision threshold is chosen on the pooled validation histograms by the dashboard (shared.metrics).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from shared.data.scaler import Scaler, feature_stats
from shared.errors import DataError, FederatedLearningError
from shared.metrics import score_histograms
from shared.models import ModelSpec, build_model, get_weights, set_weights
from shared.plant_state import state_directory

log = logging.getLogger(__name__)

MAX_POS_WEIGHT = 50.0
EVAL_BATCH = 4096


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 1e-3
    max_grad_norm: float = 5.0  # gradient clipping of each step
    proximal_mu: float = 0.0  # FedProx: mu/2 * ||w - w_global||^2
    feddyn_alpha: float = 0.0  # FedDyn: - <lambda_k, w> + alpha/2 * ||w - w_global||^2, lambda_k kept at the plant
    clip_update_norm: float | None = None  # central DP / norm bound: the plant clips its update before sending
    clip_update_ord: int = 2  # 1 for the Laplace mechanism (L1 sensitivity)
    dp_noise_multiplier: float = 0.0  # > 0: record-level DP-SGD with Opacus (shared.privacy.dp_sgd)
    dp_max_grad_norm: float = 1.0
    dp_delta: float = 1e-5
    dp_target_epsilon: float | None = None
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


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


def compute_stats(arrays: PlantArrays) -> dict:
    train = arrays.rows(0)
    return {"stats": feature_stats(arrays.x[train]).to_dict(),
            "num_samples": {"train": int(len(train)), "validation": int(len(arrays.rows(1))),
                            "test": int(len(arrays.rows(2)))},
            "positives_train": int(arrays.y[train].sum())}


def _feddyn_path(state_key: str) -> str:
    folder = state_directory() / "feddyn"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{state_key}.npz")


def train_local(arrays: PlantArrays, spec: ModelSpec, weights: dict[str, np.ndarray], config: TrainConfig,
                state_key: str = "default") -> dict:
    """Local epochs of Adam on the weighted BCE loss; returns the new weights and what aggregation needs.

    FedDyn (Acar et al., ICLR 2021): the plant's linear term lambda_k lives in its state folder between
    rounds and is updated after training: lambda_k <- lambda_k - alpha * (w_k - w_global)."""
    examples = arrays.examples(0, spec)
    if len(examples) == 0:
        raise DataError(f"no training example (rows or windows of {spec.sequence_length}) on this plant")
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(spec)
    set_weights(model, weights)
    global_params = [p.detach().clone() for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    dyn = None
    if config.feddyn_alpha > 0:
        import os

        path = _feddyn_path(state_key)
        saved = dict(np.load(path)) if os.path.exists(path) else {}
        dyn = [torch.as_tensor(saved[n]) if n in saved else torch.zeros_like(g) for n, g in zip(names, global_params)]
    labels = arrays.y[examples]
    positives = float(labels.sum())
    pos_weight = min(MAX_POS_WEIGHT, (len(labels) - positives) / positives) if positives else 1.0
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    private = _private_training(model, optimizer, len(examples), config, state_key) \
        if config.dp_noise_multiplier > 0 else None
    trained = private.model if private else model
    trained.train()
    steps, loss_sum, seen = 0, 0.0, 0
    started = time.perf_counter()
    for _ in range(config.epochs):
        if private:  # Poisson-sampled batches of example positions (Opacus)
            batches = (examples[idx.numpy()] for (idx,) in private.loader)
        else:
            order = examples[torch.randperm(len(examples), generator=generator).numpy()]
            batches = (order[start:start + config.batch_size] for start in range(0, len(order), config.batch_size))
        for positions in batches:
            if len(positions) == 0:  # an empty Poisson sample releases nothing: skip it
                continue
            x, y = arrays.batch(positions, spec)
            (private.optimizer if private else optimizer).zero_grad()
            loss = loss_fn(trained(x), y)
            if config.proximal_mu > 0:
                prox = sum(((p - g) ** 2).sum() for p, g in zip(model.parameters(), global_params))
                loss = loss + config.proximal_mu / 2 * prox
            if dyn is not None:
                linear = sum((lam * p).sum() for lam, p in zip(dyn, model.parameters()))
                prox = sum(((p - g) ** 2).sum() for p, g in zip(model.parameters(), global_params))
                loss = loss - linear + config.feddyn_alpha / 2 * prox
            loss.backward()
            if private:
                private.optimizer.step()  # per-sample clipping and noise
            else:
                nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
            steps += 1
            loss_sum += float(loss.detach()) * len(y)
            seen += len(y)
    train_loss = loss_sum / max(seen, 1)
    if dyn is not None:
        updated = {n: (lam - config.feddyn_alpha * (p.detach() - g)).numpy()
                   for n, lam, p, g in zip(names, dyn, model.parameters(), global_params)}
        np.savez(_feddyn_path(state_key), **updated)
    if not math.isfinite(train_loss):
        raise FederatedLearningError("training diverged (loss is not finite); lower the learning rate")
    new_weights = get_weights(model)
    if config.clip_update_norm:
        new_weights = clip_weights_update(weights, new_weights, config.clip_update_norm, config.clip_update_ord)
    result = {"weights": new_weights, "num_samples": int(len(examples)), "steps": steps,
              "train_loss": train_loss, "pos_weight": pos_weight, "train_seconds": time.perf_counter() - started}
    if private:
        history = [list(h) for h in private.engine.accountant.history]
        private.ledger.save(history)
        result["dp"] = {"epsilon": private.engine.get_epsilon(config.dp_delta), "delta": config.dp_delta,
                        "history": history}
    return result


@dataclass
class _Private:
    engine: object
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loader: object
    ledger: object


def _private_training(model: nn.Module, optimizer, num_examples: int, config: TrainConfig, state_key: str) -> _Private:
    """Opacus around the model and optimiser, with the plant's accountant history for this experiment; refuses
    (SecurityError) a round that would take the plant past its target epsilon."""
    from shared.privacy.dp_sgd import DPSGDConfig, PrivacyLedger, check_budget, make_private

    dp = DPSGDConfig(noise_multiplier=config.dp_noise_multiplier, max_grad_norm=config.dp_max_grad_norm,
                     delta=config.dp_delta, target_epsilon=config.dp_target_epsilon)
    ledger = PrivacyLedger(state_directory() / "dp_sgd" / f"{state_key}.json")
    history = ledger.load()
    batches = math.ceil(num_examples / min(config.batch_size, num_examples))
    check_budget(dp, history, 1.0 / batches, config.epochs * batches)  # Opacus samples at q = 1 / batches per epoch
    engine, private_model, private_optimizer, loader = make_private(model, optimizer, num_examples, config.batch_size,
                                                                    dp, history, config.seed)
    return _Private(engine, private_model, private_optimizer, loader, ledger)


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


def evaluate_local(arrays: PlantArrays, spec: ModelSpec, weights: dict[str, np.ndarray]) -> dict:
    """Unweighted BCE loss, ROC-AUC and score histograms on validation and test."""
    from sklearn.metrics import roc_auc_score

    model = build_model(spec)
    set_weights(model, weights)
    model.eval()
    result: dict = {}
    for prefix, split in (("val", 1), ("test", 2)):
        positions = arrays.examples(split, spec)
        labels = arrays.y[positions]
        logits = _scores(model, arrays, positions, spec)
        if len(positions):
            loss = float(nn.functional.binary_cross_entropy_with_logits(
                torch.from_numpy(logits), torch.from_numpy(labels)))
        else:
            loss = None
        probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        auc = float(roc_auc_score(labels, probabilities)) if 0 < labels.sum() < len(labels) else None
        pos, neg = score_histograms(probabilities, labels)
        result[prefix] = {"n": int(len(positions)), "loss": loss, "auc": auc,
                          "hist_pos": pos.astype(np.int64), "hist_neg": neg.astype(np.int64)}
    return result


def run_step(features: np.ndarray, labels: np.ndarray, index: np.ndarray, request: dict) -> dict:
    """Entry point of the vetted syft function. Errors come back as {"ok": False, "error": ...}
    because PySyft hides exception messages from the data scientist."""
    with busy_marker(request.get("experiment")):
        return _run_step(features, labels, index, request)


def _run_step(features: np.ndarray, labels: np.ndarray, index: np.ndarray, request: dict) -> dict:
    started = time.perf_counter()
    try:
        op = request["op"]
        if op == "secagg_reveal":  # needs no data: opens the shares other plants dealt to this one
            from shared.secagg.plant import reveal_answer

            body = reveal_answer(request)
            body.update(ok=True, seconds=time.perf_counter() - started)
            return body
        scaler = Scaler.from_dict(request["scaler"]) if request.get("scaler") else None
        arrays = PlantArrays(np.asarray(features), np.asarray(labels), np.asarray(index),
                             list(request["plant_features"]), list(request["features"]), scaler)
        if op == "stats":
            body = compute_stats(arrays)
        else:
            spec = ModelSpec.from_dict(request["spec"])
            weights = {k: np.asarray(v) for k, v in request["weights"].items()}
            if op == "train":
                attack = byzantine_mode()
                if attack == "label_flip":
                    arrays.y = 1.0 - arrays.y
                body = train_local(arrays, spec, weights, TrainConfig.from_dict(request.get("train", {})),
                                   state_key=f"experiment-{request.get('experiment', 'none')}")
                if attack:
                    body["weights"] = corrupt_update(attack, weights, body["weights"], request.get("train", {}))
                if request.get("secagg"):  # the update leaves this plant masked (shared.secagg)
                    from shared.secagg.plant import masked_answer

                    body = masked_answer(request["secagg"], weights, body)
            elif op == "evaluate":
                body = evaluate_local(arrays, spec, weights)
            else:
                raise FederatedLearningError(f"unknown operation {op!r}")
        body.update(ok=True, seconds=time.perf_counter() - started)
        return body
    except (FederatedLearningError, KeyError, ValueError, RuntimeError) as exc:
        log.exception("training step failed")
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def byzantine_mode() -> str | None:
    """Set by the agent's --byzantine flag (tests and demos only): this plant attacks on purpose."""
    import os

    return os.environ.get("FACTORYFL_BYZANTINE") or None


def corrupt_update(mode: str, global_weights: dict, weights: dict, train: dict) -> dict:
    """sign_flip: w_g - (w - w_g); scale:F: w_g + F (w - w_g); noise:S: w + N(0, S^2); label_flip is applied to
    the labels before training instead."""
    rng = np.random.default_rng(int(train.get("seed", 0)))
    out = {}
    for k, w in weights.items():
        g = np.asarray(global_weights[k])
        if not np.issubdtype(np.asarray(w).dtype, np.floating):
            out[k] = w
        elif mode == "sign_flip":
            out[k] = (g - (w - g)).astype(w.dtype)
        elif mode.startswith("scale:"):
            out[k] = (g + float(mode.split(":", 1)[1]) * (w - g)).astype(w.dtype)
        elif mode.startswith("noise:"):
            out[k] = (w + rng.normal(0, float(mode.split(":", 1)[1]), np.shape(w))).astype(w.dtype)
        else:
            out[k] = w
    return out


class busy_marker:
    """While a step runs, a file named by FACTORYFL_BUSY_FILE (set by the agent, inherited by its
    datasite) holds the experiment id, so the agent's heartbeat reports the plant as busy."""

    def __init__(self, experiment):
        import os

        self.path = os.environ.get("FACTORYFL_BUSY_FILE")
        self.experiment = experiment

    def __enter__(self):
        if self.path:
            import json

            with open(self.path, "w") as fh:
                json.dump({"experiment": self.experiment}, fh)
        return self

    def __exit__(self, *exc):
        if self.path:
            import os

            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        return False
