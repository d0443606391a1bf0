"""The plant's membership gate (factory_agent.plant.membership): pinning, the opt-out, no roll-back of revocations."""

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from factory_agent.plant.membership import check_membership, enrol as enrol_at_start
from factory_agent.plant.policy import PlantPolicy
from factory_agent.plant.state import PlantState
from factoryfl_testing.membership import administrator, certify, enrol
from shared.errors import ConfigurationError, PolicyRefusal
from shared.protocol import SecAggRequest
from shared.secagg.keys import public_hex

ME = "plant_me"


@pytest.fixture
def plant(tmp_path):
    state = PlantState(tmp_path / "state")
    admin = administrator(tmp_path / "federation")
    mine = enrol(admin, state, ME)
    return state, admin, mine


def _cohort(state, admin, mine, revocations=None):
    peers = {f"peer_{i}": public_hex(X25519PrivateKey.generate()) for i in range(2)}
    certificates = {name: certify(admin, name, key).to_wire() for name, key in peers.items()}
    return SecAggRequest({ME: state.secagg_public_key(), **peers}, 2, 16, "samples", 1.0,
                         certificates={ME: mine.to_wire(), **certificates},
                         revocations=revocations.to_wire() if revocations else None)


def test_a_certified_cohort_passes_and_an_unpinned_plant_refuses_unless_it_trusts_the_dashboard(plant, tmp_path):
    state, admin, mine = plant
    check_membership(PlantPolicy(), state, ME, _cohort(state, admin, mine))
    bare = PlantState(tmp_path / "bare")
    setup = SecAggRequest({ME: bare.secagg_public_key(), "x": "11" * 32, "y": "22" * 32}, 2, 16, "samples", 1.0)
    with pytest.raises(PolicyRefusal, match="--federation-key"):
        check_membership(PlantPolicy(), bare, ME, setup)
    check_membership(PlantPolicy(trust_dashboard=True), bare, ME, setup)  # the opt-out: today's behaviour


def test_a_cohort_without_certificates_is_refused_before_anything(plant):
    state, admin, mine = plant
    setup = _cohort(state, admin, mine)
    bare = SecAggRequest(setup.participants, 2, 16, "samples", 1.0)
    with pytest.raises(PolicyRefusal, match="no membership certificate"):
        check_membership(PlantPolicy(), state, ME, bare)


def test_a_newer_revocation_list_is_kept_and_an_older_one_cannot_bring_a_member_back(plant):
    state, admin, mine = plant
    setup = _cohort(state, admin, mine)
    first = admin.revoke({setup.certificates["peer_0"]["serial"]}).to_wire()
    with pytest.raises(PolicyRefusal, match="revoked"):
        check_membership(PlantPolicy(), state, ME,
                         SecAggRequest(setup.participants, 2, 16, "samples", 1.0, setup.certificates, first))
    # the relay now sends no list, or the same one: the plant still uses the newest it has seen
    with pytest.raises(PolicyRefusal, match="revoked"):
        check_membership(PlantPolicy(), state, ME, setup)


def test_a_revocation_list_of_another_federation_is_refused(plant, tmp_path):
    state, admin, mine = plant
    other = administrator(tmp_path / "other")
    certify(other, "peer_z", "33" * 32)
    foreign = other.revoke(plant="peer_z")
    with pytest.raises(PolicyRefusal, match="revocation list is not signed"):
        check_membership(PlantPolicy(), state, ME, _cohort(state, admin, mine, foreign))


def test_the_pinned_key_does_not_change_without_reset(plant, tmp_path):
    state, admin, mine = plant
    other = administrator(tmp_path / "other")
    with pytest.raises(ConfigurationError, match="--reset"):
        state.pin_federation_key(other.public_key_path)
    state.pin_federation_key(admin.public_key_path)  # the same key again: fine
    state.pin_federation_key(other.public_key_path, reset=True)
    assert state.federation_key_path.read_bytes() == other.public_key_path.read_bytes()


def test_enrolment_writes_the_request_with_public_keys_only(tmp_path):
    state = PlantState(tmp_path / "s")
    admin = administrator(tmp_path / "federation")
    enrol_at_start(state, ME, admin.public_key_path, False, PlantPolicy())
    text = (state.directory / "membership_request.json").read_text()
    assert state.identity_public_key() in text and state.secagg_public_key() in text and "PRIVATE" not in text
    assert state.federation_key() is not None


def test_the_start_up_log_says_which_models_the_plant_computes_on(tmp_path, caplog):
    import logging

    admin = administrator(tmp_path / "federation")
    with caplog.at_level(logging.INFO, logger="factory_agent.plant.membership"):
        enrol_at_start(PlantState(tmp_path / "a"), ME, admin.public_key_path, False, PlantPolicy())
    assert any(r.levelno == logging.INFO and "verified models" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="factory_agent.plant.membership"):
        enrol_at_start(PlantState(tmp_path / "b"), ME, admin.public_key_path, False, PlantPolicy(verify_models=False))
    assert any(r.levelno == logging.WARNING and "whatever model the dashboard sends" in r.getMessage()
               for r in caplog.records)
