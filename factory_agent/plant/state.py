"""`PlantState`: the one owner of the plant's state folder (mode 0700, files 0600).

What lives there: the datasite's generated passwords and identity, its TLS key and certificate (with the
federation CA that signed it), the plant's Ed25519 identity key (signs its registrations), the secure-aggregation
X25519 key, the effective policy and the plant's profile (name, feature names), FedDyn's per-experiment term,
and the ledgers the policy needs, in one SQLite file so that every check-and-record is one transaction even
when PySyft runs calls concurrently: calls (rate caps), masks (one masking per experiment:round:attempt, with
the setup it masked under), reveals (one survivor list per attempt), pinned model inputs per experiment, and
the DP-SGD ledger across all experiments (the lifetime budget).

The agent creates it from its --state-dir; code inside the datasite finds the same folder through
FACTORYFL_STATE_DIR, which the agent sets before PySyft forks its server.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from factory_agent.plant.policy import PlantPolicy
from shared.errors import ConfigurationError, PolicyRefusal, SecurityError

STATE_DIR_ENV = "FACTORYFL_STATE_DIR"
BUSY_FILE_ENV = "FACTORYFL_BUSY_FILE"  # set by the agent: the datasite marks the plant busy while it works
BYZANTINE_ENV = "FACTORYFL_BYZANTINE"  # --byzantine (tests and demos only)
LOG_FILE_ENV = "FACTORYFL_LOG_FILE"  # the agent's log: PySyft spawns its server, which inherits no logging set-up
KEY_FILE = "secagg_x25519.pem"
IDENTITY_KEY_FILE = "identity_ed25519.pem"  # the plant's long-term identity: signs its registrations (DESIGN §4)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (at REAL NOT NULL, op TEXT NOT NULL, experiment INTEGER, round INTEGER,
                                  attempt INTEGER);
CREATE INDEX IF NOT EXISTS calls_at ON calls (at);
CREATE INDEX IF NOT EXISTS calls_key ON calls (op, experiment, round, attempt);
CREATE TABLE IF NOT EXISTS masks (context TEXT PRIMARY KEY, setup TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reveals (context TEXT PRIMARY KEY, survivors TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pinned (experiment INTEGER PRIMARY KEY, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dp_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, experiment INTEGER NOT NULL,
                                      noise_multiplier REAL NOT NULL, sample_rate REAL NOT NULL,
                                      steps INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS call_counts (op TEXT NOT NULL, experiment INTEGER NOT NULL, round INTEGER NOT NULL,
                                        attempt INTEGER NOT NULL, n INTEGER NOT NULL,
                                        PRIMARY KEY (op, experiment, round, attempt));
CREATE TABLE IF NOT EXISTS trained_rounds (experiment INTEGER NOT NULL, digest TEXT NOT NULL, round INTEGER NOT NULL,
                                         PRIMARY KEY (experiment, digest));
CREATE TABLE IF NOT EXISTS dp_rdp (scope TEXT PRIMARY KEY, rdp TEXT NOT NULL);
"""
FEDDYN_KEPT = 32  # FedDyn terms of the most recent experiments; older ones are deleted (disk is bounded)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def new_password() -> str:
    # mixed classes so any password policy accepts it
    return "Ff1!" + secrets.token_urlsafe(24)


