"""One plant-name rule (shared.protocol.fields.PLANT_NAME) for the three layers that take a name: the agent's
--factory_name, the dashboard's registration, and the secure-aggregation participants of a training request.
A name is accepted by all three or by none (issue 26: `usineé` once registered, then failed in secagg)."""

import pytest

from factory_agent.config import parse_config
from shared.errors import ConfigurationError, ProtocolError
from shared.protocol.parts import SecAggRequest
from tests.dashboard.conftest import certificate_request, register

GOOD = ["plant_a", "Plant-7", "a", "0", "x" * 64, "usine_01", "PDM_factory_datasite"]
HOSTILE = ["usineé", "plant.a", ".", "..", "../etc", "a/b", "a\\b", "plant a", " plant", "plant ", "x" * 65,
           "x" * 121, "plant\n", "plant\x00", "\x1bplant", "\u202eplant", "plant\u200f", "", "-rf", "_hidden",
           "ｐlant", "plаnt",  # fullwidth p; Cyrillic а
           "plant;drop", "<script>", "plant%2e", "a:b", "plant\t"]


def agent_accepts(name: str) -> bool:
    try:
        return parse_config([f"--factory_name={name}"]).factory_name == name
    except ConfigurationError:
        return False


def dashboard_accepts(client, name: str) -> bool:
    try:
        csr = certificate_request(name)
    except ValueError:  # no X.509 common name can hold it: register without a certificate
        csr = None
    resp = register(client, name, certificate_request=csr)
    assert resp.status_code in (200, 201, 400), resp.get_json()
    if resp.status_code == 400:
        assert resp.get_json()["detail"]["field"] == "factory_name", resp.get_json()
    return resp.status_code != 400


def secagg_accepts(name: str) -> bool:
    wire = {"participants": {name: "ab" * 32, "other_plant": "cd" * 32}, "threshold": 2, "fraction_bits": 16,
            "weighting": "samples", "clip": 1.0}
    try:
        return name in SecAggRequest.from_wire(wire).participants
    except ProtocolError:
        return False


@pytest.mark.parametrize("name", GOOD + HOSTILE, ids=repr)
def test_a_plant_name_is_accepted_by_the_agent_the_dashboard_and_secagg_alike(client, name):
    verdicts = {"agent": agent_accepts(name), "dashboard": dashboard_accepts(client, name),
                "secagg": secagg_accepts(name)}
    assert set(verdicts.values()) == {name in GOOD}, verdicts


def test_a_heartbeat_naming_no_plant_name_is_400_before_any_lookup(client):
    resp = client.post("/heartbeat", json={"factory_name": "../etc", "status": "online"},
                       headers={"Authorization": "Bearer whatever"})
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == "factory_name"
