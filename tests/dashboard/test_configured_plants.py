import pytest

from dashboard.registry.configured_plants import import_plants, load_plants
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


def plant_at(app, name: str, host: str) -> None:
    import secrets

    from dashboard.models.operators import token_digest
    from dashboard.auth.security import encrypt

    with app.app_context():
        db.session.add(Factory(name=name, hostname=host, port=8080, status="offline", capabilities={},
                               orchestrator_email="o@factoryfl.org", orchestrator_password_enc=encrypt("pw"),
                               heartbeat_token_hash=token_digest(secrets.token_urlsafe(8))))
        db.session.commit()


def test_the_connectivity_check_is_no_port_scanner(app, monkeypatch):
    """A plant stored at an address registration would refuse (an older database, a name that now resolves
    elsewhere) is not contacted: the CLI and the page say why."""
    from tests.dashboard.conftest import ADMIN

    contacted = []
    monkeypatch.setattr("dashboard.orchestration.syft_clients.check_login",
                        lambda host, *args, **kwargs: contacted.append(host) or ("reachable", "ok"))
    app.config["ALLOW_PRIVATE_PLANTS"] = False
    plant_at(app, "meta", "169.254.169.254")
    plant_at(app, "inside", "10.0.0.5")
    result = app.test_cli_runner().invoke(args=["factories", "check"])
    assert result.exit_code == 1
    assert "inside: refused - 10.0.0.5 is private" in result.output
    assert "meta: refused - 169.254.169.254 is a cloud metadata service" in result.output
    client = app.test_client()
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.post("/factories/meta/check", follow_redirects=True).text
    assert "meta: refused: 169.254.169.254 is a cloud metadata service" in page
    assert contacted == []


def test_a_plants_file_cannot_point_at_a_metadata_service(app, tmp_path, monkeypatch):
    path = tmp_path / "plants.yaml"
    path.write_text(GOOD.replace("10.0.0.5", "169.254.169.254"))
    monkeypatch.setenv("PLANT_REMOTE_PASSWORD", "from-the-env")
    with app.app_context(), pytest.raises(ConfigurationError, match="plant_remote: host '169.254.169.254'.*metadata"):
        import_plants(load_plants(path))
