"""Plant identity at registration (DESIGN §4, dashboard.registry.identity): a name is bound to the identity key of its
first registration; a known name needs proof of that key; enrolment tokens admit new names only."""

import time

import pytest

from dashboard.extensions import db
from dashboard.models import AuditEvent, EnrolmentToken, Factory, FactoryRekey
from shared.identity import fingerprint, public_key_hex
from tests.dashboard.conftest import ADMIN, ENROLL, TOKEN, identity_key, register, registration, signed_headers

API = {"Authorization": f"Bearer {TOKEN}"}
IMPOSTOR = identity_key("plant_a", generation=1)


def beat(client, token, name="plant_a"):
    return client.post("/heartbeat", json={"factory_name": name, "status": "online"},
                       headers={"Authorization": f"Bearer {token}"})


def plant_row(app, name="plant_a") -> dict:
    with app.app_context():
        f = db.session.scalar(db.select(Factory).filter_by(name=name))
        return {"hostname": f.hostname, "port": f.port, "secagg": f.secagg_public_key,
                "identity": f.identity_public_key, "token_hash": f.heartbeat_token_hash,
                "password": f.orchestrator_password_enc, "registered_at": f.registered_at}


def rekeys(app, name="plant_a") -> list[FactoryRekey]:
    with app.app_context():
        factory = db.session.scalar(db.select(Factory).filter_by(name=name))
        rows = db.session.scalars(db.select(FactoryRekey).filter_by(factory_id=factory.id)).all()
        db.session.expunge_all()
        return rows


