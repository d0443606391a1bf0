"""SCAFFOLD's control-variate maths (shared.aggregation.scaffold) and its strategy (shared.strategies.scaffold):
checked by hand on quadratics, and against FedAvg's client drift on a toy non-IID problem."""

from __future__ import annotations

import numpy as np
import pytest

from shared.aggregation.base import ClientUpdate
from shared.aggregation.scaffold import control_delta, plant_control_update, server_control_update
from shared.errors import AggregationError
from shared.strategies import FedAvg, Scaffold, SecureSum, ServerState, build_strategy


def sgd(x: np.ndarray, a: np.ndarray, b: np.ndarray, steps: int, lr: float, correction: np.ndarray) -> np.ndarray:
    """K steps of y <- y - lr (grad f(y) + correction) on f(y) = 1/2 sum a (y - b)^2 (grad = a (y - b))."""
    y = x.copy()
    for _ in range(steps):
        y = y - lr * (a * (y - b) + correction)
    return y


def test_option_two_on_a_quadratic_by_hand():
    """f(y) = 1/2 (y - 2)^2 from x = 0, lr 0.1, K = 2, c = c_i = 0: y1 = 0.2, y2 = 0.38, and
    c_i+ = (x - y) / (K lr) = -1.9, the mean of the gradients met on the way (-2 and -1.8)."""
    x, a, b = np.zeros(1), np.ones(1), np.full(1, 2.0)
    y = sgd(x, a, b, 2, 0.1, np.zeros(1))
    np.testing.assert_allclose(y, [0.38])
    c_i_plus = plant_control_update(np.zeros(1), np.zeros(1), x, y, 2, 0.1)
    np.testing.assert_allclose(c_i_plus, [-1.9])
    # with c = 0.5 and c_i = 0.3 the steps move by the correction too, and c_i+ = c_i - c + (x - y) / (K lr)
    y = sgd(x, a, b, 2, 0.1, np.full(1, 0.5 - 0.3))  # y1 = 0.18, y2 = 0.18 - 0.1 (-1.82 + 0.2) = 0.342
    np.testing.assert_allclose(y, [0.342])
    np.testing.assert_allclose(plant_control_update(np.full(1, 0.3), np.full(1, 0.5), x, y, 2, 0.1),
                               [0.3 - 0.5 - 1.71])


def test_the_delta_is_clipped_and_the_server_moves_c_by_the_share_of_the_federation():
    delta = control_delta(np.zeros(2), np.array([3.0, 4.0]), 1.0)
    np.testing.assert_allclose(delta, [0.6, 0.8])
    np.testing.assert_allclose(control_delta(np.ones(2), np.array([3.0, 4.0]), None), [2.0, 3.0])
    np.testing.assert_allclose(server_control_update(None, np.array([2.0]), 2, 4), [1.0])  # 0 + 2/4 * 2
    np.testing.assert_allclose(server_control_update(np.array([1.0]), np.array([2.0]), 3, 1), [3.0])  # N >= |S|


def updates(global_w: np.ndarray, ys: list, controls: list, samples: list) -> list[ClientUpdate]:
    return [ClientUpdate(f"p{i}", {"w": y}, n, steps=1, control={"w": dc})
            for i, (y, dc, n) in enumerate(zip(ys, controls, samples))]


def test_the_strategy_moves_x_as_fedavg_and_c_by_the_mean_delta_times_s_over_n():
    w = {"w": np.zeros(2)}
    ups = updates(w["w"], [np.array([1.0, 0.0]), np.array([0.0, 3.0])], [np.array([2.0, 0.0]), np.array([0.0, 4.0])],
                  [1, 3])
    out = Scaffold(federation_size=4).aggregate(w, ups, ServerState(c=np.array([1.0, 1.0])))
    np.testing.assert_allclose(out.weights["w"], FedAvg().aggregate(w, ups).weights["w"])
    np.testing.assert_allclose(out.state.c, [1.0 + 0.5 * 1.0, 1.0 + 0.5 * 2.0])
    assert "c" in out.state.to_arrays()
    np.testing.assert_allclose(ServerState.from_arrays(out.state.to_arrays()).c, out.state.c)


def test_a_hostile_control_delta_moves_c_by_at_most_the_bound_over_n():
    w = {"w": np.zeros(3)}
    ups = updates(w["w"], [np.zeros(3), np.zeros(3)], [np.full(3, 1e9), np.zeros(3)], [1, 1])
    out = build_strategy("scaffold", federation_size=2, update_clip=10.0).aggregate(w, ups)
    assert np.linalg.norm(out.state.c) <= 10.0 / 2 + 1e-9


def test_updates_without_their_control_delta_or_with_a_wrong_one_are_refused():
    w = {"w": np.zeros(2)}
    with pytest.raises(AggregationError, match="control variate delta"):
        Scaffold(2).aggregate(w, [ClientUpdate("p", {"w": np.ones(2)}, 1)])
    for bad in ({"w": np.ones(3)}, {"w": np.array([np.nan, 0.0])}, {"v": np.ones(2)}):
        with pytest.raises(AggregationError):
            Scaffold(2).aggregate(w, [ClientUpdate("p", {"w": np.ones(2)}, 1, control=bad)])


def test_a_secure_sum_is_refused():
    """Review H1: the sums of the updates and of the control deltas would give each plant's update."""
    w = {"w": np.zeros(2)}
    summed = SecureSum(total=np.ones(2), weights={"p0": 2.0, "p1": 6.0}, samples={"p0": 2, "p1": 6},
                       steps={"p0": 1, "p1": 1})
    with pytest.raises(AggregationError, match="secure aggregation"):
        Scaffold(3).aggregate_sum(w, summed, ServerState())


def federated(algorithm: str, rounds: int = 60, steps: int = 10, lr: float = 0.05) -> np.ndarray:
    """Two plants with quadratics of different curvature (non-IID: a_1 = 1 around b_1 = 0, a_2 = 8 around
    b_2 = 1), K local SGD steps each round, every plant every round (|S| = N)."""
    a, b = [np.array([1.0]), np.array([8.0])], [np.array([0.0]), np.array([1.0])]
    strategy = build_strategy(algorithm, federation_size=2)
    x, state, c_i = {"w": np.array([5.0])}, ServerState(), [np.zeros(1), np.zeros(1)]
    for _ in range(rounds):
        c = state.c if state.c is not None else np.zeros(1)
        ups = []
        for i in range(2):
            correction = c - c_i[i] if algorithm == "scaffold" else np.zeros(1)
            y = sgd(x["w"], a[i], b[i], steps, lr, correction)
            c_plus = plant_control_update(c_i[i], c, x["w"], y, steps, lr)
            ups.append(ClientUpdate(f"p{i}", {"w": y}, 1, steps, control={"w": c_plus - c_i[i]}))
            c_i[i] = c_plus
        out = strategy.aggregate(x, ups, state)
        x, state = out.weights, out.state
    return x["w"]


def test_scaffold_removes_the_client_drift_fedavg_keeps_on_non_iid_quadratics():
    """The optimum of the sum is w* = (1 * 0 + 8 * 1) / 9; FedAvg with several local steps settles elsewhere
    (each plant runs towards its own optimum), SCAFFOLD's corrected steps settle at w*."""
    optimum = 8.0 / 9.0
    fedavg_gap = abs(float(federated("fedavg")[0]) - optimum)
    scaffold_gap = abs(float(federated("scaffold")[0]) - optimum)
    assert fedavg_gap > 0.05
    assert scaffold_gap < 1e-3 and scaffold_gap < fedavg_gap / 50
