"""The agent's state folder: generated passwords and the plant's X25519 key pair, files mode 0600."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.errors import ConfigurationError


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def new_password() -> str:
    # mixed classes so any password policy accepts it
    return "Ff1!" + secrets.token_urlsafe(24)


class AgentState:
    def __init__(self, directory: Path):
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        except OSError as exc:
            raise ConfigurationError(f"cannot use state folder {str(directory)!r}: {exc.strerror}") from exc
        self.credentials_path = directory / "credentials.json"
        self.key_path = directory / "secagg_x25519.pem"

    def credentials(self) -> dict:
        if self.credentials_path.exists():
            return json.loads(self.credentials_path.read_text())
        return {}

    def save_credentials(self, creds: dict) -> None:
        _write_private(self.credentials_path, json.dumps(creds, indent=2).encode())

    def secagg_public_key(self) -> str:
        """Hex of the plant's X25519 public key; the private key is created once and stays here."""
        if self.key_path.exists():
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        else:
            key = X25519PrivateKey.generate()
            _write_private(self.key_path, key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
        return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

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
