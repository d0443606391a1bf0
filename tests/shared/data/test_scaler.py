import numpy as np

from shared.data.scaler import CLIP, Scaler, combine_stats, feature_stats


def test_combined_statistics_equal_those_of_the_union():
    rng = np.random.default_rng(0)
    parts = [rng.normal(loc, scale, size=(n, 4)) for loc, scale, n in ((0, 1, 50), (5, 3, 120), (-2, 0.5, 7))]
    union = np.concatenate(parts)
    combined = combine_stats([feature_stats(p) for p in parts])
    scaler = Scaler.from_stats(combined)
    assert combined.count == len(union)
    np.testing.assert_allclose(scaler.mean, union.mean(0), rtol=1e-10)
    np.testing.assert_allclose(scaler.scale, union.std(0), rtol=1e-8)
    np.testing.assert_allclose(combined.min, union.min(0))
    np.testing.assert_allclose(combined.max, union.max(0))


def test_constant_features_get_unit_scale_and_extremes_are_clipped():
    x = np.array([[1e9, 3.0], [1e9, 3.0], [1e9, 3.0]])
    scaler = Scaler.from_stats(feature_stats(x))
    assert list(scaler.scale) == [1.0, 1.0]
    assert (scaler.transform(x) == 0).all()
    wide = Scaler(mean=np.zeros(1), scale=np.ones(1))
    assert wide.transform(np.array([[1e12]]))[0, 0] == CLIP
