"""Every route's authentication, from one table: a route added without an entry here fails the test."""

import re

import pytest

# (method, rule) -> (what an anonymous caller gets, the least role that may use it)
# anonymous: "public", "401" (JSON API) or "login" (redirect to /login); role: None (no operator: public or
# an agent's token), "viewer" (read), "operator" (run experiments, check plants), "admin" (plants, tokens, users)
EXPECTED = {
    ("GET", "/static/<path:filename>"): ("public", None),
    ("POST", "/register_factory"): ("401", None),
    ("POST", "/heartbeat"): ("401", None),
    ("GET", "/factories"): ("401", "viewer"),  # DESIGN §4: the operators' view of the registry
    ("GET", "/api/factories/<name>"): ("401", "viewer"),  # one plant of it
    ("POST", "/api/experiments"): ("401", "operator"),
    ("POST", "/api/experiments/preflight"): ("401", "operator"),  # issue 27: what the chosen plants will refuse
    ("GET", "/api/experiments"): ("401", "viewer"),
    ("GET", "/api/experiments/<int:experiment_id>"): ("401", "viewer"),
    ("POST", "/api/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>"): ("401", "operator"),
    ("GET", "/api/experiments/<int:experiment_id>/model"): ("401", "viewer"),
    ("GET", "/api/openapi.json"): ("public", None),
    ("GET", "/login"): ("public", None),
    ("POST", "/login"): ("public", None),
    ("POST", "/logout"): ("login", "viewer"),
    ("GET", "/"): ("login", "viewer"),
    ("GET", "/factories/<name>"): ("login", "viewer"),
    ("POST", "/factories/<name>/check"): ("login", "operator"),
    ("GET", "/tokens"): ("login", "viewer"),  # one's own API tokens (admins: everyone's)
    ("POST", "/tokens"): ("login", "viewer"),
    ("POST", "/tokens/<int:token_id>/revoke"): ("login", "viewer"),
    ("GET", "/experiments"): ("login", "viewer"),
    ("POST", "/experiments"): ("login", "operator"),
    ("GET", "/experiments/<int:experiment_id>"): ("login", "viewer"),
    ("POST", "/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>"): ("login", "operator"),
    ("GET", "/audit"): ("login", "viewer"),
    ("GET", "/operators"): ("login", "admin"),
    ("POST", "/operators/<int:operator_id>/role"): ("login", "admin"),
    ("POST", "/api/enrolment-tokens"): ("401", "admin"),  # plant identity (dashboard.registry.identity)
    ("GET", "/enrolment-tokens"): ("login", "admin"),
    ("POST", "/enrolment-tokens"): ("login", "admin"),
    ("POST", "/factories/<name>/rekeys/<int:rekey_id>/<any(approve, discard):decision>"): ("login", "admin"),
    # the plant floor (DESIGN §10): releases, the registry, the plants' bundle download (heartbeat token), alerts
    ("POST", "/api/experiments/<int:experiment_id>/release"): ("401", "operator"),
    ("GET", "/api/releases"): ("401", "viewer"),
    ("POST", "/api/releases/<int:release_id>/deploy"): ("401", "operator"),  # issue 27 item 1: deployments
    ("GET", "/api/deployments"): ("401", "viewer"),
    ("POST", "/api/deployments/rollback"): ("401", "operator"),
    ("POST", "/api/factories/<name>/model/rollback"): ("401", "operator"),
    ("POST", "/api/factories/<name>/model/pin"): ("401", "operator"),
    ("POST", "/api/factories/<name>/model/unpin"): ("401", "operator"),
    ("GET", "/api/factories/<name>/floor"): ("401", "viewer"),
    ("GET", "/api/factories/<name>/load"): ("401", "viewer"),  # its CPU, memory and disk over a chosen range
    ("GET", "/api/models/<int:release_id>/bundle"): ("401", None),  # a plant's heartbeat token, not an operator's
    ("GET", "/releases"): ("login", "viewer"),
    ("POST", "/experiments/<int:experiment_id>/release"): ("login", "operator"),
    ("POST", "/releases/<int:release_id>/deploy"): ("login", "operator"),
    ("POST", "/deployments/rollback"): ("login", "operator"),
    ("POST", "/factories/<name>/model/rollback"): ("login", "operator"),
    ("POST", "/factories/<name>/model/pin"): ("login", "operator"),
    ("POST", "/factories/<name>/model/unpin"): ("login", "operator"),
    ("GET", "/alerts"): ("login", "viewer"),
    # issue 27: the metrics export, the audit log as JSON, the API docs, the favicon, one's own password
    ("GET", "/api/experiments/<int:experiment_id>/metrics.csv"): ("401", "viewer"),
    ("GET", "/api/audit"): ("401", "viewer"),
    ("POST", "/api/experiments/<int:experiment_id>/<any(archive, unarchive):action>"): ("401", "operator"),
    ("POST", "/experiments/<int:experiment_id>/<any(archive, unarchive):action>"): ("login", "operator"),
    ("GET", "/api/docs"): ("public", None),
    ("GET", "/favicon.ico"): ("public", None),
    ("GET", "/password"): ("login", "viewer"),
    ("POST", "/password"): ("login", "viewer"),
    # membership (issue 24): the administrator uploads what it signed elsewhere; the signed list is public
    ("POST", "/api/membership/certificates"): ("401", "admin"),
    ("POST", "/api/membership/revocations"): ("401", "admin"),
    ("GET", "/api/membership/revocations"): ("public", None),
    ("GET", "/metrics"): ("public", None),  # loopback or DASHBOARD_METRICS_TOKEN (tests/dashboard/test_monitoring.py)
    # a plant's lifecycle (issue 27 item 6): labels by operators, decommissioning by admins
    ("PATCH", "/api/factories/<name>"): ("401", "operator"),
    ("POST", "/api/factories/<name>/decommission"): ("401", "admin"),
    ("POST", "/factories/<name>/labels"): ("login", "operator"),
    ("POST", "/factories/<name>/decommission"): ("login", "admin"),
    # issue 27 item 6: operators from the pages and the API (admins), deleting and comparing experiments
    ("POST", "/operators"): ("login", "admin"),
    ("POST", "/operators/<int:operator_id>/disable"): ("login", "admin"),
    ("POST", "/operators/<int:operator_id>/enable"): ("login", "admin"),
    ("POST", "/operators/<int:operator_id>/password"): ("login", "admin"),
    ("GET", "/api/operators"): ("401", "admin"),
    ("POST", "/api/operators"): ("401", "admin"),
    ("POST", "/api/operators/<int:operator_id>/role"): ("401", "admin"),
    ("POST", "/api/operators/<int:operator_id>/disable"): ("401", "admin"),
    ("POST", "/api/operators/<int:operator_id>/enable"): ("401", "admin"),
    ("POST", "/api/operators/<int:operator_id>/password"): ("401", "admin"),
    ("DELETE", "/api/experiments/<int:experiment_id>"): ("401", "admin"),
    ("GET", "/api/experiments/compare"): ("401", "viewer"),
    ("GET", "/experiments/<int:experiment_id>/delete"): ("login", "admin"),
    ("POST", "/experiments/<int:experiment_id>/delete"): ("login", "admin"),
    ("GET", "/experiments/compare"): ("login", "viewer"),
}
SAMPLE = {"filename": "experiment.js", "experiment_id": "1", "name": "plant_a", "token_id": "1", "action": "start",
          "operator_id": "1", "rekey_id": "1", "decision": "approve", "release_id": "1"}
