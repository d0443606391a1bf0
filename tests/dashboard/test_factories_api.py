import time

import pytest
from sqlalchemy import text

from dashboard.extensions import db
from dashboard.orchestration.liveness import mark_offline
from tests.dashboard.conftest import ENROLL, TOKEN, register, registration

OPERATOR = {"Authorization": f"Bearer {TOKEN}"}  # GET /factories is the operators' view


def beat(client, token, name="plant_a", **overrides):
    body = {"factory_name": name, "timestamp": "2026-01-01T00:00:00Z", "status": "online",
            "current_load": {"cpu_usage": 12.5, "memory_usage": 40.0, "disk_usage": 70.0}, "active_experiments": []}
    body.update(overrides)
    return client.post("/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"})


def test_registration_then_heartbeat_changes_what_factories_shows(client):
    resp = register(client)
    assert resp.status_code == 201
    answer = resp.get_json()
    assert set(answer) == {"factory_id", "heartbeat_token", "heartbeat_interval", "certificate_chain"}
    assert beat(client, answer["heartbeat_token"], current_load={"cpu_usage": 55.0, "memory_usage": 1.0,
                                                                "disk_usage": 2.0}).status_code == 200
    listed = client.get("/factories", headers=OPERATOR).get_json()
    assert [f["factory_name"] for f in listed] == ["plant_a"]
    plant = listed[0]
    assert plant["status"] == "online" and plant["device"] == "cpu" and plant["factory_port"] == 8081
    assert plant["current_load"]["cpu_usage"] == 55.0
    assert plant["last_heartbeat"] is not None


def test_re_registration_answers_200_and_replaces_the_heartbeat_token(client):
    first = register(client).get_json()
    second = register(client)
    assert second.status_code == 200
    assert second.get_json()["factory_id"] == first["factory_id"]
    assert beat(client, first["heartbeat_token"]).status_code == 401
    assert beat(client, second.get_json()["heartbeat_token"]).status_code == 200


