"""dashboard.registry.lifecycle: decommissioning a plant from the service and the CLI (register and heartbeat:
test_factories_api.py; the API and pages: test_lifecycle.py)."""

import pytest

from dashboard.extensions import db
from dashboard.models import AuditEvent, Factory
from dashboard.registry import lifecycle as service
from tests.dashboard.conftest import register


def beat(client, token, name="plant_a"):
    return client.post("/heartbeat", json={"factory_name": name, "status": "online"},
                       headers={"Authorization": f"Bearer {token}"})


def test_a_decommissioned_plant_s_token_stops_working_and_it_cannot_register_by_itself(app, client):
    token = register(client).get_json()["heartbeat_token"]
    assert beat(client, token).status_code == 200
    with app.app_context():
        service.decommission("plant_a", actor="admin@factoryfl.org")
        plant = db.session.scalar(db.select(Factory).filter_by(name="plant_a"))
        assert plant.status == "offline"
        assert db.session.scalar(db.select(AuditEvent).filter_by(action="factory.decommissioned")) is not None
    assert beat(client, token).status_code == 403  # at once in this process
    assert register(client).status_code == 403  # its own key and the shared token do not bring it back


def test_decommissioning_an_unknown_plant_is_unknown_plant(app):
    with app.app_context(), pytest.raises(service.UnknownPlant):
        service.decommission("ghost", actor="cli")


def test_the_cli_decommissions_a_plant(app, client):
    register(client)
    result = app.test_cli_runner().invoke(args=["factories", "decommission", "plant_a"])
    assert result.exit_code == 0 and "decommissioned plant_a" in result.output
    assert app.test_cli_runner().invoke(args=["factories", "decommission", "ghost"]).exit_code != 0
