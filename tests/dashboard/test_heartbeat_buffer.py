"""Heartbeats buffered in the process and written in batches (dashboard.registry.heartbeats, issue #17)."""

import time

import pytest
from sqlalchemy import event, text

from dashboard.registry import heartbeats
from dashboard.extensions import db
from dashboard.registry.heartbeat_store import AcceptedHeartbeat
from dashboard.models.base import utcnow
from dashboard.models.operators import token_digest
from tests.dashboard.conftest import TOKEN, register

OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
SLOW = 60.0  # a flush interval no test waits for: only an explicit flush or close writes


def beat(client, token, name="plant_a", **overrides):
    body = {"factory_name": name, "status": "online", "active_experiments": [],
            "current_load": {"cpu_usage": 10.0, "memory_usage": 20.0, "disk_usage": 30.0}, **overrides}
    return client.post("/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"})


def rows(app) -> int:
    with app.app_context():
        return db.session.execute(text("select count(*) from heartbeats")).scalar_one()


def stored_status(app, name="plant_a") -> tuple:
    with app.app_context():
        return db.session.execute(text("select status, last_heartbeat from factories where name = :n"),
                                  {"n": name}).one()


@pytest.fixture()
def buffered(app):
    app.config["HEARTBEAT_FLUSH_INTERVAL"] = SLOW
    return app


def test_accepted_heartbeats_wait_in_the_buffer_and_one_write_stores_them_all(buffered, client):
    tokens = {name: register(client, name).get_json()["heartbeat_token"] for name in ("plant_a", "plant_b")}
    for i in range(30):
        name = ("plant_a", "plant_b")[i % 2]
        assert beat(client, tokens[name], name, current_load={"cpu_usage": float(i)}).status_code == 200
    assert rows(buffered) == 0
    statements = []

    def record(_conn, _cursor, statement, *_):
        statements.append(statement.split()[0].upper())

    with buffered.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    heartbeats.buffer_of(buffered).flush()
    event.remove(engine, "before_cursor_execute", record)
    assert rows(buffered) == 30
    # one SELECT of the plants' digests, one multi-row INSERT, one UPDATE per plant (executemany: one call)
    assert statements.count("INSERT") == 1 and statements.count("SELECT") == 1
    listed = {f["factory_name"]: f for f in client.get("/factories", headers=OPERATOR).get_json()}
    assert listed["plant_a"]["current_load"]["cpu_usage"] == 28.0 and listed["plant_b"]["current_load"]["cpu_usage"] == 29.0


def test_listing_the_plants_writes_this_processs_buffer_first(buffered, client):
    token = register(client).get_json()["heartbeat_token"]
    beat(client, token, status="busy")
    assert client.get("/factories", headers=OPERATOR).get_json()[0]["status"] == "busy"
    assert rows(buffered) == 1


def test_closing_the_buffer_writes_what_waits(buffered, client):
    token = register(client).get_json()["heartbeat_token"]
    for _ in range(5):
        beat(client, token)
    heartbeats.flush_all(buffered)  # what atexit and gunicorn's worker_exit call
    assert rows(buffered) == 5
    assert beat(client, token).status_code == 503  # a closed buffer takes nothing it could not store


def test_the_writer_stores_within_the_flush_interval(app, client):
    app.config["HEARTBEAT_FLUSH_INTERVAL"] = 0.05
    token = register(client).get_json()["heartbeat_token"]
    for _ in range(3):
        beat(client, token)
    deadline = time.monotonic() + 5
    while rows(app) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rows(app) == 3


def test_a_stopping_heartbeat_turns_the_plant_offline_and_an_older_one_never_overwrites_a_newer_state(buffered,
                                                                                                       client):
    token = register(client).get_json()["heartbeat_token"]
    beat(client, token, status="stopping")
    heartbeats.buffer_of(buffered).flush()
    assert stored_status(buffered)[0] == "offline"
    with buffered.app_context():
        factory_id = db.session.execute(text("select id from factories where name = 'plant_a'")).scalar_one()
    old = AcceptedHeartbeat(factory_id, utcnow(), "busy", None, None, None)
    register(client)  # a registration after that heartbeat came in: online, newer
    buffer = heartbeats.buffer_of(buffered)
    buffer.accept(old)
    buffer.flush()
    assert stored_status(buffered)[0] == "online"
    assert rows(buffered) == 2  # the row is kept all the same


def test_a_new_token_works_at_once_and_the_old_one_is_refused(buffered, client):
    old = register(client).get_json()["heartbeat_token"]
    assert beat(client, old).status_code == 200
    new = register(client).get_json()["heartbeat_token"]  # re-registration in this process
    assert beat(client, old).status_code == 401 and beat(client, new).status_code == 200
    # another process re-registered the plant: this one's cache holds the previous digest
    with buffered.app_context():
        db.session.execute(text("update factories set heartbeat_token_hash = :h"), {"h": token_digest("elsewhere")})
        db.session.commit()
    assert beat(client, "elsewhere").status_code == 200  # looked up again before a 401
    assert beat(client, new).status_code == 401


def test_a_token_changed_elsewhere_fails_here_after_the_next_write(buffered, client):
    token = register(client).get_json()["heartbeat_token"]
    assert beat(client, token).status_code == 200
    with buffered.app_context():
        db.session.execute(text("update factories set heartbeat_token_hash = :h"), {"h": token_digest("elsewhere")})
        db.session.commit()
    heartbeats.buffer_of(buffered).flush()  # re-reads the digests of the plants it wrote
    assert beat(client, token).status_code == 401


def test_unknown_plants_get_404_and_nothing_is_buffered(buffered, client):
    assert beat(client, "whatever", "ghost").status_code == 404
    heartbeats.buffer_of(buffered).flush()
    assert rows(buffered) == 0


def test_a_failing_write_keeps_the_accepted_heartbeats_and_refuses_new_ones_until_it_works(buffered, client,
                                                                                           monkeypatch):
    token = register(client).get_json()["heartbeat_token"]
    for _ in range(4):
        assert beat(client, token).status_code == 200
    real = heartbeats.write_batch

    def full_disk(beats):
        raise RuntimeError("database or disk is full")

    monkeypatch.setattr(heartbeats, "write_batch", full_disk)
    buffer = heartbeats.buffer_of(buffered)
    buffer.flush()
    refused = beat(client, token)
    assert refused.status_code == 503 and "full" in refused.get_json()["error"]
    monkeypatch.setattr(heartbeats, "write_batch", real)
    buffer.flush()
    assert rows(buffered) == 4 and beat(client, token).status_code == 200


def test_durable_mode_answers_once_the_row_is_stored(app, client):
    app.config["HEARTBEAT_DURABLE"] = True
    app.config["HEARTBEAT_FLUSH_INTERVAL"] = SLOW
    token = register(client).get_json()["heartbeat_token"]
    for i in range(3):
        assert beat(client, token).status_code == 200
        assert rows(app) == i + 1
