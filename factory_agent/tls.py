"""The plant's TLS material (DESIGN §4): its datasite's key, the certificate the datasite serves and the
federation CA that signed it, all in the state folder (PlantState, files 0600).

- The key (EC P-256) is made once and never leaves the folder; every registration carries a certificate request
  (CSR) for it, and the dashboard's federation CA answers with `certificate_chain`: the plant's certificate
  (CN = plant name, SAN = its registered host), then the CA's.
- The datasite must serve TLS from its first second, and the dashboard may be unreachable at start (the agent
  serves anyway and registers later). So until a signed certificate is in the folder the datasite serves a
  provisional self-signed one, which only the agent itself trusts; nobody else logs in before the signed one
  arrives. A signed certificate from the last registration is served straight away after a restart.
- An answer's chain is checked (this plant's key, name and host, signed by the CA, serverAuth, in date) before it
  is written; the datasite picks the new file up without restarting (factory_agent.https_datasite).
- The agent registers again for a new certificate when less than a third of its validity is left.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import time
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from factory_agent.plant.state import PlantState
from shared.errors import SecurityError

log = logging.getLogger(__name__)

RENEW_WHEN_LEFT = 1 / 3  # of the certificate's validity
PROVISIONAL_VALIDITY = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=5)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _general_name(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        return x509.DNSName(hostname)


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def san_names(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in san.get_values_for_type(x509.DNSName) + san.get_values_for_type(x509.IPAddress)]


def self_signed(certificate: x509.Certificate) -> bool:
    return certificate.issuer == certificate.subject


class PlantTLS:
    """The datasite's TLS files for one plant name and registered host (`server_name`)."""

    def __init__(self, state: PlantState, plant_name: str, server_name: str):
        self.state = state
        self.plant_name = plant_name
        self.server_name = server_name
        self._key: ec.EllipticCurvePrivateKey | None = None

    # --- the key and the request --------------------------------------------------------------------
    def key(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            path = self.state.tls_key_path()
            if path.exists():
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise SecurityError(f"{path} is not an EC key: remove it to make a new one")
            else:
                key = ec.generate_private_key(ec.SECP256R1())
                self.state.save_tls_file(path, key.private_bytes(serialization.Encoding.PEM,
                                                                 serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
            self._key = key
        return self._key

    def certificate_request(self) -> str:
        """A CSR for the datasite's key. The CA decides what the certificate says (the name and host of the
        registration); the request names them too, for anyone who reads it."""
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.plant_name)]))
               .add_extension(x509.SubjectAlternativeName([_general_name(self.server_name)]), critical=False)
               .sign(self.key(), hashes.SHA256()))
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    # --- what the datasite serves -------------------------------------------------------------------
    def served(self) -> x509.Certificate | None:
        path = self.state.tls_certificate_path()
        if not path.exists():
            return None
        try:
            return x509.load_pem_x509_certificates(path.read_bytes())[0]
        except ValueError:
            return None

    def _fits(self, certificate: x509.Certificate, now: datetime) -> bool:
        """For this key, name and host, and in date."""
        return (certificate.public_key() == self.key().public_key() and common_name(certificate) == self.plant_name
                and self.server_name in san_names(certificate)
                and certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc)

    def prepare(self, now: datetime | None = None) -> str:
        """Before the datasite starts: keep the signed certificate of the last registration when it still fits this
        plant, else write a provisional self-signed one. Returns what will be served, for the log."""
        now = now or datetime.now(timezone.utc)
        current = self.served()
        if current is not None and not self_signed(current) and self.state.tls_ca_path().exists() \
                and self._fits(current, now):
            self._write_trust()
            return (f"the certificate signed by the federation CA at the last registration (valid until "
                    f"{current.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)")
        provisional = self._provisional(now)
        self.state.save_tls_file(self.state.tls_certificate_path(), _pem(provisional))
        self._write_trust(provisional)
        return ("a provisional self-signed certificate until the dashboard signs this plant's request "
                "(nobody but this agent logs in before that)")

    def _provisional(self, now: datetime) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.plant_name)])
        key = self.key()
        return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + PROVISIONAL_VALIDITY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([_general_name(self.server_name)]), critical=False)
                .sign(key, hashes.SHA256()))

    def _write_trust(self, provisional: x509.Certificate | None = None) -> None:
        """The agent's own logins trust the federation CA and the provisional certificate it may still be
        serving for a moment after a signed one is written (the datasite reloads within a second)."""
        ca_path = self.state.tls_ca_path()
        parts = [ca_path.read_bytes()] if ca_path.exists() else []
        if provisional is not None:
            parts.append(_pem(provisional))
        self.state.save_tls_file(self.state.tls_trust_path(), b"".join(parts))

    # --- the registration's answer ------------------------------------------------------------------
    def install(self, chain_pem: object, now: datetime | None = None) -> x509.Certificate:
        """Check the chain the dashboard answered with, then make it what the datasite serves."""
        now = now or datetime.now(timezone.utc)
        if not isinstance(chain_pem, str):
            raise SecurityError("the dashboard's certificate_chain is not PEM text")
        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode())
        except ValueError as exc:
            raise SecurityError(f"the dashboard's certificate_chain is not PEM certificates: {exc}") from None
        if len(chain) != 2:
            raise SecurityError(f"the dashboard's certificate_chain holds {len(chain)} certificates, not this "
                                "plant's and the federation CA's")
        leaf, ca = chain
        problems = []
        if leaf.public_key() != self.key().public_key():
            problems.append("it is not for this plant's key")
        if common_name(leaf) != self.plant_name:
            problems.append(f"its CN is {common_name(leaf)!r}, not {self.plant_name!r}")
        if self.server_name not in san_names(leaf):
            problems.append(f"it names {san_names(leaf)}, not {self.server_name!r}")
        if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
            problems.append(f"it is not valid now ({leaf.not_valid_before_utc} to {leaf.not_valid_after_utc})")
        try:
            constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
            if not constraints.ca:
                problems.append("the second certificate is not a CA")
            leaf.verify_directly_issued_by(ca)
        except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
            problems.append("it is not signed by the CA in the chain")
        if problems:
            raise SecurityError("the certificate the dashboard signed cannot be served: " + "; ".join(problems))
        ca_path = self.state.tls_ca_path()
        if ca_path.exists() and x509.load_pem_x509_certificate(ca_path.read_bytes()) != ca:
            log.warning("the federation CA changed (now %s): the dashboard made a new one", ca.subject.rfc4514_string())
        previous = self.served()
        self.state.save_tls_file(ca_path, _pem(ca))
        self._write_trust(previous if previous is not None and self_signed(previous) else None)
        self.state.save_tls_file(self.state.tls_certificate_path(), _pem(leaf) + _pem(ca))  # last: the datasite reloads
        return leaf

    # --- renewal ------------------------------------------------------------------------------------
    def needs_renewal(self, now: datetime | None = None) -> bool:
        """True when what is served is not signed by the federation CA, or less than a third of its validity is left."""
        now = now or datetime.now(timezone.utc)
        current = self.served()
        if current is None or self_signed(current):
            return True
        lifetime = current.not_valid_after_utc - current.not_valid_before_utc
        return current.not_valid_after_utc - now < lifetime * RENEW_WHEN_LEFT

    def wait_until_served(self, host: str, port: int, certificate: x509.Certificate, timeout: float = 10.0) -> bool:
        """Whether the datasite at host:port serves `certificate` within `timeout` s (it checks its file five times a
        second). Only the certificate is read here; nothing is sent."""
        deadline = time.monotonic() + timeout
        expected = certificate.public_bytes(serialization.Encoding.DER)
        while True:
            try:
                if served_certificate_der(host, port) == expected:
                    return True
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def served_certificate_der(host: str, port: int, timeout: float = 2.0) -> bytes:
    """The certificate a TLS server at host:port presents, unverified (to compare it with one we hold)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)
