"""The plant's identity key (PlantState) and the signed registration (DashboardClient), DESIGN §4."""

import json
import logging
import os
import time
from dataclasses import fields

import pytest

from factory_agent.dashboard_client import DashboardClient, RekeyPending, Registration, RegistrationAnswer
from factory_agent.plant.state import PlantState
from shared.errors import ConfigurationError, SecurityError
from shared.identity import (SIGNATURE_HEADER, TIMESTAMP_HEADER, canonical_json, fingerprint, public_key_hex,
                             verify_registration)
# fixtures: a dashboard in-process
from tests.dashboard.conftest import app, client, migrated_database, registration  # noqa: F401

BASE = "http://dashboard.test"


def test_the_identity_key_is_made_once_private_and_kept_across_restarts(tmp_path):
    state = PlantState(tmp_path / "state")
    public = state.identity_public_key()
    assert len(public) == 64 and public != state.secagg_public_key()
    assert oct(os.stat(state.identity_key_path).st_mode & 0o777) == "0o600"
    assert PlantState(tmp_path / "state").identity_public_key() == public  # a restarted agent: same key
    assert PlantState(tmp_path / "other").identity_public_key() != public


def test_a_file_that_is_not_an_ed25519_key_is_refused(tmp_path):
    state = PlantState(tmp_path / "state")
    state.secagg_public_key()
    state.identity_key_path.write_bytes(state.key_path.read_bytes())  # an X25519 key in its place
    with pytest.raises(SecurityError, match="is not an Ed25519 key"):
        state.identity_private_key()


class Recorder:
    """A requests.Session stand-in that records the request and answers what it is told."""

    def __init__(self, status=201, answer=None):
        self.status, self.answer, self.sent = status, answer, []

    def post(self, url, timeout, headers, data=None, json=None):
        self.sent.append({"url": url, "headers": headers, "data": data, "json": json})
        return Answer(self.status, self.answer or {"factory_id": 1, "heartbeat_token": "t", "heartbeat_interval": 5})


class Answer:
    def __init__(self, status_code, body):
        self.status_code, self.body = status_code, body
        self.text = json.dumps(body)

    def json(self):
        return self.body


def plant_registration(state: PlantState, name="plant_a", **overrides) -> Registration:
    body = registration(name, identity_public_key=state.identity_public_key(), **overrides)
    return Registration(**{f.name: body[f.name] for f in fields(Registration) if f.name in body})


def test_every_registration_is_signed_over_the_canonical_body_and_a_fresh_timestamp(tmp_path):
    state = PlantState(tmp_path / "state")
    dashboard = DashboardClient(BASE, "enroll", state.identity_private_key())
    dashboard.session = Recorder()
    dashboard.register(plant_registration(state))
    dashboard.register(plant_registration(state))
    first, second = dashboard.session.sent
    body = json.loads(first["data"])
    assert first["data"] == canonical_json(body)  # sent byte for byte as signed
    assert body["identity_public_key"] == state.identity_public_key()
    assert abs(float(first["headers"][TIMESTAMP_HEADER]) - time.time()) < 5
    assert verify_registration(state.identity_public_key(), first["headers"][SIGNATURE_HEADER],
                               first["headers"][TIMESTAMP_HEADER], body)
    assert not verify_registration(state.identity_public_key(), first["headers"][SIGNATURE_HEADER],
                                   first["headers"][TIMESTAMP_HEADER], {**body, "factory_port": 1})
    assert first["headers"][SIGNATURE_HEADER] != second["headers"][SIGNATURE_HEADER]  # never a replay of itself
    assert first["headers"]["Authorization"] == "Bearer enroll"


def test_a_registration_naming_another_key_than_the_clients_is_refused_before_sending(tmp_path):
    state = PlantState(tmp_path / "state")
    dashboard = DashboardClient(BASE, "enroll", PlantState(tmp_path / "other").identity_private_key())
    dashboard.session = Recorder()
    with pytest.raises(ConfigurationError, match="not this client's identity key"):
        dashboard.register(plant_registration(state))
    assert dashboard.session.sent == []


