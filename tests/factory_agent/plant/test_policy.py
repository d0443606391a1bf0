import pytest

from factory_agent.config import parse_config
from factory_agent.plant.policy import PlantPolicy, load_policy
from factory_agent.plant.state import policy_file
from shared.errors import ConfigurationError


def test_flags_win_over_the_yaml_file_which_wins_over_the_defaults(tmp_path, monkeypatch):
    (tmp_path / "policy.yaml").write_text("min_cohort: 4\nrequire_secure_aggregation: true\nmax_local_epochs: 3\n")
    monkeypatch.setenv("FACTORY_MAX_LOCAL_EPOCHS", "7")
    config = parse_config(["--factory_name", "p", "--state-dir", str(tmp_path), "--min-cohort", "5"])
    policy = load_policy(policy_file(tmp_path), config.policy_overrides)
    assert policy.min_cohort == 5  # flag
    assert policy.max_local_epochs == 7  # environment
    assert policy.require_secure_aggregation is True  # YAML
    assert policy.lifetime_epsilon == PlantPolicy().lifetime_epsilon  # default


@pytest.mark.parametrize("yaml_text,words", [
    ("min_threshold: 1\n", "min_threshold must be at least 2"),
    ("min_cohort: 1\n", "min_cohort"),
    ("allow_everything: true\n", "unknown setting"),
    ("require_dp: maybe\n", "require_dp"),
    ("- a list\n", "mapping"),
    ("max_local_epochs: [\n", "not valid YAML"),
])
def test_a_bad_policy_is_a_clear_configuration_error(tmp_path, yaml_text, words):
    (tmp_path / "policy.yaml").write_text(yaml_text)
    with pytest.raises(ConfigurationError, match=words.replace("[", r"\[")):
        load_policy(policy_file(tmp_path), {})


def test_a_requirement_flag_alone_means_yes():
    config = parse_config(["--factory_name", "p", "--require-secure-aggregation", "--require-dp", "no"])
    assert config.policy_overrides["require_secure_aggregation"] == "true"
    assert load_policy(policy_file(__import__("pathlib").Path("/nonexistent")), config.policy_overrides).require_dp is False


# --- work bounded by cost (shared.model_cost; issue 24) -----------------------------------------------------

BENCH_ROWS = 12_000  # bench/rounds.py's plants, the largest of the bench


def _bench_specs():
    """Every family at the product's defaults, and the bench's larger settings (bench/rounds.py's 87k-parameter
    CNN, bench/mlp_grid.py's widest MLP), over the simulator's 12 features."""
    from shared.experiment.config import ExperimentConfig

    settings = [{"model_type": t} for t in ("cnn", "mlp", "lstm", "hybrid")]
    settings += [{"model_type": "cnn", "hidden_size": 256}, {"model_type": "mlp", "hidden_size": 128}]
    return [ExperimentConfig(name="bench", **s).model_spec(12) for s in settings]


@pytest.mark.parametrize("spec", _bench_specs(), ids=lambda s: f"{s.model_type}-{s.hidden_size}")
def test_the_default_cost_limits_admit_the_products_and_the_benchs_models(spec):
    from factory_agent.plant.policy import Work, check_work

    policy, train = PlantPolicy(), BENCH_ROWS * 7 // 10
    check_work(policy, spec, Work(scored=BENCH_ROWS - train, trained=8 * train, batch=64))  # bench/rounds.py
    check_work(policy, spec, Work(scored=BENCH_ROWS - train, trained=policy.max_local_epochs * train, batch=1024))
    # the heaviest personalization the policy's epochs allow, each epoch scored
    epochs = policy.max_personal_epochs
    check_work(policy, spec, Work(scored=(epochs + 7) * (BENCH_ROWS - train), trained=epochs * train, batch=64))


def test_the_cost_attack_of_issue_24_is_refused_by_every_default_limit_with_a_wide_margin():
    """4,096 absent features and 256 channels (239k parameters: within max_model_parameters)."""
    from factory_agent.plant.policy import Work, check_features, check_model_size, check_work
    from shared import model_cost
    from shared.errors import PolicyRefusal
    from shared.model_spec import ModelSpec, parameter_count

    policy, own = PlantPolicy(), [f"f{i}" for i in range(12)]
    spec = ModelSpec("cnn", 4096, channels=256, hidden_size=16)
    check_model_size(policy, parameter_count(spec))  # what the plant bounded before: it lets the attack through
    features = own + [f"absent_{i}" for i in range(4096 - 12)]
    with pytest.raises(PolicyRefusal, match="names 4084 features this plant lacks"):
        check_features(policy, features, own)
    assert 4084 > 100 * policy.max_missing_features
    with pytest.raises(PolicyRefusal, match="max_example_flops"):
        check_work(policy, spec, Work(scored=60))
    assert model_cost.example_cost(spec).flops > 10 * policy.max_example_flops


def test_a_few_absent_features_are_accepted_and_one_more_is_refused():
    from factory_agent.plant.policy import check_features
    from shared.errors import PolicyRefusal

    policy, own = PlantPolicy(max_missing_features=3), ["a", "b"]
    check_features(policy, ["a", "b", "x", "y", "z"], own)
    with pytest.raises(PolicyRefusal, match="names 4 features this plant lacks"):
        check_features(policy, ["a", "x", "y", "z", "w"], own)


def test_a_training_batch_over_the_value_limit_is_refused_with_the_batch_that_fits():
    from factory_agent.plant.policy import Work, check_work
    from shared import model_cost
    from shared.errors import PolicyRefusal
    from shared.model_spec import ModelSpec

    spec = ModelSpec("lstm", 12, sequence_length=10)
    per = model_cost.example_cost(spec).values * model_cost.TRAINING_VALUES
    policy = PlantPolicy(max_batch_values=100 * per)
    check_work(policy, spec, Work(scored=0, trained=1000, batch=100))
    with pytest.raises(PolicyRefusal, match="lower batch_size to 100 or less"):
        check_work(policy, spec, Work(scored=0, trained=1000, batch=101))


def test_a_request_over_the_operation_limit_is_refused():
    from factory_agent.plant.policy import Work, check_work
    from shared import model_cost
    from shared.errors import PolicyRefusal
    from shared.model_spec import ModelSpec

    spec = ModelSpec("cnn", 12)
    policy = PlantPolicy(max_request_flops=model_cost.training_flops(spec, 1000, 1))
    check_work(policy, spec, Work(scored=0, trained=1000))
    with pytest.raises(PolicyRefusal, match="max_request_flops"):
        check_work(policy, spec, Work(scored=1, trained=1000))


@pytest.mark.parametrize("name", ["max_missing_features", "max_example_flops", "max_batch_values",
                                  "max_request_flops"])
def test_each_cost_limit_is_a_policy_setting_with_a_flag_and_a_variable(name, tmp_path, monkeypatch):
    from factory_agent.config import POLICY_FLAGS

    assert name in POLICY_FLAGS
    monkeypatch.setenv("FACTORY_" + name.upper(), "7")
    config = parse_config(["--simulate", "default"])
    assert getattr(load_policy(policy_file(tmp_path), config.policy_overrides), name) == 7
    with pytest.raises(ConfigurationError, match=name):
        PlantPolicy(**{name: -1})
