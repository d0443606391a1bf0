"""Each plant's trust mode (issue 24, item 5): stored from its registration, shown as one badge on the factories page
and the plant's page and in GET /factories; the experiment API and the web form refuse, with a 400 naming the
plants and their policy, what plants that do not trust the dashboard would refuse themselves."""

import pytest

from dashboard.extensions import db
from dashboard.models import Experiment
from tests.dashboard.conftest import ADMIN, register

KEY = "0123456789abcdef"
VERIFYING = {"trust_dashboard": False, "federation_key": KEY}
SECURE = {"name": "secure", "secure_aggregation": True, "min_factories": 3, "rounds": 2}


def plants(client, mode=VERIFYING, names=("plant_a", "plant_b", "plant_c"), **overrides):
    for name in names:
        assert register(client, name, **mode, **overrides).status_code in (200, 201)


def create(client, api, **body):
    return client.post("/api/experiments", json={"name": "t", "rounds": 2, **body}, headers=api)


def factories(client, api) -> dict:
    return {f["factory_name"]: f for f in client.get("/factories", headers=api).get_json()}


def test_the_registry_stores_and_lists_each_plants_trust_mode(client, api):
    register(client, "plant_v", **VERIFYING)
    register(client, "plant_t", trust_dashboard=True, federation_key=None)
    register(client, "plant_n", trust_dashboard=False, federation_key=None)
    older = register(client, "plant_o")  # an agent from before the trust mode: neither field
    assert older.status_code == 201
    listed = factories(client, api)
    v = listed["plant_v"]
    assert v["trust_dashboard"] is False and v["federation_key"] == KEY
    assert v["trust"] == {"mode": "verifies", "label": "verifies membership (key 01234567…)",
                          "trust_dashboard": False, "federation_key": KEY, "min_cohort": 3, "verify_models": False}
    assert listed["plant_t"]["trust"]["mode"] == "trusts" and listed["plant_n"]["trust"]["mode"] == "no_key"
    assert listed["plant_o"]["trust"]["mode"] == "trusts"  # conftest's plants trust the dashboard by default


def test_an_agent_that_does_not_report_its_mode_is_unknown_and_a_re_registration_replaces_the_mode(client, api):
    from tests.dashboard.conftest import identity_key, registration, signed_headers

    body = {k: v for k, v in registration("plant_o").items() if k not in ("trust_dashboard", "federation_key")}
    assert client.post("/register_factory", json=body,
                       headers=signed_headers(body, identity_key("plant_o"))).status_code == 201
    assert factories(client, api)["plant_o"]["trust"]["mode"] == "unknown"
    register(client, "plant_o", **VERIFYING)  # restarted with --federation-key
    assert factories(client, api)["plant_o"]["trust"]["mode"] == "verifies"
    register(client, "plant_o", trust_dashboard=True)  # and later with --trust-dashboard
    assert factories(client, api)["plant_o"]["trust"]["mode"] == "trusts"


def test_one_plants_get_carries_its_trust_mode(client, api):
    register(client, "plant_v", **VERIFYING)
    plant = client.get("/api/factories/plant_v", headers=api).get_json()
    assert plant["factory_name"] == "plant_v" and plant["trust"]["mode"] == "verifies"
    assert plant["federation_key"] == KEY and plant["trust_dashboard"] is False
    assert client.get("/api/factories/nope", headers=api).status_code == 404
    assert client.get("/api/factories/..%2Fx", headers=api).status_code in (400, 404)
    assert client.get("/api/factories/plant_v").status_code == 401


def test_the_plants_reported_min_cohort_is_used(client, api):
    register(client, "plant_a", **VERIFYING, policy={"min_cohort": 5, "trust_dashboard": False})
    assert factories(client, api)["plant_a"]["trust"]["min_cohort"] == 5


@pytest.mark.parametrize("change", [{"federation_key": "<b>x</b>" * 2}, {"federation_key": "AB" * 8},
                                    {"trust_dashboard": "true"}])
def test_a_hostile_trust_mode_is_refused_at_registration(client, change):
    resp = register(client, "plant_h", **{**VERIFYING, **change})
    assert resp.status_code == 400 and resp.get_json()["detail"]["field"] in change


def test_the_factories_page_and_the_plants_page_show_one_badge_per_plant(client):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    register(client, "plant_v", **VERIFYING)
    register(client, "plant_t", trust_dashboard=True, federation_key=None)
    register(client, "plant_n", trust_dashboard=False, federation_key=None)
    page = client.get("/").text
    assert page.count('data-trust="') == 3
    assert 'class="badge state-running" data-trust="verifies" title="0123456789abcdef">verifies membership (key ' \
           '01234567…)</span>' in page
    assert 'class="badge state-paused" data-trust="trusts" title="">trusts the dashboard</span>' in page
    assert 'class="badge state-failed" data-trust="no_key" title="">no federation key: refuses secure rounds' in page
    plant = client.get("/factories/plant_v").text
    assert 'id="trust-mode" class="badge state-running" data-trust="verifies">verifies membership (key 01234567…)' \
        in plant and "<code>0123456789abcdef</code>" in plant
    assert 'data-trust="trusts">trusts the dashboard' in client.get("/factories/plant_t").text


def test_a_secure_verifiable_experiment_over_verifying_plants_is_accepted_and_starts(client, api):
    plants(client)
    resp = create(client, api, **SECURE, factories=["plant_a", "plant_b", "plant_c"])
    assert resp.status_code == 201, resp.get_json()
    assert client.post(f"/api/experiments/{resp.get_json()['id']}/start", headers=api).status_code == 200
    assert create(client, api, **SECURE).status_code == 201  # "all": the three online plants