class PlantState:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ConfigurationError(f"cannot use state folder {str(directory)!r}: {exc.strerror}") from exc
        self.credentials_path = self.directory / "credentials.json"
        self.key_path = self.directory / KEY_FILE
        self.identity_key_path = self.directory / IDENTITY_KEY_FILE
        self.ledger_path = self.directory / "ledger.sqlite"

    @classmethod
    def from_environment(cls) -> "PlantState":
        """Inside the datasite: the agent's folder. Outside an agent there is no plant to protect."""
        directory = os.environ.get(STATE_DIR_ENV)
        if not directory:
            raise ConfigurationError(f"{STATE_DIR_ENV} is not set: fl_step runs only inside a plant's datasite")
        return cls(Path(directory))

    # --- agent files ------------------------------------------------------------------------------
    def credentials(self) -> dict:
        if self.credentials_path.exists():
            return json.loads(self.credentials_path.read_text())
        return {}

    def save_credentials(self, creds: dict) -> None:
        _write_private(self.credentials_path, json.dumps(creds, indent=2).encode())

    @staticmethod
    def _key(path: Path, kind):
        """The private key in `path`, made once (PKCS#8 PEM, mode 0600) when the file does not exist yet."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, kind):
                raise SecurityError(f"{path} is not an {kind.__name__.removesuffix('PrivateKey')} key")
            return key
        key = kind.generate()
        _write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return key

    def _private_key(self) -> X25519PrivateKey:
        return self._key(self.key_path, X25519PrivateKey)

    def secagg_private_key(self) -> X25519PrivateKey:
        """The long-term X25519 key; created once, never leaves this folder."""
        return self._private_key()

    def secagg_public_key(self) -> str:
        return self._private_key().public_key().public_bytes(serialization.Encoding.Raw,
                                                             serialization.PublicFormat.Raw).hex()

    def identity_private_key(self) -> Ed25519PrivateKey:
        """The plant's long-term Ed25519 identity key; created once, never leaves this folder. The dashboard
        binds the plant's name to its public half at the first registration: losing this file means an
        operator must approve the new key."""
        return self._key(self.identity_key_path, Ed25519PrivateKey)

    def identity_public_key(self) -> str:
        return self.identity_private_key().public_key().public_bytes(serialization.Encoding.Raw,
                                                                     serialization.PublicFormat.Raw).hex()

    def datasite_identity(self) -> tuple[str, str]:
        """(server uid, Ed25519 signing key seed), hex, made once: PySyft 0.9.5 draws both at random on every
        start unless given, which would orphan the datasite's stored users and data at each restart."""
        path = self.directory / "datasite_identity.json"
        if path.exists():
            identity = json.loads(path.read_text())
        else:
            identity = {"server_uid": secrets.token_hex(16), "signing_key": secrets.token_hex(32)}
            _write_private(path, json.dumps(identity).encode())
        return identity["server_uid"], identity["signing_key"]

    def status_path(self) -> Path:
        return self.directory / "status.json"

    # --- TLS (factory_agent/tls.py): the datasite's key and certificate, the federation CA ----------------
    def tls_key_path(self) -> Path:
        """The datasite's EC P-256 TLS key: made once, never leaves this folder."""
        return self.directory / "tls_key.pem"

    def tls_certificate_path(self) -> Path:
        """What the datasite serves: its certificate, then the federation CA's (or one provisional self-signed
        certificate until the dashboard has signed one)."""
        return self.directory / "tls_certificate.pem"

    def tls_ca_path(self) -> Path:
        """The federation CA's certificate, from the last registration's answer."""
        return self.directory / "federation_ca.pem"

    def tls_trust_path(self) -> Path:
        """What the agent's own logins to its datasite trust: the federation CA and, while it may still be
        served, the provisional certificate."""
        return self.directory / "tls_trust.pem"

    def save_tls_file(self, path: Path, data: bytes) -> None:
        """Write one of the TLS files above (atomically, mode 0600)."""
        if path.parent != self.directory or not path.name.startswith(("tls_", "federation_ca")):
            raise ConfigurationError(f"{path} is not one of this plant's TLS files")
        _write_private(path, data)

    # --- policy and profile (written by the agent, read by fl_step) --------------------------------
    def save_policy(self, policy: PlantPolicy) -> None:
        _write_private(self.directory / "policy.json", json.dumps(policy.to_dict()).encode())

    def policy(self) -> PlantPolicy:
        path = self.directory / "policy.json"
        return PlantPolicy.from_dict(json.loads(path.read_text())) if path.exists() else PlantPolicy()

    def save_profile(self, name: str, features: list[str]) -> None:
        _write_private(self.directory / "profile.json", json.dumps({"name": name, "features": features}).encode())

    def profile(self) -> tuple[str, list[str]]:
        """(this plant's name, its own encoded feature names): never taken from a request."""
        path = self.directory / "profile.json"
        if not path.exists():
            raise ConfigurationError("the plant's profile is not written yet (the agent writes it at start)")
        d = json.loads(path.read_text())
        return d["name"], list(d["features"])

    # --- FedDyn's term, per experiment (Acar et al. 2021): the id is an integer before it is a path ------
    def _feddyn_path(self, experiment: int) -> Path:
        if isinstance(experiment, bool) or not isinstance(experiment, int) or experiment < 0:
            raise SecurityError(f"experiment id {experiment!r} is not a non-negative integer")
        folder = self.directory / "feddyn"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / f"experiment-{experiment}.npz"

    def feddyn_term(self, experiment: int) -> dict[str, np.ndarray]:
        path = self._feddyn_path(experiment)
        return dict(np.load(path)) if path.exists() else {}

    def save_feddyn_term(self, experiment: int, term: dict[str, np.ndarray]) -> None:
        path = self._feddyn_path(experiment)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **term)
        tmp.replace(path)
        kept = sorted(path.parent.glob("experiment-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[FEDDYN_KEPT:]:  # any number of experiment ids, a bounded folder
            old.unlink(missing_ok=True)

    def trusted_peers(self) -> dict[str, str] | None:
        """The data owner's list of secure-aggregation peers ({plant name: X25519 public key, hex}) from
        `trusted_peers.yaml` in this folder, or None without the file (then the dashboard's registry decides)."""
        import yaml

        path = self.directory / "trusted_peers.yaml"
        if not path.exists():
            return None
        peers = yaml.safe_load(path.read_text()) or {}
        if not isinstance(peers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in peers.items()):
            raise ConfigurationError(f"{path}: expected a mapping of plant name to X25519 public key (hex)")
        return {k: v.lower() for k, v in peers.items()}

    # --- ledgers ---------------------------------------------------------------------------------
    @contextmanager
    def _ledger(self):
        """One IMMEDIATE transaction: concurrent calls serialise on the write lock, so a check and its
        record cannot interleave with another call's."""
        connection = sqlite3.connect(self.ledger_path, timeout=30, isolation_level=None)
        try:
            os.chmod(self.ledger_path, 0o600)
            connection.executescript(_SCHEMA)
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            connection.close()

    def record_call(self, policy: PlantPolicy, op: str, experiment: int, round_: int | None = None,
                    attempt: int | None = None, per_key_limit: int | None = None) -> None:
        """Count this call; PolicyRefusal past the hourly cap, or past `per_key_limit` calls of this op for this
        (experiment, round, attempt) ever (those counts are never pruned)."""
        now = time.time()
        with self._ledger() as db:
            db.execute("DELETE FROM calls WHERE at < ?", (now - 3600,))
            (recent,) = db.execute("SELECT COUNT(*) FROM calls").fetchone()
            if recent >= policy.max_calls_per_hour:
                raise PolicyRefusal(f"{recent} calls in the last hour; this plant allows {policy.max_calls_per_hour}")
            db.execute("INSERT INTO calls VALUES (?, ?, ?, ?, ?)", (now, op, experiment, round_, attempt))
            if per_key_limit is not None:
                key = (op, experiment, -1 if round_ is None else round_, -1 if attempt is None else attempt)
                row = db.execute("SELECT n FROM call_counts WHERE op = ? AND experiment = ? AND round = ? "
                                 "AND attempt = ?", key).fetchone()
                if row and row[0] >= per_key_limit:
                    where = f"experiment {experiment}" + (f" round {round_}" if round_ is not None else "") + \
                        (f" attempt {attempt}" if attempt is not None else "")
                    raise PolicyRefusal(f"{op} was already called {row[0]} time(s) for {where}; this plant "
                                        f"allows {per_key_limit}")
                db.execute("INSERT INTO call_counts VALUES (?, ?, ?, ?, 1) ON CONFLICT (op, experiment, round, "
                           "attempt) DO UPDATE SET n = n + 1", key)

    def claim_training(self, experiment: int, round_: int, weights_digest: str) -> None:
        """A plant trains from given global weights in one round of an experiment only (its attempts may retry):
        the same model in two rounds, under different cohorts, would let the aggregator difference two secure
        sums (a second sum of the same round is refused at the reveal)."""
        with self._ledger() as db:
            row = db.execute("SELECT round FROM trained_rounds WHERE experiment = ? AND digest = ?",
                             (experiment, weights_digest)).fetchone()
            if row and row[0] != round_:
                raise PolicyRefusal(f"this plant already trained from these global weights in round {row[0]} of "
                                    f"experiment {experiment}; it trains from a model in one round only")
            if not row:
                db.execute("INSERT INTO trained_rounds VALUES (?, ?, ?)", (experiment, weights_digest, round_))

    def claim_mask(self, context: str, setup: dict) -> None:
        """At most one masking per experiment:round:attempt, ever: masking twice under one context (say once
        with a near-zero learning rate) and revealing both self masks would give the difference of two
        updates in the clear."""
        with self._ledger() as db:
            if db.execute("SELECT 1 FROM masks WHERE context = ?", (context,)).fetchone():
                raise PolicyRefusal(f"this plant already masked an update for {context} "
                                    "(experiment:round:attempt); it masks once per attempt")
            db.execute("INSERT INTO masks VALUES (?, ?, ?)", (context, json.dumps(setup, sort_keys=True), time.time()))

    def masked_setup(self, context: str) -> dict | None:
        with self._ledger() as db:
            row = db.execute("SELECT setup FROM masks WHERE context = ?", (context,)).fetchone()
        return json.loads(row[0]) if row else None

    def record_reveal(self, context: str, survivors: list[str]) -> None:
        """One survivor list per attempt (never the self-mask shares and the pairwise shares of one plant), and
        one attempt per round (never two sums of one round over different cohorts)."""
        listed = json.dumps(sorted(survivors))
        round_prefix = context.rsplit(":", 1)[0] + ":"
        with self._ledger() as db:
            other = db.execute("SELECT context FROM reveals WHERE substr(context, 1, ?) = ? AND context != ?",
                               (len(round_prefix), round_prefix, context)).fetchone()
            if other:  # two unmasked sums of one round over different cohorts differ by single updates
                raise PolicyRefusal(f"this plant already revealed shares for {other[0]}: it reveals for one "
                                    "attempt of a round")
            row = db.execute("SELECT survivors FROM reveals WHERE context = ?", (context,)).fetchone()
            if row and row[0] != listed:
                raise PolicyRefusal(f"asked to reveal shares for {context} with survivors {sorted(survivors)} after "
                                    f"answering for {json.loads(row[0])}: refused (it could unmask a single plant)")
            if not row:
                db.execute("INSERT INTO reveals VALUES (?, ?, ?)", (context, listed, time.time()))

    def pin_inputs(self, experiment: int, digest: str) -> None:
        """The first model inputs (features, scaler, model family) seen for an experiment are the only ones
        this plant accepts for it afterwards."""
        with self._ledger() as db:
            row = db.execute("SELECT digest FROM pinned WHERE experiment = ?", (experiment,)).fetchone()
            if row and row[0] != digest:
                raise PolicyRefusal(f"experiment {experiment} changed its features, scaler or model family after "
                                    "its first call to this plant: refused")
            if not row:
                db.execute("INSERT INTO pinned VALUES (?, ?)", (experiment, digest))

    def reserve_dp(self, policy: PlantPolicy, experiment: int, step: tuple[float, float, int], delta: float,
                   target_epsilon: float) -> tuple[list, float, float]:
        """Check and record one DP-SGD round before it runs (a failed round stays spent: conservative).

        The RDP curves of this experiment and of the plant's whole life are kept as running totals over
        Opacus's orders, so a check costs the same however long the ledger is (RDP composes by addition:
        Mironov 2017, Prop. 1). Returns (this experiment's steps, its epsilon at `delta`, the lifetime epsilon
        at the policy's delta), all including the new step."""
        from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

        from shared.privacy.accounting import ORDERS

        sigma, rate, steps = step
        added = np.asarray(compute_rdp(q=rate, noise_multiplier=sigma, steps=steps, orders=ORDERS), dtype=np.float64)
        scopes = ("lifetime", f"experiment:{experiment}")
        with self._ledger() as db:
            curves = {}
            for scope in scopes:
                row = db.execute("SELECT rdp FROM dp_rdp WHERE scope = ?", (scope,)).fetchone()
                curves[scope] = (np.asarray(json.loads(row[0])) if row else np.zeros(len(ORDERS))) + added
            total, _ = get_privacy_spent(orders=ORDERS, rdp=curves["lifetime"], delta=policy.dp_delta)
            if total > policy.lifetime_epsilon:
                raise PolicyRefusal(f"privacy budget exhausted: this round would bring the plant's lifetime epsilon "
                                    f"to {total:.3f} > its budget {policy.lifetime_epsilon} (all experiments, "
                                    f"delta {policy.dp_delta})")
            projected, _ = get_privacy_spent(orders=ORDERS, rdp=curves[scopes[1]], delta=delta)
            if projected > target_epsilon:
                raise PolicyRefusal(f"privacy budget exhausted: this round would bring the plant's epsilon for "
                                    f"experiment {experiment} to {projected:.3f} > target {target_epsilon} "
                                    f"(delta {delta})")
            for scope in scopes:
                db.execute("INSERT INTO dp_rdp VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET rdp = excluded.rdp",
                           (scope, json.dumps(curves[scope].tolist())))
            db.execute("INSERT INTO dp_ledger (experiment, noise_multiplier, sample_rate, steps, at) "
                       "VALUES (?, ?, ?, ?, ?)", (experiment, sigma, rate, steps, time.time()))
            mine = [(s_, q, n) for s_, q, n in db.execute(
                "SELECT noise_multiplier, sample_rate, steps FROM dp_ledger WHERE experiment = ? ORDER BY id",
                (experiment,))]
        return mine, float(projected), float(total)
