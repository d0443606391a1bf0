"""The dashboard relays membership (dashboard.registry.membership, dashboard.api.membership): it keeps what the
administrator signed and hands it on, for registered plants with their registered keys; it makes nothing."""

from dashboard.extensions import db
from dashboard.models import Factory
from dashboard.orchestration.selection import participant
from dashboard.registry import membership
from shared.identity import public_key_hex
from shared.membership import MembershipRequest
from shared.membership.admin import Administrator
from tests.dashboard.conftest import identity_key, register


def _admin(tmp_path):
    admin = Administrator(tmp_path / "federation")
    admin.keygen()
    return admin


def _request(name="plant_a", secagg="ab" * 32):
    return MembershipRequest(name, public_key_hex(identity_key(name)), secagg)


def test_a_certificate_for_a_registered_plant_is_stored_and_relayed(app, client, api, tmp_path):
    admin = _admin(tmp_path)
    assert register(client).status_code == 201
    cert, _ = admin.admit(_request())
    answer = client.post("/api/membership/certificates", json=cert.to_wire(), headers=api)
    assert answer.status_code == 201, answer.get_json()
    with app.app_context():
        factory = db.session.scalar(db.select(Factory).filter_by(name="plant_a"))
        assert participant(factory).certificate == cert


def test_an_unregistered_plant_other_keys_or_no_operator_are_refused(app, client, api, tmp_path):
    admin = _admin(tmp_path)
    assert register(client).status_code == 201
    other_keys = admin.admit(_request(secagg="cd" * 32))[0]
    nobody = admin.admit(_request("plant_z"))[0]
    assert client.post("/api/membership/certificates", json=other_keys.to_wire(), headers=api).status_code == 400
    assert client.post("/api/membership/certificates", json=nobody.to_wire(), headers=api).status_code == 400
    genuine = admin.admit(_request())[0]
    assert client.post("/api/membership/certificates", json=genuine.to_wire()).status_code in (401, 403)
    assert client.post("/api/membership/certificates", json={"plant": "x"}, headers=api).status_code == 400


def test_a_certificate_no_longer_matching_the_registered_keys_is_not_relayed(app, client, api, tmp_path):
    admin = _admin(tmp_path)
    assert register(client).status_code == 201
    cert = admin.admit(_request())[0]
    assert client.post("/api/membership/certificates", json=cert.to_wire(), headers=api).status_code == 201
    with app.app_context():
        factory = db.session.scalar(db.select(Factory).filter_by(name="plant_a"))
        factory.secagg_public_key = "ef" * 32  # the plant registered a new key since
        assert membership.certificate(factory) is None


def test_the_revocation_list_only_moves_forward_and_is_served(client, api, tmp_path):
    admin = _admin(tmp_path)
    assert register(client).status_code == 201
    admin.admit(_request())
    first = admin.revoke(plant="plant_a")
    assert client.post("/api/membership/revocations", json=first.to_wire(), headers=api).status_code == 201
    assert client.post("/api/membership/revocations", json=first.to_wire(), headers=api).status_code == 400
    assert client.get("/api/membership/revocations").get_json() == first.to_wire()
    second = admin.revoke(plant="plant_a")  # serial 2
    assert client.post("/api/membership/revocations", json=second.to_wire(), headers=api).status_code == 201
    assert client.get("/api/membership/revocations").get_json()["serial"] == 2
