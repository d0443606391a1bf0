"""The typed experiment settings: contradictions refused with both fields named, stored rows of any age loaded
with defaults, and the values derived from the settings (tests/shared/strategies/test_config_golden.py pins
them against the code they replaced)."""

import pytest

from shared.errors import ConfigurationError
from shared.experiment import parse_experiment, ExperimentConfig, PrivacyConfig, RobustConfig, ValidationError
from shared.experiment.training import plant_training, secure_setup, strategy_for, update_clip
from shared.protocol import TrainSettings


def parse(**body):
    return parse_experiment({"name": "x", **body})


@pytest.mark.parametrize("algorithm,method", [(a, m) for a in ("fednova", "feddyn")
                                              for m in ("median", "trimmed_mean", "krum")])
def test_an_algorithm_whose_server_step_a_robust_rule_would_drop_is_refused_naming_both(algorithm, method):
    with pytest.raises(ValidationError) as caught:
        parse(algorithm=algorithm, robust={"method": method}, min_factories=4)
    assert caught.value.field == "algorithm"
    assert caught.value.message.startswith(f"{algorithm} cannot be combined with robust.method {method}: ")
    assert "use fedavg or fedprox" in caught.value.message


def test_fednova_under_central_dp_is_refused_naming_both():
    for privacy in ({"mode": "central"}, {"mode": "central", "mechanism": "laplace"}):
        with pytest.raises(ValidationError) as caught:
            parse(algorithm="fednova", privacy=privacy)
        assert caught.value.field == "algorithm"
        assert caught.value.message.startswith("fednova cannot be combined with privacy.mode central: ")


@pytest.mark.parametrize("body", [
    {"algorithm": "fedprox", "robust": {"method": "median"}},
    {"algorithm": "fednova", "robust": {"method": "norm_bound"}},
    {"algorithm": "feddyn", "privacy": {"mode": "central"}},
    {"algorithm": "feddyn", "privacy": {"mode": "central", "mechanism": "laplace"}, "secure_aggregation": True},
    {"algorithm": "feddyn", "server_optimizer": "fedavgm"},
    {"algorithm": "fednova", "server_optimizer": "fedyogi", "robust": {"method": "norm_bound", "max_norm": 1.0},
     "secure_aggregation": True},
])
def test_combinations_the_strategies_implement_fully_are_accepted(body):
    config = parse(**body)
    assert strategy_for(config, 3).algorithm == body["algorithm"]


def test_feddyn_under_central_dp_runs_feddyn_inside_central_dp():
    strategy = strategy_for(parse(algorithm="feddyn", privacy={"mode": "central"}), 4)
    assert strategy.name == "feddyn+central_dp" and strategy.secure_weighting == "equal"


def test_fedavgm_takes_its_own_learning_rate_and_momentum_unless_given():
    config = parse(server_optimizer="fedavgm")
    assert config.server_lr == 1.0 and config.server_momentum == 0.9
    assert "lr=1.0, momentum=0.9" in repr(strategy_for(config))
    config = parse(server_optimizer="fedavgm", server_lr=0.5, server_momentum=0.5)
    assert "lr=0.5, momentum=0.5" in repr(strategy_for(config))
    assert parse(server_optimizer="fedadam").server_lr == 0.01
    for bad in (1.0, -0.1, "high"):
        with pytest.raises(ValidationError) as caught:
            parse(server_optimizer="fedavgm", server_momentum=bad)
        assert caught.value.field == "server_momentum"


def test_a_stored_row_of_any_age_loads_with_the_defaults_for_what_it_lacks():
    old = {"name": "old", "model_type": "lstm", "algorithm": "fedprox", "rounds": 3, "local_epochs": 1,
           "batch_size": 32, "learning_rate": 0.01, "sequence_length": 8, "factories": ["a", "b"],
           "min_factories": 2, "secure_aggregation": False, "mu": 0.1, "seed": 4,
           "privacy": {"mode": "central", "noise_multiplier": 1.1, "max_grad_norm": 0.5, "delta": 1e-5},
           "robust": {"method": "none"}, "retired_setting": 1}
    config = ExperimentConfig.from_dict(old)
    assert config.factories == ("a", "b") and config.hidden_size == 64 and config.sampling_rate == 1.0
    assert config.privacy == PrivacyConfig(mode="central", noise_multiplier=1.1, max_grad_norm=0.5)
    assert config.robust == RobustConfig() and config.server_optimizer == "none"
    assert config.to_dict()["factories"] == ["a", "b"] and "retired_setting" not in config.to_dict()
    assert config.model_spec(5).sequence_length == 8 and update_clip(config) == 0.5
    # a row stored before lr_decay existed ran its rounds at the full rate: it keeps doing so (the default is 0.9),
    # and fedavg, the default algorithm until feddyn
    bare = ExperimentConfig(name="bare", lr_decay=1.0, algorithm="fedavg")
    assert ExperimentConfig.from_dict({"name": "bare"}) == bare
    assert config.lr_decay == 1.0 and parse_experiment({"name": "new"}).lr_decay == 0.9


