"""What each strategy and wrapper does, on hand-sized inputs."""

import numpy as np
import pytest

from shared.errors import AggregationError
from shared.strategies import (CentralDP, ClientUpdate, FedAvg, FedAvgM, FedDyn, FedNova, FedProx, Robust, SecureSum,
                               ServerState, build_strategy)

PLAIN = Robust(FedAvg())  # reputation tracked and reported, no weight changed


def test_fedavg_weights_updates_by_samples_hand_computed():
    g = {"w": np.zeros(2, dtype=np.float32)}
    updates = [ClientUpdate("a", {"w": np.array([1.0, 2.0], np.float32)}, 100),
               ClientUpdate("b", {"w": np.array([4.0, -1.0], np.float32)}, 300)]
    out = FedAvg().aggregate(g, updates)
    # (100 * [1, 2] + 300 * [4, -1]) / 400 = [3.25, -0.25]
    np.testing.assert_allclose(out.weights["w"], [3.25, -0.25])
    assert out.weights["w"].dtype == np.float32


def test_equal_counts_give_the_mean_and_integer_buffers_are_carried_over():
    g = {"x": np.array([0.0]), "steps": np.array([7], dtype=np.int64)}
    updates = [ClientUpdate(n, {"x": np.array([v]), "steps": np.array([7], dtype=np.int64)}, 1)
               for n, v in (("a", 2.0), ("b", 4.0), ("c", 9.0))]
    out = PLAIN.aggregate(g, updates, ServerState())
    assert out.weights["x"][0] == pytest.approx(5.0) and out.weights["steps"][0] == 7


def test_bad_updates_are_aggregation_errors():
    g = {"w": np.zeros(2)}
    with pytest.raises(AggregationError, match="no update"):
        PLAIN.aggregate(g, [])
    with pytest.raises(AggregationError, match="shape"):
        PLAIN.aggregate(g, [ClientUpdate("a", {"w": np.zeros(3)}, 1)])
    with pytest.raises(AggregationError, match="NaN"):
        PLAIN.aggregate(g, [ClientUpdate("a", {"w": np.array([np.nan, 0])}, 1)])
    with pytest.raises(AggregationError, match="does not fit"):
        PLAIN.aggregate_sum(g, SecureSum(np.zeros(3), {"a": 1.0}, {"a": 1}, {"a": 1}))
    with pytest.raises(AggregationError, match="NaN"):
        PLAIN.aggregate_sum(g, SecureSum(np.array([np.inf, 0]), {"a": 1.0}, {"a": 1}, {"a": 1}))


def test_each_algorithm_tells_plants_what_to_train_with_and_how_to_weight_a_masked_update():
    assert FedProx(0.1).configure() == {"proximal_mu": 0.1} and FedProx().secure_weighting == "samples"
    assert FedDyn(0.2).configure() == {"feddyn_alpha": 0.2} and FedDyn().secure_weighting == "equal"
    assert FedAvg().configure() == {} and FedNova().secure_weighting == "samples_per_step"
    wrapped = build_strategy("fedprox", mu=0.3, server_optimizer="fedavgm", robust={"method": "median"})
    assert wrapped.configure() == {"proximal_mu": 0.3} and wrapped.algorithm == "fedprox"
    assert wrapped.name == "fedprox+median+fedavgm"
    assert CentralDP(FedNova(), clip=1.0, noise_multiplier=1.0).secure_weighting == "equal"


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
    plain = PLAIN.aggregate(g, updates)
    robust = Robust(FedAvg(), method, exclude_below=0.0).aggregate(g, updates)
    assert np.abs(plain.weights["w"] - 1.0).mean() > 3  # FedAvg dragged far off: (4 * 1 - 20) / 5 = -3.2
    assert np.abs(robust.weights["w"] - 1.0).mean() < (0.8 if method == "norm_bound" else 0.2)
    assert robust.report.outliers == ["evil"]


