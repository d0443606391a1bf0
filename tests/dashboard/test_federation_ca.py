"""The federation CA (dashboard/registry/federation_ca.py): made once, key encrypted at rest, signs what it should."""

import ipaddress
import os
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from shared.errors import ValidationError
from dashboard.registry.federation_ca import CERT_FILE, KEY_FILE, FederationCA, FederationCAUnavailable
from dashboard.registry.certificates import fingerprint
from tests.dashboard.conftest import register, registration

KEY = Fernet.generate_key().decode()
MONTH = timedelta(days=30)


def csr_pem(key=None, name="plant_a") -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def tampered_csr_pem() -> str:
    """A well-formed request whose signature no longer matches its content (one byte of the signature flipped)."""
    der = bytearray(x509.load_pem_x509_csr(csr_pem().encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    tampered = x509.load_der_x509_csr(bytes(der))
    assert not tampered.is_signature_valid
    return tampered.public_bytes(serialization.Encoding.PEM).decode()


def verify_for(ca: FederationCA, leaf: x509.Certificate, name: x509.GeneralName, when: datetime | None = None):
    """Full path validation as a TLS client does it (RFC 5280 + CA/B rules): chain, SAN, serverAuth, dates."""
    verifier = (PolicyBuilder().store(Store([ca.certificate])).time(when or datetime.now(timezone.utc))
                .build_server_verifier(name))
    return verifier.verify(leaf, [])


@pytest.fixture()
def ca(tmp_path):
    return FederationCA.open(tmp_path / "ca", KEY)


def test_the_ca_is_made_once_with_ca_true_and_path_length_zero(ca, tmp_path):
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert isinstance(ca.certificate.public_key(), ec.EllipticCurvePublicKey)
    again = FederationCA.open(tmp_path / "ca", KEY)
    assert fingerprint(again.certificate) == fingerprint(ca.certificate)


def test_the_ca_key_is_encrypted_at_rest_with_the_credentials_key(ca, tmp_path):
    stored = (tmp_path / "ca" / KEY_FILE).read_bytes()
    assert b"PRIVATE KEY" not in stored and not stored.startswith(b"-----BEGIN")
    with pytest.raises((ValueError, TypeError)):
        serialization.load_pem_private_key(stored, password=None)
    assert oct(os.stat(tmp_path / "ca" / KEY_FILE).st_mode & 0o777) == "0o600"
    key = serialization.load_pem_private_key(Fernet(KEY.encode()).decrypt(stored), password=None)
    assert key.public_key() == ca.certificate.public_key()


def test_a_wrong_credentials_key_cannot_sign_and_says_why(tmp_path, ca):
    other = FederationCA.open(tmp_path / "ca", Fernet.generate_key().decode())
    assert fingerprint(other.certificate) == fingerprint(ca.certificate)  # verifying needs no key
    with pytest.raises(FederationCAUnavailable, match="does not decrypt with this CREDENTIALS_KEY"):
        other.issue(csr_pem(), "plant_a", "localhost", MONTH)


def test_processes_starting_together_make_one_ca(tmp_path):
    made, errors = [], []

    def start():
        try:
            made.append(fingerprint(FederationCA.open(tmp_path / "shared", KEY).certificate))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(made) == 6 and len(set(made)) == 1
    assert sorted(os.listdir(tmp_path / "shared")) == [CERT_FILE, KEY_FILE]


def test_an_issued_certificate_verifies_against_the_ca_for_the_plants_host_with_its_name(ca):
    key = ec.generate_private_key(ec.SECP256R1())
    issued = ca.issue(csr_pem(key), "plant_a", "plant-a.example.org", MONTH)
    leaf = issued.certificate
    chain = verify_for(ca, leaf, x509.DNSName("plant-a.example.org"))
    assert chain[0] == leaf and chain[-1] == ca.certificate
    assert leaf.public_key() == key.public_key()
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "plant_a"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    from dashboard.registry.certificates import plant_dns_name

    # the host, and a name only this plant's certificate carries (what the dashboard verifies)
    assert san.get_values_for_type(x509.DNSName) == ["plant-a.example.org", plant_dns_name("plant_a")]
    assert not san.get_values_for_type(x509.IPAddress)
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH])
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert MONTH <= lifetime <= MONTH + timedelta(minutes=10)
    assert x509.load_pem_x509_certificates(issued.chain_pem.encode()) == [leaf, ca.certificate]


def test_the_certificate_is_only_good_for_the_registered_host_and_not_after_it_expires(ca):
    leaf = ca.issue(csr_pem(), "plant_a", "plant-a.example.org", MONTH).certificate
    with pytest.raises(VerificationError):
        verify_for(ca, leaf, x509.DNSName("plant-b.example.org"))
    later = datetime.now(timezone.utc) + MONTH + timedelta(days=1)
    with pytest.raises(VerificationError):
        verify_for(ca, leaf, x509.DNSName("plant-a.example.org"), later)


