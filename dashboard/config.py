"""Dashboard configuration from the environment (DESIGN §8)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

from shared.errors import ConfigurationError

log = logging.getLogger(__name__)


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


class Config:
    def __init__(self, instance_path: str, **overrides):
        env = os.environ.get
        instance = Path(instance_path)
        self.SQLALCHEMY_DATABASE_URI = env("DATABASE_URL") or f"sqlite:///{instance / 'factoryfl.sqlite'}"
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgres://"):
            self.SQLALCHEMY_DATABASE_URI = "postgresql://" + self.SQLALCHEMY_DATABASE_URI[len("postgres://"):]
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            self.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.SECRET_KEY = env("SECRET_KEY") or _instance_secret(instance, "secret_key", lambda: secrets.token_hex(32))
        self.CREDENTIALS_KEY = env("CREDENTIALS_KEY") or _instance_secret(
            instance, "credentials_key", lambda: Fernet.generate_key().decode())
        try:
            Fernet(self.CREDENTIALS_KEY.encode())
        except ValueError as exc:
            raise ConfigurationError("CREDENTIALS_KEY is not a Fernet key (32 url-safe base64 bytes); make one with: "
                                     "python -c 'from cryptography.fernet import Fernet; "
                                     "print(Fernet.generate_key().decode())'") from exc
        self.FACTORY_ENROLLMENT_TOKEN = env("FACTORY_ENROLLMENT_TOKEN", "")
        self.DASHBOARD_ADMIN_EMAIL = env("DASHBOARD_ADMIN_EMAIL")
        self.DASHBOARD_ADMIN_PASSWORD = env("DASHBOARD_ADMIN_PASSWORD")
        self.DASHBOARD_API_TOKEN = env("DASHBOARD_API_TOKEN")
        self.DASHBOARD_FACTORIES_FILE = env("DASHBOARD_FACTORIES_FILE")  # YAML of configured external plants
        self.DASHBOARD_SCHEDULER = env("DASHBOARD_SCHEDULER", "inline")
        self.HEARTBEAT_INTERVAL = float(env("DASHBOARD_HEARTBEAT_INTERVAL", "30"))
        self.OFFLINE_AFTER_MISSED = 3
        self.ROUND_TIMEOUT = float(env("DASHBOARD_ROUND_TIMEOUT", "600"))
        self.APPROVAL_TIMEOUT = float(env("DASHBOARD_APPROVAL_TIMEOUT", "60"))
        # a scheduler's claim on a round: a dead scheduler's round is run again once it expires
        self.LEASE_SECONDS = float(env("DASHBOARD_LEASE_SECONDS", "60"))
        self.SCHEDULER_TICK = float(env("DASHBOARD_SCHEDULER_TICK", "2"))
        self.MAX_CONTENT_LENGTH = int(env("DASHBOARD_MAX_BODY", str(1024 * 1024)))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = env("SESSION_COOKIE_SECURE", "false").lower() == "true"
        self.WTF_CSRF_TIME_LIMIT = None
        # Flask-Limiter: per client address; memory:// counts per process (per gunicorn worker); a shared
        # store such as redis://host:6379 (with the redis package installed) makes the limit exact across workers
        self.LOGIN_RATE_LIMIT = env("DASHBOARD_LOGIN_RATE_LIMIT", "10 per minute")
        self.REGISTER_RATE_LIMIT = env("DASHBOARD_REGISTER_RATE_LIMIT", "60 per minute")
        self.RATELIMIT_STORAGE_URI = env("DASHBOARD_RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_HEADERS_ENABLED = True
        self.TESTING = False
        for key, value in overrides.items():
            setattr(self, key, value)
