import numpy as np
import pytest

from factory_agent.floor.drift import FeatureTotals, drift_score


def test_data_like_the_training_data_drifts_about_zero_and_a_one_sd_shift_about_one():
    rng = np.random.default_rng(0)
    mean, scale = np.array([300.0, 40.0]), np.array([2.0, 10.0])
    same = rng.normal(mean, scale, size=(20_000, 2))
    assert drift_score(FeatureTotals.of(same), mean, scale) < 0.05
    shifted = same + scale  # every feature one training standard deviation higher, same spread
    assert drift_score(FeatureTotals.of(shifted), mean, scale) == pytest.approx(1.0, abs=0.05)
    wider = mean + (same - mean) * np.sqrt(2)  # variance doubled: |2 - 1| per feature
    assert drift_score(FeatureTotals.of(wider), mean, scale) == pytest.approx(1.0, abs=0.05)


def test_totals_add_up_batch_by_batch_like_one_big_batch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 3))
    parts = FeatureTotals.of(x[:40]) + FeatureTotals.of(x[40:])
    whole = FeatureTotals.of(x)
    assert parts.count == 100 and np.allclose(parts.sum, whole.sum) and np.allclose(parts.sum_sq, whole.sum_sq)


def test_too_few_rows_or_mismatched_features_give_no_score():
    assert drift_score(FeatureTotals.of(np.ones((1, 2))), np.zeros(2), np.ones(2)) is None
    assert drift_score(FeatureTotals.of(np.ones((5, 3))), np.zeros(2), np.ones(2)) is None
