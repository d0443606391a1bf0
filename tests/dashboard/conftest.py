import functools
import hashlib
import shutil
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.lifecycle.bootstrap import bootstrap
from dashboard.extensions import db
from shared import __version__
from shared.identity import SIGNATURE_HEADER, TIMESTAMP_HEADER, public_key_hex, sign_registration

ADMIN = ("ops@factoryfl.org", "correct horse battery")
TOKEN = "test-api-token-0123456789"
ENROLL = "enroll-secret"


def _settings(path) -> dict:
    return {"TESTING": True, "WTF_CSRF_ENABLED": False, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "FACTORY_ENROLLMENT_TOKEN": ENROLL, "DASHBOARD_ADMIN_EMAIL": ADMIN[0],
            "DASHBOARD_ADMIN_PASSWORD": ADMIN[1], "DASHBOARD_API_TOKEN": TOKEN,
            "HEARTBEAT_INTERVAL": 1.0, "ALLOW_PRIVATE_PLANTS": True}  # plants on localhost


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    """An empty database the migrations made, once per run: each test's app starts from a copy of it (the same
    schema `upgrade()` makes, without running the whole chain again for each of a thousand tests;
    test_migrations.py runs the chain itself)."""
    folder = tmp_path_factory.mktemp("migrated")
    mp = pytest.MonkeyPatch()
    mp.setenv("DASHBOARD_INSTANCE_PATH", str(folder))
    mp.delenv("DATABASE_URL", raising=False)
    try:
        made = create_app(_settings(folder / "template.sqlite"))
        with made.app_context():
            upgrade()
            db.engine.dispose()
    finally:
        mp.undo()
    return folder / "template.sqlite"


@pytest.fixture()
def app(tmp_path, monkeypatch, migrated_database):
    monkeypatch.setenv("DASHBOARD_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    shutil.copyfile(migrated_database, tmp_path / "test.sqlite")
    app = create_app(_settings(tmp_path / "test.sqlite"))
    with app.app_context():
        bootstrap(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def api():
    return {"Authorization": f"Bearer {TOKEN}"}


def registration(name="plant_a", **overrides):
    body = {"factory_name": name, "factory_hostname": "localhost", "factory_port": 8081, "device": "cpu",
            "status": "online",
            "capabilities": {"supported_models": ["cnn", "mlp", "lstm", "hybrid"], "data_type": "time_series",
                             "num_samples": 100, "features": ["a", "b"],
                             "schema": {"label_column": "y", "numeric_columns": ["a", "b"], "categorical": {}}},
            "orchestrator": {"email": "orchestrator@factoryfl.org", "password": "s3cret-orchestrator"},
            "secagg_public_key": "ab" * 32, "agent_version": __version__,
            "identity_public_key": public_key_hex(identity_key(name)),
            "certificate_request": certificate_request(name),
            # these plants trust the dashboard (--trust-dashboard), so that the tests of plain, robust, central-DP and
            # single-plant experiments run; those of plants that verify membership say so (test_trust_mode.py)
            "trust_dashboard": True, "federation_key": None}
    body.update(overrides)
    return body


@functools.lru_cache(maxsize=None)
def certificate_request(name="plant_a", hostname="localhost") -> str:
    """The CSR an agent sends for its datasite's TLS key (factory_agent.tls): one key per test plant name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or "x")]))
           .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def identity_key(name="plant_a", generation=0) -> Ed25519PrivateKey:
    """A test plant's Ed25519 identity key: the same for a name on every call (a plant that keeps its state
    folder); another `generation` is the key of a plant that lost it, or of an impostor."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"identity:{name}:{generation}".encode()).digest())


def signed_headers(body, key, token=ENROLL, timestamp=None) -> dict:
    """What the agent sends: its bearer token plus a signature over the body and a timestamp (shared.identity)."""
    stamp = timestamp if timestamp is not None else f"{time.time():.6f}"
    headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign_registration(key, stamp, body)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def register(client, name="plant_a", key=None, token=ENROLL, **overrides):
    """Register as the agent does: signed by the plant's identity key (default: the name's own key)."""
    key = key or identity_key(name)
    body = registration(name, identity_public_key=public_key_hex(key), **overrides)
    return client.post("/register_factory", json=body, headers=signed_headers(body, key, token))
