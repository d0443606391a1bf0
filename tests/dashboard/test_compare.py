"""Comparing 2 to 4 experiments side by side (issue 27 item 6): the settings with the differing ones marked and
first, the best round's validation and test F1, the metric curves per round; hostile ids are refused clearly."""

import json
import re

import pytest

from dashboard.services.compare import config_rows, flatten
from tests.dashboard.conftest import ADMIN
from tests.dashboard.test_releases import seed_experiment


def test_the_api_puts_experiments_side_by_side(app, client, api):
    a = seed_experiment(app, client, api, val_f1=(0.4, 0.7), name="short")
    b = seed_experiment(app, client, api, val_f1=(0.5, 0.6, 0.9), name="long")
    c = client.post("/api/experiments", json={"name": "fresh", "rounds": 3, "learning_rate": 0.01},
                    headers=api).get_json()["id"]
    resp = client.get("/api/experiments/compare", query_string={"ids": f"{b},{a},{c}"}, headers=api)
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    assert [e["id"] for e in data["experiments"]] == [b, a, c]  # the order asked
    best = [(e["best_round"], e["best_val_f1"], e["best_test_f1"]) for e in data["experiments"]]
    assert best[0] == (3, 0.9, pytest.approx(0.85)) and best[1] == (2, 0.7, pytest.approx(0.65)) and best[2] == (None, None, None)
    assert data["experiments"][0]["curves"]["val_f1"] == [[0, None], [1, 0.5], [2, 0.6], [3, 0.9]]
    assert data["experiments"][2]["curves"]["test_f1"] == [[0, None]]
    rows = {r["setting"]: r for r in data["config"]}
    assert rows["rounds"]["differs"] and rows["rounds"]["values"] == [3, 2, 3]
    assert rows["learning_rate"]["differs"] and not rows["model_type"]["differs"]
    assert "privacy.mode" in rows and not rows["privacy.mode"]["differs"]  # nested settings, one row each
    differing = [r["differs"] for r in data["config"]]
    assert differing == sorted(differing, reverse=True)  # the differing ones first


@pytest.mark.parametrize("ids,status,message", [
    (None, 400, "choose 2 to 4 experiments"), ("", 400, "choose 2 to 4"), ("1", 400, "not 1"),
    ("1,2,3,4,5", 400, "not 5"), ("a,b", 400, "'a' is not an experiment id"), ("1,,2", 400, "'' is not"),
    ("-1,2", 400, "'-1' is not"), ("1,1", 400, "twice"), ("1,99999999999999999999", 400, "is not an experiment id"),
    ("\u0661,2", 400, "is not an experiment id"), ("1," * 150, 400, "too long"), ("1,4242", 404, "no experiment with id 4242")])
def test_hostile_ids_get_a_clear_error(app, client, api, ids, status, message):
    client.post("/api/experiments", json={"name": "one"}, headers=api)
    resp = client.get("/api/experiments/compare", query_string={} if ids is None else {"ids": ids}, headers=api)
    assert resp.status_code == status and message in resp.get_json()["error"], resp.get_json()


def test_the_list_picks_experiments_and_the_page_highlights_what_differs(app, client, api):
    a = seed_experiment(app, client, api, val_f1=(0.4, 0.7), name="short")
    b = seed_experiment(app, client, api, val_f1=(0.5, 0.6, 0.9), name="long")
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    listing = client.get("/experiments").text
    assert 'id="compare-form"' in listing and f'name="id" value="{a}" form="compare-form"' in listing
    page = client.get("/experiments/compare", query_string=[("id", str(a)), ("id", str(b))])  # the check boxes
    assert page.status_code == 200
    assert '<tr data-setting="rounds" class="differs">' in page.text and '<tr data-setting="model_type">' in page.text
    assert re.search(r'class="best-val-f1" title="round 3">0\.9', page.text)
    curves = json.loads(re.search(r"data-curves='([^']*)'", page.text).group(1).replace("&#34;", '"'))
    assert curves[0]["val_f1"][1:] == [[1, 0.4], [2, 0.7]] and 'src="/static/compare.js"' in page.text
    refused = client.get("/experiments/compare", query_string={"ids": f"{a}"})
    assert refused.status_code == 400 and 'id="compare-error"' in refused.text and "not 1" in refused.text
    assert client.get("/experiments/compare", query_string={"ids": f"{a},4242"}).status_code == 404


def test_config_rows_flatten_nested_settings_and_mark_missing_ones_as_differing():
    assert flatten({"a": 1, "p": {"b": 2, "q": {"c": 3}}}) == {"a": 1, "p.b": 2, "p.q.c": 3}
    rows = config_rows([{"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 2], "c": 0}])
    assert rows == [{"setting": "c", "values": [None, 0], "differs": True},
                    {"setting": "a", "values": [1, 1], "differs": False},
                    {"setting": "b", "values": [[1, 2], [1, 2]], "differs": False}]


def test_the_page_reads_yes_and_no_for_switches(app, client, api):
    ids = [client.post("/api/experiments", json={"name": f"e{n}", "rounds": n}, headers=api).get_json()["id"]
           for n in (1, 2)]
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/experiments/compare", query_string={"ids": ",".join(map(str, ids))}).text
    row = re.search(r'<tr data-setting="secure_aggregation">(.*?)</tr>', page).group(1)
    assert row.count("<td>no</td>") == 2 and "False" not in row
