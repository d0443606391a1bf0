"""Secure defaults (secrets in production), the operators' view behind authentication, safe redirects after
login, security headers, CSRF for cookie-authenticated JSON calls and rate limits behind a proxy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from dashboard import create_app
from dashboard.config import InsecureConfiguration, insecure_settings
from tests.dashboard.conftest import ADMIN, TOKEN

ROOT = Path(__file__).resolve().parents[2]
OLD_DEFAULT_KEY = "change-me-secret-key"  # what docker-compose.yml shipped
GOOD = {"SECRET_KEY": "5" * 64, "CREDENTIALS_KEY": Fernet.generate_key().decode(),
        "DASHBOARD_API_TOKEN": "t" * 43, "DASHBOARD_ADMIN_PASSWORD": "a long admin password",
        "FACTORY_ENROLLMENT_TOKEN": "e" * 43}


def login(client, email=ADMIN[0], password=ADMIN[1]):
    return client.post("/login", data={"email": email, "password": password})


def test_anonymous_callers_cannot_list_the_factories(client):
    resp = client.get("/factories")
    assert resp.status_code == 401 and resp.is_json and "Bearer" in resp.get_json()["error"]
    assert client.get("/factories", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    login(client)
    assert client.get("/factories").status_code == 200  # an operator's session


def session_cookie(secret_key: str, operator_id: int = 1) -> str:
    """A Flask session cookie saying 'operator 1 is logged in', signed with `secret_key`."""
    forger = Flask("forger")
    forger.secret_key = secret_key
    return forger.session_interface.get_signing_serializer(forger).dumps({"_user_id": str(operator_id),
                                                                          "_fresh": True})


def test_a_session_cookie_signed_with_the_old_default_key_does_not_log_in(app):
    forged = app.test_client()
    forged.set_cookie("session", session_cookie(OLD_DEFAULT_KEY))
    resp = forged.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert forged.get("/api/experiments").status_code == 401
    control = app.test_client()  # the same cookie signed with this dashboard's own key would log in
    control.set_cookie("session", session_cookie(app.config["SECRET_KEY"]))
    assert control.get("/").status_code == 200


def production_app(tmp_path, **settings):
    return create_app({"PRODUCTION": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite'}",
                       **settings})


@pytest.mark.parametrize("name,value,why", [
    ("SECRET_KEY", OLD_DEFAULT_KEY, "published default"),
    ("SECRET_KEY", "short-key", "too short"),
    ("SECRET_KEY", None, "not set"),
    ("CREDENTIALS_KEY", "ZmFjdG9yeWZsLWRlbW8tY3JlZGVudGlhbHMta2V5ITE=", "published default"),
    ("CREDENTIALS_KEY", None, "not set"),
    ("DASHBOARD_API_TOKEN", "change-me-api-token", "published default"),
    ("DASHBOARD_API_TOKEN", "tok", "too short"),
    ("DASHBOARD_API_TOKEN", None, "not set"),
    ("DASHBOARD_ADMIN_PASSWORD", "change-me-admin", "published default"),
    ("DASHBOARD_ADMIN_PASSWORD", "hunter2", "too short"),
    ("DASHBOARD_ADMIN_PASSWORD", None, "not set"),
])
def test_production_refuses_a_missing_published_or_short_secret_naming_it(tmp_path, monkeypatch, name, value, why):
    for key in GOOD:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))
    settings = {**GOOD, name: value}
    with pytest.raises(InsecureConfiguration) as refused:
        production_app(tmp_path, **settings)
    assert len(refused.value.problems) == 1
    line = refused.value.problems[0]
    assert line.startswith(name) and why in line and "make secrets" in line and "\n" not in line
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "credentials_key").exists()  # never made up


def test_production_starts_with_good_secrets_and_development_makes_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))
    for key in GOOD:
        monkeypatch.delenv(key, raising=False)
    assert production_app(tmp_path, **GOOD).config["DASHBOARD_ENV"] == "production"
    dev = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.sqlite'}"})
    assert dev.config["DASHBOARD_ENV"] == "development" and (tmp_path / "secret_key").read_text() == \
        dev.config["SECRET_KEY"]
    assert insecure_settings({**GOOD, "FACTORY_ENROLLMENT_TOKEN": "change-me-enrollment"})[0].startswith(
        "FACTORY_ENROLLMENT_TOKEN is a published default")
    # empty would be open enrolment: anyone could register a plant name and get a certificate for it
    assert insecure_settings({**GOOD, "FACTORY_ENROLLMENT_TOKEN": ""})[0].startswith("FACTORY_ENROLLMENT_TOKEN")


def insecure_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHBOARD_", "DATABASE_URL", "SERVER_SOFTWARE"))
           and k not in GOOD}
    return {**env, "DASHBOARD_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
            "SECRET_KEY": OLD_DEFAULT_KEY, "DASHBOARD_ADMIN_PASSWORD": "change-me-admin",
            "CREDENTIALS_KEY": "ZmFjdG9yeWZsLWRlbW8tY3JlZGVudGlhbHMta2V5ITE="}


def test_a_production_start_with_the_old_defaults_exits_non_zero_with_one_line_per_secret(tmp_path):
    env = {**insecure_env(tmp_path), "DASHBOARD_ENV": "production"}
    result = subprocess.run([sys.executable, "-m", "dashboard", "--port", "1"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    for name, why in (("SECRET_KEY", "published default"), ("CREDENTIALS_KEY", "published default"),
                      ("DASHBOARD_ADMIN_PASSWORD", "published default"), ("DASHBOARD_API_TOKEN", "not set")):
        assert sum(line.startswith(f"{name} is {'a ' if why.startswith('pub') else ''}{why}") for line in lines) == 1, \
            result.stderr
    assert "Traceback" not in result.stderr


def test_gunicorn_counts_as_production_and_stops_instead_of_respawning_workers(tmp_path):
    from factoryfl_testing.harness import free_port

    result = subprocess.run([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1",
                             "dashboard:create_app()"], cwd=ROOT, env=insecure_env(tmp_path), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY is a published default" in result.stderr


@pytest.mark.parametrize("target", ["//evil.com", "https://evil.com", "/\\evil.com", "/%5Cevil.com", "\\\\evil.com",
                                    "http:/evil.com", "/%09/evil.com", "%2F%2Fevil.com", "javascript:alert(1)",
                                    "evil.com", "///evil.com"])
def test_login_never_redirects_off_site(client, target):
    resp = client.post(f"/login?next={target}", data={"email": ADMIN[0], "password": ADMIN[1]})
    assert resp.status_code == 302 and resp.headers["Location"] == "/", (target, resp.headers["Location"])


def test_login_keeps_a_same_site_next_path(client):
    resp = client.post("/login?next=/experiments%3Fx%3D1", data={"email": ADMIN[0], "password": ADMIN[1]})
    assert resp.headers["Location"] == "/experiments?x=1"


@pytest.mark.parametrize("path", ["/login", "/factories", "/api/openapi.json", "/static/experiment.js",
                                  "/static/dashboard.js", "/no-such-page", "/api/nothing-here"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "same-origin"


def test_pages_hold_no_inline_script(client):
    login(client)
    for path in ("/", "/experiments", "/tokens", "/audit", "/operators", "/login"):
        page = client.get(path).text
        for tag in page.split("<script")[1:]:
            assert tag.lstrip().startswith("src="), (path, tag[:80])
        assert " onclick=" not in page and "javascript:" not in page


def test_cookie_authenticated_api_calls_need_the_csrf_token_bearer_calls_do_not(app, client):
    login(client)  # CSRF off for the login form itself (conftest); on from here
    app.config["WTF_CSRF_ENABLED"] = True
    headers = {"Authorization": f"Bearer {TOKEN}"}
    eid = client.post("/api/experiments", json={"name": "csrf", "rounds": 1}, headers=headers).get_json()["id"]
    no_token = client.post("/api/experiments", json={"name": "forged"})
    assert no_token.status_code == 400 and no_token.is_json and "CSRF" in no_token.get_json()["detail"]
    assert client.post(f"/api/experiments/{eid}/start").status_code == 400  # bodiless POSTs too
    page = client.get(f"/experiments/{eid}").text
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    resp = client.post(f"/api/experiments/{eid}/start", headers={"X-CSRFToken": token})
    assert resp.status_code == 200 and resp.get_json()["status"] == "running"
    assert client.get(f"/api/experiments/{eid}").status_code == 200  # reads need none
    assert client.post(f"/api/experiments/{eid}/pause", headers=headers).status_code == 200  # nor bearer tokens


def test_rate_limits_use_the_proxy_s_client_address_only_when_told_there_is_a_proxy(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))

    def attempts(proxy_fix: str):
        monkeypatch.setenv("DASHBOARD_PROXY_FIX", proxy_fix)
        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "LOGIN_RATE_LIMIT": "2 per minute",
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / f'r{proxy_fix}.sqlite'}"})
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        client = app.test_client()
        return [client.post("/login", data={"email": "x@y.z", "password": "guess"},
                            headers={"X-Forwarded-For": f"203.0.113.{i}"}, environ_base={"REMOTE_ADDR": "10.0.0.1"}
                            ).status_code for i in range(3)]

    assert attempts("0") == [200, 200, 429]  # a spoofed X-Forwarded-For does not buy more attempts
    assert attempts("1") == [200, 200, 200]  # behind one proxy: each client is counted on its own
    with pytest.raises(Exception, match="DASHBOARD_PROXY_FIX"):
        attempts("lots")
