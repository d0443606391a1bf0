import json

import numpy as np
import pytest

from shared.data.csv_loader import load_frame
from shared.data.scaler import FeatureStats, Scaler
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate
from shared.models import ModelSpec, build_model, get_weights
from shared.training import PlantArrays, run_step


@pytest.fixture(scope="module")
def plant():
    data = load_frame(simulate("hot_climate", 2000, seed=1), "machine_failure", FAILURE_MODE_COLUMNS,
                      "machine_id", "cycle")
    index = np.stack([data.split, data.groups], 1)
    return data, index


def test_windows_stay_inside_one_machine_and_one_split():
    index = np.array([[0, 0]] * 5 + [[0, 1]] * 3 + [[1, 2]] * 4)
    arrays = PlantArrays(np.zeros((12, 1), np.float32), np.zeros(12), index, ["a"], ["a"], None)
    assert list(arrays.window_ends(0, 3)) == [2, 3, 4, 7]
    assert list(arrays.window_ends(1, 3)) == [10, 11]
    assert list(arrays.window_ends(2, 3)) == []


def test_features_are_aligned_by_name_and_missing_ones_are_zero():
    arrays = PlantArrays(np.array([[1.0, 2.0]], np.float32), np.zeros(1), np.zeros((1, 2), int), ["b", "a"],
                         ["a", "c", "b"], None)
    assert arrays.x.tolist() == [[2.0, 0.0, 1.0]]


@pytest.mark.parametrize("model_type,length", [("cnn", 1), ("lstm", 8)])
def test_local_training_lowers_the_loss_and_returns_only_aggregates(plant, model_type, length):
    data, index = plant
    names = data.schema.feature_names
    base = {"features": names, "plant_features": names}
    stats = run_step(data.features, data.labels, index, {**base, "op": "stats"})
    scaler = Scaler.from_stats(FeatureStats.from_dict(stats["stats"])).to_dict()
    spec = ModelSpec(model_type, len(names), length)
    weights = get_weights(build_model(spec, seed=0))
    losses = []
    for r in range(3):
        out = run_step(data.features, data.labels, index, {**base, "op": "train", "spec": spec.to_dict(),
                                                           "scaler": scaler, "weights": weights,
                                                           "train": {"epochs": 2, "seed": r,
                                                                     "learning_rate": 0.005}})
        assert out["ok"], out
        weights = out["weights"]
        losses.append(out["train_loss"])
    assert losses[-1] < losses[0]
    evaluation = run_step(data.features, data.labels, index, {**base, "op": "evaluate", "spec": spec.to_dict(),
                                                              "scaler": scaler, "weights": weights})
    assert evaluation["ok"]
    assert evaluation["test"]["auc"] > 0.7
    assert set(evaluation) >= {"val", "test"} and "labels" not in evaluation
    assert evaluation["val"]["hist_pos"].sum() + evaluation["val"]["hist_neg"].sum() == evaluation["val"]["n"]


def test_errors_come_back_as_messages_not_exceptions(plant):
    data, index = plant
    out = run_step(data.features, data.labels, index, {"op": "dance", "features": ["x"], "plant_features":
                                                       data.schema.feature_names[:1]})
    assert out["ok"] is False
    assert "plant's data has" in out["error"]


def test_feddyn_keeps_its_linear_term_at_the_plant_between_rounds(plant, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORYFL_STATE_DIR", str(tmp_path))
    data, index = plant
    names = data.schema.feature_names
    spec = ModelSpec("cnn", len(names))
    weights = get_weights(build_model(spec, seed=0))
    request = {"features": names, "plant_features": names, "op": "train", "spec": spec.to_dict(),
               "weights": weights, "experiment": 42, "train": {"epochs": 1, "feddyn_alpha": 0.1}}
    out = run_step(data.features, data.labels, index, request)
    assert out["ok"], out
    saved = np.load(tmp_path / "feddyn" / "experiment-42.npz")
    name = next(iter(saved.files))
    # lambda = 0 - alpha * (w_k - w_global) after the first round
    np.testing.assert_allclose(saved[name], -0.1 * (out["weights"][name] - weights[name]), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["sign_flip", "scale:5", "noise:1.0", "label_flip"])
def test_a_byzantine_plant_corrupts_its_update_on_purpose(plant, monkeypatch, mode):
    data, index = plant
    names = data.schema.feature_names
    spec = ModelSpec("cnn", len(names))
    weights = get_weights(build_model(spec, seed=0))
    request = {"features": names, "plant_features": names, "op": "train", "spec": spec.to_dict(),
               "weights": weights, "train": {"epochs": 1, "seed": 3}}
    honest = run_step(data.features, data.labels, index, request)["weights"]
    monkeypatch.setenv("FACTORYFL_BYZANTINE", mode)
    evil = run_step(data.features, data.labels, index, request)["weights"]
    key = "linear.weight"
    d_honest, d_evil = honest[key] - weights[key], evil[key] - weights[key]
    if mode == "sign_flip":
        np.testing.assert_allclose(d_evil, -d_honest, rtol=1e-4, atol=1e-6)
    elif mode == "scale:5":
        np.testing.assert_allclose(d_evil, 5 * d_honest, rtol=1e-3, atol=1e-5)
    else:
        assert not np.allclose(d_evil, d_honest)


def test_dp_sgd_reports_the_epsilon_of_opacus_accountant_over_all_rounds_and_stops_at_the_budget(
        plant, tmp_path, monkeypatch):
    from opacus.accountants import RDPAccountant

    monkeypatch.setenv("FACTORYFL_STATE_DIR", str(tmp_path))
    data, index = plant
    names = data.schema.feature_names
    spec = ModelSpec("cnn", len(names))
    weights = get_weights(build_model(spec, seed=0))
    dp = {"dp_noise_multiplier": 1.1, "dp_max_grad_norm": 1.0, "dp_delta": 1e-5, "dp_target_epsilon": 8.0}
    request = {"features": names, "plant_features": names, "op": "train", "spec": spec.to_dict(), "weights": weights,
               "experiment": 5, "train": {"epochs": 1, "batch_size": 128, "learning_rate": 0.01, **dp}}
    reported, outcomes = [], []
    for r in range(40):
        out = run_step(data.features, data.labels, index, {**request, "train": {**request["train"], "seed": r}})
        outcomes.append(out["ok"])
        if not out["ok"]:
            assert "privacy budget exhausted" in out["error"]
            break
        reported.append(out["dp"]["epsilon"])
        assert all(np.isfinite(w).all() for w in out["weights"].values())
    assert outcomes[-1] is False and len(reported) >= 2  # stopped by the budget, after some rounds
    assert reported == sorted(reported) and reported[-1] <= 8.0
    # the same parameters in Opacus's own accountant: q = 1 / ceil(n / 128) (Opacus's Poisson rate for a batch
    # size of 128), one step per sampled batch, every round
    n = int((index[:, 0] == 0).sum())
    accountant = RDPAccountant()
    steps = [h[2] for h in json.loads((tmp_path / "dp_sgd" / "experiment-5.json").read_text())]
    for count in steps:
        for _ in range(count):
            accountant.step(noise_multiplier=1.1, sample_rate=1 / -(-n // 128))
    assert accountant.get_epsilon(1e-5) == pytest.approx(reported[-1], rel=1e-9)
