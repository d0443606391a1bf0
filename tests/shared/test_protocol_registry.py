"""shared.protocol.registry: the agent's messages keep the wire form older agents of this line send, and what the
agent sends is what the dashboard reads back."""

import pytest

from shared.errors import ValidationError
from shared.protocol.registry import (FloorReport, Heartbeat, PendingCodeRequest, Registration, ReportedAlert,
                                      ReportedModel)

WIRE_HEARTBEAT_0_4 = {"factory_name", "timestamp", "status", "current_load", "active_experiments",
                      "pending_code_requests", "released_model", "scored_rows", "alerts_open", "drift"}
WIRE_HEARTBEAT = WIRE_HEARTBEAT_0_4 | {"drift_baseline", "alerts_opened", "alerts"}
WIRE_REGISTRATION = {"factory_name", "factory_hostname", "factory_port", "device", "status", "capabilities",
                     "orchestrator", "secagg_public_key", "identity_public_key", "agent_version", "policy",
                     "certificate_request", "trust_dashboard", "federation_key"}


def test_a_heartbeat_round_trips_with_the_fields_0_4_agents_send():
    beat = Heartbeat("plant_a", "2026-01-01T00:00:00+00:00", "busy",
                     {"cpu_usage": 12.5, "memory_usage": 40.0, "disk_usage": None}, (7,),
                     (PendingCodeRequest("r1", "x@y.org", "fl_step", "t", "why"),),
                     FloorReport(ReportedModel(3, "ab" * 32), 10, 1, 0.25))
    wire = beat.to_wire()
    assert set(wire) == WIRE_HEARTBEAT and wire["released_model"] == {"id": 3, "sha256": "ab" * 32, "kind": "global"}
    assert Heartbeat.from_wire(wire) == beat
    bare = Heartbeat("plant_a", "t", "online", {}).to_wire()  # an agent without a released model
    assert set(bare) == WIRE_HEARTBEAT and bare["released_model"] is None
    assert Heartbeat.from_wire(bare).floor is None
    older = {k: v for k, v in wire.items() if k in WIRE_HEARTBEAT_0_4}  # an agent from before alert ids: still read
    assert Heartbeat.from_wire(older).floor == FloorReport(ReportedModel(3, "ab" * 32), 10, 1, 0.25)


def test_a_floor_report_carries_alert_ids_and_only_the_details_the_plant_shares():
    alerts = (ReportedAlert(12, 1.7e9, None, 3), ReportedAlert(11, 1.6e9, 1.65e9, 3, "M-7", 0.93))
    report = FloorReport(ReportedModel(3, "ab" * 32), 10, 1, 0.25, 0.2, 12, alerts)
    wire = Heartbeat("plant_a", "t", "online", {}, floor=report).to_wire()
    assert wire["alerts"][0] == {"id": 12, "opened_at": 1.7e9, "cleared_at": None, "model_id": 3}
    assert wire["alerts"][1]["machine"] == "M-7" and wire["alerts"][1]["peak"] == 0.93
    assert Heartbeat.from_wire(wire).floor == report
    many = {**wire, "alerts": [{"id": i + 1, "opened_at": 1.0, "cleared_at": None, "model_id": None}
                               for i in range(500)]}
    assert len(Heartbeat.from_wire(many).floor.alerts) == 20  # cut, not refused
    long = {**wire, "alerts": [{"id": 1, "opened_at": 1.0, "cleared_at": None, "model_id": None,
                                "machine": "\x1b[2J" + "m" * 500, "peak": 0.5}]}
    machine = Heartbeat.from_wire(long).floor.alerts[0].machine
    assert len(machine) == 64 and machine.startswith("[2Jmmm")  # control characters dropped, cut to 64


def test_a_registration_round_trips_with_the_fields_0_4_agents_send():
    reg = Registration("plant_a", "localhost", 8081, "cpu", "online", {"features": ["a"]},
                       {"email": "o@f.org", "password": "pw"}, "ab" * 32, "cd" * 32, "0.4.0", {"require_dp": True})
    assert set(reg.to_wire()) == WIRE_REGISTRATION
    assert Registration.from_wire(reg.to_wire()) == reg
    older = {k: v for k, v in reg.to_wire().items() if k not in ("trust_dashboard", "federation_key")}
    parsed = Registration.from_wire(older)  # an agent from before the trust mode: unknown, so not trusting
    assert parsed == reg and parsed.trust_dashboard is None and parsed.federation_key is None


@pytest.mark.parametrize("trust,key", [(False, "0123456789abcdef"), (True, None), (False, None), (True, "f" * 16)])
def test_a_registration_round_trips_the_plants_trust_mode(trust, key):
    reg = Registration("plant_a", "localhost", 8081, "cpu", "online", {}, {"email": "o@f.org", "password": "pw"},
                       "ab" * 32, "cd" * 32, "0.4.0", {}, trust_dashboard=trust, federation_key=key)
    wire = reg.to_wire()
    assert wire["trust_dashboard"] is trust and wire["federation_key"] == key
    assert Registration.from_wire(wire) == reg


@pytest.mark.parametrize("change,field", [
    ({"trust_dashboard": "yes"}, "trust_dashboard"), ({"trust_dashboard": 1}, "trust_dashboard"),
    ({"federation_key": "AB12" * 4}, "federation_key"), ({"federation_key": "ab12"}, "federation_key"),
    ({"federation_key": "<script>" * 2}, "federation_key"), ({"federation_key": 12}, "federation_key"),
])
def test_a_hostile_trust_mode_is_refused_naming_the_field(change, field):
    body = {**Registration("plant_a", "localhost", 8081, "cpu", "online", {}, {"email": "o@f.org", "password": "pw"},
                           "ab" * 32, "cd" * 32, "0.4.0", {}).to_wire(), **change}
    with pytest.raises(ValidationError) as caught:
        Registration.from_wire(body)
    assert caught.value.field == field


@pytest.mark.parametrize("change,field", [
    ({"status": "hacked"}, "status"), ({"current_load": {"cpu_usage": 101}}, "current_load.cpu_usage"),
    ({"active_experiments": [{"nested": "x" * 1000}]}, "active_experiments[0]"),
    ({"factory_name": "../x"}, "factory_name"), ({"drift": float("nan")}, "drift"),
    ({"drift_baseline": -1}, "drift_baseline"), ({"alerts_opened": -3}, "alerts_opened"),
    ({"alerts_opened": True}, "alerts_opened"), ({"alerts": {"id": 1}}, "alerts"), ({"alerts": [7]}, "alerts[0]"),
    ({"alerts": [{"id": 0, "opened_at": 1}]}, "alerts[0].id"), ({"alerts": [{"id": 1}]}, "alerts[0].opened_at"),
    ({"alerts": [{"id": 1, "opened_at": 1e300}]}, "alerts[0].opened_at"),
    ({"alerts": [{"id": 1, "opened_at": 1, "peak": 2}]}, "alerts[0].peak"),
    ({"alerts": [{"id": 1, "opened_at": 1, "machine": ["x"]}]}, "alerts[0].machine"),
    ({"alerts": [{"id": 1, "opened_at": 1, "model_id": "3"}]}, "alerts[0].model_id"),
    ({"alerts": [{"id": 1, "opened_at": 1, "rows": [1, 2]}]}, "alerts[0]"),
])
def test_hostile_heartbeat_fields_are_refused_naming_the_field(change, field):
    with pytest.raises(ValidationError) as caught:
        Heartbeat.from_wire({"factory_name": "plant_a", **change})
    assert caught.value.field == field
