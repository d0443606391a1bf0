import numpy as np

from shared.data.splits import split_rows


def test_no_group_sits_in_two_splits_and_all_splits_have_failures():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 50)
    labels = (rng.random(len(groups)) < 0.05).astype(int)
    split = split_rows(labels, groups, np.arange(len(groups), dtype=float), ordered=True, seed=0)
    for g in np.unique(groups):
        assert len(np.unique(split[groups == g])) == 1
    assert set(np.unique(split)) == {0, 1, 2}
    assert all(labels[split == s].sum() > 0 for s in range(3))


def test_few_groups_are_split_in_time_past_to_future():
    groups = np.repeat([0, 1], 100)
    order = np.tile(np.arange(100), 2).astype(float)
    split = split_rows(np.zeros(200, dtype=int), groups, order, ordered=True, seed=0)
    for g in (0, 1):
        s = split[groups == g]
        assert list(s) == sorted(s)  # train, then validation, then test
        assert (s == 0).sum() == 70 and (s == 1).sum() == 15 and (s == 2).sum() == 15


def test_without_groups_or_time_the_split_is_stratified_and_deterministic():
    labels = np.array([1] * 20 + [0] * 180)
    a = split_rows(labels, None, np.arange(200, dtype=float), ordered=False, seed=3)
    b = split_rows(labels, None, np.arange(200, dtype=float), ordered=False, seed=3)
    assert (a == b).all()
    assert [labels[a == s].sum() for s in range(3)] == [14, 3, 3]
