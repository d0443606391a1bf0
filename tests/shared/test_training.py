import numpy as np
import pytest

from shared.data.csv_loader import load_frame
from shared.data.scaler import Scaler, feature_stats
from shared.data.simulator import FAILURE_MODE_COLUMNS, simulate
from shared.models import ModelSpec, build_model, get_weights
from shared.protocol import TrainSettings
from shared.training import PlantArrays, PrivateTraining, compute_stats, evaluate_local, train_local


@pytest.fixture(scope="module")
def plant():
    data = load_frame(simulate("hot_climate", 2000, seed=1), "machine_failure", FAILURE_MODE_COLUMNS,
                      "machine_id", "cycle")
    index = np.stack([data.split, data.groups], 1)
    return data, index


def scaled(plant) -> PlantArrays:
    data, index = plant
    names = data.schema.feature_names
    arrays = PlantArrays(data.features, data.labels, index, names, names, None)
    arrays.scale(Scaler.from_stats(feature_stats(arrays.x[arrays.rows(0)])))
    return arrays


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


def test_statistics_are_sums_over_the_training_split_only(plant):
    data, index = plant
    names = data.schema.feature_names
    arrays = PlantArrays(data.features, data.labels, index, names, names, None)
    n, total, total_sq = compute_stats(arrays)
    train = data.features[index[:, 0] == 0].astype(np.float64)
    assert n == len(train)
    np.testing.assert_allclose(total, train.sum(0), rtol=1e-6)
    np.testing.assert_allclose(total_sq, (train ** 2).sum(0), rtol=1e-6)


@pytest.mark.parametrize("model_type,length", [("cnn", 1), ("mlp", 1), ("lstm", 8)])
def test_local_training_lowers_the_loss_and_evaluation_releases_only_coarse_aggregates(plant, model_type, length):
    arrays = scaled(plant)
    spec = ModelSpec(model_type, arrays.x.shape[1], length)
    weights = get_weights(build_model(spec, seed=0))
    losses = []
    for r in range(3):
        out = train_local(arrays, spec, weights, TrainSettings(epochs=2, seed=r, learning_rate=0.005))
        weights = out.weights
        losses.append(out.train_loss)
    assert losses[-1] < losses[0]
    val, test = evaluate_local(arrays, spec, weights, min_rows=10)
    assert test.auc > 0.7
    assert val.hist_pos.sum() + val.hist_neg.sum() == val.n
    groups = (val.hist_pos + val.hist_neg)
    assert groups[groups > 0].min() >= 10  # no released bin describes fewer than 10 examples


def test_a_split_smaller_than_the_minimum_releases_nothing(plant):
    arrays = scaled(plant)
    spec = ModelSpec("cnn", arrays.x.shape[1])
    val, test = evaluate_local(arrays, spec, get_weights(build_model(spec, seed=0)), min_rows=10 ** 6)
    assert val.n == test.n == 0 and val.loss is None and val.hist_pos.sum() == 0


def test_feddyn_returns_its_new_linear_term(plant):
    arrays = scaled(plant)
    spec = ModelSpec("cnn", arrays.x.shape[1])
    weights = get_weights(build_model(spec, seed=0))
    out = train_local(arrays, spec, weights, TrainSettings(epochs=1, feddyn_alpha=0.1), feddyn_term={})
    name = next(iter(out.feddyn_term))
    # lambda = 0 - alpha * (w_k - w_global) after the first round
    np.testing.assert_allclose(out.feddyn_term[name], -0.1 * (out.weights[name] - weights[name]), rtol=1e-5, atol=1e-7)


def test_dp_sgd_noise_depends_on_the_plants_secret_seed_not_on_the_experiment_seed(plant):
    arrays = scaled(plant)
    spec = ModelSpec("cnn", arrays.x.shape[1])
    weights = get_weights(build_model(spec, seed=0))
    settings = TrainSettings(epochs=1, batch_size=128, seed=5, dp_noise_multiplier=1.0)
    runs = [train_local(arrays, spec, weights, settings, private=PrivateTraining(1.0, 1.0, noise, noise + 1))
            for noise in (11, 11, 12)]
    key = "linear.weight"
    np.testing.assert_array_equal(runs[0].weights[key], runs[1].weights[key])  # the same secret: the same draw
    assert not np.allclose(runs[0].weights[key], runs[2].weights[key])  # same experiment seed, other secret


