"""factory_agent.registration: the registration reports the plant's trust mode (issue 24, item 5), the dashboard
reads it back as sent."""

from types import SimpleNamespace

import pytest

from factory_agent.config import parse_config
from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import PlantState
from factory_agent.registration import load_plant_data, registration_of
from factoryfl_testing.membership import administrator
from shared.membership import federation_id
from shared.membership.admin import PUBLIC_KEY_FILE
from shared.protocol.registry import Registration

CREDS = SimpleNamespace(orchestrator_email="o@factoryfl.org", orchestrator_password="pw")


@pytest.fixture(scope="module")
def data():
    return load_plant_data(parse_config(["--factory_name", "plant_a", "--rows", "200"]))


def registration(state, policy, data) -> Registration:
    config = parse_config(["--factory_name", "plant_a", "--rows", "200"])
    sent = registration_of(config, data, "cpu", policy, CREDS, state, "localhost", None)
    assert Registration.from_wire(sent.to_wire()) == sent  # what the dashboard reads
    return sent


def test_a_plant_with_a_pinned_federation_key_reports_its_fingerprint_and_no_trust(tmp_path, data):
    admin = administrator(tmp_path / "federation")
    state = PlantState(tmp_path / "state")
    key = state.pin_federation_key(admin.directory / PUBLIC_KEY_FILE)
    sent = registration(state, PlantPolicy(), data)
    assert sent.trust_dashboard is False and sent.federation_key == federation_id(key) == admin.federation()
    assert len(sent.federation_key) == 16


def test_a_plant_without_a_key_reports_none_and_the_opt_out_is_reported(tmp_path, data):
    state = PlantState(tmp_path / "state")
    bare = registration(state, PlantPolicy(), data)
    assert bare.trust_dashboard is False and bare.federation_key is None
    assert registration(state, PlantPolicy(trust_dashboard=True), data).trust_dashboard is True
