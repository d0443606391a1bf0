"""The federation administrator's folder: the key pair, the certificates issued (serials) and the current
revocation list. It lives on the administrator's machine, never on the dashboard's.

    federation_ed25519.pem       the private key (PKCS#8 PEM, mode 0600)
    federation_ed25519.pub.pem   its public half: the file each plant's data owner pins (--federation-key)
    issued.json                  every certificate issued, in order (the next serial follows the last)
    revocations.json             the newest revocation list (its serial grows by one per revocation)
    certificates/<plant>-<serial>.json
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.errors import MembershipError, ProtocolError
from shared.membership.documents import (MembershipCertificate, MembershipRequest, RevocationList, federation_id,
                                         public_pem)

PRIVATE_KEY_FILE = "federation_ed25519.pem"
PUBLIC_KEY_FILE = "federation_ed25519.pub.pem"
REQUEST_FILE = "membership_request.json"  # what a plant writes into its state folder for the administrator
DEFAULT_VALIDITY_DAYS = 365


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Atomically: a temporary file of `mode`, renamed over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MembershipError(f"{path}: no such {what} file") from None
    except (OSError, ValueError) as exc:
        raise MembershipError(f"{path}: cannot read the {what} ({exc})") from None


@dataclass(frozen=True)
class Administrator:
    directory: Path

    @property
    def private_key_path(self) -> Path:
        return self.directory / PRIVATE_KEY_FILE

    @property
    def public_key_path(self) -> Path:
        return self.directory / PUBLIC_KEY_FILE

    def keygen(self) -> Ed25519PrivateKey:
        """A new federation key; MembershipError when the folder already holds one (never overwritten)."""
        if self.private_key_path.exists():
            raise MembershipError(f"{self.private_key_path} exists: a federation has one key; remove the folder "
                                  "deliberately to start another federation")
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        key = Ed25519PrivateKey.generate()
        write_file(self.private_key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()), 0o600)
        write_file(self.public_key_path, public_pem(key), 0o644)
        return key

    def key(self) -> Ed25519PrivateKey:
        try:
            key = serialization.load_pem_private_key(self.private_key_path.read_bytes(), password=None)
        except FileNotFoundError:
            raise MembershipError(f"{self.private_key_path}: no federation key here (run keygen first)") from None
        except (ValueError, TypeError) as exc:
            raise MembershipError(f"{self.private_key_path}: not a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise MembershipError(f"{self.private_key_path}: not an Ed25519 key")
        return key

    def issued(self) -> list[dict]:
        path = self.directory / "issued.json"
        return read_json(path, "issued certificates") if path.exists() else []

    def revocations(self) -> RevocationList | None:
        path = self.directory / "revocations.json"
        return RevocationList.from_wire(read_json(path, "revocation list")) if path.exists() else None

    def admit(self, request: MembershipRequest, days: float = DEFAULT_VALIDITY_DAYS,
              now: float | None = None) -> tuple[MembershipCertificate, Path]:
        """Sign `request` into a certificate with the next serial; (certificate, the file it is written to)."""
        if not 0 < days <= 3650:
            raise MembershipError(f"--days {days}: a certificate is valid between 0 and 3650 days")
        key = self.key()
        issued = self.issued()
        serial = max((entry["serial"] for entry in issued), default=0) + 1
        start = int(now if now is not None else time.time())
        cert = MembershipCertificate.issue(key, request, serial, start, start + int(days * 86400))
        issued.append({"serial": serial, "plant": cert.plant, "identity_key": request.fingerprint,
                       "issued_at": cert.issued_at, "expires_at": cert.expires_at})
        write_file(self.directory / "issued.json", json.dumps(issued, indent=1).encode(), 0o600)
        folder = self.directory / "certificates"
        folder.mkdir(exist_ok=True)
        path = folder / f"{cert.plant}-{serial}.json"
        write_file(path, json.dumps(cert.to_wire(), indent=1).encode(), 0o644)
        return cert, path

    def revoke(self, serials: set[int] | None = None, plant: str | None = None,
               now: float | None = None) -> RevocationList:
        """A new revocation list (serial + 1) adding `serials` and every certificate issued to `plant`."""
        issued = self.issued()
        chosen = set(serials or ())
        if plant is not None:
            chosen |= {entry["serial"] for entry in issued if entry["plant"] == plant}
        known = {entry["serial"] for entry in issued}
        unknown = sorted(chosen - known)
        if unknown or not chosen:
            raise MembershipError(f"nothing to revoke: serial(s) {unknown} were never issued here" if unknown
                                  else f"no certificate was issued to {plant!r} here")
        current = self.revocations()
        revoked = set(current.revoked if current else ()) | chosen
        listing = RevocationList.issue(self.key(), (current.serial if current else 0) + 1,
                                       int(now if now is not None else time.time()), revoked)
        write_file(self.directory / "revocations.json", json.dumps(listing.to_wire(), indent=1).encode(), 0o644)
        return listing

    def federation(self) -> str:
        return federation_id(self.key())


def load_request(path: Path) -> MembershipRequest:
    try:
        return MembershipRequest.from_wire(read_json(path, "membership request"))
    except ProtocolError as exc:
        raise MembershipError(f"{path}: {exc}") from None
