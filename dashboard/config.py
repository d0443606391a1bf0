"""Dashboard configuration from the environment (DESIGN §8)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

from shared.env import FALSE_WORDS, TRUE_WORDS, env_bool, env_float, env_int, env_secret, env_str
from shared.errors import ConfigurationError
from dashboard.errors import InsecureConfiguration

log = logging.getLogger(__name__)

# Values that have been published (docker-compose.yml, the README, the demo) and so protect nothing.
KNOWN_DEFAULT_SECRETS = frozenset({
    "change-me-secret-key", "change-me-enrollment", "change-me-admin", "change-me-api-token",
    "ZmFjdG9yeWZsLWRlbW8tY3JlZGVudGlhbHMta2V5ITE=",  # the Fernet key docker-compose.yml used to ship
    "topology-secret", "bench", "secret", "password", "admin", "changeme", "change-me",
})
MIN_SECRET_KEY, MIN_TOKEN, MIN_PASSWORD = 32, 24, 12
HOW_TO_MAKE = {
    "SECRET_KEY": "python -c 'import secrets; print(secrets.token_hex(32))'",
    "CREDENTIALS_KEY": "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
    "DASHBOARD_API_TOKEN": "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    "DASHBOARD_ADMIN_PASSWORD": "python -c 'import secrets; print(secrets.token_urlsafe(16))'",
    "FACTORY_ENROLLMENT_TOKEN": "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
}


def is_production() -> bool:
    """Production: DASHBOARD_ENV=production, or served by gunicorn (its arbiter sets SERVER_SOFTWARE)."""
    return (env_str("DASHBOARD_ENV", "").strip().lower() == "production"
            or env_str("SERVER_SOFTWARE", "").startswith("gunicorn/"))


def _is_known_default(value: str) -> bool:
    return value in KNOWN_DEFAULT_SECRETS or value.lower().startswith(("change-me", "changeme"))


def insecure_settings(config) -> list[str]:
    """One line per secret that must not be used in production, each saying how to make a good one.
    `config` is the app's config (a mapping)."""
    rules = (("SECRET_KEY", MIN_SECRET_KEY, True), ("CREDENTIALS_KEY", 0, True),
             ("DASHBOARD_API_TOKEN", MIN_TOKEN, True), ("DASHBOARD_ADMIN_PASSWORD", MIN_PASSWORD, True),
             ("FACTORY_ENROLLMENT_TOKEN", MIN_TOKEN, True))  # empty would be open enrolment: development only
    problems = []
    for name, shortest, required in rules:
        value = config.get(name) or ""
        fix = f"make one with `make secrets` (writes .env) or {HOW_TO_MAKE[name]}"
        if not value:
            if required:
                problems.append(f"{name} is not set: {fix}")
        elif _is_known_default(value):
            problems.append(f"{name} is a published default value: {fix}")
        elif len(value) < shortest:
            problems.append(f"{name} is too short ({len(value)} characters, at least {shortest}): {fix}")
    return problems


def refuse_insecure_production(config) -> None:
    """Raise InsecureConfiguration (logging one line per problem first) when a production dashboard would run
    with a missing, published or short secret; in development, warn about published values."""
    problems = insecure_settings(config)
    if config.get("PRODUCTION"):
        if problems:
            for line in problems:
                log.critical("%s", line)
            raise InsecureConfiguration(problems)
        return
    for line in problems:
        if "published default" in line:
            log.warning("%s (refused in production)", line)


def _parse_proxy_fix(value: str) -> int:
    """DASHBOARD_PROXY_FIX: how many reverse proxies in front of the dashboard set X-Forwarded-* headers."""
    text = value.strip().lower()
    if text in FALSE_WORDS or not text:
        return 0
    if text in TRUE_WORDS:
        return 1
    if text.isdigit() and int(text) <= 10:
        return int(text)
    raise ConfigurationError(f"DASHBOARD_PROXY_FIX must be 0/false, 1/true or the number of proxies in front of "
                             f"the dashboard (at most 10), got {value!r}")


