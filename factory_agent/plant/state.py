"""`PlantState`: the one owner of the plant's state folder (mode 0700, files 0600).

What lives there: the datasite's generated passwords and identity, its TLS key and certificate (with the
federation CA that signed it), the plant's Ed25519 identity key (signs its registrations), the secure-aggregation
X25519 key, the effective policy and the plant's profile (name, feature names), FedDyn's and SCAFFOLD's per-experiment terms,
and the ledgers the policy needs, in one SQLite file so that every check-and-record is one transaction even
when PySyft runs calls concurrently: calls (rate caps), masks (one masking per experiment:round:attempt, with
the setup it masked under), reveals (one survivor list per attempt), pinned model inputs per experiment, and
the DP-SGD ledger across all experiments (the lifetime budget): those are factory_agent.plant.ledgers.

Every path in the folder is named by a function below (policy_file, released_models_dir, ...), so the modules
that keep their own files there (policy, personal models, the floor, PySyft's store) build none themselves.

The agent creates it from its --state-dir; code inside the datasite finds the same folder through
FACTORYFL_STATE_DIR, which the agent sets before PySyft forks its server.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from factory_agent.plant.federation_pin import FEDERATION_KEY_FILE, MEMBERSHIP_REQUEST_FILE, FederationPin  # noqa: F401
from factory_agent.plant.ledgers import PlantLedgers
from factory_agent.plant.policy import PlantPolicy
from shared.errors import ConfigurationError, SecurityError

STATE_DIR_ENV = "FACTORYFL_STATE_DIR"
BUSY_FILE_ENV = "FACTORYFL_BUSY_FILE"  # set by the agent: the datasite marks the plant busy while it works
BYZANTINE_ENV = "FACTORYFL_BYZANTINE"  # --byzantine (tests and demos only)
LOG_FILE_ENV = "FACTORYFL_LOG_FILE"  # the agent's log: PySyft spawns its server, which inherits no logging set-up
KEY_FILE = "secagg_x25519.pem"
IDENTITY_KEY_FILE = "identity_ed25519.pem"  # the plant's long-term identity: signs its registrations (DESIGN §4)
FEDDYN_KEPT = 32  # FedDyn / SCAFFOLD terms of the most recent experiments; older ones are deleted (bounded disk)


# --- the folder's layout: every path in it is named here, for the modules that keep their own files there ----
def policy_file(directory: Path) -> Path:
    """The operator's `policy.yaml` (factory_agent.plant.policy.load_policy reads it)."""
    return Path(directory) / "policy.yaml"


def personal_models_dir(directory: Path) -> Path:
    """The personalized and local-only models of each experiment (factory_agent.plant.personal)."""
    return Path(directory) / "personal"


def released_models_dir(directory: Path) -> Path:
    """The released models the plant floor scores with (factory_agent.floor)."""
    return Path(directory) / "models"


def floor_database(directory: Path) -> Path:
    """The plant floor's scores, alerts and drift (factory_agent.floor.store)."""
    return Path(directory) / "floor.sqlite"


def verified_models_dir(directory: Path) -> Path:
    """The chain of global models this plant derived itself, per experiment (factory_agent.plant.chain_store)."""
    return Path(directory) / "verified"


def datasite_dir(directory: Path) -> Path:
    """PySyft's database and blobs (SYFT_TEMP_ROOT, factory_agent.datasite): the plant's private data."""
    return Path(directory) / "datasite"


def busy_file(directory: Path) -> Path:
    """Present while the datasite works on a request (the agent's heartbeat reports it busy)."""
    return Path(directory) / "busy"


def write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def new_password() -> str:
    # mixed classes so any password policy accepts it
    return "Ff1!" + secrets.token_urlsafe(24)


class PlantState(PlantLedgers, FederationPin):
    """The plant's state folder: its keys, credentials, TLS files, policy and profile, FedDyn terms, and
    the ledgers (factory_agent.plant.ledgers) in `ledger.sqlite`."""

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
        write_private(self.credentials_path, json.dumps(creds, indent=2).encode())

    @staticmethod
    def _key(path: Path, kind):
        """The private key in `path`, made once (PKCS#8 PEM, mode 0600) when the file does not exist yet."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, kind):
                raise SecurityError(f"{path} is not an {kind.__name__.removesuffix('PrivateKey')} key")
            return key
        key = kind.generate()
        write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
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
            write_private(path, json.dumps(identity).encode())
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
        write_private(path, data)

    # --- policy and profile (written by the agent, read by fl_step) --------------------------------
    def save_policy(self, policy: PlantPolicy) -> None:
        write_private(self.directory / "policy.json", json.dumps(policy.to_dict()).encode())

    def policy(self) -> PlantPolicy:
        path = self.directory / "policy.json"
        return PlantPolicy.from_dict(json.loads(path.read_text())) if path.exists() else PlantPolicy()

    def save_profile(self, name: str, features: list[str]) -> None:
        write_private(self.directory / "profile.json", json.dumps({"name": name, "features": features}).encode())

    def profile(self) -> tuple[str, list[str]]:
        """(this plant's name, its own encoded feature names): never taken from a request."""
        path = self.directory / "profile.json"
        if not path.exists():
            raise ConfigurationError("the plant's profile is not written yet (the agent writes it at start)")
        d = json.loads(path.read_text())
        return d["name"], list(d["features"])

    # --- per-experiment training terms: the id is an integer before it is a path ------------------------
    def _term_path(self, kind: str, experiment: int) -> Path:
        if isinstance(experiment, bool) or not isinstance(experiment, int) or experiment < 0:
            raise SecurityError(f"experiment id {experiment!r} is not a non-negative integer")
        folder = self.directory / kind
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / f"experiment-{experiment}.npz"

    def _save_term(self, kind: str, experiment: int, arrays: dict[str, np.ndarray]) -> None:
        path = self._term_path(kind, experiment)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        kept = sorted(path.parent.glob("experiment-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[FEDDYN_KEPT:]:  # any number of experiment ids, a bounded folder
            old.unlink(missing_ok=True)

    def feddyn_term(self, experiment: int) -> dict[str, np.ndarray]:
        """FedDyn's lambda_k (Acar et al. 2021) as this plant left it."""
        path = self._term_path("feddyn", experiment)
        return dict(np.load(path)) if path.exists() else {}

    def save_feddyn_term(self, experiment: int, term: dict[str, np.ndarray]) -> None:
        self._save_term("feddyn", experiment, term)

    def scaffold_control(self, experiment: int, round_number: int) -> dict[str, np.ndarray]:
        """SCAFFOLD's c_i (Karimireddy et al. 2020) to start `round_number` from, {} before any: the c_i this
        plant ended its last earlier round with. Another attempt of a round starts again from what that round
        started from: the first attempt's c_i+ never reached the server's c. It never leaves the plant."""
        path = self._term_path("scaffold", experiment)
        if not path.exists():
            return {}
        stored = dict(np.load(path))
        prefix = "start/" if int(stored.pop("round")) >= round_number else "next/"
        return {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)}

    def save_scaffold_control(self, experiment: int, round_number: int, start: dict[str, np.ndarray],
                              after: dict[str, np.ndarray]) -> None:
        """The c_i `round_number` started from and the one it ended with."""
        arrays = {"round": np.array(round_number), **{f"start/{k}": v for k, v in start.items()},
                  **{f"next/{k}": v for k, v in after.items()}}
        self._save_term("scaffold", experiment, arrays)

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