def test_wrong_tokens_get_401_and_unknown_factory_404(client):
    assert client.post("/register_factory", json=registration(),
                       headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/register_factory", json=registration()).status_code == 401
    token = register(client).get_json()["heartbeat_token"]
    register(client, "plant_b")
    assert beat(client, "forged").status_code == 401
    assert beat(client, token, name="plant_b").status_code == 401  # no heartbeating as another factory
    resp = beat(client, token, name="ghost")
    assert resp.status_code == 404 and "register" in resp.get_json()["error"]


@pytest.mark.parametrize("mutate,field", [
    (lambda b: b.pop("factory_name"), "factory_name"),
    (lambda b: b.update(factory_port="8081"), "factory_port"),
    (lambda b: b.update(factory_port=70000), "factory_port"),
    (lambda b: b.update(orchestrator="x"), "orchestrator"),
    (lambda b: b["orchestrator"].pop("password"), "password"),
    (lambda b: b.update(factory_name="bad name; drop"), "factory_name"),
])
def test_bad_registration_bodies_are_400_naming_the_field(client, mutate, field):
    body = registration()
    mutate(body)
    resp = client.post("/register_factory", json=body, headers={"Authorization": f"Bearer {ENROLL}"})
    assert resp.status_code == 400
    assert resp.get_json()["detail"]["field"] == field


def test_malformed_json_wrong_type_and_huge_bodies_are_4xx_json(client):
    headers = {"Authorization": f"Bearer {ENROLL}", "Content-Type": "application/json"}
    assert client.post("/register_factory", data="{not json", headers=headers).status_code == 400
    assert client.post("/register_factory", data="[1, 2]", headers=headers).status_code == 400
    resp = client.post("/register_factory", data="x", headers={"Authorization": f"Bearer {ENROLL}",
                                                              "Content-Type": "text/plain"})
    assert resp.status_code == 400 and "application/json" in resp.get_json()["error"]
    huge = client.post("/register_factory", data="x" * (2 * 1024 * 1024), headers=headers)
    assert huge.status_code == 413 and huge.is_json
    assert client.get("/register_factory").status_code == 405
    token = register(client).get_json()["heartbeat_token"]
    resp = beat(client, token, current_load={"cpu_usage": "lots"})
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == "current_load.cpu_usage"


def test_an_agent_version_the_dashboard_cannot_drive_gets_409(client):
    resp = register(client, agent_version="7.0.0")
    assert resp.status_code == 409 and "7.0.0" in resp.get_json()["error"]
    # a 0.3 agent sends 100-bin histograms that this dashboard's replies refuse: told at registration, not mid-round
    resp = register(client, agent_version="0.3.0")
    assert resp.status_code == 409 and "supports 0.4.x" in resp.get_json()["error"]
    assert register(client, agent_version="0.4.7").status_code in (200, 201)


def test_orchestrator_password_is_stored_encrypted(app, client):
    register(client)
    with app.app_context():
        row = db.session.execute(text("select orchestrator_password_enc from factories")).scalar_one()
    assert "s3cret-orchestrator" not in row and row.startswith("gAAAA")  # Fernet token


def test_offline_after_three_missed_intervals_and_back_on_heartbeat(app, client):
    token = register(client).get_json()["heartbeat_token"]
    with app.app_context():
        assert mark_offline() == []
        time.sleep(3.2)  # the test app's interval is 1 s
        assert mark_offline() == ["plant_a"]
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["status"] == "offline"
    beat(client, token)
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["status"] == "online"


def test_a_stopping_heartbeat_turns_the_plant_offline_at_once(client):
    token = register(client).get_json()["heartbeat_token"]
    assert beat(client, token, status="stopping").status_code == 200
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["status"] == "offline"


def pending(i=0, **overrides):
    entry = {"id": f"{i:032x}", "requester": "orchestrator@factoryfl.org", "function": "dict",
             "submitted_at": "2026-01-01T00:00:00+00:00",
             "reason": "declared function name 'dict' is not 'fl_step'"}
    entry.update(overrides)
    return entry


def test_pending_code_requests_from_heartbeats_are_listed_bounded_and_truncated(client):
    token = register(client).get_json()["heartbeat_token"]
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["pending_code_requests"] is None  # not reported yet
    reported = [pending(i, reason="r" * 1000, extra="dropped") for i in range(500)]
    assert beat(client, token, pending_code_requests=reported).status_code == 200
    listed = client.get("/factories", headers=OPERATOR).get_json()[0]["pending_code_requests"]
    assert len(listed) == 20 and listed[0]["id"] == f"{0:032x}"
    assert set(listed[0]) == {"id", "requester", "function", "submitted_at", "reason"}
    assert len(listed[0]["reason"]) == 300
    assert beat(client, token).status_code == 200  # a heartbeat without the field keeps what was reported
    assert len(client.get("/factories", headers=OPERATOR).get_json()[0]["pending_code_requests"]) == 20
    assert beat(client, token, pending_code_requests=[]).status_code == 200  # the data owner decided them
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["pending_code_requests"] == []


def test_a_new_registration_forgets_the_previous_agents_pending_requests(client):
    token = register(client).get_json()["heartbeat_token"]
    beat(client, token, pending_code_requests=[pending()])
    register(client)
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["pending_code_requests"] is None


@pytest.mark.parametrize("value,field", [
    ("dict(features)", "pending_code_requests"),
    ({"id": "x"}, "pending_code_requests"),
    ([pending(), "not an object"], "pending_code_requests[1]"),
    ([pending(reason=["a", "list"])], "pending_code_requests[0].reason"),
    ([pending(id=12345)], "pending_code_requests[0].id"),
    ([pending(requester={"nested": {"deep": 1}})], "pending_code_requests[0].requester"),
])
def test_hostile_pending_code_requests_are_400_naming_the_field(client, value, field):
    token = register(client).get_json()["heartbeat_token"]
    resp = beat(client, token, pending_code_requests=value)
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == field


def test_the_plants_policy_from_its_registration_is_stored_and_listed(client):
    policy = {"require_secure_aggregation": True, "min_plants": 3, "lifetime_epsilon": 8.0, "note": None,
              "dp_mechanism": "gaussian"}
    assert register(client, policy=policy).status_code == 201
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["policy"] == policy
    assert register(client).status_code == 200  # an agent that reports no policy
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["policy"] is None


@pytest.mark.parametrize("policy,field", [
    ("strict", "policy"),
    ([1, 2], "policy"),
    ({f"setting_{i}": i for i in range(31)}, "policy"),
    ({"x" * 65: 1}, "policy"),
    ({"nested": {"a": 1}}, "policy.nested"),
    ({"listed": [1, 2]}, "policy.listed"),
    ({"note": "n" * 201}, "policy.note"),
])
def test_a_policy_that_is_not_a_flat_object_of_at_most_30_scalars_is_400(client, policy, field):
    resp = register(client, policy=policy)
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == field


def test_a_policy_with_a_non_finite_number_is_400(client):
    import json

    body = json.dumps(registration(policy={"epsilon": 1.0})).replace("1.0", "NaN")
    resp = client.post("/register_factory", data=body, headers={"Authorization": f"Bearer {ENROLL}",
                                                                "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == "policy.epsilon"


def test_a_credentials_key_that_is_not_a_fernet_key_stops_the_app_at_start(tmp_path, monkeypatch):
    from dashboard import create_app
    from shared.errors import ConfigurationError

    monkeypatch.setenv("CREDENTIALS_KEY", "not-a-key")
    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="CREDENTIALS_KEY is not a Fernet key"):
        create_app()


def test_a_read_only_database_is_a_clear_503_and_nothing_is_half_written(app, client, tmp_path):
    """The same SQLite file opened read-only (as after a disk turned read-only): registration fails with 503
    naming the cause, and the database still holds exactly what it held."""
    import sqlite3

    from dashboard import create_app
    from tests.dashboard.conftest import ENROLL, register

    assert register(client, "plant_a").status_code == 201
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    before = sqlite3.connect(path).execute("select count(*) from factories").fetchone()[0]
    readonly = create_app({"TESTING": True, "FACTORY_ENROLLMENT_TOKEN": ENROLL, "ALLOW_PRIVATE_PLANTS": True,
                           "SQLALCHEMY_DATABASE_URI": f"sqlite:///file:{path}?mode=ro&uri=true"})
    resp = register(readonly.test_client(), "plant_b")
    assert resp.status_code == 503 and resp.is_json
    assert "readonly" in resp.get_json()["error"]
    assert sqlite3.connect(path).execute("select count(*) from factories").fetchone()[0] == before
    assert sqlite3.connect(path).execute("pragma integrity_check").fetchone()[0] == "ok"


def test_an_unwritable_instance_folder_is_a_configuration_error(tmp_path, monkeypatch):
    import pytest

    from dashboard.config import Config
    from shared.errors import ConfigurationError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="instance folder"):
        Config(str(blocker / "instance"))


def test_a_full_disk_is_a_clear_503_and_every_accepted_heartbeat_is_kept(app, client):
    """SQLite's max_page_count caps the file at its current size: the next write fails with SQLITE_FULL, the
    same error as a full disk. Heartbeats then get 503 naming the cause; every heartbeat answered 200 is in
    the database, and the file passes an integrity check."""
    import sqlite3

    from sqlalchemy import event

    from dashboard.extensions import db
    from tests.dashboard.conftest import register

    app.config["HEARTBEAT_DURABLE"] = True  # a 200 means stored (buffered: tests/dashboard/test_heartbeat_buffer.py)
    token = register(client, "plant_a").get_json()["heartbeat_token"]
    with app.app_context():
        engine = db.engine
        pages = db.session.execute(text("pragma page_count")).scalar_one()

        @event.listens_for(engine, "connect")
        def cap(dbapi_connection, _):
            dbapi_connection.execute(f"pragma max_page_count = {pages + 2}")

        db.session.remove()
        engine.dispose()
    codes = []
    for _ in range(3000):
        resp = client.post("/heartbeat", json={"factory_name": "plant_a", "status": "online"},
                           headers={"Authorization": f"Bearer {token}"})
        codes.append(resp.status_code)
        if resp.status_code != 200:
            break
    assert codes[-1] == 503 and "full" in resp.get_json()["error"], resp.get_json()
    assert codes.count(200) >= 1
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    check = sqlite3.connect(path)
    assert check.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert check.execute("select count(*) from heartbeats").fetchone()[0] == codes.count(200)
