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
