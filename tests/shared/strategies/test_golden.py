"""The strategies give the numbers the one-function pipeline gave (golden.json.gz, see golden_cases.py): every
algorithm x server optimiser x robust rule x central DP combination, three rounds with the state carried over,
through the strategy each AggregationSettings stood for (golden_cases.strategy_for; the compatibility layer
shared.aggregation.pipeline is checked in tests/shared/aggregation/test_pipeline.py) and through
ExperimentConfig.strategy, the path the round workflow takes.

The one intended difference: FedDyn under central DP now updates its server term h from the noisy mean (before,
h was never updated and the plants' linear term ran against a server that ignored it); test_strategies.py
pins its new numbers by hand."""

from __future__ import annotations

import numpy as np
import pytest

from shared.experiment import ExperimentConfig, training
from shared.strategies import SecureSum, ServerState
from tests.shared.strategies.golden_cases import (FEDERATION, key, load_golden, plaintext_cases, run_rounds,
                                                  secure_cases, secure_sum_of, settings_kwargs, strategy_for)

GOLDEN = load_golden()


def changed(case: tuple[str, str, str, str]) -> bool:
    return case[0] == "feddyn" and case[3] != "none"


def assert_same(got: list[dict], want: list[dict]) -> None:
    for r, (g, w) in enumerate(zip(got, want, strict=True)):
        for part in ("dtypes", "reputation", "used", "excluded", "outliers"):
            assert g[part] == w[part], (r, part)
        assert set(g["norms"]) == set(w["norms"]) and np.allclose(
            [g["norms"][k] for k in sorted(g["norms"])], [w["norms"][k] for k in sorted(w["norms"])],
            rtol=1e-12, atol=1e-12), (r, "norms")
        for name, values in w["weights"].items():
            assert np.allclose(g["weights"][name], values, rtol=1e-12, atol=1e-12), (r, name)
        for part in ("m", "v", "h"):
            assert (g[part] is None) == (w[part] is None), (r, part)
            if w[part] is not None:
                assert np.allclose(g[part], w[part], rtol=1e-12, atol=1e-12), (r, part)


def as_tuple(aggregated) -> tuple:
    return aggregated.weights, aggregated.state, aggregated.report


def config_of(algorithm: str, optimizer: str, robust: str, dp: str) -> ExperimentConfig | None:
    """The stored experiment that asks for this combination, or None where no experiment can (reputation
    without a robust method was only ever a setting of the pipeline's callers)."""
    settings = settings_kwargs(algorithm, optimizer, robust, dp)
    if settings.get("use_reputation") is True and settings["robust_method"] == "none":
        return None
    method = settings["robust_method"]
    stored = {"name": "golden", "algorithm": algorithm, "server_optimizer": optimizer,
              "server_lr": settings["server_lr"], "feddyn_alpha": settings["feddyn_alpha"],
              "robust": {"method": method, **{k: settings[s] for k, s in (
                  ("trim_ratio", "trim_ratio"), ("byzantine", "krum_byzantine"), ("multi_krum", "multi_krum"),
                  ("max_norm", "max_norm"), ("outlier_method", "outlier_method")) if s in settings}}}
    if dp == "gaussian":
        stored["privacy"] = {"mode": "central", "noise_multiplier": settings["dp_noise_multiplier"],
                             "max_grad_norm": settings["dp_clip"]}
    elif dp == "laplace":
        stored["privacy"] = {"mode": "central", "mechanism": "laplace", "max_grad_norm": settings["dp_clip"],
                             "round_epsilon": settings["dp_round_epsilon"]}
    return ExperimentConfig.from_dict(stored)


@pytest.mark.parametrize("case", [c for c in plaintext_cases() if not changed(c)], ids=key)
def test_single_updates_aggregate_as_the_pipeline_did(case):
    strategy = strategy_for(settings_kwargs(*case))
    want = GOLDEN["plaintext"][key(case)]
    assert_same(run_rounds(lambda w, u, s, n: as_tuple(strategy.aggregate(w, u, s, n)), ServerState()), want)
    config = config_of(*case)
    if config is not None:
        strategy = training.strategy_for(config, FEDERATION)
        got = run_rounds(lambda w, u, s, n: as_tuple(strategy.aggregate(w, u, s, n)), ServerState())
        assert_same(got, want)


@pytest.mark.parametrize("case", [c for c in secure_cases() if not changed(c)], ids=key)
def test_secure_sums_aggregate_as_the_pipeline_did(case):
    want = GOLDEN["secure"][key(case)]
    for strategy in (strategy_for(settings_kwargs(*case)), training.strategy_for(config_of(*case), FEDERATION)):
        def summed(w, u, weighting=strategy.secure_weighting):
            return secure_sum_of(SecureSum, w, u, weighting)

        got = run_rounds(lambda w, s_, s, n: as_tuple(strategy.aggregate_sum(w, s_, s, n)), ServerState(), summed)
        assert_same(got, want)


def test_the_golden_file_covers_every_combination_the_cases_name():
    assert len(GOLDEN["plaintext"]) == len(plaintext_cases()) and len(GOLDEN["secure"]) == len(secure_cases())
    assert sum(changed(c) for c in plaintext_cases()) == 3 * 4 * 2  # optimisers x non-rule robust x mechanisms
