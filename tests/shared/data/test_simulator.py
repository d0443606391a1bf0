import numpy as np
import pytest

from shared.data.simulator import LABEL_COLUMN, PROFILES, simulate
from shared.errors import ConfigurationError


def test_same_seed_gives_identical_data_and_another_seed_differs():
    a, b, c = simulate("default", 600, seed=3), simulate("default", 600, seed=3), simulate("default", 600, seed=4)
    assert a.equals(b)
    assert not a.equals(c)


def test_rows_machines_and_cycles_are_as_asked():
    df = simulate("default", 1234, seed=0, machines=7)
    assert len(df) == 1234
    assert df["machine_id"].nunique() == 7
    for _, machine in df.groupby("machine_id"):
        assert list(machine["cycle"]) == list(range(1, len(machine) + 1))


def test_failure_label_is_the_union_of_the_five_failure_modes():
    df = simulate("heavy_duty", 3000, seed=1)
    modes = df[["TWF", "HDF", "PWF", "OSF", "RNF"]].any(axis=1).astype(int)
    assert (df[LABEL_COLUMN] == modes).all()


def test_profiles_are_non_iid_in_product_mix_and_failure_rate():
    rates = {p: simulate(p, 6000, seed=2)[LABEL_COLUMN].mean() for p in PROFILES}
    mixes = {p: simulate(p, 6000, seed=2)["type"].value_counts(normalize=True).get("H", 0) for p in PROFILES}
    assert rates["hot_climate"] > 2 * rates["precision"]
    assert mixes["precision"] > 2 * mixes["heavy_duty"]
    assert all(0.005 < r < 0.3 for r in rates.values())  # imbalanced, as maintenance data is


def test_readings_follow_ai4i_ranges():
    df = simulate("default", 5000, seed=5)
    assert 295 < df["air_temperature_k"].mean() < 305
    assert 9 < (df["process_temperature_k"] - df["air_temperature_k"]).mean() < 11
    assert 1400 < df["rotational_speed_rpm"].mean() < 1800
    assert 35 < df["torque_nm"].mean() < 45
    assert df["tool_wear_min"].between(0, 260).all()
    assert np.isfinite(df.select_dtypes("number").to_numpy()).all()


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="unknown simulator profile 'arctic'"):
        simulate("arctic", 100)