def audit_actions(app) -> list[str]:
    with app.app_context():
        return [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def post(client, body, headers):
    return client.post("/register_factory", json=body, headers=headers)


def enrolment_token(client, name, hours=24):
    resp = client.post("/api/enrolment-tokens", json={"factory_name": name, "expires_in_hours": hours}, headers=API)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["token"]


# --- the issue: another key under a known name -------------------------------------------------------------
def test_an_impostor_with_the_shared_token_and_another_key_gets_409_and_nothing_changes(app, client):
    victim = register(client).get_json()
    before = plant_row(app)
    resp = register(client, key=IMPOSTOR, factory_hostname="127.0.0.66", factory_port=9999,
                    secagg_public_key="cd" * 32,
                    orchestrator={"email": "evil@example.org", "password": "impostor-password"})
    assert resp.status_code == 409
    answer = resp.get_json()
    assert "heartbeat_token" not in answer and "certificate_chain" not in answer
    assert "operator" in answer["error"] and "approve-rekey plant_a" in answer["error"]
    assert answer["detail"]["reason"] == "rekey_pending"
    assert answer["detail"]["identity_key_fingerprint"] == fingerprint(public_key_hex(IMPOSTOR))
    assert plant_row(app) == before  # host, port, keys, orchestrator login, heartbeat token: the victim's
    assert beat(client, victim["heartbeat_token"]).status_code == 200
    listed = client.get("/factories", headers=API).get_json()[0]
    assert listed["factory_hostname"] == "localhost" and listed["factory_port"] == 8081
    (pending,) = rekeys(app)  # kept for an operator: the new keys, address and time
    assert (pending.identity_public_key, pending.secagg_public_key, pending.hostname, pending.port) == \
        (public_key_hex(IMPOSTOR), "cd" * 32, "127.0.0.66", 9999)
    assert pending.approved_at is None and "factory.rekey_requested" in audit_actions(app)


def test_claiming_the_victims_own_public_key_without_its_signature_is_409(app, client):
    register(client)
    before = plant_row(app)
    body = registration("plant_a", factory_hostname="127.0.0.66")  # the victim's public key, no signature
    resp = post(client, body, {"Authorization": f"Bearer {ENROLL}"})
    assert resp.status_code == 409 and resp.get_json()["detail"]["reason"] == "rekey_pending"
    assert plant_row(app) == before


def test_a_signature_by_another_key_than_the_one_claimed_is_401(app, client):
    register(client)
    body = registration("plant_a", factory_hostname="127.0.0.66")  # claims the victim's key ...
    resp = post(client, body, signed_headers(body, IMPOSTOR))  # ... signs with its own
    assert resp.status_code == 401 and "does not verify" in resp.get_json()["error"]
    assert plant_row(app)["hostname"] == "localhost" and rekeys(app) == []


def test_a_replayed_signed_registration_is_refused_and_an_old_one_too(app, client):
    body = registration("plant_a")
    headers = signed_headers(body, identity_key("plant_a"))
    first = post(client, body, headers)
    assert first.status_code == 201
    replay = post(client, body, headers)  # the very same request again, within the window
    assert replay.status_code == 401 and "replay" in replay.get_json()["error"]
    old = signed_headers(body, identity_key("plant_a"), timestamp=f"{time.time() - 600:.6f}")
    stale = post(client, body, old)  # signed 10 minutes ago, never seen
    assert stale.status_code == 401 and "behind the dashboard's clock" in stale.get_json()["error"]
    ahead = post(client, body, signed_headers(body, identity_key("plant_a"), timestamp=f"{time.time() + 600:.6f}"))
    assert ahead.status_code == 401 and "ahead of" in ahead.get_json()["error"]
    assert beat(client, first.get_json()["heartbeat_token"]).status_code == 200  # no new token was issued


def test_a_signature_over_another_body_does_not_verify(app, client):
    register(client)
    body = registration("plant_a")
    headers = signed_headers(body, identity_key("plant_a"))
    moved = post(client, {**body, "factory_hostname": "127.0.0.66"}, headers)  # the address changed in transit
    assert moved.status_code == 401 and plant_row(app)["hostname"] == "localhost"


@pytest.mark.parametrize("headers,message", [
    ({"X-FactoryFL-Signature": "00" * 64}, "both"),
    ({"X-FactoryFL-Signature": "zz", "X-FactoryFL-Timestamp": "now"}, "Unix time"),
    ({"X-FactoryFL-Signature": "zz", "X-FactoryFL-Timestamp": "nan"}, "Unix time"),
    ({"X-FactoryFL-Signature": "abc", "X-FactoryFL-Timestamp": "NOW"}, "malformed"),
])
def test_malformed_signature_headers_are_401_naming_the_problem(client, headers, message):
    # "NOW" is replaced when the test runs: a time taken at collection is minutes old in a long suite
    headers = {k: str(time.time()) if v == "NOW" else v for k, v in headers.items()}
    resp = post(client, registration("plant_a"), {"Authorization": f"Bearer {ENROLL}", **headers})
    assert resp.status_code == 401 and message in resp.get_json()["error"]


@pytest.mark.parametrize("value", [None, "ab" * 31, "zz" * 32, 12])
def test_a_registration_without_a_well_formed_identity_key_is_400_naming_it(client, value):
    body = registration("plant_a", identity_public_key=value)
    resp = post(client, body, {"Authorization": f"Bearer {ENROLL}"})
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == "identity_public_key"


def test_the_first_registration_binds_the_name_and_the_same_key_signed_re_registers(app, client):
    assert register(client).status_code == 201
    assert plant_row(app)["identity"] == public_key_hex(identity_key("plant_a"))
    again = register(client, factory_port=8090)  # a restarted agent: same state folder, same key
    assert again.status_code == 200 and plant_row(app)["port"] == 8090
    listed = client.get("/factories", headers=API).get_json()[0]
    assert listed["identity_key_fingerprint"] == fingerprint(public_key_hex(identity_key("plant_a")))
    assert {"factory.identity_bound", "factory.re_registered"} <= set(audit_actions(app))


def test_open_enrolment_admits_new_names_only(app, client):
    app.config["FACTORY_ENROLLMENT_TOKEN"] = ""
    assert register(client, token=None).status_code == 201
    resp = register(client, key=IMPOSTOR, token=None, factory_hostname="127.0.0.66")
    assert resp.status_code == 409 and plant_row(app)["hostname"] == "localhost"


# --- proofs: the signature, or the current heartbeat token -------------------------------------------------
def test_the_current_heartbeat_token_proves_the_plant_without_a_signature(app, client):
    app.config["DASHBOARD_REQUIRE_TLS"] = False  # with TLS every registration asks for a certificate: signed
    token = register(client).get_json()["heartbeat_token"]
    body = registration("plant_a", certificate_request=None)  # as registered: no new address, login or certificate
    resp = post(client, body, {"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and plant_row(app)["port"] == 8081
    old_token_again = post(client, body, {"Authorization": f"Bearer {token}"})  # replaced by the answer above
    assert old_token_again.status_code == 401  # not a heartbeat token any more, not an enrolment token either
    fresh = resp.get_json()["heartbeat_token"]
    impostor = registration("plant_a", identity_public_key=public_key_hex(IMPOSTOR))
    assert post(client, impostor, {"Authorization": f"Bearer {fresh}"}).status_code == 409  # not for a new key


def test_a_new_secagg_key_needs_the_signature_not_only_the_heartbeat_token(app, client):
    token = register(client).get_json()["heartbeat_token"]
    body = registration("plant_a", secagg_public_key="cd" * 32)
    resp = post(client, body, {"Authorization": f"Bearer {token}"})
    assert resp.status_code == 409 and plant_row(app)["secagg"] == "ab" * 32
    signed = register(client, secagg_public_key="cd" * 32)
    assert signed.status_code == 200 and plant_row(app)["secagg"] == "cd" * 32
    assert "factory.secagg_key_changed" in audit_actions(app)
    assert rekeys(app) == []  # the signed registration answered the request the heartbeat token left


def test_a_proven_plant_needs_no_valid_enrolment_token(app, client):
    """A plant enrolled with a one-time token keeps it in its configuration: after a restart its spent token
    is no credential, its signature is."""
    register(client)
    assert register(client, token="spent-or-wrong").status_code == 200
    assert register(client, key=IMPOSTOR, token="spent-or-wrong").status_code == 401  # no proof: token checked


# --- one-time enrolment tokens ------------------------------------------------------------------------------
def test_a_one_time_token_admits_its_name_once_and_is_kept_as_a_digest(app, client):
    token = enrolment_token(client, "plant_b")
    with app.app_context():
        row = db.session.scalar(db.select(EnrolmentToken))
        assert row.token_hash != token and token not in str(row.to_dict())
    assert register(client, "plant_b", token=token).status_code == 201
    again = register(client, "plant_b", key=identity_key("plant_b", 1), token=token)
    assert again.status_code == 401 and "already used" in again.get_json()["error"]
    with app.app_context():
        assert db.session.scalar(db.select(EnrolmentToken)).used_at is not None


def test_a_one_time_token_for_one_name_is_401_for_another(app, client):
    token = enrolment_token(client, "plant_b")
    resp = register(client, "plant_c", token=token)
    assert resp.status_code == 401 and "'plant_b', not 'plant_c'" in resp.get_json()["error"]
    assert register(client, "plant_b", token=token).status_code == 201  # not spent by the refusal


def test_an_expired_one_time_token_is_401(app, client):
    token = enrolment_token(client, "plant_b", hours=1)
    with app.app_context():
        row = db.session.scalar(db.select(EnrolmentToken))
        row.expires_at = row.created_at.replace(year=2000)
        db.session.commit()
    resp = register(client, "plant_b", token=token)
    assert resp.status_code == 401 and "expired" in resp.get_json()["error"]


def test_a_one_time_token_does_not_rekey_a_known_plant(app, client):
    register(client)
    token = enrolment_token(client, "plant_a")
    resp = register(client, key=IMPOSTOR, token=token)
    assert resp.status_code == 409 and plant_row(app)["identity"] == public_key_hex(identity_key("plant_a"))


@pytest.mark.parametrize("body,field", [
    ({"factory_name": "bad name; drop"}, "factory_name"),
    ({"factory_name": "plant_b", "expires_in_hours": 0}, "expires_in_hours"),
    ({"factory_name": "plant_b", "expires_in_hours": 10_000}, "expires_in_hours"),
    ({"factory_name": "plant_b", "expires_in_hours": "soon"}, "expires_in_hours"),
    ({}, "factory_name"),
])
def test_bad_enrolment_token_requests_are_400_naming_the_field(client, body, field):
    resp = client.post("/api/enrolment-tokens", json=body, headers=API)
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == field


def test_enrolment_tokens_need_an_admin(app, client):
    assert client.post("/api/enrolment-tokens", json={"factory_name": "plant_b"}).status_code == 401
    runner = app.test_cli_runner()
    with app.app_context():
        created = runner.invoke(args=["operators", "create", "operator@factoryfl.org", "--role", "operator"],
                                input="a long password\na long password\n")
        assert created.exit_code == 0, created.output
        token = runner.invoke(args=["create-token", "operator@factoryfl.org"]).stdout.strip()
    resp = client.post("/api/enrolment-tokens", json={"factory_name": "plant_b"},
                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403


def test_the_cli_makes_a_one_time_token(app, client):
    result = app.test_cli_runner().invoke(args=["factories", "enrol", "plant_b", "--expires-hours", "2"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert "valid until" in result.stderr
    assert register(client, "plant_b", token=token).status_code == 201
    assert register(client, "plant_b", key=identity_key("plant_b", 1), token=token).status_code == 401


# --- re-keying with an operator's approval ------------------------------------------------------------------
def test_an_approved_rekey_lets_the_next_signed_registration_in(app, client):
    register(client)
    assert register(client, key=IMPOSTOR, factory_port=9001).status_code == 409  # the plant lost its state folder
    runner = app.test_cli_runner()
    result = runner.invoke(args=["factories", "approve-rekey", "plant_a"])
    assert result.exit_code == 0 and fingerprint(public_key_hex(IMPOSTOR)) in result.output
    unsigned = registration("plant_a", identity_public_key=public_key_hex(IMPOSTOR))
    assert post(client, unsigned, {"Authorization": f"Bearer {ENROLL}"}).status_code == 409  # proof still needed
    resp = register(client, key=IMPOSTOR, factory_port=9001)
    assert resp.status_code == 200 and plant_row(app)["identity"] == public_key_hex(IMPOSTOR)
    assert plant_row(app)["port"] == 9001 and rekeys(app) == []
    assert {"factory.rekey_approved", "factory.rekeyed"} <= set(audit_actions(app))
    assert register(client).status_code == 409  # the old key is now the stranger
    assert runner.invoke(args=["factories", "approve-rekey", "nobody"]).exit_code != 0


def test_the_cli_asks_which_request_when_several_wait(app, client):
    register(client)
    register(client, key=IMPOSTOR)
    register(client, key=identity_key("plant_a", 2))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["factories", "approve-rekey", "plant_a"])
    assert result.exit_code != 0 and "--id" in result.output
    wanted = [r for r in rekeys(app) if r.identity_public_key == public_key_hex(IMPOSTOR)][0]
    assert runner.invoke(args=["factories", "approve-rekey", "plant_a", "--id", str(wanted.id)]).exit_code == 0
    assert register(client, key=identity_key("plant_a", 2)).status_code == 409  # not the approved one
    assert register(client, key=IMPOSTOR).status_code == 200


def test_the_plant_page_lists_waiting_rekeys_and_an_admin_approves_one(app, client):
    register(client)
    register(client, key=IMPOSTOR, factory_hostname="127.0.0.66")
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/factories/plant_a").get_data(as_text=True)
    assert 'id="pending-rekeys"' in page and "127.0.0.66" in page and fingerprint(public_key_hex(IMPOSTOR)) in page
    assert fingerprint(public_key_hex(identity_key("plant_a"))) in page  # the bound key, to compare
    (pending,) = rekeys(app)
    resp = client.post(f"/factories/plant_a/rekeys/{pending.id}/approve")
    assert resp.status_code == 302
    assert rekeys(app)[0].approved_by == ADMIN[0]
    assert "factory.rekey_approved" in audit_actions(app)
    assert "waits for the plant" in client.get("/factories/plant_a").get_data(as_text=True)
    assert client.post(f"/factories/plant_a/rekeys/{pending.id}/approve").status_code == 302  # already: flash
    assert register(client, key=IMPOSTOR, factory_hostname="127.0.0.66").status_code == 200


def test_an_admin_discards_an_attempt(app, client):
    register(client)
    register(client, key=IMPOSTOR)
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    (pending,) = rekeys(app)
    client.post(f"/factories/plant_a/rekeys/{pending.id}/discard")
    assert rekeys(app) == [] and "factory.rekey_discarded" in audit_actions(app)


def test_the_enrolment_page_shows_a_new_token_once(app, client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    resp = client.post("/enrolment-tokens", data={"factory_name": "plant_b", "expires_in_hours": "6"})
    assert resp.status_code == 302
    page = client.get("/enrolment-tokens").get_data(as_text=True)
    token = page.split('id="new-enrolment-token">')[1].split("<")[0]
    assert register(client, "plant_b", token=token).status_code == 201
    again = client.get("/enrolment-tokens").get_data(as_text=True)
    assert token not in again and "used" in again
    bad = client.post("/enrolment-tokens", data={"factory_name": "bad name;", "expires_in_hours": "6"})
    assert bad.status_code == 400 and "letters, digits" in bad.get_data(as_text=True)


def test_a_flood_of_attempts_keeps_at_most_ten_waiting_and_never_drops_an_approved_one(app, client):
    register(client)
    register(client, key=IMPOSTOR)
    app.test_cli_runner().invoke(args=["factories", "approve-rekey", "plant_a"])
    for generation in range(2, 15):
        assert register(client, key=identity_key("plant_a", generation)).status_code == 409
    rows = rekeys(app)
    assert len([r for r in rows if r.approved_at is None]) == 10
    assert [r.identity_public_key for r in rows if r.approved_at] == [public_key_hex(IMPOSTOR)]


def test_a_plant_from_before_identity_keys_needs_an_approval_once(app, client):
    register(client)
    with app.app_context():  # as the migration leaves a plant registered by an older release
        db.session.execute(db.update(Factory).values(identity_public_key=None))
        db.session.commit()
    resp = register(client)
    assert resp.status_code == 409 and "before identity keys" in resp.get_json()["error"]
    assert app.test_cli_runner().invoke(args=["factories", "approve-rekey", "plant_a"]).exit_code == 0
    assert register(client).status_code == 200
    assert plant_row(app)["identity"] == public_key_hex(identity_key("plant_a"))



@pytest.mark.parametrize("change", [{"factory_port": 8095}, {"factory_hostname": "127.0.0.66"},
                                    {"orchestrator": {"email": "atk@evil.org", "password": "x" * 12}}, {}])
def test_an_overheard_heartbeat_token_moves_no_plant_and_gets_no_certificate(app, client, change):
    """A heartbeat token travels with every heartbeat: alone it re-admits the plant only as it was."""
    token = register(client).get_json()["heartbeat_token"]
    before = plant_row(app)
    body = registration("plant_a", **change)  # {}: the same address, but asking for a certificate
    resp = post(client, body, {"Authorization": f"Bearer {token}"})
    assert resp.status_code == 409 and "signature" in resp.get_json()["error"] + str(resp.get_json()["detail"])
    assert plant_row(app) == before


def test_a_name_with_an_outstanding_one_time_token_is_reserved_for_it(app, client):
    from dashboard.registry.enrolment import issue_enrolment_token
    from dashboard.extensions import db

    with app.app_context():
        _, one_time = issue_enrolment_token("plant_x", 24, "tests")
        db.session.commit()
    assert register(client, name="plant_x").status_code == 401  # the shared token may not take it first
    assert register(client, name="plant_x", token=one_time).status_code == 201
