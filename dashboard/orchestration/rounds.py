"""The steps of a federated round (DESIGN §6), each a named function over typed values.

Nothing here touches the database: the engine loads what a round needs, calls these in order and
records the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field

import numpy as np

from dashboard.orchestration.syft_clients import ConnectionPool, PlantAddress
from shared.aggregation import ClientUpdate
from shared.aggregation.pipeline import AggregationSettings, AggregationState, aggregate
from shared.data.scaler import FeatureStats, Scaler, combine_stats
from shared.data.schema import FeatureSchema
from shared.errors import AggregationError, FederatedLearningError
from shared.metrics import best_threshold_bin, confusion_at, rates, threshold_of_bin
from shared.protocol import (EvaluateReply, Reply, Request, RevealRequest, RoundRef, SecAggRequest, StatsReply,
                             TrainReply)

log = logging.getLogger(__name__)


SECAGG_DEFAULT_CLIP = 100.0  # update norm bound under secure aggregation when no other bound is set


@dataclass(frozen=True)
class Participant:
    address: PlantAddress
    public_key: str | None = None  # X25519, hex: for secure aggregation


@dataclass
class PhaseResult:
    answers: dict[str, Reply] = field(default_factory=dict)
    dropouts: dict[str, str] = field(default_factory=dict)  # name -> reason
    seconds: float = 0.0


def dispatch(pool: ConnectionPool, participants: list[Participant], make_request: Callable[[Participant], Request],
             timeout: float, on_answer=None) -> PhaseResult:
    """Call fl_step on every participant in parallel; a failure or a timeout makes a dropout.
    `on_answer(name, ok)` is called in this thread as each plant answers (for live progress)."""
    started = time.monotonic()
    result = PhaseResult()

    def call(p: Participant) -> Reply:
        return pool.get(p.address).call(make_request(p))

    executor = ThreadPoolExecutor(max_workers=max(1, len(participants)), thread_name_prefix="round")
    futures = {executor.submit(call, p): p for p in participants}
    try:
        for future in as_completed(futures, timeout=timeout):
            name = futures[future].address.name
            exc = future.exception()
            if exc is None:
                result.answers[name] = future.result()
            else:
                reason = str(exc) if isinstance(exc, FederatedLearningError) else f"{type(exc).__name__}: {exc}"
                result.dropouts[name] = reason
                pool.drop(name)
                log.warning("dropout %s: %s", name, reason)
            if on_answer is not None:
                on_answer(name, exc is None)
    except FuturesTimeout:
        for future, p in futures.items():
            name = p.address.name
            if not future.done() and name not in result.answers:
                result.dropouts[name] = f"no answer within {timeout:.0f} s"
                pool.drop(name)
                log.warning("dropout %s: no answer within %.0f s", name, timeout)
    executor.shutdown(wait=False, cancel_futures=True)
    result.seconds = time.monotonic() - started
    return result


def merged_schema(capabilities: list[dict]) -> FeatureSchema:
    from shared.data.schema import merge_schemas

    return merge_schemas([FeatureSchema.from_dict(c["schema"]) for c in capabilities])


def global_scaler(answers: dict[str, StatsReply]) -> Scaler:
    """Step 0: the plants' feature statistics, combined into the scaler every plant uses."""
    if not answers:
        raise AggregationError("no plant returned feature statistics")
    return Scaler.from_stats(combine_stats([FeatureStats(a.count, a.sum, a.sum_sq) for a in answers.values()]))


def aggregation_settings(config: dict, federation_size: int) -> AggregationSettings:
    robust = config.get("robust") or {}
    privacy = config.get("privacy") or {}
    return AggregationSettings(
        algorithm=config["algorithm"], feddyn_alpha=config.get("feddyn_alpha", 0.01),
        server_optimizer=config.get("server_optimizer", "none"), server_lr=config.get("server_lr", 0.01),
        robust_method=robust.get("method", "none"), trim_ratio=robust.get("trim_ratio", 0.2),
        krum_byzantine=robust.get("byzantine", 1), multi_krum=robust.get("multi_krum", 1),
        max_norm=robust.get("max_norm"), outlier_method=robust.get("outlier_method", "zscore"),
        exclude_below=robust.get("exclude_below", 0.3), use_reputation=robust.get("method", "none") != "none",
        federation_size=federation_size,
        dp_noise_multiplier=privacy["noise_multiplier"] if privacy.get("mode") == "central"
        and privacy.get("mechanism", "gaussian") == "gaussian" else 0.0,
        dp_clip=privacy.get("max_grad_norm", 1.0),
        dp_mechanism=privacy.get("mechanism", "gaussian") if privacy.get("mode") == "central" else "gaussian",
        dp_round_epsilon=privacy.get("round_epsilon", 1.0))


def aggregate_updates(settings: AggregationSettings, global_weights: dict, answers: dict[str, TrainReply],
                      state: AggregationState, rng: np.random.Generator):
    updates = [ClientUpdate(factory=name, weights=a.weights, num_samples=a.num_samples, steps=a.steps)
               for name, a in sorted(answers.items())]
    return aggregate(settings, global_weights, updates, state, rng)