def _instance_secret(instance: Path, name: str, make) -> str:
    """A development secret kept under instance/ so restarts keep sessions and decryptable credentials."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    try:
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
    except OSError as exc:
        raise ConfigurationError(f"{name.upper()} is not set and the instance folder {str(instance)!r} is not "
                                 f"writable ({exc.strerror}): set {name.upper()} in the environment or fix the "
                                 "folder (DASHBOARD_INSTANCE_PATH)") from exc
    log.warning("%s was not set: generated one in %s (set it in the environment in production)",
                name.upper(), path)
    return value


def plant_floor_settings() -> dict:
    """DASHBOARD_ALERT_WEBHOOK: a URL called with a JSON POST on a new alert, a plant going offline and a failed
    experiment (dashboard.webhooks.sender checks it is http(s) and posts from a background thread);
    DASHBOARD_ALERT_WEBHOOK_MIN_INTERVAL: seconds between two alert.opened calls for one plant (default 300);
    DASHBOARD_METRICS_TOKEN: who may read /metrics besides loopback clients (dashboard.api.metrics)."""
    return {"ALERT_WEBHOOK": env_str("DASHBOARD_ALERT_WEBHOOK") or None,
            "ALERT_WEBHOOK_TIMEOUT": env_float("DASHBOARD_ALERT_WEBHOOK_TIMEOUT", 5, minimum=0.1),
            "ALERT_WEBHOOK_MIN_INTERVAL": env_float("DASHBOARD_ALERT_WEBHOOK_MIN_INTERVAL", 300, minimum=0),
            "METRICS_TOKEN": env_secret("DASHBOARD_METRICS_TOKEN") or None}


class Config:
    """Every setting of a dashboard process, from the environment (DASHBOARD_*, DATABASE_URL, ...) and
    `overrides` (tests)."""

    def __init__(self, instance_path: str, **overrides):
        instance = Path(instance_path)
        self._database(instance)
        self._secrets(instance, overrides)
        self._operations()
        self._web()
        self._plants(instance)
        self.__dict__.update(plant_floor_settings())  # the webhook and /metrics (DESIGN §10)
        self.TESTING = False
        for key, value in overrides.items():
            setattr(self, key, value)

    def _database(self, instance: Path) -> None:
        self.SQLALCHEMY_DATABASE_URI = env_secret("DATABASE_URL") or f"sqlite:///{instance / 'factoryfl.sqlite'}"
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgres://"):
            self.SQLALCHEMY_DATABASE_URI = "postgresql://" + self.SQLALCHEMY_DATABASE_URI[len("postgres://"):]
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            self.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] = {"timeout": 30, "check_same_thread": False}
        elif self.SQLALCHEMY_DATABASE_URI.startswith(("postgresql://", "postgresql+psycopg2://")):
            # psycopg2 sends an executemany of UPDATEs (the heartbeat writes) in pages, not one round trip a row
            self.SQLALCHEMY_ENGINE_OPTIONS["executemany_mode"] = "values_plus_batch"

    def _secrets(self, instance: Path, overrides: dict) -> None:
        # production never makes its own secrets: a missing one is refused by create_app (insecure_settings)
        self.PRODUCTION = overrides.pop("PRODUCTION", None)
        if self.PRODUCTION is None:
            self.PRODUCTION = is_production()
        self.DASHBOARD_ENV = "production" if self.PRODUCTION else "development"
        self.SECRET_KEY = env_secret("SECRET_KEY") or overrides.get("SECRET_KEY") or (
            None if self.PRODUCTION else _instance_secret(instance, "secret_key", lambda: secrets.token_hex(32)))
        self.CREDENTIALS_KEY = env_secret("CREDENTIALS_KEY") or overrides.get("CREDENTIALS_KEY") or (
            None if self.PRODUCTION else _instance_secret(instance, "credentials_key",
                                                          lambda: Fernet.generate_key().decode()))
        try:
            if self.CREDENTIALS_KEY:
                Fernet(self.CREDENTIALS_KEY.encode())
        except ValueError as exc:
            raise ConfigurationError("CREDENTIALS_KEY is not a Fernet key (32 url-safe base64 bytes); make one with: "
                                     "python -c 'from cryptography.fernet import Fernet; "
                                     "print(Fernet.generate_key().decode())'") from exc

    def _operations(self) -> None:
        env = env_str
        self.FACTORY_ENROLLMENT_TOKEN = env_secret("FACTORY_ENROLLMENT_TOKEN", "")
        self.DASHBOARD_ADMIN_EMAIL = env("DASHBOARD_ADMIN_EMAIL")
        self.DASHBOARD_ADMIN_PASSWORD = env_secret("DASHBOARD_ADMIN_PASSWORD")
        self.DASHBOARD_API_TOKEN = env_secret("DASHBOARD_API_TOKEN")
        self.DASHBOARD_FACTORIES_FILE = env("DASHBOARD_FACTORIES_FILE")  # YAML of configured external plants
        self.DASHBOARD_SCHEDULER = env("DASHBOARD_SCHEDULER", "inline")
        self.HEARTBEAT_INTERVAL = env_float("DASHBOARD_HEARTBEAT_INTERVAL", 30, minimum=0.1)
        # heartbeats are written in batches (dashboard.registry.heartbeats): every FLUSH_INTERVAL seconds, answered at once
        # (a SIGKILL loses at most that much), or, DURABLE, answered once committed (group commit)
        self.HEARTBEAT_FLUSH_INTERVAL = env_float("DASHBOARD_HEARTBEAT_FLUSH_INTERVAL", 0.2, minimum=0)
        self.HEARTBEAT_DURABLE = env_bool("DASHBOARD_HEARTBEAT_DURABLE", False)
        self.OFFLINE_AFTER_MISSED = 3
        self.ROUND_TIMEOUT = env_float("DASHBOARD_ROUND_TIMEOUT", 600, minimum=1)
        self.APPROVAL_TIMEOUT = env_float("DASHBOARD_APPROVAL_TIMEOUT", 60, minimum=0)
        # a scheduler's claim on a round: a dead scheduler's round is run again once it expires
        self.LEASE_SECONDS = env_float("DASHBOARD_LEASE_SECONDS", 60, minimum=1)
        self.SCHEDULER_TICK = env_float("DASHBOARD_SCHEDULER_TICK", 2, minimum=0.05)

    def _web(self) -> None:
        env = env_str
        self.MAX_CONTENT_LENGTH = env_int("DASHBOARD_MAX_BODY", 1024 * 1024, minimum=1)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
        self.WTF_CSRF_TIME_LIMIT = None
        # Flask-Limiter: per client address; memory:// counts per process (per gunicorn worker); a shared
        # store such as redis://host:6379 (with the redis package installed) makes the limit exact across workers
        self.LOGIN_RATE_LIMIT = env("DASHBOARD_LOGIN_RATE_LIMIT", "10 per minute")
        self.REGISTER_RATE_LIMIT = env("DASHBOARD_REGISTER_RATE_LIMIT", "60 per minute")
        self.RATELIMIT_STORAGE_URI = env("DASHBOARD_RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_HEADERS_ENABLED = True
        # behind N reverse proxies: trust their X-Forwarded-For/-Proto/-Host (client address for rate limits,
        # https for cookies and redirects); 0 (the default) ignores those headers, which anyone can send
        self.PROXY_FIX = _parse_proxy_fix(env("DASHBOARD_PROXY_FIX", "0"))

    def _plants(self, instance: Path) -> None:
        env = env_str
        # plants on loopback or private addresses (labs, tests, compose): refused unless this is true, so a
        # registrant cannot point the dashboard at its own network (SSRF); link-local, multicast,
        # unspecified and cloud-metadata addresses are refused always
        self.ALLOW_PRIVATE_PLANTS = env_bool("DASHBOARD_ALLOW_PRIVATE_PLANTS", False)
        # TLS to the datasites (DESIGN §4, dashboard/registry/federation_ca.py): the federation CA's folder (its key encrypted
        # with CREDENTIALS_KEY; share it with the scheduler process), how long a plant's certificate lasts, and
        # whether plain HTTP to a datasite is refused (the default; false only for development)
        self.DASHBOARD_CA_DIR = env("DASHBOARD_CA_DIR") or str(instance / "federation_ca")
        # from one hour to 397 days (the CA/Browser Forum's longest)
        self.DASHBOARD_CERT_VALIDITY_DAYS = env_float("DASHBOARD_CERT_VALIDITY_DAYS", 30, minimum=1 / 24, maximum=397)
        self.DASHBOARD_REQUIRE_TLS = env_bool("DASHBOARD_REQUIRE_TLS", True)