def test_no_privacy_is_stored_as_the_mode_alone():
    assert parse().to_dict()["privacy"] == {"mode": "none"}
    assert parse(privacy={"mode": "none", "epsilon": 3}).privacy == PrivacyConfig()


def test_each_plant_gets_its_own_batch_order_seed_and_the_algorithms_terms():
    config = parse(seed=2, algorithm="fedprox", mu=0.3)
    first, second = plant_training(config, 1, 0), plant_training(config, 1, 1)
    assert first.seed == 2 * 100_003 + 101 and second.seed == first.seed + 1
    assert first.proximal_mu == 0.3 and plant_training(config, 2, 0).seed == first.seed + 101


def test_dp_sgd_and_laplace_reach_the_plants_training_request():
    dp_sgd = plant_training(parse(privacy={"mode": "dp_sgd", "epsilon": 3, "max_grad_norm": 0.5}, rounds=7), 1, 0)
    assert dp_sgd.dp_target_epsilon == 3.0 and dp_sgd.dp_max_grad_norm == 0.5 and dp_sgd.dp_rounds == 7
    assert dp_sgd.dp_noise_multiplier == 0.0 and dp_sgd.clip_update_norm is None
    laplace = plant_training(parse(privacy={"mode": "central", "mechanism": "laplace", "max_grad_norm": 2.0}), 1, 0)
    assert laplace.clip_update_norm == 2.0 and laplace.clip_update_ord == 1


def test_secure_setup_asks_for_masked_updates_only_under_secure_aggregation():
    keys = {"a": "a" * 64, "b": "b" * 64, "c": "c" * 64}
    setup = secure_setup(parse(secure_aggregation=True, algorithm="fednova"), keys, 3)
    assert setup.threshold == 2 and setup.weighting == "samples_per_step" and setup.clip == 100.0
    with pytest.raises(ConfigurationError, match="secure_aggregation is off"):
        secure_setup(parse(), keys)


def test_the_new_learning_settings_have_defaults_ranges_and_survive_storage():
    config = parse()
    assert (config.class_weight, config.lr_decay, config.patience) == ("pooled", 0.9, 0)
    tuned = parse(class_weight="local", lr_decay=0.8, patience=3)
    assert ExperimentConfig.from_dict(tuned.to_dict()) == tuned
    for body, field in (({"class_weight": "global"}, "class_weight"), ({"lr_decay": 0}, "lr_decay"),
                        ({"lr_decay": 1.5}, "lr_decay"), ({"patience": -1}, "patience"),
                        ({"patience": 1.5}, "patience")):
        with pytest.raises(ValidationError) as caught:
            parse(**body)
        assert caught.value.field == field


def test_the_learning_rate_decays_by_round_from_the_full_rate_in_round_one():
    config = parse(learning_rate=0.01, lr_decay=0.5)
    assert [plant_training(config, r, 0).learning_rate for r in (1, 2, 3)] == [0.01, 0.005, 0.0025]
    assert plant_training(parse(learning_rate=0.01, lr_decay=1.0), 7, 0).learning_rate == 0.01
    assert plant_training(parse(), 7, 0).learning_rate == pytest.approx(0.005 * 0.9 ** 6)  # the default decay
    # the decay stops at 1 % of the rate: a 1000-round run's last rounds still train (and the plants accept them)
    assert plant_training(parse(learning_rate=0.01, lr_decay=0.9, rounds=1000), 1000, 0).learning_rate == \
        pytest.approx(1e-4)
    # the smallest rate the API takes still decays to one the plants accept (>= 1e-9)
    with pytest.raises(ValidationError, match="greater than 1e-07"):
        parse(learning_rate=1e-7)
    tiny = plant_training(parse(learning_rate=1.01e-7, lr_decay=0.9, rounds=1000), 1000, 0).to_wire()
    assert TrainSettings.from_wire(tiny).learning_rate >= 1e-9


