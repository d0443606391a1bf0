"""Every route's authentication, from one table: a route added without an entry here fails the test."""

import re

import pytest

# (method, rule) -> what an anonymous caller gets: "public", "401" (JSON API) or "login" (redirect to /login)
EXPECTED = {
    ("GET", "/static/<path:filename>"): "public",
    ("POST", "/register_factory"): "401",
    ("POST", "/heartbeat"): "401",
    ("GET", "/factories"): "public",  # DESIGN §4: the registry list (no credentials in it)
    ("POST", "/api/experiments"): "401",
    ("GET", "/api/experiments"): "401",
    ("GET", "/api/experiments/<int:experiment_id>"): "401",
    ("POST", "/api/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>"): "401",
    ("GET", "/api/experiments/<int:experiment_id>/model"): "401",
    ("GET", "/api/openapi.json"): "public",
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "login",
    ("GET", "/"): "login",
    ("GET", "/factories/<name>"): "login",
    ("POST", "/factories/<name>/check"): "login",
    ("GET", "/tokens"): "login",
    ("POST", "/tokens"): "login",
    ("POST", "/tokens/<int:token_id>/revoke"): "login",
    ("GET", "/experiments"): "login",
    ("POST", "/experiments"): "login",
    ("GET", "/experiments/<int:experiment_id>"): "login",
    ("POST", "/experiments/<int:experiment_id>/<any(start, pause, resume, cancel):action>"): "login",
    ("GET", "/audit"): "login",
}
SAMPLE = {"filename": "experiment.js", "experiment_id": "1", "name": "plant_a", "token_id": "1", "action": "start"}


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
    expected = EXPECTED[(method, rule)]
    if expected == "401":
        assert resp.status_code == 401 and resp.is_json, (rule, resp.status_code)
    elif expected == "login":
        assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"], (rule, resp.status_code)
    else:
        assert resp.status_code < 500 and resp.status_code not in (401, 302), (rule, resp.status_code)


@pytest.mark.parametrize("method,rule", sorted(k for k, v in EXPECTED.items() if k[0] == "POST" and v == "login"))
def test_page_forms_refuse_a_post_without_a_csrf_token_even_when_logged_in(app, method, rule):
    from tests.dashboard.conftest import ADMIN

    client = app.test_client()
    client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]})  # CSRF still off for the login
    app.config["WTF_CSRF_ENABLED"] = True
    resp = client.open(concrete(rule), method=method, data={})
    assert resp.status_code == 400, (rule, resp.status_code)


@pytest.mark.parametrize("method,rule", sorted(k for k, v in EXPECTED.items() if v == "401" and "/api/" in k[1]))
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
