"""The aggregation arithmetic, hand-computed (pure functions of shared.aggregation)."""

import numpy as np
import pytest

from shared.aggregation.algorithms import (feddyn_change, fedavg_change, fednova_change, fednova_weights,
                                           weighted_sum)
from shared.aggregation.robust import (clip_norm, coordinate_median, krum_scores, multi_krum, outliers_iqr,
                                       outliers_zscore, trimmed_mean, update_reputation)
from shared.aggregation.server_opt import ServerOptimizerConfig, momentum_step, server_step


def test_fedavg_is_the_weighted_mean_from_the_weighted_sum():
    deltas = np.array([[2.0], [6.0]])
    assert fedavg_change(weighted_sum(deltas, np.array([1.0, 3.0])), 4.0)[0] == pytest.approx(5.0)


def test_fednova_normalises_by_local_steps_hand_computed():
    deltas, samples, steps = np.array([[2.0], [6.0]]), np.array([1.0, 1.0]), np.array([2, 6])
    # p = [0.5, 0.5], tau = [2, 6], tau_eff = 4: 4 * (0.5 * 2/2 + 0.5 * 6/6) = 4
    total = weighted_sum(deltas, fednova_weights(samples, steps))
    assert fednova_change(total, samples, steps)[0] == pytest.approx(4.0)


def test_fednova_counts_a_plant_without_steps_as_one_step():
    assert list(fednova_weights(np.array([10.0, 10.0]), np.array([0, 5]))) == [10.0, 2.0]


def test_feddyn_server_update_hand_computed():
    change, h = feddyn_change(np.array([2.0]), 2, None, alpha=0.5, federation_size=4)
    # deltas 1 and 3: h = 0 - 0.5 * (4 / 4) = -0.5; change = mean(2) - (-0.5 / 0.5) = 3
    assert h[0] == pytest.approx(-0.5) and change[0] == pytest.approx(3.0)
    _, h_small = feddyn_change(np.array([2.0]), 2, None, alpha=0.5, federation_size=1)
    assert h_small[0] == pytest.approx(-1.0)  # m is at least the plants of the round


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


def test_server_momentum_hand_computed():
    w, v = momentum_step(np.array([1.0]), np.array([0.5]), None, lr=1.0, beta=0.9)
    assert w[0] == pytest.approx(1.5) and v[0] == pytest.approx(0.5)
    w, v = momentum_step(w, np.array([0.5]), v, lr=1.0, beta=0.9)  # v = 0.9 * 0.5 + 0.5 = 0.95
    assert v[0] == pytest.approx(0.95) and w[0] == pytest.approx(2.45)
    w0, _ = momentum_step(np.array([1.0]), np.array([0.5]), np.array([7.0]), lr=1.0, beta=0.0)
    assert w0[0] == pytest.approx(1.5)  # beta 0: plain addition


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