def test_the_pooled_class_weight_is_the_unions_negative_to_positive_ratio_capped():
    from shared.training import MAX_POS_WEIGHT, pooled_pos_weight

    # plants of (rows, failures): 100 of 10 and 300 of 10: the union's 380 negatives over 20 failures
    assert pooled_pos_weight([(100, 10), (300, 10)]) == 19.0
    assert pooled_pos_weight([(10_000, 10)]) == MAX_POS_WEIGHT
    assert pooled_pos_weight([(100, 0)]) is None and pooled_pos_weight([]) is None


def test_a_given_class_weight_replaces_the_plants_own_ratio(plant):
    from shared.training import count_positives

    arrays = scaled(plant)
    spec = ModelSpec("cnn", arrays.x.shape[1])
    weights = get_weights(build_model(spec, seed=0))
    positives = count_positives(arrays)
    assert positives == int(arrays.y[arrays.rows(0)].sum()) and positives > 0
    own = train_local(arrays, spec, weights, TrainSettings(epochs=1, seed=1))
    assert own.pos_weight == min(50.0, (len(arrays.rows(0)) - positives) / positives)
    given = train_local(arrays, spec, weights, TrainSettings(epochs=1, seed=1, pos_weight=3.5))
    assert given.pos_weight == 3.5
    assert any(not np.array_equal(given.weights[k], own.weights[k]) for k in own.weights)


def test_the_plants_device_is_the_gpu_only_when_torch_sees_one(monkeypatch):
    import torch

    from shared.device import compute_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compute_device().type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert compute_device().type == "cuda"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_training_and_evaluation_on_the_gpu_match_the_cpu_within_noise_and_return_cpu_arrays(plant, monkeypatch):
    import torch

    import shared.evaluation
    import shared.training

    arrays = scaled(plant)
    spec = ModelSpec("cnn", arrays.x.shape[1])
    weights = get_weights(build_model(spec, seed=0))
    settings = TrainSettings(epochs=1, seed=2, learning_rate=0.005)
    gpu = train_local(arrays, spec, weights, settings)
    gpu_eval = evaluate_local(arrays, spec, gpu.weights, 10)
    private = train_local(arrays, spec, weights, TrainSettings(epochs=1, seed=2, pos_weight=1.0,
                                                               dp_noise_multiplier=1.0),
                          private=PrivateTraining(1.0, 1.0, noise_seed=1, sampling_seed=2))
    assert all(isinstance(v, np.ndarray) for v in (*gpu.weights.values(), *private.weights.values()))
    for module in (shared.training, shared.evaluation):
        monkeypatch.setattr(module, "compute_device", lambda: torch.device("cpu"))
    cpu = train_local(arrays, spec, weights, settings)
    cpu_eval = evaluate_local(arrays, spec, cpu.weights, 10)
    assert abs(gpu.train_loss - cpu.train_loss) < 0.05 * cpu.train_loss
    assert abs(gpu_eval[0].auc - cpu_eval[0].auc) < 0.05


@pytest.mark.parametrize("private", [None, PrivateTraining(1.0, 1.0, 3, 4)])
def test_scaffold_moves_every_step_by_the_correction_and_a_zero_correction_changes_nothing(plant, private):
    """y <- y - lr (d + c - c_i), d Adam's direction (|d| <= ~3 per coordinate at Adam's defaults): with c - c_i
    = 100 the option II estimate (x - y) / (K lr) is 100 within Adam's part, with and without DP-SGD."""
    arrays = scaled(plant)
    spec = ModelSpec("cnn", arrays.x.shape[1])
    weights = get_weights(build_model(spec, seed=0))
    settings = TrainSettings(epochs=1, batch_size=256, learning_rate=1e-3, seed=2,
                             dp_noise_multiplier=1.0 if private else 0.0)
    plain = train_local(arrays, spec, weights, settings, private=private)
    zero = train_local(arrays, spec, weights, settings, private=private,
                       correction={k: np.zeros_like(v) for k, v in weights.items()})
    if private is None:  # (DP-SGD's noise is drawn again by each run's own Opacus generator)
        for key, value in plain.weights.items():
            np.testing.assert_array_equal(zero.weights[key], value)
    moved = train_local(arrays, spec, weights, settings, private=private,
                        correction={k: np.full_like(v, 100.0) for k, v in weights.items()})
    for key, value in weights.items():
        estimate = (value - moved.weights[key]) / (moved.steps * settings.learning_rate)
        assert np.all(np.abs(estimate - 100.0) <= 3.2), key
