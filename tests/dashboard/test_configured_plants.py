import pytest

from dashboard.configured_plants import import_plants, load_plants
from dashboard.extensions import db
from dashboard.models import Factory
from shared.errors import ConfigurationError

GOOD = """
factories:
  - name: plant_remote
    host: 10.0.0.5
    port: 8080
    orchestrator_email: orchestrator@factoryfl.org
    orchestrator_password_env: PLANT_REMOTE_PASSWORD
"""


def test_plants_import_with_passwords_from_the_environment_encrypted(app, tmp_path, monkeypatch):
    path = tmp_path / "plants.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("PLANT_REMOTE_PASSWORD", "from-the-env")
    with app.app_context():
        assert import_plants(load_plants(path)) == ["plant_remote"]
        plant = db.session.scalar(db.select(Factory).filter_by(name="plant_remote"))
        assert (plant.hostname, plant.port, plant.status) == ("10.0.0.5", 8080, "offline")
        assert "from-the-env" not in plant.orchestrator_password_enc


@pytest.mark.parametrize("text,message", [
    ("factories: {}", "top-level 'factories:' list"),
    ("factories:\n  - name: x\n    host: h\n    port: 1", "lacks orchestrator_email"),
    (GOOD.replace("orchestrator_password_env: PLANT_REMOTE_PASSWORD", "orchestrator_password_env: X\n"
                  "    orchestrator_password: secret"), "not in the file"),
    (GOOD.replace("8080", "99999"), "port must be 1-65535"),
    ("factories: [", "not valid YAML"),
])
def test_bad_plant_files_are_configuration_errors(tmp_path, text, message):
    path = tmp_path / "plants.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_plants(path)


def test_a_missing_password_variable_is_named(app, tmp_path, monkeypatch):
    path = tmp_path / "plants.yaml"
    path.write_text(GOOD)
    monkeypatch.delenv("PLANT_REMOTE_PASSWORD", raising=False)
    with app.app_context(), pytest.raises(ConfigurationError, match="PLANT_REMOTE_PASSWORD"):
        import_plants(load_plants(path))
