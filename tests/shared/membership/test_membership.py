"""Membership certificates and revocation lists (shared.membership): what checks and what does not."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.errors import MembershipError, ProtocolError
from shared.membership import MembershipCertificate, MembershipRequest, RevocationList, check_cohort
from shared.membership.__main__ import main
from shared.membership.admin import Administrator
from shared.secagg.keys import public_hex

NOW = 1_800_000_000


def _request(name):
    identity = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    return MembershipRequest(name, identity, public_hex(X25519PrivateKey.generate()))


@pytest.fixture
def federation(tmp_path):
    admin = Administrator(tmp_path / "admin")
    key = admin.keygen()
    requests = {n: _request(n) for n in ("a", "b", "c")}
    certs = {n: admin.admit(r, now=NOW)[0] for n, r in requests.items()}
    return admin, key, requests, certs


def _check(key, certs, requests, revocations=None, now=NOW + 10, me="a"):
    participants = {n: r.secagg_public_key for n, r in requests.items()}
    check_cohort(key.public_key(), participants, certs, revocations, now, me, requests[me].identity_public_key)


def test_a_cohort_of_admitted_members_checks(federation):
    admin, key, requests, certs = federation
    _check(key, certs, requests)


def test_a_certificate_signed_by_another_federation_key_is_refused(federation):
    admin, key, requests, certs = federation
    forged = MembershipCertificate.issue(Ed25519PrivateKey.generate(), requests["b"], 2, NOW, NOW + 100)
    with pytest.raises(MembershipError, match="'b'.*federation"):
        _check(key, {**certs, "b": forged}, requests)


def test_a_swapped_key_or_a_changed_field_is_refused(federation):
    admin, key, requests, certs = federation
    swapped = {**requests, "b": MembershipRequest("b", requests["b"].identity_public_key, "11" * 32)}
    with pytest.raises(MembershipError, match="another secure-aggregation key"):
        _check(key, certs, swapped)
    edited = MembershipCertificate.from_wire({**certs["b"].to_wire(), "expires_at": NOW + 10 ** 8})
    with pytest.raises(MembershipError, match="not signed"):
        _check(key, {**certs, "b": edited}, requests)


def test_a_missing_expired_or_revoked_certificate_is_refused(federation):
    admin, key, requests, certs = federation
    with pytest.raises(MembershipError, match="no membership certificate"):
        _check(key, {n: c for n, c in certs.items() if n != "c"}, requests)
    with pytest.raises(MembershipError, match="not valid now"):
        _check(key, certs, requests, now=NOW + 366 * 86400)
    listing = admin.revoke(plant="c", now=NOW)
    with pytest.raises(MembershipError, match="revoked"):
        _check(key, certs, requests, listing)


def test_a_certificate_is_not_a_revocation_list_and_malformed_wire_forms_are_refused(federation):
    admin, key, requests, certs = federation
    assert not RevocationList(certs["a"].federation, 1, NOW, (), certs["a"].signature).signed_by(key.public_key())
    with pytest.raises(ProtocolError):
        MembershipCertificate.from_wire({**certs["a"].to_wire(), "plant": "../x"})
    with pytest.raises(ProtocolError):
        MembershipCertificate.from_wire({**certs["a"].to_wire(), "extra": 1})


def test_the_cli_makes_a_0600_key_admits_revokes_and_fails_with_exit_code_1(tmp_path, capsys):
    folder = tmp_path / "fed"
    assert main(["keygen", "--dir", str(folder)]) == 0
    assert (folder / "federation_ed25519.pem").stat().st_mode & 0o777 == 0o600
    assert main(["keygen", "--dir", str(folder)]) == 1
    request = tmp_path / "req.json"
    request.write_text(json.dumps(_request("plant_x").to_wire()))
    assert main(["admit", "--dir", str(folder), "--request", str(request)]) == 0
    cert = folder / "certificates" / "plant_x-1.json"
    assert main(["show", str(cert), "--federation-key", str(folder / "federation_ed25519.pub.pem")]) == 0
    assert main(["revoke", "--dir", str(folder), "--serial", "7"]) == 1
    assert main(["revoke", "--dir", str(folder), "--plant", "plant_x"]) == 0
    assert "error:" in capsys.readouterr().err
