import pytest

from factory_agent.config import parse_config
from shared.errors import ConfigurationError


def test_seed_flags_and_their_defaults(monkeypatch):
    for var in ("FACTORY_NAME", "FACTORY_PORT", "FACTORY_HOSTNAME", "FACTORY_DASHBOARD_URL"):
        monkeypatch.delenv(var, raising=False)
    c = parse_config([])
    assert (c.factory_name, c.hostname, c.port, c.dashboard_url) == ("pdm_factory_datasite", "localhost", 8080,
                                                                     "http://localhost:5000")
    assert not c.dev_mode and not c.reset and not c.verbose and c.heartbeat_interval == 30


def test_every_flag_reads_a_factory_environment_variable_and_flags_win(monkeypatch):
    monkeypatch.setenv("FACTORY_NAME", "env_plant")
    monkeypatch.setenv("FACTORY_PORT", "9001")
    monkeypatch.setenv("FACTORY_RESET", "true")
    monkeypatch.setenv("FACTORY_DATA", "x.csv")
    monkeypatch.setenv("FACTORY_LABEL_COLUMN", "failure")
    monkeypatch.setenv("FACTORY_DROP_COLUMNS", "a, b")
    monkeypatch.setenv("HOSTNAME", "container-id-123")  # Docker's: must not be read
    c = parse_config([])
    assert (c.factory_name, c.port, c.reset, c.data, c.drop_columns) == ("env_plant", 9001, True, "x.csv", ("a", "b"))
    assert c.hostname == "localhost"
    assert parse_config(["--factory_name", "flag_plant"]).factory_name == "flag_plant"


@pytest.mark.parametrize("argv,message", [
    (["--data", "x.csv"], "--label-column"),
    (["--port", "0"], "not a TCP port"),
    (["--dashboard_url", "localhost:5000"], "http://"),
    (["--factory_name", "bad name"], "letters, digits"),
])
def test_bad_settings_are_configuration_errors(argv, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_config(argv)


def test_help_prints_every_flag():
    """`FactoryDatasite.py --help` is the plant engineer's first command (a '%' in a help text broke it)."""
    from factory_agent.config import build_parser

    text = build_parser().format_help()
    assert "--simulate" in text and "50/30/20 % L/M/H" in text and "--watch-dir" in text


@pytest.mark.parametrize("name, value, why", [
    ("FACTORY_PORT", "eighty", "FACTORY_PORT='eighty' is not a whole number"),
    ("FACTORY_HEARTBEAT_INTERVAL", "soon", "FACTORY_HEARTBEAT_INTERVAL='soon' is not a number"),
    ("FACTORY_VERBOSE", "loud", "FACTORY_VERBOSE='loud' is not a yes/no value")])
def test_a_bad_environment_value_stops_the_start_naming_its_variable(monkeypatch, name, value, why):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=why):
        parse_config([])


def test_the_agent_s_secrets_can_come_from_files(monkeypatch, tmp_path):
    (tmp_path / "token").write_text("enrol-from-a-file\n")
    (tmp_path / "password").write_text("orchestrator-password-from-a-file\n")
    monkeypatch.delenv("FACTORY_ENROLLMENT_TOKEN", raising=False)
    monkeypatch.delenv("FACTORY_ORCHESTRATOR_PASSWORD", raising=False)
    monkeypatch.setenv("FACTORY_ENROLLMENT_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("FACTORY_ORCHESTRATOR_PASSWORD_FILE", str(tmp_path / "password"))
    c = parse_config([])
    assert (c.enrollment_token, c.orchestrator_password) == ("enrol-from-a-file", "orchestrator-password-from-a-file")
