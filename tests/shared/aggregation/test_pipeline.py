import numpy as np
import pytest

from shared.aggregation import ClientUpdate
from shared.aggregation.algorithms import feddyn_delta, fednova_delta, weighted_delta
from shared.aggregation.pipeline import AggregationSettings, AggregationState, aggregate
from shared.aggregation.robust import (clip_norm, coordinate_median, krum_scores, multi_krum, outliers_iqr,
                                       outliers_zscore, trimmed_mean, update_reputation)
from shared.aggregation.server_opt import ServerOptimizerConfig, server_step


def test_fednova_normalises_by_local_steps_hand_computed():
    deltas = np.array([[2.0], [6.0]])
    # p = [0.5, 0.5], tau = [2, 6], tau_eff = 4: 4 * (0.5 * 2/2 + 0.5 * 6/6) = 4
    assert fednova_delta(deltas, np.array([1.0, 1.0]), np.array([2, 6]))[0] == pytest.approx(4.0)
    assert weighted_delta(deltas, np.array([1.0, 3.0]))[0] == pytest.approx(5.0)


def test_feddyn_server_update_hand_computed():
    deltas = np.array([[1.0], [3.0]])
    change, h = feddyn_delta(deltas, None, alpha=0.5, federation_size=4)
    # h = 0 - 0.5 * (4 / 4) = -0.5; change = mean(2) - (-0.5 / 0.5) = 3
    assert h[0] == pytest.approx(-0.5) and change[0] == pytest.approx(3.0)


def test_fedadam_and_fedyogi_one_step_hand_computed():
    cfg = ServerOptimizerConfig("fedadam", eta=0.1, beta1=0.9, beta2=0.99, tau=0.01)
    new, m, v = server_step(cfg, np.array([1.0]), np.array([0.5]), None, None)
    # m = 0.05; v = 0.99 * 1e-4 + 0.01 * 0.25 = 0.002599; w = 1 + 0.1 * 0.05 / (sqrt(v) + 0.01)
    assert m[0] == pytest.approx(0.05) and v[0] == pytest.approx(0.002599)
    assert new[0] == pytest.approx(1 + 0.1 * 0.05 / (np.sqrt(0.002599) + 0.01))
    yogi = ServerOptimizerConfig("fedyogi", eta=0.1, beta1=0.9, beta2=0.99, tau=0.01)
    _, _, v_yogi = server_step(yogi, np.array([1.0]), np.array([0.5]), None, None)
    # v = 1e-4 - 0.01 * 0.25 * sign(1e-4 - 0.25) = 1e-4 + 0.0025
    assert v_yogi[0] == pytest.approx(0.0026)


def test_robust_rules_hand_computed():
    u = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [100.0, -100.0]])
    assert list(coordinate_median(u)) == [2.5, 15.0]
    assert list(trimmed_mean(u, 0.25)) == [2.5, 15.0]  # column 2 sorted: -100, [10, 20], 30
    honest = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0]])
    scores = krum_scores(honest, byzantine=1)  # n - f - 2 = 1 nearest neighbour
    assert list(scores[:3]) == [1.0, 1.0, 1.0] and scores[3] > 1000
    mean, chosen = multi_krum(honest, 1, keep=3)
    assert chosen == [0, 1, 2] and list(mean) == pytest.approx([1 / 3, 1 / 3])
    assert np.linalg.norm(clip_norm(np.array([3.0, 4.0]), 1.0)) == pytest.approx(1.0)


def test_outliers_and_reputation():
    norms = np.array([1.0, 1.1, 0.9, 1.05, 9.0])
    assert list(outliers_zscore(norms)) == [False] * 4 + [True]
    assert list(outliers_iqr(norms)) == [False] * 4 + [True]
    rep = {}
    for _ in range(3):
        rep = update_reputation(rep, ["a", "b"], np.array([False, True]))
    assert rep["a"] == 1.0 and rep["b"] == pytest.approx(0.125)


def updates_with_attacker(scale=-20.0):
    rng = np.random.default_rng(0)
    g = {"w": np.zeros(20, dtype=np.float32)}
    honest = [ClientUpdate(f"p{i}", {"w": (1.0 + rng.normal(0, 0.05, 20)).astype(np.float32)}, 100, 10)
              for i in range(4)]
    attacker = ClientUpdate("evil", {"w": np.full(20, scale, dtype=np.float32)}, 100, 10)
    return g, honest + [attacker]