ROLES = ("viewer", "operator", "admin")
PASSWORD = "a role-test password"


def concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+(?:\([^)]*\))?:)?([a-z_]+)>", lambda m: SAMPLE[m.group(1)], rule)


def routes(app):
    return {(m, r.rule) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}


def test_every_route_is_in_the_table(app):
    assert routes(app) == set(EXPECTED)


@pytest.mark.parametrize("method,rule", sorted(EXPECTED))
def test_anonymous_callers_get_what_the_table_says(app, method, rule):
    client = app.test_client()  # CSRF checks off here: see the next test
    resp = client.open(concrete(rule), method=method, json={} if method == "POST" else None)
    expected = EXPECTED[(method, rule)][0]
    if expected == "401":
        assert resp.status_code == 401 and resp.is_json, (rule, resp.status_code)
    elif expected == "login":
        assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"], (rule, resp.status_code)
    else:
        assert resp.status_code < 500 and resp.status_code not in (401, 302), (rule, resp.status_code)


@pytest.mark.parametrize("method,rule", sorted(k for k, v in EXPECTED.items() if k[0] == "POST" and v[0] == "login"))
def test_page_forms_refuse_a_post_without_a_csrf_token_even_when_logged_in(app, method, rule):
    from tests.dashboard.conftest import ADMIN

    client = app.test_client()
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})  # CSRF still off for the login
    app.config["WTF_CSRF_ENABLED"] = True
    resp = client.open(concrete(rule), method=method, data={})
    assert resp.status_code == 400, (rule, resp.status_code)


