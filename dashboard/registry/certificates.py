"""What the federation CA's certificates say (DESIGN §4), as functions over `cryptography` objects.

- The CA's own certificate: self-signed, BasicConstraints CA:true with path length 0 (it signs plants'
  certificates, never another CA).
- A plant's certificate request is checked before anything is signed: its signature verifies with the key it
  carries (the plant holds the key), on a key a TLS server may use. Its own subject and extensions are ignored.
- A plant's certificate: CN = the plant's name, SAN = the hostname it registered (DNS name or IP address) and
  a name that stands for this plant alone (`plant_dns_name`), ExtendedKeyUsage serverAuth, not a CA.

No file, key storage or configuration here: dashboard.registry.federation_ca keeps the CA and signs with these.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.errors import ValidationError

CA_VALIDITY = timedelta(days=3650)
CLOCK_SKEW = timedelta(minutes=5)  # a plant whose clock is a little behind still accepts a fresh certificate
MAX_CSR_CHARS = 8192
MAX_COMMON_NAME = 64  # X.509 upper bound of a common name (RFC 5280, ub-common-name)
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                       r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$")


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    chain_pem: str  # the leaf, then the CA: what the plant serves and what it answers with

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it (without colons)."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def subject_alt_name(hostname: str) -> x509.GeneralName:
    """The SAN entry for a registered hostname: an IP address when it is one, else a DNS name (no wildcard)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    if not _DNS_NAME.match(hostname):
        raise ValidationError("factory_hostname", f"{hostname[:80]!r} is neither an IP address nor a DNS name "
                                                  "a certificate can name (letters, digits, '-', '_' and dots)")
    return x509.DNSName(hostname)


def check_common_name(plant_name: str) -> None:
    if not plant_name or len(plant_name) > MAX_COMMON_NAME:
        raise ValidationError("factory_name", f"a plant with a TLS certificate has a name of 1 to {MAX_COMMON_NAME} "
                                              "characters (an X.509 common name)")


def parse_certificate_request(pem: object) -> x509.CertificateSigningRequest:
    """A PEM certificate request whose signature verifies with its own key, on a key a TLS server may use."""
    if not isinstance(pem, str) or not pem.strip():
        raise ValidationError("certificate_request", "must be a PEM certificate request (text)")
    if len(pem) > MAX_CSR_CHARS:
        raise ValidationError("certificate_request", f"must be at most {MAX_CSR_CHARS} characters")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise ValidationError("certificate_request", "is not a PEM certificate request "
                                                     "(-----BEGIN CERTIFICATE REQUEST-----)") from None
    if not csr.is_signature_valid:
        raise ValidationError("certificate_request", "its signature does not verify with the key it carries: the "
                                                     "request was altered, or not made with that key")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, (ec.SECP256R1, ec.SECP384R1)):
            raise ValidationError("certificate_request", f"EC key on {key.curve.name}: use P-256 or P-384")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValidationError("certificate_request", f"RSA key of {key.key_size} bits: use at least 2048")
    else:
        raise ValidationError("certificate_request", f"{type(key).__name__} keys are not accepted: use EC P-256")
    return csr


def plant_dns_name(plant_name: str) -> str:
    """The DNS name that stands for one plant in its certificate: a hash of the name (plant names are case-
    sensitive and may hold '_', DNS names are neither), under the reserved .invalid domain."""
    digest = base64.b32encode(hashlib.sha256(plant_name.encode()).digest()).decode().rstrip("=").lower()
    return f"p-{digest[:40]}.plant.factoryfl.invalid"


def self_signed_ca_certificate(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    """The federation CA's own certificate: signs certificates (path length 0), valid CA_VALIDITY."""
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FactoryFL"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"FactoryFL federation CA {secrets.token_hex(4)}")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))


def plant_certificate(ca_certificate: x509.Certificate, ca_key, csr: x509.CertificateSigningRequest,
                      plant_name: str, names: list[x509.GeneralName], now: datetime,
                      not_after: datetime) -> IssuedCertificate:
    """The plant's leaf signed by the CA's key: CN = plant_name, SAN = `names`, serverAuth, not a CA; with its
    chain (the leaf, then the CA's certificate)."""
    public_key = csr.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FactoryFL plant"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, plant_name)]))
        .issuer_name(ca_certificate.subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
    chain = (certificate.public_bytes(serialization.Encoding.PEM).decode()
             + ca_certificate.public_bytes(serialization.Encoding.PEM).decode())
    return IssuedCertificate(certificate, chain)
