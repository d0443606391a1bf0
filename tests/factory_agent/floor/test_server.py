"""The loopback scoring endpoint for plant systems (SCADA/MES adapters) and the agent's /metrics."""

import http.client
import json

import pytest

from factory_agent.floor.server import ScoringServer
from shared.data.simulator import simulate
from tests.factory_agent.floor.conftest import install, make_bundle


@pytest.fixture()
def server(scorer):
    s = ScoringServer(0, scorer, max_bytes=64 * 1024, max_rows=500).start()
    yield s
    s.stop()


def call(server, method, path, body=b"", content_type="text/csv", host=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Content-Type": content_type}
    if host:
        headers["Host"] = host
    connection.request(method, path, body=body, headers=headers)
    resp = connection.getresponse()
    data = resp.read()
    connection.close()
    return resp.status, data


def test_the_endpoint_listens_on_loopback_only(server):
    assert server.httpd.server_address[0] == "127.0.0.1"


def test_csv_and_json_rows_are_scored_stored_and_counted_in_metrics(server, scorer, delivery):
    install(delivery, make_bundle(threshold=0.0), model_id=5)
    rows = simulate("default", 40, seed=2, machines=2)
    status, body = call(server, "POST", "/score", rows.to_csv(index=False).encode())
    answer = json.loads(body)
    assert status == 200 and answer["model"]["id"] == 5 and len(answer["scores"]) == 40
    assert set(answer["scores"][0]) == {"row", "machine_id", "cycle", "probability", "prediction"}
    assert sorted(answer["alerts_opened"]) == sorted(rows["machine_id"].unique())
    status, body = call(server, "POST", "/score", json.dumps({"rows": rows.head(3).to_dict("records")}).encode(),
                        "application/json")
    assert status == 200 and [s["row"] for s in json.loads(body)["scores"]] == [0, 1, 2]
    status, metrics = call(server, "GET", "/metrics")
    text = metrics.decode()
    assert status == 200 and "factoryfl_floor_scored_rows 43.0" in text and "factoryfl_floor_alerts_open 2.0" in text
    assert 'factoryfl_floor_rows_scored_total{source="api"} 43.0' in text and 'id="5"' in text


def test_bad_requests_get_a_clear_status_and_nothing_is_scored(server, scorer, delivery):
    status, body = call(server, "POST", "/score", b"a,b\n1,2\n")
    assert status == 503 and "no released model" in json.loads(body)["error"]
    install(delivery, make_bundle())
    assert call(server, "POST", "/score", b"a,b\n1,2\n")[0] == 400  # missing columns, named in the error
    assert call(server, "POST", "/score", b"x=1", "application/x-www-form-urlencoded")[0] == 415
    assert call(server, "POST", "/score", b"x", "text/plain")[0] == 415  # what a cross-site form could send
    assert call(server, "POST", "/score", b"{", "application/json")[0] == 400
    assert call(server, "POST", "/score", b"[1, 2]", "application/json")[0] == 400
    big = simulate("default", 600, seed=1).to_csv(index=False).encode()
    assert call(server, "POST", "/score", big)[0] == 413  # over the byte cap
    many = json.dumps([{"a": 1}] * 501).encode()
    assert call(server, "POST", "/score", many, "application/json")[0] == 413  # over the row cap
    assert call(server, "POST", "/score", b"a\n1\n", host="evil.example:80")[0] == 403  # DNS rebinding
    assert call(server, "GET", "/metrics", host="attacker.test")[0] == 403
    assert scorer.store.counts()[0] == 0


def test_attack_json_rows_of_distinct_keys_never_build_a_rows_by_keys_frame():
    import tracemalloc

    from factory_agent.floor.server import frame_from_body

    rows = [{f"k{i}": 1, "torque_nm": 40.0} for i in range(5_000)]
    body = json.dumps({"rows": rows}).encode()  # about 150 KB: rows x keys would be 25 M cells
    tracemalloc.start()
    try:
        frame = frame_from_body(body, "application/json", 200_000, frozenset({"torque_nm", "type"}))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(frame.columns) == ["torque_nm"] and len(frame) == 5_000
    assert peak < 40 * 1024 * 1024, f"{peak / 2**20:.0f} MiB for a {len(body) / 1024:.0f} KiB body"


def test_attack_json_rows_are_counted_and_their_keys_bounded_before_any_frame(server, scorer, delivery):
    install(delivery, make_bundle())
    wide = json.dumps({"rows": [{f"k{i}": 1 for i in range(2_000)}]}).encode()
    status, body = call(server, "POST", "/score", wide, "application/json")
    assert status == 400 and "2000 keys" in json.loads(body)["error"]
    many = json.dumps({"rows": [{}] * 501}).encode()
    assert call(server, "POST", "/score", many, "application/json")[0] == 413
    nested = json.dumps({"rows": [{"torque_nm": [1.0] * 100}]}).encode()
    assert call(server, "POST", "/score", nested, "application/json")[0] == 400
    assert scorer.store.counts()[0] == 0


def test_the_plants_own_systems_read_each_alert_in_full_by_the_id_its_heartbeat_reported(server, scorer, delivery):
    install(delivery, make_bundle(threshold=0.0), model_id=5)
    rows = simulate("default", 20, seed=2, machines=2)
    call(server, "POST", "/score", rows.to_csv(index=False).encode())
    reported = scorer.heartbeat_fields()["alerts"]
    status, body = call(server, "GET", f"/alerts/{reported[0]['id']}")
    alert = json.loads(body)
    assert status == 200 and alert["machine"] in set(rows["machine_id"]) and alert["model_id"] == 5
    assert alert["peak_probability"] >= alert["opened_probability"]
    status, body = call(server, "GET", "/alerts")
    assert status == 200 and len(json.loads(body)["alerts"]) == 2
    for wanted in ("999", "-1", "x", "1e3", "9" * 40, "%31", "1/2"):
        assert call(server, "GET", f"/alerts/{wanted}")[0] == 404
    assert call(server, "GET", "/alerts/1", host="evil.example")[0] == 403
