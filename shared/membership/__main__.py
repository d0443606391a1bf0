"""The federation administrator's CLI (not part of the dashboard; run it where the federation key is kept):

    python -m shared.membership keygen --dir ADMIN_DIR
    python -m shared.membership admit  --dir ADMIN_DIR --request PLANT_STATE/membership_request.json [--days 365]
                                       [--wait SECONDS] [--upload DASHBOARD_URL]
    python -m shared.membership revoke --dir ADMIN_DIR (--serial N ... | --plant NAME) [--upload DASHBOARD_URL]
    python -m shared.membership show   FILE [--federation-key ADMIN_DIR/federation_ed25519.pub.pem]

Each error is one line on stderr and exit code 1 (2 for a usage error, argparse's).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from shared.errors import FederatedLearningError, MembershipError
from shared.identity import fingerprint
from shared.membership.admin import Administrator, load_request, read_json
from shared.membership.documents import (MembershipCertificate, RevocationList, document_from_wire, federation_id,
                                         load_public_pem)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shared.membership",
                                description="The federation administrator's membership key: admit and revoke plants.")
    sub = p.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make the federation key (private file 0600, public file to hand out)")
    keygen.add_argument("--dir", required=True, type=Path, help="the administrator's folder")
    admit = sub.add_parser("admit", help="sign a plant's membership request into its certificate")
    admit.add_argument("--dir", required=True, type=Path)
    admit.add_argument("--request", required=True, type=Path,
                       help="the plant's membership_request.json (from its state folder, out of band)")
    admit.add_argument("--days", type=float, default=365.0, help="validity in days")
    admit.add_argument("--wait", type=float, default=0.0,
                       help="seconds to wait for the request file to appear (a plant writes it at its start)")
    admit.add_argument("--upload", metavar="DASHBOARD_URL",
                       help="hand the certificate to this dashboard, which relays it (token: DASHBOARD_API_TOKEN)")
    revoke = sub.add_parser("revoke", help="add certificates to the revocation list (its serial grows by one)")
    revoke.add_argument("--dir", required=True, type=Path)
    revoke.add_argument("--serial", type=int, action="append", default=[], help="a certificate serial (repeatable)")
    revoke.add_argument("--plant", help="every certificate issued to this plant")
    revoke.add_argument("--upload", metavar="DASHBOARD_URL", help="hand the new list to this dashboard")
    show = sub.add_parser("show", help="print a certificate, revocation list or membership request")
    show.add_argument("file", type=Path)
    show.add_argument("--federation-key", type=Path, help="check the signature against this public key file")
    return p


def _show(path: Path, key_path: Path | None) -> str:
    document = document_from_wire(read_json(path, "membership document"))
    lines = [f"{type(document).__name__} ({path})"]
    for name, value in document.to_wire().items():
        if name in ("issued_at", "expires_at"):
            value = f"{value} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(value))})"
        elif name.endswith("public_key"):
            value = f"{value} (fingerprint {fingerprint(value)})"
        lines.append(f"  {name}: {value}")
    if key_path is not None and isinstance(document, (MembershipCertificate, RevocationList)):
        key = load_public_pem(key_path.read_bytes(), str(key_path))
        if not document.signed_by(key):
            raise MembershipError(f"{path}: NOT signed by the federation key {federation_id(key)} in {key_path}")
        lines.append(f"  signature: valid, federation key {federation_id(key)}")
    return "\n".join(lines)


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(1)


def upload(dashboard_url: str, kind: str, wire: dict) -> None:
    """POST a signed document to the dashboard's relay (/api/membership/<kind>) with an admin API token."""
    import os

    import requests

    token = os.environ.get("DASHBOARD_API_TOKEN")
    if not token:
        raise MembershipError("--upload needs DASHBOARD_API_TOKEN (an admin's API token) in the environment")
    try:
        resp = requests.post(f"{dashboard_url.rstrip('/')}/api/membership/{kind}", json=wire, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})
    except requests.RequestException as exc:
        raise MembershipError(f"--upload {dashboard_url}: {exc}") from None
    if resp.status_code != 201:
        raise MembershipError(f"--upload {dashboard_url}: the dashboard answered {resp.status_code}: {resp.text[:300]}")


def run(argv: list[str] | None = None) -> str:
    a = build_parser().parse_args(argv)
    if a.command == "show":
        return _show(a.file, a.federation_key)
    admin = Administrator(a.dir)
    if a.command == "keygen":
        key = admin.keygen()
        return (f"federation key {federation_id(key)}: private {admin.private_key_path} (mode 0600, keep it off the "
                f"dashboard), public {admin.public_key_path} (hand it to each plant's data owner: --federation-key)")
    if a.command == "admit":
        _wait_for(a.request, a.wait)
        request = load_request(a.request)
        cert, path = admin.admit(request, a.days)
        if a.upload:
            upload(a.upload, "certificates", cert.to_wire())
        return (f"admitted {cert.plant} (identity key fingerprint {request.fingerprint}: compare it with the one "
                f"the plant logged) as serial {cert.serial}, valid until "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(cert.expires_at))}; certificate {path}")
    listing = admin.revoke(set(a.serial), a.plant)
    if a.upload:
        upload(a.upload, "revocations", listing.to_wire())
    return (f"revocation list {listing.serial}: revoked serial(s) {list(listing.revoked)}; "
            f"{a.dir / 'revocations.json'} (upload it to the dashboard, which relays it to the plants)")


def main(argv: list[str] | None = None) -> int:
    try:
        print(run(argv))
    except (FederatedLearningError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
