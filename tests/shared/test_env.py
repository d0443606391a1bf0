"""The one environment reader (shared.env): every error names the variable; a default only fills an unset one."""

import pytest

from shared.env import env_bool, env_float, env_int, env_path, env_secret, env_str
from shared.errors import ConfigurationError

NAME = "FACTORYFL_TEST_SETTING"


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "yes", "On", " on "])
def test_yes_words_mean_true_whatever_the_default(monkeypatch, text):
    monkeypatch.setenv(NAME, text)
    assert env_bool(NAME, False) is True


@pytest.mark.parametrize("text", ["0", "false", "No", "OFF"])
def test_no_words_mean_false_whatever_the_default(monkeypatch, text):
    monkeypatch.setenv(NAME, text)
    assert env_bool(NAME, True) is False


@pytest.mark.parametrize("text", ["2", "y", "enabled", "truee", "-1"])
def test_any_other_yes_no_value_is_an_error_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv(NAME, text)
    with pytest.raises(ConfigurationError, match=f"{NAME}=.*not a yes/no value"):
        env_bool(NAME, False)


@pytest.mark.parametrize("default", [True, False])
def test_an_unset_or_blank_yes_no_variable_takes_its_default(monkeypatch, default):
    monkeypatch.delenv(NAME, raising=False)
    assert env_bool(NAME, default) is default
    monkeypatch.setenv(NAME, "  ")
    assert env_bool(NAME, default) is default


def test_numbers_are_read_within_their_range(monkeypatch):
    monkeypatch.setenv(NAME, "42")
    assert env_int(NAME, 1, minimum=1, maximum=65535) == 42
    assert env_float(NAME, 1.0, minimum=0.1) == 42.0
    monkeypatch.delenv(NAME)
    assert env_int(NAME, 7) == 7 and env_float(NAME, 0.5) == 0.5


@pytest.mark.parametrize("text, reader, why", [
    ("abc", env_int, "not a whole number"), ("4.5", env_int, "not a whole number"),
    ("0", lambda n, d: env_int(n, d, minimum=1), "out of range: it must be at least 1"),
    ("70000", lambda n, d: env_int(n, d, minimum=1, maximum=65535), "at least 1 and at most 65535"),
    ("ten", env_float, "not a number"), ("nan", env_float, "not a finite number"), ("inf", env_float, "finite"),
    ("-1", lambda n, d: env_float(n, d, minimum=0), "out of range")])
def test_a_bad_number_is_an_error_naming_the_variable_and_why(monkeypatch, text, reader, why):
    monkeypatch.setenv(NAME, text)
    with pytest.raises(ConfigurationError, match=NAME) as caught:
        reader(NAME, 1)
    assert why in str(caught.value)


def test_text_and_paths_are_kept_as_set_and_an_explicit_empty_value_is_not_the_default(monkeypatch):
    monkeypatch.setenv(NAME, "")
    assert env_str(NAME, "fallback") == ""
    monkeypatch.setenv(NAME, " spaced ")
    assert env_str(NAME, "fallback") == " spaced "
    monkeypatch.setenv(NAME, "/srv/state")
    assert str(env_path(NAME, "state")) == "/srv/state"
    monkeypatch.delenv(NAME)
    assert env_str(NAME, "fallback") == "fallback" and str(env_path(NAME, "state")) == "state"
    assert env_path(NAME) is None


def test_a_path_with_a_nul_is_refused(monkeypatch):
    monkeypatch.setattr("os.environ", {NAME: "a\x00b"})
    with pytest.raises(ConfigurationError, match=f"{NAME} holds a NUL"):
        env_path(NAME)


def test_a_secret_comes_from_its_value_or_from_its_file(monkeypatch, tmp_path):
    monkeypatch.setenv(NAME, "from-the-value")
    assert env_secret(NAME) == "from-the-value"
    monkeypatch.delenv(NAME)
    (tmp_path / "secret").write_text("from-the-file\n")
    monkeypatch.setenv(NAME + "_FILE", str(tmp_path / "secret"))
    assert env_secret(NAME) == "from-the-file"
    monkeypatch.delenv(NAME + "_FILE")
    assert env_secret(NAME, "default") == "default"


def test_a_secret_set_twice_or_in_an_unreadable_or_empty_file_is_an_error(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("one")
    monkeypatch.setenv(NAME, "two")
    monkeypatch.setenv(NAME + "_FILE", str(tmp_path / "secret"))
    with pytest.raises(ConfigurationError, match=f"{NAME} and {NAME}_FILE are both set"):
        env_secret(NAME)
    monkeypatch.delenv(NAME)
    monkeypatch.setenv(NAME + "_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match=f"{NAME}_FILE=.*cannot be read"):
        env_secret(NAME)
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv(NAME + "_FILE", str(tmp_path / "empty"))
    with pytest.raises(ConfigurationError, match=f"{NAME}_FILE=.*empty file"):
        env_secret(NAME)
