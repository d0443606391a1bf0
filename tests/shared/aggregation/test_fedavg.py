import numpy as np
import pytest

from shared.aggregation import ClientUpdate, FedAvg, get_aggregator, weighted_average
from shared.errors import AggregationError


def test_fedavg_weights_updates_by_samples_hand_computed():
    g = {"w": np.zeros(2, dtype=np.float32)}
    updates = [ClientUpdate("a", {"w": np.array([1.0, 2.0], np.float32)}, 100),
               ClientUpdate("b", {"w": np.array([4.0, -1.0], np.float32)}, 300)]
    out = FedAvg().aggregate(g, updates)
    # (100 * [1, 2] + 300 * [4, -1]) / 400 = [3.25, -0.25]
    np.testing.assert_allclose(out["w"], [3.25, -0.25])
    assert out["w"].dtype == np.float32


def test_weighted_average_of_equal_counts_is_the_mean():
    out = weighted_average([{"x": np.array([2.0])}, {"x": np.array([4.0])}, {"x": np.array([9.0])}], [1, 1, 1])
    assert out["x"][0] == pytest.approx(5.0)


def test_bad_updates_are_aggregation_errors():
    g = {"w": np.zeros(2)}
    with pytest.raises(AggregationError, match="no update"):
        FedAvg().aggregate(g, [])
    with pytest.raises(AggregationError, match="shape"):
        FedAvg().aggregate(g, [ClientUpdate("a", {"w": np.zeros(3)}, 1)])
    with pytest.raises(AggregationError, match="NaN"):
        FedAvg().aggregate(g, [ClientUpdate("a", {"w": np.array([np.nan, 0])}, 1)])
    with pytest.raises(AggregationError, match="not available"):
        get_aggregator("fedsgd")


def test_fedprox_asks_plants_for_the_proximal_term():
    assert get_aggregator("fedprox", mu=0.1).client_config() == {"proximal_mu": 0.1}
