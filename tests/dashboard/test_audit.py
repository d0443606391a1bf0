"""The audit log (page and GET /api/audit): filters, paging, readable details, folded logins, hostile filters."""

from datetime import datetime, timedelta

import pytest

from dashboard.extensions import db
from dashboard.models import AuditEvent
from dashboard.services.audit import AuditQuery, detail_lines, fold_logins, readable
from shared.errors import ValidationError
from tests.dashboard.conftest import ADMIN

T0 = datetime(2026, 12, 1, 8, 0, 0)


def login(client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})


def seed(app, events):
    with app.app_context():
        db.session.query(AuditEvent).delete()
        for i, (actor, action, target, detail) in enumerate(events):
            db.session.add(AuditEvent(at=T0 + timedelta(minutes=i), actor=actor, action=action, target=target,
                                      detail=detail))
        db.session.commit()


EVENTS = [("a@x.org", "operator.login", None, {}), ("a@x.org", "operator.login", None, {}),
          ("a@x.org", "experiment.created", "exp one", {"experiment_id": 1}),
          ("factory:plant_a", "factory.registered", "plant_a", {"hostname": "h"}),
          ("scheduler", "privacy.spent", "exp one", {"round": 1, "epsilon": 0.123456789012345}),
          ("b@x.org", "operator.login", None, {}), ("a@x.org", "operator.login", None, {}),
          ("a@x.org", "operator.login", None, {}), ("a@x.org", "operator.login", None, {}),
          ("b%_@x.org", "experiment.cancel", "exp two", {"experiment_id": 2})]


def api_events(client, api, **args):
    resp = client.get("/api/audit", query_string=args, headers=api)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_filters_select_by_who_action_family_plant_experiment_and_time(app, client, api):
    seed(app, EVENTS)
    actions = lambda body: [e["action"] for e in body["events"]]  # noqa: E731
    assert api_events(client, api)["total"] == len(EVENTS)
    assert set(actions(api_events(client, api, actor="b@x"))) == {"operator.login"}
    assert actions(api_events(client, api, action="experiment")) == ["experiment.cancel", "experiment.created"]
    assert actions(api_events(client, api, action="experiment.created")) == ["experiment.created"]
    assert actions(api_events(client, api, plant="plant_a")) == ["factory.registered"]
    with app.app_context():  # the experiment filter: its id in the detail, or its name on experiment events
        from dashboard.models import Experiment
        db.session.add(Experiment(id=1, name="exp one", config={"rounds": 1}, created_by="a@x.org"))
        db.session.commit()
    assert actions(api_events(client, api, experiment="1")) == ["privacy.spent", "experiment.created"]
    window = api_events(client, api, since="2026-12-01T08:02", until="2026-12-01T08:04")
    assert actions(window) == ["factory.registered", "experiment.created"]


def test_paging_is_newest_first_and_counts_pages(app, client, api):
    seed(app, [("a@x.org", "token.created", f"t{i}", {}) for i in range(7)])
    first = api_events(client, api, per_page="3")
    assert first["pages"] == 3 and [e["target"] for e in first["events"]] == ["t6", "t5", "t4"]
    assert [e["target"] for e in api_events(client, api, per_page="3", page="3")["events"]] == ["t0"]
    assert api_events(client, api, per_page="3", page="9")["events"] == []


@pytest.mark.parametrize("args,field", [({"page": "0"}, "page"), ({"page": "-1"}, "page"),
                                        ({"page": "1" * 30}, "page"), ({"per_page": "5000"}, "per_page"),
                                        ({"experiment": "1 OR 1=1"}, "experiment"), ({"since": "yesterday"}, "since"),
                                        ({"since": "2026-12-02", "until": "2026-12-01"}, "until"),
                                        ({"actor": "x" * 500}, "actor")])
def test_hostile_filters_are_400_naming_the_filter(client, api, args, field):
    resp = client.get("/api/audit", query_string=args, headers=api)
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] == field


def test_like_wildcards_in_a_filter_match_literally(app, client, api):
    seed(app, EVENTS)
    assert [e["actor"] for e in api_events(client, api, actor="%_@")["events"]] == ["b%_@x.org"]
    assert api_events(client, api, actor="%")["total"] == 1


def test_the_api_needs_an_operator(client):
    assert client.get("/api/audit").status_code == 401


def test_details_read_as_key_value_with_rounded_numbers():
    assert readable(0.123456789012345) == "0.1235" and readable(True) == "yes" and readable([1, 2.5]) == "1, 2.5"
    assert readable({"a": {"b": 1.0000001}}) == "a: b: 1"
    assert detail_lines({"epsilon_spent": 1.23456, "reason": "x"}) == [("epsilon spent", "1.235"), ("reason", "x")]
    assert readable("y" * 1000).endswith("…") and len(readable("y" * 1000)) == 201


def test_consecutive_logins_of_one_operator_fold_into_one_row(app):
    with app.app_context():
        events = [AuditEvent(at=T0 - timedelta(minutes=i), actor=a, action=act, target=None, detail={})
                  for i, (a, act) in enumerate([("a", "operator.login"), ("a", "operator.login"),
                                                ("a", "operator.login"), ("b", "operator.login"),
                                                ("a", "token.created"), ("a", "operator.login")])]
        rows = fold_logins(events)
    assert [(r.actor, r.action, r.count) for r in rows] == [("a", "operator.login", 3), ("b", "operator.login", 1),
                                                           ("a", "token.created", 1), ("a", "operator.login", 1)]
    assert rows[0].at == T0 and rows[0].first == T0 - timedelta(minutes=2)


def test_the_page_filters_folds_and_shows_details_readably(app, client):
    login(client)
    seed(app, EVENTS)
    page = client.get("/audit").text
    assert "× 3" in page and "× 2" in page and "{}" not in page
    assert "<b>epsilon:</b> 0.1235" in page and "0.123456789" not in page
    assert 'class="stack"' in page and 'data-label="Detail"' in page
    filtered = client.get("/audit", query_string={"action": "privacy"}).text
    assert "privacy.spent" in filtered and "factory.registered</td>" not in filtered
    bad = client.get("/audit", query_string={"since": "<script>"})
    assert bad.status_code == 400 and 'id="audit-problem" data-field="since"' in bad.text
    assert "<script>" not in bad.text


def test_query_from_args_keeps_blank_fields_unset():
    assert AuditQuery.from_args({"actor": " ", "page": ""}) == AuditQuery()
    with pytest.raises(ValidationError):
        AuditQuery.from_args({"per_page": "0"})
