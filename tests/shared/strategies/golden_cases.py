"""The inputs and combinations the golden tests pin (test_golden.py), and the recorder that wrote golden.json.

golden.json.gz holds what `shared.aggregation.pipeline.aggregate` and `aggregate_secure` returned at commit f9a9f4c,
before the strategies existed: three rounds of every algorithm x server optimiser x robust rule x central DP
combination on small seeded inputs, noise from a seeded generator. Run this module to record it again (only
ever from code whose numbers are known good: the file is the reference, not the output):

    .venv/bin/python -m tests.shared.strategies.golden_cases
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).with_name("golden.json.gz")
ROUNDS = 3
ALGORITHMS = ("fedavg", "fedprox", "fednova", "feddyn")
OPTIMIZERS = ("none", "fedadam", "fedyogi")
DP = ("none", "gaussian", "laplace")
# robust variants: what AggregationSettings took, as keyword arguments
ROBUST = {
    "none": {"robust_method": "none", "use_reputation": False},
    "reputation_only": {"robust_method": "none", "use_reputation": True},
    "norm_bound_median": {"robust_method": "norm_bound"},
    "norm_bound_fixed": {"robust_method": "norm_bound", "max_norm": 0.5},
    "median": {"robust_method": "median"},
    "trimmed_mean": {"robust_method": "trimmed_mean", "trim_ratio": 0.2},
    "krum": {"robust_method": "krum", "krum_byzantine": 1},
    "multi_krum_iqr": {"robust_method": "krum", "krum_byzantine": 1, "multi_krum": 2, "outlier_method": "iqr"},
}
SECURE_ROBUST = ("none", "norm_bound_fixed")  # what secure aggregation can be combined with
FEDERATION = 6
CLIP = 10.0  # the plants' clip under secure aggregation (shared.secagg.plant.contribution)


def settings_kwargs(algorithm: str, optimizer: str, robust: str, dp: str) -> dict:
    """The AggregationSettings of one combination."""
    kwargs = {"algorithm": algorithm, "server_optimizer": optimizer, "server_lr": 0.05, "feddyn_alpha": 0.1,
              "federation_size": FEDERATION, **ROBUST[robust]}
    if dp == "gaussian":
        kwargs.update(dp_noise_multiplier=1.0, dp_clip=0.8)
    elif dp == "laplace":
        kwargs.update(dp_mechanism="laplace", dp_clip=3.0, dp_round_epsilon=2.0)
    return kwargs


# AggregationSettings' defaults when the file was recorded: settings_kwargs fills these in
PIPELINE_DEFAULTS = {"algorithm": "fedavg", "feddyn_alpha": 0.01, "server_optimizer": "none", "server_lr": 0.01,
                     "robust_method": "none", "trim_ratio": 0.2, "krum_byzantine": 1, "multi_krum": 1, "max_norm": None,
                     "outlier_method": "zscore", "exclude_below": 0.3, "use_reputation": True, "federation_size": 0,
                     "dp_noise_multiplier": 0.0, "dp_clip": 1.0, "dp_mechanism": "gaussian", "dp_round_epsilon": 1.0}


def strategy_for(settings: dict):
    """The strategy that AggregationSettings(**settings) asked for (the pipeline's mapping, over a dict, so that
    these tests outlive shared.aggregation.pipeline)."""
    from shared.strategies import build_strategy

    s = {**PIPELINE_DEFAULTS, **settings}
    central = s["dp_noise_multiplier"] > 0 or s["dp_mechanism"] == "laplace"
    return build_strategy(
        s["algorithm"], feddyn_alpha=s["feddyn_alpha"], federation_size=s["federation_size"],
        server_optimizer=s["server_optimizer"], server_lr=s["server_lr"],
        robust={"method": s["robust_method"], "trim_ratio": s["trim_ratio"], "byzantine": s["krum_byzantine"],
                "multi_krum": s["multi_krum"], "max_norm": s["max_norm"], "outlier_method": s["outlier_method"],
                "exclude_below": s["exclude_below"], "use_reputation": s["use_reputation"]},
        central_dp={"clip": s["dp_clip"], "noise_multiplier": s["dp_noise_multiplier"], "mechanism": s["dp_mechanism"],
                    "round_epsilon": s["dp_round_epsilon"]} if central else None)


def plaintext_cases() -> list[tuple[str, str, str, str]]:
    """Every combination but a robust rule under central DP, which no configuration could ask for (central DP
    took precedence and the rule was ignored)."""
    return [case for case in itertools.product(ALGORITHMS, OPTIMIZERS, ROBUST, DP)
            if case[3] == "none" or case[2] in ("none", "reputation_only", "norm_bound_median", "norm_bound_fixed")]


def secure_cases() -> list[tuple[str, str, str, str]]:
    return list(itertools.product(ALGORITHMS, OPTIMIZERS, SECURE_ROBUST, DP))


def key(case: tuple[str, str, str, str]) -> str:
    return "/".join(case)


def initial_weights() -> dict:
    rng = np.random.default_rng(3)
    return {"a": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=4),
            "count": np.array(5, dtype=np.int64)}


def round_updates(global_weights: dict, round_index: int) -> list:
    """Five plants: four honest ones near each other, one ("evil") far off, so that norm bounds, robust rules,
    outliers and (from the second round on) reputation exclusions all act."""
    from shared.aggregation.base import ClientUpdate

    rng = np.random.default_rng(100 + round_index)
    updates = []
    for i in range(5):
        scale = 4.0 if i == 4 else 0.3
        weights = {k: (v + scale * rng.normal(0.5, 1.0, np.shape(v))).astype(v.dtype) if k != "count" else v
                   for k, v in global_weights.items()}
        updates.append(ClientUpdate(factory="evil" if i == 4 else f"p{i}", weights=weights,
                                    num_samples=100 * (i + 1), steps=10 + 5 * i))
    return updates


def secure_sum_of(secure_sum_type, global_weights: dict, updates: list, weighting: str, clip: float = CLIP):
    """What the plants mask, summed: sum_k a_k clip(d_k) (shared.secagg.plant), without the masks."""
    from shared.secagg.plant import aggregation_weight, contribution

    weights = {u.factory: aggregation_weight(weighting, u.num_samples, u.steps) for u in updates}
    total = sum(contribution(global_weights, u.weights, clip, weights[u.factory]) for u in updates)
    return secure_sum_type(total=total, weights=weights, samples={u.factory: u.num_samples for u in updates},
                     steps={u.factory: u.steps for u in updates})


def record(weights: dict, state, report) -> dict:
    """One round's outcome as JSON (floats as Python floats: repr round-trips exactly)."""
    def arr(a):  # 15 significant digits: exact enough for the 1e-12 comparison, and a smaller file
        return None if a is None else [float(f"{x:.15g}") for x in np.asarray(a, dtype=np.float64).ravel()]

    return {"weights": {k: arr(v) for k, v in sorted(weights.items())},
            "dtypes": {k: str(np.asarray(v).dtype) for k, v in sorted(weights.items())},
            "m": arr(state.m), "v": arr(state.v), "h": arr(state.h),
            "reputation": dict(sorted(state.reputation.items())),
            "used": list(report.used), "excluded": dict(sorted(report.excluded.items())),
            "norms": dict(sorted(report.norms.items())), "outliers": list(report.outliers)}