@pytest.mark.parametrize("named", [{"learning_rate": 0.001}, {"batch_size": 128}, {"local_epochs": 3},
                                   {"algorithm": "fedavg", "learning_rate": 0.001, "batch_size": 128}])
def test_an_explicit_training_body_gets_no_tuned_default_it_did_not_name(named):
    """Issue 25: 0.3's explicit C-MAPSS body lost its F1 to 0.4's lr_decay and pooled class weight, which it never
    asked for; a body naming its algorithm or schedule gets no decay and each plant's own weight, unless named."""
    config = parse(**named)
    assert (config.lr_decay, config.class_weight) == (1.0, "local")
    assert (parse(**named, lr_decay=0.8).lr_decay, parse(**named, class_weight="pooled").class_weight) == \
        (0.8, "pooled")
    assert (parse(rounds=3, model_type="lstm").lr_decay, parse(algorithm="fedavg").class_weight) == (0.9, "pooled")
    assert ExperimentConfig.from_dict(config.to_dict()) == config  # stored as it ran


def test_every_plant_trains_with_the_pooled_class_weight_unless_the_experiment_asks_for_local():
    assert plant_training(parse(), 2, 1, pooled_pos_weight=17.5).pos_weight == 17.5
    assert plant_training(parse(), 2, 1).pos_weight is None  # withheld by every plant: each uses its own
    assert plant_training(parse(class_weight="local"), 2, 1, pooled_pos_weight=17.5).pos_weight is None


def test_early_stopping_waits_patience_rounds_after_the_first_best_and_ties_do_not_count():
    from shared.experiment.stopping import best_round, stopped_early

    scores = {1: 0.5, 2: 0.6, 3: 0.55}
    assert best_round(scores) == 2 and not stopped_early(scores, 2) and stopped_early(scores, 1)
    assert stopped_early({**scores, 4: 0.6}, 2)  # round 4 only ties round 2
    assert best_round({**scores, 4: 0.6}) == 4  # the best round (download, release): ties go to the later
    assert not stopped_early({**scores, 4: 0.61}, 2) and not stopped_early(scores, 0) and not stopped_early({}, 1)


def test_the_mlp_gets_its_measured_blocks_and_cross_layers_and_dp_sgd_trains_any_row_model():
    from shared.model_spec import MLP_BLOCKS, MLP_CROSS_LAYERS

    spec = parse(model_type="mlp", hidden_size=32).model_spec(9)
    assert (spec.model_type, spec.num_features, spec.sequence_length, spec.hidden_size) == ("mlp", 9, 1, 32)
    assert (spec.num_layers, spec.cross_layers) == (MLP_BLOCKS, MLP_CROSS_LAYERS)
    assert parse(model_type="cnn").model_spec(9).num_layers == 1  # the CNN's spec is as it was
    for model_type in ("cnn", "mlp"):
        assert parse(model_type=model_type, privacy={"mode": "dp_sgd"}).privacy.dp_sgd
    with pytest.raises(ValidationError, match="row models only"):
        parse(model_type="hybrid", privacy={"mode": "dp_sgd"})


def test_dp_sgd_trains_with_its_own_batch_rate_and_epochs():
    config = parse(privacy={"mode": "dp_sgd", "epsilon": 4}, batch_size=32, learning_rate=0.001, local_epochs=3,
                   lr_decay=0.5)
    defaults = PrivacyConfig()
    train = plant_training(config, 1, 0)
    assert (train.batch_size, train.learning_rate, train.epochs) == (defaults.batch_size, defaults.learning_rate,
                                                                     defaults.local_epochs)
    assert plant_training(config, 2, 0).learning_rate == defaults.learning_rate * 0.5
    chosen = plant_training(parse(privacy={"mode": "dp_sgd", "epsilon": 4, "batch_size": 256, "learning_rate": 0.01,
                            "local_epochs": 2}), 1, 0)
    assert (chosen.batch_size, chosen.learning_rate, chosen.epochs) == (256, 0.01, 2)
    plain = plant_training(parse(batch_size=32, learning_rate=0.001, local_epochs=3), 1, 0)
    assert (plain.batch_size, plain.learning_rate, plain.epochs) == (32, 0.001, 3)
    stored = config.to_dict()["privacy"]
    assert stored["batch_size"] == defaults.batch_size and "batch_size" not in parse(
        privacy={"mode": "central"}).to_dict()["privacy"]
    assert ExperimentConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("privacy,field", [
    ({"mode": "dp_sgd", "batch_size": 0}, "privacy.batch_size"),
    ({"mode": "dp_sgd", "batch_size": 10 ** 9}, "privacy.batch_size"),
    ({"mode": "dp_sgd", "batch_size": 1.5}, "privacy.batch_size"),
    ({"mode": "dp_sgd", "batch_size": True}, "privacy.batch_size"),
    ({"mode": "dp_sgd", "learning_rate": float("nan")}, "privacy.learning_rate"),
    ({"mode": "dp_sgd", "learning_rate": float("inf")}, "privacy.learning_rate"),
    ({"mode": "dp_sgd", "learning_rate": 0}, "privacy.learning_rate"),
    ({"mode": "dp_sgd", "local_epochs": 101}, "privacy.local_epochs"),
    ({"mode": "dp_sgd", "local_epochs": "2"}, "privacy.local_epochs"),
    ({"mode": "central", "batch_size": 256}, "privacy.batch_size"),
    ({"mode": "central", "local_epochs": 1}, "privacy.local_epochs")])