def test_a_409_waiting_for_approval_is_rekey_pending_and_other_409s_stay_fatal(tmp_path):
    state = PlantState(tmp_path / "state")
    dashboard = DashboardClient(BASE, "enroll", state.identity_private_key())
    dashboard.session = Recorder(409, {"error": "plant 'plant_a' is already registered ...",
                                       "detail": {"reason": "rekey_pending"}})
    with pytest.raises(RekeyPending, match="^re-keying needs an operator's approval on the dashboard: plant"):
        dashboard.register(plant_registration(state))
    dashboard.session = Recorder(409, {"error": "agent version 7.0.0 cannot be driven", "detail": None})
    with pytest.raises(ConfigurationError, match="refused this agent"):
        dashboard.register(plant_registration(state))


class FlaskSession:
    """Routes the client's requests into the dashboard app in this process (no sockets)."""

    def __init__(self, flask_client):
        self.flask_client = flask_client

    def post(self, url, timeout, headers, data=None, json=None):
        resp = self.flask_client.post(url.removeprefix(BASE), data=data, json=json, headers=headers)
        return Answer(resp.status_code, resp.get_json())


def test_the_dashboard_accepts_the_agents_signature_and_holds_a_new_key_for_an_operator(app, client, tmp_path):
    state = PlantState(tmp_path / "state")
    first = DashboardClient(BASE, "enroll-secret", state.identity_private_key())
    first.session = FlaskSession(client)
    assert first.register(plant_registration(state)).factory_id
    restarted = DashboardClient(BASE, "enroll-secret", PlantState(tmp_path / "state").identity_private_key())
    restarted.session = FlaskSession(client)
    assert restarted.register(plant_registration(state)).factory_id  # same state folder, same key: fine

    lost = PlantState(tmp_path / "state-lost")  # the state folder is gone: a new key under the same name
    relocated = DashboardClient(BASE, "enroll-secret", lost.identity_private_key())
    relocated.session = FlaskSession(client)
    with pytest.raises(RekeyPending) as refused:
        relocated.register(plant_registration(lost))
    assert fingerprint(lost.identity_public_key()) in str(refused.value)
    result = app.test_cli_runner().invoke(args=["factories", "approve-rekey", "plant_a"])
    assert result.exit_code == 0, result.output
    assert relocated.register(plant_registration(lost)).factory_id
    with pytest.raises(RekeyPending):  # the old key is the stranger now
        restarted.register(plant_registration(state))


class WaitingDashboard:
    """Answers 409 (re-keying waits for an operator) `refusals` times, then registers; accepts heartbeats."""

    def __init__(self, refusals, on_heartbeat):
        self.refusals, self.registrations, self.beats, self.on_heartbeat = refusals, 0, 0, on_heartbeat

    def register(self, registration):
        self.registrations += 1
        if self.registrations <= self.refusals:
            raise RekeyPending("re-keying needs an operator's approval on the dashboard: plant 'plant_a' is ...")
        return RegistrationAnswer(7, "token", 0.01)

    def heartbeat(self, token, beat):
        self.beats += 1
        self.on_heartbeat()


def test_the_agent_says_once_that_re_keying_waits_and_keeps_registering_until_approved(tmp_path, caplog,
                                                                                     monkeypatch):
    import threading
    from types import SimpleNamespace

    from factory_agent import agent as agent_module

    monkeypatch.setattr(agent_module, "MAX_BACKOFF", 0.05)
    plant = agent_module.Agent.__new__(agent_module.Agent)  # the serve loop alone: no datasite
    plant.config = SimpleNamespace(heartbeat_interval=0.01, dashboard_url=BASE, factory_name="plant_a")
    plant.state = PlantState(tmp_path / "state")
    plant.busy_file, plant.approval, plant.tls, plant.answer = tmp_path / "busy", None, None, None
    plant.registration, plant.rekey_reported, plant.started = None, False, time.monotonic()
    plant.floor = None
    plant.stop_event = threading.Event()
    plant.client = WaitingDashboard(refusals=4, on_heartbeat=plant.stop_event.set)
    with caplog.at_level(logging.INFO, logger="factory_agent.agent"):
        plant._register_first()  # at start: not fatal, the agent serves on
        plant._heartbeat_loop()  # returns once the first heartbeat after the approval went through
    said = [r.getMessage() for r in caplog.records]
    waiting = [m for m in said if m.startswith("re-keying needs an operator's approval on the dashboard: ")]
    assert len(waiting) == 1 and "registering again" in waiting[0]
    assert not any(m.startswith("heartbeat failed") for m in said)
    assert plant.client.registrations == 5 and plant.client.beats == 1
    assert any(m.startswith("registered with") for m in said) and plant.rekey_reported is False