def test_reputation_excludes_a_plant_that_keeps_being_an_outlier():
    g, updates = updates_with_attacker()
    strategy, state = Robust(FedAvg(), use_reputation=True), ServerState()
    for _ in range(3):
        out = strategy.aggregate(g, updates, state)
        state = out.state
    assert state.reputation["evil"] < 0.3 < min(v for k, v in state.reputation.items() if k != "evil")
    assert "evil" in out.report.excluded and "evil" not in out.report.used


def test_server_optimizer_state_carries_over_rounds():
    g, updates = updates_with_attacker()
    strategy = build_strategy(server_optimizer="fedadam", server_lr=0.1,
                              robust={"method": "median", "exclude_below": 0.0})
    first = strategy.aggregate(g, updates[:4], ServerState())
    assert first.state.m is not None and first.state.v is not None
    second = strategy.aggregate(first.weights, [ClientUpdate(u.factory, u.weights, 100, 10) for u in updates[:4]],
                                first.state)
    assert not np.allclose(first.weights["w"], second.weights["w"])


def test_krum_still_aggregates_when_exclusions_leave_few_plants():
    g, updates = updates_with_attacker()
    strategy, state = Robust(FedAvg(), "krum", byzantine=1), ServerState()
    for _ in range(3):  # the attacker ends up excluded: three plants remain for Krum with f = 1
        out = strategy.aggregate(g, updates, state)
        state = out.state
    assert "evil" not in out.report.used and np.abs(out.weights["w"] - 1.0).mean() < 0.2


def test_a_rule_that_needs_single_updates_refuses_a_secure_sum():
    summed = SecureSum(np.zeros(2), {"a": 1.0, "b": 1.0}, {"a": 1, "b": 1}, {"a": 1, "b": 1})
    with pytest.raises(AggregationError, match="median needs each plant's update"):
        Robust(FedAvg(), "median").aggregate_sum({"w": np.zeros(2)}, summed)


def test_central_dp_needs_noise():
    g, updates = updates_with_attacker()
    with pytest.raises(AggregationError, match="random generator"):
        CentralDP(FedAvg(), clip=1.0, noise_multiplier=1.0).aggregate(g, updates)


class ZeroNoise:
    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.zeros(size)

    def laplace(self, loc=0.0, scale=1.0, size=None):
        return np.zeros(size)


def test_feddyn_under_central_dp_updates_its_server_term_from_the_noisy_mean():
    """Deltas 1 and 3 clipped to C = 2: noisy mean (1 + 2 + 0) / 2 = 1.5; h = 0 - 0.5 * 2 * 1.5 / 4 = -0.375;
    change = 1.5 + 0.375 / 0.5 = 2.25. (Before, h stayed None and the change was the mean alone.)"""
    g = {"w": np.zeros(1)}
    updates = [ClientUpdate("a", {"w": np.array([1.0])}, 10), ClientUpdate("b", {"w": np.array([3.0])}, 10)]
    strategy = CentralDP(FedDyn(alpha=0.5, federation_size=4), clip=2.0, noise_multiplier=1.0)
    out = strategy.aggregate(g, updates, ServerState(), ZeroNoise())
    assert out.state.h[0] == pytest.approx(-0.375) and out.weights["w"][0] == pytest.approx(2.25)
    summed = SecureSum(np.array([3.0]), {"a": 1.0, "b": 1.0}, {"a": 10, "b": 10}, {"a": 1, "b": 1})
    secure = strategy.aggregate_sum(g, summed, ServerState(), ZeroNoise())  # the plants clipped before masking
    assert secure.state.h[0] == pytest.approx(-0.375) and secure.weights["w"][0] == pytest.approx(2.25)


def test_feddyn_under_central_dp_sees_only_the_noisy_mean():
    """h is post-processing: two rounds with the same noisy mean give the same h whatever the single deltas."""
    g = {"w": np.zeros(1)}
    strategy = CentralDP(FedDyn(alpha=0.5, federation_size=2), clip=10.0, noise_multiplier=1.0)
    a = strategy.aggregate(g, [ClientUpdate("a", {"w": np.array([0.0])}, 1),
                               ClientUpdate("b", {"w": np.array([4.0])}, 1)], ServerState(), ZeroNoise())
    b = strategy.aggregate(g, [ClientUpdate("a", {"w": np.array([2.0])}, 1),
                               ClientUpdate("b", {"w": np.array([2.0])}, 1)], ServerState(), ZeroNoise())
    assert a.state.h == pytest.approx(b.state.h) and a.weights["w"] == pytest.approx(b.weights["w"])


