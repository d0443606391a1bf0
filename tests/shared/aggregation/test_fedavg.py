import numpy as np
import pytest

from shared.aggregation import AggregationSettings, AggregationState, ClientUpdate, aggregate
from shared.errors import AggregationError

PLAIN = AggregationSettings(use_reputation=False)


def test_fedavg_weights_updates_by_samples_hand_computed():
    g = {"w": np.zeros(2, dtype=np.float32)}
    updates = [ClientUpdate("a", {"w": np.array([1.0, 2.0], np.float32)}, 100),
               ClientUpdate("b", {"w": np.array([4.0, -1.0], np.float32)}, 300)]
    out, _, _ = aggregate(PLAIN, g, updates, AggregationState())
    # (100 * [1, 2] + 300 * [4, -1]) / 400 = [3.25, -0.25]
    np.testing.assert_allclose(out["w"], [3.25, -0.25])
    assert out["w"].dtype == np.float32


def test_equal_counts_give_the_mean_and_integer_buffers_are_carried_over():
    g = {"x": np.array([0.0]), "steps": np.array([7], dtype=np.int64)}
    updates = [ClientUpdate(n, {"x": np.array([v]), "steps": np.array([7], dtype=np.int64)}, 1)
               for n, v in (("a", 2.0), ("b", 4.0), ("c", 9.0))]
    out, _, _ = aggregate(PLAIN, g, updates, AggregationState())
    assert out["x"][0] == pytest.approx(5.0) and out["steps"][0] == 7


def test_bad_updates_are_aggregation_errors():
    g = {"w": np.zeros(2)}
    with pytest.raises(AggregationError, match="no update"):
        aggregate(PLAIN, g, [], AggregationState())
    with pytest.raises(AggregationError, match="shape"):
        aggregate(PLAIN, g, [ClientUpdate("a", {"w": np.zeros(3)}, 1)], AggregationState())
    with pytest.raises(AggregationError, match="NaN"):
        aggregate(PLAIN, g, [ClientUpdate("a", {"w": np.array([np.nan, 0])}, 1)], AggregationState())


def test_fedprox_asks_plants_for_the_proximal_term():
    from dashboard.orchestration.rounds import client_training_config

    assert client_training_config({"algorithm": "fedprox", "mu": 0.1}) == {"proximal_mu": 0.1}
    assert client_training_config({"algorithm": "feddyn", "feddyn_alpha": 0.2}) == {"feddyn_alpha": 0.2}
    assert client_training_config({"algorithm": "fedavg"}) == {}