def run_rounds(step, state, summed=None) -> list[dict]:
    """Three rounds through `step(global_weights, given, state, noise) -> (weights, state, report)` from `state`;
    `given` is the round's updates, or `summed(global_weights, updates)` under secure aggregation."""
    weights, out = initial_weights(), []
    for r in range(ROUNDS):
        updates = round_updates(weights, r)
        given = summed(weights, updates) if summed else updates
        weights, state, report = step(weights, given, state, np.random.default_rng(1000 + r))
        out.append(record(weights, state, report))
    return out


def _record_pipeline() -> dict:  # pragma: no cover - run by hand, at the commit named above
    from shared.aggregation.pipeline import (AggregationSettings, AggregationState, SecureSum, aggregate,
                                             aggregate_secure, secure_weighting)

    golden = {"plaintext": {}, "secure": {}}
    for case in plaintext_cases():
        settings = AggregationSettings(**settings_kwargs(*case))
        golden["plaintext"][key(case)] = run_rounds(lambda w, u, s, n: aggregate(settings, w, u, s, n),
                                                    AggregationState())
    for case in secure_cases():
        settings = AggregationSettings(**settings_kwargs(*case))
        weighting = secure_weighting(settings)
        golden["secure"][key(case)] = run_rounds(
            lambda w, u, s, n: aggregate_secure(settings, w, u, s, n), AggregationState(),
            lambda w, u: secure_sum_of(SecureSum, w, u, weighting))
    return golden


def load_golden() -> dict:
    return json.loads(gzip.decompress(GOLDEN.read_bytes()))


if __name__ == "__main__":  # pragma: no cover
    GOLDEN.write_bytes(gzip.compress(json.dumps(_record_pipeline(), separators=(",", ":")).encode(), mtime=0))