@pytest.mark.parametrize("method,rule", sorted(k for k, v in EXPECTED.items() if v[0] == "401" and "/api/" in k[1]))
def test_a_wrong_or_revoked_bearer_token_is_refused(app, method, rule):
    client = app.test_client()
    resp = client.open(concrete(rule), method=method, json={} if method == "POST" else None,
                       headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401


def test_the_session_cookie_is_http_only_and_same_site(app, client):
    from tests.dashboard.conftest import ADMIN

    resp = client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    cookie = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_and_registration_are_rate_limited_per_client(app):
    from tests.dashboard.conftest import ENROLL, registration

    app.config.update(LOGIN_RATE_LIMIT="3 per minute", REGISTER_RATE_LIMIT="2 per minute")
    client = app.test_client()
    codes = [client.post("/login", data={"email": "x@y.z", "password": "guess"}).status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    assert client.get("/login").status_code == 200  # only attempts are counted
    codes = [client.post("/register_factory", json=registration(), headers={"Authorization": "Bearer wrong"})
             for _ in range(3)]
    assert [c.status_code for c in codes] == [401, 401, 429]
    assert codes[2].is_json and "Too Many Requests" in codes[2].get_json()["error"]
    other = app.test_client()  # another address is not affected
    resp = other.post("/register_factory", json=registration(), headers={"Authorization": f"Bearer {ENROLL}"},
                      environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert resp.status_code == 201


def operators_with_every_role(app) -> dict[str, str]:
    """role -> bearer token of an operator holding that role (logging in: <role>@factoryfl.org / PASSWORD)."""
    from dashboard.lifecycle.bootstrap import ensure_operator
    from dashboard.extensions import db
    from dashboard.models import ApiToken

    tokens = {}
    with app.app_context():
        for role in ROLES:
            operator = ensure_operator(f"{role}@factoryfl.org", PASSWORD, role=role)
            row, tokens[role] = ApiToken.issue(operator, f"{role} token")
            db.session.add(row)
        db.session.commit()
    return tokens


def call(client, method, rule, **kwargs):
    body = {"json": {}} if rule.startswith(("/api/", "/factories")) and method == "POST" else {"data": {}}
    return client.open(concrete(rule), method=method, **(body if method == "POST" else {}), **kwargs)


def refused(resp) -> bool:
    return resp.status_code in (401, 403) or (resp.status_code in (302, 303) and "/login" in resp.headers["Location"])


ROLE_ROUTES = sorted(k for k, v in EXPECTED.items() if v[1] is not None and k != ("POST", "/logout"))


@pytest.mark.parametrize("method,rule", ROLE_ROUTES)
def test_each_role_gets_what_the_table_says_by_session_and_by_api_token(app, method, rule):
    """Below the route's role: 403 (page or API, session or token). At or above it: not refused. API tokens act
    with their operator's role."""
    tokens = operators_with_every_role(app)
    least = EXPECTED[(method, rule)][1]
    for role in ROLES:
        allowed = ROLES.index(role) >= ROLES.index(least)
        client = app.test_client()
        client.post("/login", data={"email": f"{role}@factoryfl.org", "password": PASSWORD})
        resp = call(client, method, rule)
        if allowed:
            assert not refused(resp), (role, rule, resp.status_code)
        else:
            assert resp.status_code == 403, (role, rule, resp.status_code)
        if EXPECTED[(method, rule)][0] == "401":  # the JSON API also takes the operator's API token
            resp = call(app.test_client(), method, rule, headers={"Authorization": f"Bearer {tokens[role]}"})
            if allowed:
                assert not refused(resp), (role, "token", rule, resp.status_code)
            else:
                assert resp.status_code == 403 and resp.is_json and "role" in resp.get_json()["error"], (role, rule)


def test_a_viewer_cannot_start_an_experiment_an_operator_can(app):
    from tests.dashboard.conftest import TOKEN

    tokens = operators_with_every_role(app)
    admin = {"Authorization": f"Bearer {TOKEN}"}  # DASHBOARD_API_TOKEN: its operator, from the env, is admin
    eid = app.test_client().post("/api/experiments", json={"name": "roles", "rounds": 1},
                                 headers=admin).get_json()["id"]
    viewer = app.test_client()
    assert viewer.post(f"/api/experiments/{eid}/start", headers={"Authorization": f"Bearer {tokens['viewer']}"}
                       ).status_code == 403
    viewer.post("/login", data={"email": "viewer@factoryfl.org", "password": PASSWORD})
    assert viewer.post(f"/experiments/{eid}/start").status_code == 403
    assert viewer.post("/api/experiments", json={"name": "x"}).status_code == 403
    page = viewer.get(f"/experiments/{eid}").text
    assert 'data-action="start"' not in page  # no buttons a viewer cannot use
    assert "needs the operator role" in viewer.get("/experiments").text
    resp = app.test_client().post(f"/api/experiments/{eid}/start",
                                  headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "running"


def test_roles_are_managed_in_the_cli_and_shown_and_changed_in_the_ui(app):
    from tests.dashboard.conftest import ADMIN

    runner = app.test_cli_runner()
    result = runner.invoke(args=["operators", "create", "new@factoryfl.org", "--role", "operator"],
                           input="pw-123456789\npw-123456789\n")
    assert result.exit_code == 0 and "operator" in result.output
    assert runner.invoke(args=["operators", "set-role", "new@factoryfl.org", "viewer"]).exit_code == 0
    listed = runner.invoke(args=["operators", "list"]).output
    assert "new@factoryfl.org\tviewer" in listed and f"{ADMIN[0]}\tadmin" in listed  # the env's first operator
    assert runner.invoke(args=["operators", "set-role", "new@factoryfl.org", "root"]).exit_code != 0
    refused_ = runner.invoke(args=["operators", "set-role", ADMIN[0], "viewer"])  # the only admin
    assert refused_.exit_code != 0 and "only admin" in refused_.output

    client = app.test_client()
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    page = client.get("/operators").text
    assert 'data-operator="new@factoryfl.org"' in page and 'id="current-role"' in client.get("/").text
    from dashboard.extensions import db
    from dashboard.models import Operator

    with app.app_context():
        new_id = db.session.scalar(db.select(Operator.id).filter_by(email="new@factoryfl.org"))
    assert client.post(f"/operators/{new_id}/role", data={"role": "operator"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(Operator.role).filter_by(email="new@factoryfl.org")) == "operator"