def test_hostile_dp_sgd_training_settings_are_refused_naming_the_field(privacy, field):
    with pytest.raises(ValidationError) as caught:
        parse(privacy=privacy)
    assert caught.value.field == field


def test_a_dp_sgd_experiment_stored_before_its_own_training_settings_keeps_the_experiments():
    old = {"name": "old", "batch_size": 32, "learning_rate": 0.01, "local_epochs": 3,
           "privacy": {"mode": "dp_sgd", "epsilon": 4.0, "delta": 1e-5, "max_grad_norm": 1.0,
                       "noise_multiplier": None, "mechanism": "gaussian", "round_epsilon": 1.0,
                       "noise_multiplier_source": "target_epsilon"}}
    train = plant_training(ExperimentConfig.from_dict(old), 1, 0)
    assert (train.batch_size, train.learning_rate, train.epochs) == (32, 0.01, 3)


def test_dp_sgd_clips_per_sample_at_its_own_default_unless_told_and_central_keeps_its_bound():
    from shared.experiment.fields import DP_SGD_MAX_GRAD_NORM

    train = plant_training(parse(privacy={"mode": "dp_sgd", "epsilon": 4}), 1, 0)
    assert train.dp_max_grad_norm == DP_SGD_MAX_GRAD_NORM
    assert parse(privacy={"mode": "dp_sgd", "max_grad_norm": 2.0}).privacy.max_grad_norm == 2.0
    assert parse(privacy={"mode": "central"}).privacy.max_grad_norm == PrivacyConfig().max_grad_norm


@pytest.mark.parametrize("body,algorithm", [
    ({}, "feddyn"),  # the measured best (README "Model quality")
    ({"secure_aggregation": True}, "feddyn"),  # feddyn's server step needs only the sum
    ({"robust": {"method": "norm_bound"}}, "feddyn"),
    ({"robust": {"method": "median"}}, "fedavg"),  # feddyn cannot run with a rule that replaces the average
    ({"robust": {"method": "trimmed_mean"}}, "fedavg"),
    ({"robust": {"method": "krum"}, "min_factories": 4}, "fedavg"),
    ({"privacy": {"mode": "dp_sgd", "epsilon": 4}}, "fedavg"),  # its regulariser is not per sample
    ({"privacy": {"mode": "central", "epsilon": 4}}, "fedavg"),  # its h would add up every round's noise
    ({"server_optimizer": "fedavgm"}, "fedavg"),  # FedAvgM: fedavg with server momentum, as it always was
    ({"server_optimizer": "fedadam"}, "fedavg"),
    ({"algorithm": "fedavg"}, "fedavg"),
    ({"algorithm": "feddyn", "privacy": {"mode": "central", "epsilon": 4}}, "feddyn"),  # named: as asked
])
def test_a_body_naming_no_algorithm_gets_feddyn_where_it_runs_and_fedavg_elsewhere(body, algorithm):
    config = parse(**body)
    assert config.algorithm == algorithm
    assert ExperimentConfig.from_dict(config.to_dict()).algorithm == algorithm


def test_a_named_feddyn_with_a_robust_rule_is_still_refused_and_an_old_row_without_algorithm_loads_as_fedavg():
    with pytest.raises(ValidationError) as caught:
        parse(algorithm="feddyn", robust={"method": "median"})
    assert caught.value.field == "algorithm" and "use fedavg or fedprox" in caught.value.message
    for body in ({}, {"robust": {"method": "median"}}):  # stored before feddyn became the default: it ran fedavg
        stored = {k: v for k, v in parse(**body).to_dict().items() if k != "algorithm"}
        assert ExperimentConfig.from_dict(stored).algorithm == "fedavg"
