from pathlib import Path

import pytest

from factory_agent.config import parse_config
from factory_agent.floor.settings import FloorSettings
from shared.errors import ConfigurationError


def test_floor_flags_become_settings_and_the_stream_uses_the_plants_simulator_profile(monkeypatch):
    monkeypatch.setenv("FACTORY_SCORE_PORT", "9191")
    config = parse_config(["--simulate", "hot_climate", "--watch-dir", "incoming", "--stream-interval", "5",
                           "--state-dir", "st", "--seed", "7"])
    settings = FloorSettings.from_agent_config(config)
    assert settings.watch_dir == Path("incoming") and settings.stream_interval == 5.0
    assert settings.stream_profile == "hot_climate" and settings.seed == 7 and settings.score_port == 9191
    assert settings.models_dir == Path("st") / "models" and settings.database == Path("st") / "floor.sqlite"


def test_everything_is_off_by_default_and_a_plant_with_its_own_data_streams_nothing():
    config = parse_config([])
    assert (config.watch_dir, config.stream_interval, config.score_port) == (None, None, None)
    own = FloorSettings.from_agent_config(parse_config(["--data", "x.csv", "--label-column", "y"]))
    assert own.stream_profile is None


@pytest.mark.parametrize("argv,words", [
    (["--data", "x.csv", "--label-column", "y", "--stream-interval", "5"], "needs --simulate"),
    (["--stream-interval", "0.01"], "between 0.1"), (["--watch-interval", "0"], "between 0.1"),
    (["--score-port", "70000"], "not a TCP port"), (["--score-port", "8080"], "must differ from --port"),
])
def test_bad_floor_flags_are_one_clear_error(argv, words):
    with pytest.raises(ConfigurationError, match=words):
        parse_config(argv)