@pytest.mark.parametrize("body,why", [
    ({"rounds": 2}, "may hold 2 plant(s)"),  # the API's defaults: secure (these plants verify), min_factories 2
    ({"rounds": 2, "secure_aggregation": False, "min_factories": 3}, "secure_aggregation is off"),  # as named
    ({"min_factories": 1, "factories": ["plant_a"]}, "secure_aggregation is off"),  # single-plant
    ({"secure_aggregation": True, "min_factories": 2, "factories": ["plant_a", "plant_b"]},
     "may hold 2 plant(s) (min_factories 2, 2 selected), fewer than these plants' min_cohort"),
    ({"secure_aggregation": True, "min_factories": 2}, "may hold 2 plant(s)"),
    ({"robust": {"method": "median"}, "min_factories": 3}, "robust.method median"),
    ({"robust": {"method": "trimmed_mean"}, "min_factories": 3}, "robust.method trimmed_mean"),
    ({"robust": {"method": "krum", "byzantine": 0}, "min_factories": 3}, "robust.method krum"),
    ({**SECURE, "privacy": {"mode": "central", "epsilon": 8.0}}, "privacy.mode central"),
])
def test_what_verifying_plants_refuse_is_a_400_naming_the_plants_and_their_policy(app, client, api, body, why):
    plants(client)
    resp = create(client, api, **body)
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()
    assert error["detail"]["field"] == "factories" and why in error["detail"]["reason"]
    assert "plant_a (verifies membership (key 01234567…), min_cohort 3)" in error["error"]
    assert "--trust-dashboard" in error["error"]
    with app.app_context():  # nothing stored
        assert db.session.scalar(db.select(db.func.count(Experiment.id))) == 0


def test_secure_aggregation_is_on_by_default_over_plants_that_verify_and_exactly_as_named_otherwise(app, client,
                                                                                                      api):
    plants(client)
    made = create(client, api, rounds=2, min_factories=3)  # the API's defaults otherwise
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["config"]["secure_aggregation"] is True
    assert create(client, api, rounds=2, min_factories=3, secure_aggregation=False).status_code == 400
    robust = create(client, api, min_factories=3, robust={"method": "median"})  # needs single updates: stays off
    assert robust.status_code == 400 and "robust.method median" in robust.get_json()["error"]
    plants(client, {"trust_dashboard": True}, names=("plant_t", "plant_u"))
    trusted = create(client, api, factories=["plant_t", "plant_u"])
    assert trusted.status_code == 201 and trusted.get_json()["config"]["secure_aggregation"] is False


def test_plants_that_trust_the_dashboard_are_left_out_of_the_refusal_and_allow_everything(client, api):
    plants(client, names=("plant_a", "plant_b"))
    plants(client, {"trust_dashboard": True}, names=("plant_t",))
    message = create(client, api).get_json()["error"]
    assert "plant_a (verifies" in message and "plant_b (verifies" in message and "plant_t" not in message
    assert create(client, api, factories=["plant_t"], min_factories=1).status_code == 201  # single-plant, trusted
    assert create(client, api, factories=["plant_t"], min_factories=1, robust={"method": "median"}).status_code == 201


def test_a_listed_plant_not_registered_yet_is_refused_and_a_plant_registered_later_is_judged_at_start(client, api):
    plants(client, {"trust_dashboard": True}, names=("plant_t", "later"))
    missing = create(client, api, factories=["plant_t", "nowhere"], min_factories=1)
    assert missing.status_code == 400 and "'nowhere' is not a registered plant" in missing.get_json()["error"]
    resp = create(client, api, factories=["plant_t", "later"], min_factories=1)
    assert resp.status_code == 201  # both trust the dashboard now: the start checks again
    plants(client, VERIFYING, names=("later",))
    message = client.post(f"/api/experiments/{resp.get_json()['id']}/start", headers=api).get_json()["error"]
    assert "later (verifies membership (key 01234567…), min_cohort 3)" in message and "plant_t (" not in message


def test_start_refuses_when_the_plants_mode_changed_since_the_experiment_was_made(app, client, api):
    plants(client, {"trust_dashboard": True})
    eid = create(client, api).get_json()["id"]
    plants(client)  # restarted without --trust-dashboard, with a federation key
    resp = client.post(f"/api/experiments/{eid}/start", headers=api)
    assert resp.status_code == 400 and "secure_aggregation is off" in resp.get_json()["error"]
    with app.app_context():
        assert db.session.get(Experiment, eid).status == "pending"
    resp = client.post("/api/experiments", json={"name": "now", "rounds": 2, "start": True}, headers=api)
    assert resp.status_code == 400


FORM = {"name": "x", "model_type": "cnn", "algorithm": "fedavg", "server_optimizer": "none", "rounds": "2",
        "privacy_mode": "none", "robust_method": "none", "min_factories": "3"}


def test_the_form_shows_the_same_refusal_and_the_start_button_flashes_it(app, client, api):
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    plants(client)
    resp = client.post("/experiments", data={**FORM, "min_factories": "2"})
    assert resp.status_code == 400
    assert "may hold 2 plant(s)" in resp.text and "plant_a (verifies membership (key 01234567…)" in resp.text
    assert client.post("/experiments", data={**FORM, "secure_aggregation": "y"}).status_code == 302
    assert client.post("/experiments", data=FORM).status_code == 302  # the box as prefilled: the plants need it on
    with app.app_context():
        assert db.session.scalars(db.select(Experiment)).all()[-1].config["secure_aggregation"] is True
    plants(client, {"trust_dashboard": True})
    eid = create(client, api).get_json()["id"]
    plants(client)
    page = client.post(f"/experiments/{eid}/start", follow_redirects=True).text
    assert "secure_aggregation is off" in page and "plant_c (verifies membership" in page