def client_training_config(config: dict) -> dict:
    """What each plant's local training needs for the experiment's algorithm."""
    extra: dict = {}
    if config["algorithm"] == "fedprox":
        extra["proximal_mu"] = config["mu"]
    if config["algorithm"] == "feddyn":
        extra["feddyn_alpha"] = config.get("feddyn_alpha", 0.01)
    clip = update_clip(config)
    if clip is not None:
        extra["clip_update_norm"] = clip  # clipped by the plant, before it sends (or masks)
    privacy = config.get("privacy") or {}
    if privacy.get("mode") == "central" and privacy.get("mechanism") == "laplace":
        extra["clip_update_ord"] = 1  # the Laplace mechanism's sensitivity is in L1
    if privacy.get("mode") == "dp_sgd":  # record-level DP at the plant (shared.privacy.dp_sgd)
        extra.update(dp_noise_multiplier=privacy.get("noise_multiplier") or 0.0,
                     dp_max_grad_norm=privacy["max_grad_norm"], dp_delta=privacy["delta"],
                     dp_target_epsilon=privacy.get("epsilon"), dp_rounds=config["rounds"])
    return extra


def update_clip(config: dict) -> float | None:
    """The L2 bound plants clip their update to: central DP's C, the norm bound, or under secure aggregation
    a generous default (fixed point needs some bound; 100 only stops absurd updates)."""
    privacy, robust = config.get("privacy") or {}, config.get("robust") or {}
    if privacy.get("mode") == "central":
        return privacy["max_grad_norm"]
    if robust.get("method") == "norm_bound" and robust.get("max_norm"):
        return robust["max_norm"]
    return SECAGG_DEFAULT_CLIP if config.get("secure_aggregation") else None


# --- secure aggregation (shared.secagg): the dashboard relays, it never sees a single plant's update ---------

def secure_setup(config: dict, participants: list[Participant], settings: AggregationSettings) -> SecAggRequest:
    """The part of every plant's training request that asks for a masked update."""
    from shared.aggregation.pipeline import secure_weighting
    from shared.secagg.quantize import fraction_bits
    from shared.secagg.shamir import default_threshold

    clip = update_clip(config)
    return SecAggRequest(participants={p.address.name: p.public_key for p in participants},
                         threshold=default_threshold(len(participants)),
                         fraction_bits=fraction_bits(len(participants), clip), weighting=secure_weighting(settings),
                         clip=clip)


def secure_sum(pool: ConnectionPool, participants: list[Participant], ref: RoundRef, setup: SecAggRequest,
               answers: dict[str, TrainReply], timeout: float, on_answer=None):
    """Ask the survivors (plants that sent a masked update) to reveal shares, then remove the masks.
    Returns (SecureSum, PhaseResult of the reveal); AggregationError when too few plants reveal."""
    from shared.aggregation.pipeline import SecureSum
    from shared.secagg.protocol import RevealedShares, unmask

    survivors = sorted(answers)
    if len(survivors) < setup.threshold:
        raise AggregationError(f"secure aggregation: {len(survivors)} plant(s) sent a masked update, "
                               f"{setup.threshold} are needed to remove the masks")
    holders = [p for p in participants if p.address.name in answers]
    phase = dispatch(pool, holders, lambda p: RevealRequest(
        ref=ref, secagg=setup, survivors=tuple(survivors),
        sealed={u: answers[u].sealed[p.address.name] for u in survivors}), timeout, on_answer)
    revealed = [RevealedShares.from_dict(answer.revealed) for answer in phase.answers.values()]
    total = unmask(sorted(setup.participants), {u: answers[u].masked for u in survivors}, revealed,
                   setup.threshold, setup.fraction_bits)
    summed = SecureSum(total=total, weights={u: float(answers[u].weight) for u in survivors},
                       samples={u: answers[u].num_samples for u in survivors},
                       steps={u: answers[u].steps for u in survivors})
    return summed, phase


def _metrics_from(evaluation: EvaluateReply, threshold_bin: int) -> dict:
    metrics: dict = {}
    for prefix, part in (("val", evaluation.val), ("test", evaluation.test)):
        if part.n == 0:  # nothing released: the split is below the plant's minimum
            continue
        metrics[f"{prefix}_loss"] = part.loss
        metrics[f"{prefix}_auc"] = part.auc
        counts = confusion_at(part.hist_pos, part.hist_neg, threshold_bin)
        for key, value in rates(*counts).items():
            metrics[f"{prefix}_{key}"] = value
        metrics[f"{prefix}_samples"] = part.n
    return metrics


def weighted_mean(values: list[tuple[float | None, int]]) -> float | None:
    pairs = [(v, n) for v, n in values if v is not None and n > 0]
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else None


def evaluation_metrics(evaluations: dict[str, EvaluateReply],
                       train_answers: dict[str, TrainReply]) -> tuple[float, dict, dict]:
    """Threshold from the pooled validation histograms (max F1), then per-plant metrics at it and their
    sample-weighted means (DESIGN §5)."""
    pos = sum(e.val.hist_pos for e in evaluations.values())
    neg = sum(e.val.hist_neg for e in evaluations.values())
    threshold_bin = best_threshold_bin(pos, neg)
    per_factory = {}
    for name, evaluation in evaluations.items():
        m = _metrics_from(evaluation, threshold_bin)
        if name in train_answers:
            m["train_loss"] = train_answers[name].train_loss
            m["train_samples"] = train_answers[name].num_samples
            m["train_seconds"] = train_answers[name].train_seconds
        per_factory[name] = m
    aggregate: dict = {}
    keys = {k for m in per_factory.values() for k in m if not k.endswith(("_samples", "_seconds"))}
    for key in sorted(keys):
        weight_key = "train_samples" if key.startswith("train") else f"{key.split('_')[0]}_samples"
        aggregate[key] = weighted_mean([(m.get(key), m.get(weight_key, 0)) for m in per_factory.values()])
    return threshold_of_bin(threshold_bin), aggregate, per_factory