def test_fedavgm_adds_momentum_to_any_strategys_change():
    g = {"w": np.zeros(1)}
    updates = [ClientUpdate("a", {"w": np.array([1.0])}, 1), ClientUpdate("b", {"w": np.array([3.0])}, 1)]
    strategy = FedAvgM(FedAvg(), lr=1.0, momentum=0.5)
    first = strategy.aggregate(g, updates)
    assert first.weights["w"][0] == pytest.approx(2.0) and first.state.m[0] == pytest.approx(2.0)
    second = strategy.aggregate(g, updates, first.state)  # v = 0.5 * 2 + 2 = 3
    assert second.weights["w"][0] == pytest.approx(3.0) and second.state.m[0] == pytest.approx(3.0)
    nova = FedAvgM(FedNova(), lr=0.5, momentum=0.9).aggregate(g, updates)  # tau 0 counts as 1: FedNova = mean
    assert nova.weights["w"][0] == pytest.approx(1.0)


def test_server_state_round_trips_through_arrays_and_reputation():
    state = ServerState(m=np.ones(2), h=np.zeros(2), reputation={"a": 0.5})
    arrays = state.to_arrays()
    assert set(arrays) == {"m", "h"}
    back = ServerState.from_arrays(arrays, {"a": 0.5})
    assert back.v is None and list(back.m) == [1.0, 1.0] and back.reputation == {"a": 0.5}
    assert ServerState.from_arrays(None, None) == ServerState()


@pytest.mark.parametrize("algorithm,optimizer,sigma", [("fedavg", "none", 0.0), ("fedprox", "fedadam", 0.0),
                                                       ("fednova", "none", 0.0), ("feddyn", "fedyogi", 0.0),
                                                       ("feddyn", "fedavgm", 1.0), ("fedavg", "none", 1.0),
                                                       ("fedavg", "fedavgm", "laplace")])
def test_the_secure_sum_gives_the_same_model_as_single_updates(algorithm, optimizer, sigma):
    """What plants mask (a_k * clip(d_k), shared.secagg.plant) summed, then aggregate_sum == aggregate."""
    from shared.secagg.plant import aggregation_weight, contribution

    rng = np.random.default_rng(3)
    global_weights = {"a": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=4).astype(np.float32),
                      "count": np.array(5, dtype=np.int64)}
    updates = [ClientUpdate(factory=f"p{i}", num_samples=100 * (i + 1), steps=10 + 5 * i,
                            weights={k: (v + rng.normal(0, 0.1, v.shape)).astype(v.dtype) if k != "count" else v
                                     for k, v in global_weights.items()}) for i in range(3)]
    central = None if sigma == 0.0 else {"clip": 10.0, "noise_multiplier": 0.0 if sigma == "laplace" else sigma,
                                         "mechanism": "laplace" if sigma == "laplace" else "gaussian",
                                         "round_epsilon": 2.0}
    strategy = build_strategy(algorithm, feddyn_alpha=0.1, federation_size=4, server_optimizer=optimizer,
                              central_dp=central)
    weights = {u.factory: aggregation_weight(strategy.secure_weighting, u.num_samples, u.steps) for u in updates}
    total = sum(contribution(global_weights, u.weights, 10.0, weights[u.factory]) for u in updates)
    summed = SecureSum(total=total, weights=weights, samples={u.factory: u.num_samples for u in updates},
                       steps={u.factory: u.steps for u in updates})
    state = ServerState(h=np.full(10, 0.01))
    plain = strategy.aggregate(global_weights, updates, state, np.random.default_rng(9))
    secure = strategy.aggregate_sum(global_weights, summed, state, np.random.default_rng(9))
    for k in global_weights:
        assert np.allclose(plain.weights[k], secure.weights[k], atol=1e-6), k
    assert secure.report.norms == {} and secure.report.used == ["p0", "p1", "p2"]