@pytest.mark.parametrize("method", ["median", "trimmed_mean", "krum", "norm_bound"])
def test_robust_methods_resist_one_attacker_of_five_where_fedavg_does_not(method):
    g, updates = updates_with_attacker()
    plain, _, _ = aggregate(AggregationSettings(use_reputation=False), g, updates, AggregationState())
    robust, _, report = aggregate(AggregationSettings(robust_method=method, exclude_below=0.0), g, updates,
                                  AggregationState())
    assert np.abs(plain["w"] - 1.0).mean() > 3  # FedAvg dragged far off: (4 * 1 - 20) / 5 = -3.2
    assert np.abs(robust["w"] - 1.0).mean() < (0.8 if method == "norm_bound" else 0.2)
    assert report.outliers == ["evil"]


def test_reputation_excludes_a_plant_that_keeps_being_an_outlier():
    g, updates = updates_with_attacker()
    state = AggregationState()
    for _ in range(3):
        _, state, report = aggregate(AggregationSettings(), g, updates, state)
    assert state.reputation["evil"] < 0.3 < min(v for k, v in state.reputation.items() if k != "evil")
    assert "evil" in report.excluded and "evil" not in report.used


def test_server_optimizer_state_carries_over_rounds():
    g, updates = updates_with_attacker()
    settings = AggregationSettings(server_optimizer="fedadam", server_lr=0.1, exclude_below=0.0,
                                   robust_method="median")
    w1, state, _ = aggregate(settings, g, updates[:4], AggregationState())
    assert state.m is not None and state.v is not None
    w2, _, _ = aggregate(settings, w1, [ClientUpdate(u.factory, u.weights, 100, 10) for u in updates[:4]], state)
    assert not np.allclose(w1["w"], w2["w"])


def test_krum_still_aggregates_when_exclusions_leave_few_plants():
    g, updates = updates_with_attacker()
    state = AggregationState()
    for _ in range(3):  # the attacker ends up excluded: three plants remain for Krum with f = 1
        new, state, report = aggregate(AggregationSettings(robust_method="krum", krum_byzantine=1), g, updates, state)
    assert "evil" not in report.used and np.abs(new["w"] - 1.0).mean() < 0.2


@pytest.mark.parametrize("algorithm,optimizer,sigma", [("fedavg", "none", 0.0), ("fedprox", "fedadam", 0.0),
                                                       ("fednova", "none", 0.0), ("feddyn", "fedyogi", 0.0),
                                                       ("fedavg", "none", 1.0), ("fedavg", "none", "laplace")])
def test_the_secure_sum_gives_the_same_model_as_plaintext_aggregation(algorithm, optimizer, sigma):
    """What plants mask (a_k * clip(d_k), shared.secagg.plant) summed, then aggregate_secure == aggregate."""
    from shared.aggregation.pipeline import SecureSum, aggregate_secure, secure_weighting
    from shared.secagg.plant import aggregation_weight, contribution

    rng = np.random.default_rng(3)
    global_weights = {"a": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=4).astype(np.float32),
                      "count": np.array(5, dtype=np.int64)}
    updates = [ClientUpdate(factory=f"p{i}", num_samples=100 * (i + 1), steps=10 + 5 * i,
                            weights={k: (v + rng.normal(0, 0.1, v.shape)).astype(v.dtype) if k != "count" else v
                                     for k, v in global_weights.items()}) for i in range(3)]
    laplace = sigma == "laplace"
    settings = AggregationSettings(algorithm=algorithm, server_optimizer=optimizer, use_reputation=False,
                                   federation_size=4, dp_noise_multiplier=0.0 if laplace else sigma, dp_clip=10.0,
                                   feddyn_alpha=0.1, dp_mechanism="laplace" if laplace else "gaussian",
                                   dp_round_epsilon=2.0)
    weights = {u.factory: aggregation_weight(secure_weighting(settings), u.num_samples, u.steps) for u in updates}
    total = sum(contribution(global_weights, u.weights, 10.0, weights[u.factory]) for u in updates)
    summed = SecureSum(total=total, weights=weights, samples={u.factory: u.num_samples for u in updates},
                       steps={u.factory: u.steps for u in updates})
    state = AggregationState(h=np.full(10, 0.01), m=None, v=None)
    plain, plain_state, _ = aggregate(settings, global_weights, updates, state, np.random.default_rng(9))
    secure, secure_state, report = aggregate_secure(settings, global_weights, summed, state, np.random.default_rng(9))
    for k in global_weights:
        assert np.allclose(plain[k], secure[k], atol=1e-6), k
    assert report.norms == {} and report.used == ["p0", "p1", "p2"]
