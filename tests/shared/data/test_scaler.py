import numpy as np

from shared.data.scaler import CLIP, Scaler, combine_stats, feature_stats, scaler_mismatch


def test_combined_statistics_equal_those_of_the_union():
    rng = np.random.default_rng(0)
    parts = [rng.normal(loc, scale, size=(n, 4)) for loc, scale, n in ((0, 1, 50), (5, 3, 120), (-2, 0.5, 7))]
    union = np.concatenate(parts)
    combined = combine_stats([feature_stats(p) for p in parts])
    scaler = Scaler.from_stats(combined)
    assert combined.count == len(union)
    np.testing.assert_allclose(scaler.mean, union.mean(0), rtol=1e-10)
    np.testing.assert_allclose(scaler.scale, union.std(0), rtol=1e-8)
    assert set(combined.to_dict()) == {"count", "sum", "sum_sq"}  # no min or max: single records' values


def test_constant_features_get_unit_scale_and_extremes_are_clipped():
    x = np.array([[1e9, 3.0], [1e9, 3.0], [1e9, 3.0]])
    scaler = Scaler.from_stats(feature_stats(x))
    assert list(scaler.scale) == [1.0, 1.0]
    assert (scaler.transform(x) == 0).all()
    wide = Scaler(mean=np.zeros(1), scale=np.ones(1))
    assert wide.transform(np.array([[1e12]]))[0, 0] == CLIP


def _local(x):
    stats = feature_stats(x)
    return stats.sum, stats.sum_sq, stats.count


def test_a_pooled_scaler_of_non_iid_plants_fits_each_plant():
    rng = np.random.default_rng(1)
    plants = [rng.normal(loc, scale, size=(400, 3)) for loc, scale in ((0, 1), (3, 2), (-1, 0.5))]
    pooled = Scaler.from_stats(combine_stats([feature_stats(p) for p in plants]))
    for x in plants:
        assert scaler_mismatch(pooled.mean, pooled.scale, *_local(x), tolerance=10) is None


def test_a_scaler_that_zooms_in_on_one_band_of_a_feature_is_refused():
    x = np.random.default_rng(2).normal(300, 2, size=(500, 2))
    honest = Scaler.from_stats(feature_stats(x))
    # mean at a threshold and a tiny scale: after clipping to +-10 the feature is an indicator x > 300.1
    crafted_scale = honest.scale.copy()
    crafted_scale[1] = 1e-4
    reason = scaler_mismatch(np.array([honest.mean[0], 300.1]), crafted_scale, *_local(x), tolerance=10)
    assert reason and "feature #1" in reason and "scale below" in reason
    far = scaler_mismatch(honest.mean + np.array([0.0, 100.0]), honest.scale, *_local(x), tolerance=10)
    assert far and "feature #1" in far and "mean" in far


def test_features_constant_at_the_plant_are_not_checked():
    x = np.zeros((50, 1))
    assert scaler_mismatch(np.array([7.0]), np.array([1e-3]), *_local(x), tolerance=10) is None
