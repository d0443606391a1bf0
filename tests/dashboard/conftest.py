import pytest
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.bootstrap import bootstrap
from dashboard.extensions import db

ADMIN = ("ops@factoryfl.org", "correct horse battery")
TOKEN = "test-api-token-0123456789"
ENROLL = "enroll-secret"


@pytest.fixture()
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite'}",
                      "FACTORY_ENROLLMENT_TOKEN": ENROLL, "DASHBOARD_ADMIN_EMAIL": ADMIN[0],
                      "DASHBOARD_ADMIN_PASSWORD": ADMIN[1], "DASHBOARD_API_TOKEN": TOKEN,
                      "HEARTBEAT_INTERVAL": 1.0})
    with app.app_context():
        upgrade()
        bootstrap(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def api():
    return {"Authorization": f"Bearer {TOKEN}"}


def registration(name="plant_a", **overrides):
    body = {"factory_name": name, "factory_hostname": "localhost", "factory_port": 8081, "device": "cpu",
            "status": "online",
            "capabilities": {"supported_models": ["cnn", "lstm", "hybrid"], "data_type": "time_series",
                             "num_samples": 100, "features": ["a", "b"],
                             "schema": {"label_column": "y", "numeric_columns": ["a", "b"], "categorical": {}}},
            "orchestrator": {"email": "orchestrator@factoryfl.org", "password": "s3cret-orchestrator"},
            "secagg_public_key": "ab" * 32, "agent_version": "0.3.0"}
    body.update(overrides)
    return body


def register(client, name="plant_a", **overrides):
    return client.post("/register_factory", json=registration(name, **overrides),
                       headers={"Authorization": f"Bearer {ENROLL}"})
