"""The dashboard's settings through the one environment reader (shared.env): yes/no values mean what they say,
a bad value stops the start naming its variable, every default is the one it was."""

import pytest

from dashboard.config import Config
from shared.errors import ConfigurationError

SWITCHES = ("SESSION_COOKIE_SECURE", "DASHBOARD_HEARTBEAT_DURABLE", "DASHBOARD_ALLOW_PRIVATE_PLANTS",
            "DASHBOARD_REQUIRE_TLS")


@pytest.fixture
def config(tmp_path, monkeypatch):
    for name in SWITCHES + ("DASHBOARD_ROUND_TIMEOUT", "DASHBOARD_MAX_BODY", "SECRET_KEY", "SECRET_KEY_FILE",
                            "DASHBOARD_CERT_VALIDITY_DAYS", "DASHBOARD_ENV", "SERVER_SOFTWARE"):
        monkeypatch.delenv(name, raising=False)
    return lambda: Config(str(tmp_path))


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "on"])
def test_session_cookie_secure_1_or_any_yes_word_makes_the_cookie_secure(config, monkeypatch, value):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", value)  # "1" used to mean False
    assert config().SESSION_COOKIE_SECURE is True


@pytest.mark.parametrize("name", SWITCHES)
def test_every_switch_reads_the_same_words(config, monkeypatch, name):
    key = {"DASHBOARD_HEARTBEAT_DURABLE": "HEARTBEAT_DURABLE", "DASHBOARD_ALLOW_PRIVATE_PLANTS": "ALLOW_PRIVATE_PLANTS"
           }.get(name, name)
    for text, meaning in (("on", True), ("1", True), ("off", False), ("0", False)):
        monkeypatch.setenv(name, text)
        assert getattr(config(), key) is meaning, (name, text)
    monkeypatch.setenv(name, "maybe")  # was False for three of them and True for DASHBOARD_REQUIRE_TLS
    with pytest.raises(ConfigurationError, match=f"{name}='maybe' is not a yes/no value"):
        config()


def test_the_defaults_are_unchanged(config):
    c = config()
    assert (c.SESSION_COOKIE_SECURE, c.HEARTBEAT_DURABLE, c.ALLOW_PRIVATE_PLANTS, c.DASHBOARD_REQUIRE_TLS) == (
        False, False, False, True)
    assert (c.ROUND_TIMEOUT, c.APPROVAL_TIMEOUT, c.LEASE_SECONDS, c.SCHEDULER_TICK, c.HEARTBEAT_INTERVAL) == (
        600, 60, 60, 2, 30)
    assert (c.HEARTBEAT_FLUSH_INTERVAL, c.MAX_CONTENT_LENGTH, c.DASHBOARD_CERT_VALIDITY_DAYS, c.PROXY_FIX) == (
        0.2, 1024 * 1024, 30, 0)
    assert (c.ALERT_WEBHOOK_TIMEOUT, c.ALERT_WEBHOOK_MIN_INTERVAL, c.DASHBOARD_SCHEDULER) == (5, 300, "inline")


@pytest.mark.parametrize("name, value, why", [
    ("DASHBOARD_ROUND_TIMEOUT", "ten minutes", "not a number"), ("DASHBOARD_ROUND_TIMEOUT", "-5", "out of range"),
    ("DASHBOARD_MAX_BODY", "1.5", "not a whole number"), ("DASHBOARD_SCHEDULER_TICK", "nan", "not a finite"),
    ("DASHBOARD_CERT_VALIDITY_DAYS", "400", "at most 397")])
def test_a_bad_number_stops_the_start_naming_its_variable(config, monkeypatch, name, value, why):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name) as caught:
        config()
    assert why in str(caught.value)


def test_a_secret_can_come_from_a_file(config, monkeypatch, tmp_path):
    (tmp_path / "key").write_text("k" * 64 + "\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    assert config().SECRET_KEY == "k" * 64
    monkeypatch.setenv("SECRET_KEY", "other")
    with pytest.raises(ConfigurationError, match="SECRET_KEY and SECRET_KEY_FILE are both set"):
        config()