def test_an_ip_address_host_is_an_ip_san(ca):
    leaf = ca.issue(csr_pem(), "plant_a", "10.1.2.3", MONTH).certificate
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    from dashboard.registry.certificates import plant_dns_name

    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert san.get_values_for_type(x509.DNSName) == [plant_dns_name("plant_a")]
    verify_for(ca, leaf, x509.IPAddress(ipaddress.ip_address("10.1.2.3")))


def test_the_request_decides_nothing_but_the_key(ca):
    """A CSR asking for another name, another host and CA:true gets the registration's name and host, never a CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    greedy = (x509.CertificateSigningRequestBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FactoryFL federation CA")]))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("dashboard.example.org")]), critical=False)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    leaf = ca.issue(greedy, "plant_a", "plant-a.example.org", MONTH).certificate
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "plant_a"
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)[0] == "plant-a.example.org"
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize("request_pem, words", [
    (None, "PEM certificate request (text)"),
    ("not a request", "is not a PEM certificate request"),
    ("TAMPERED", "signature does not verify"),
])
def test_a_request_that_is_not_a_valid_csr_is_refused(ca, request_pem, words):
    with pytest.raises(ValidationError, match=re.escape(words)) as refused:
        ca.issue(tampered_csr_pem() if request_pem == "TAMPERED" else request_pem, "plant_a", "localhost", MONTH)
    assert refused.value.field == "certificate_request"


def test_a_host_a_certificate_cannot_name_is_refused(ca):
    for host in ("*.example.org", "exa mple.org", "plänt.example.org", ""):
        with pytest.raises(ValidationError) as refused:
            ca.issue(csr_pem(), "plant_a", host, MONTH)
        assert refused.value.field == "factory_hostname"


# --- through the registration API ---------------------------------------------------------------------------

def test_registration_answers_the_signed_chain_of_the_dashboards_ca(app, client):
    resp = register(client)
    assert resp.status_code == 201, resp.get_json()
    chain = x509.load_pem_x509_certificates(resp.get_json()["certificate_chain"].encode())
    ca = FederationCA.open(app.config["DASHBOARD_CA_DIR"], app.config["CREDENTIALS_KEY"], create=False)
    assert chain[1] == ca.certificate
    verify_for(ca, chain[0], x509.DNSName("localhost"))
    expected_key = x509.load_pem_x509_csr(registration()["certificate_request"].encode()).public_key()
    assert chain[0].public_key() == expected_key


def test_registration_with_a_tampered_request_is_a_400_and_registers_nothing(client, api):
    resp = register(client, certificate_request=tampered_csr_pem())
    assert resp.status_code == 400
    assert resp.get_json()["detail"]["field"] == "certificate_request"
    assert "signature does not verify" in resp.get_json()["error"]
    assert client.get("/factories", headers=api).get_json() == []


def test_registration_without_a_request_is_refused_unless_plain_http_is_allowed(app, client, api):
    resp = register(client, certificate_request=None)
    assert resp.status_code == 400 and "DASHBOARD_REQUIRE_TLS" in resp.get_json()["error"]
    app.config["DASHBOARD_REQUIRE_TLS"] = False
    resp = register(client, certificate_request=None)
    assert resp.status_code == 201 and "certificate_chain" not in resp.get_json()
    from dashboard.extensions import db
    from dashboard.models import Factory
    from dashboard.orchestration.syft_clients import transport_of

    with app.app_context():
        assert transport_of(db.session.scalar(db.select(Factory).filter_by(name="plant_a"))) == "http"


def test_the_cli_prints_the_ca_and_signs_a_request_for_a_configured_plant(app, tmp_path):
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["federation-ca", "show"])
    assert shown.exit_code == 0, shown.output
    ca = x509.load_pem_x509_certificate(shown.stdout.encode())
    (tmp_path / "remote.csr").write_text(csr_pem(name="anything"))
    signed = runner.invoke(args=["federation-ca", "sign", "plant_remote", "10.0.0.5", str(tmp_path / "remote.csr")])
    assert signed.exit_code == 0, signed.output
    leaf, issuer = x509.load_pem_x509_certificates(signed.stdout.encode())
    assert issuer == ca and leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "plant_remote"
    (tmp_path / "bad.csr").write_text(tampered_csr_pem())
    refused = runner.invoke(args=["federation-ca", "sign", "plant_remote", "10.0.0.5", str(tmp_path / "bad.csr")])
    assert refused.exit_code != 0 and "signature does not verify" in refused.output



def test_a_certificate_issued_to_another_plant_at_the_same_host_does_not_name_this_plant(ca):
    from dashboard.registry.certificates import plant_dns_name

    evil = ca.issue(csr_pem(), "evil", "plant-a.example.org", MONTH).certificate  # same host as plant_a
    verify_for(ca, evil, x509.DNSName("plant-a.example.org"))  # the host alone would be satisfied...
    with pytest.raises(Exception):
        verify_for(ca, evil, x509.DNSName(plant_dns_name("plant_a")))  # ...the dashboard checks the plant's name
    assert plant_dns_name("plant_a") != plant_dns_name("Plant_A")  # case-sensitive names stay apart
