"""The federation CA (DESIGN §4, §8): the dashboard's own certificate authority, which signs each plant's TLS
certificate at enrolment so that the dashboard can verify every datasite it logs into.

- One EC P-256 key and a self-signed CA certificate (BasicConstraints CA:true, path length 0: it signs plants'
  certificates, never another CA), made with `cryptography` on first start in DASHBOARD_CA_DIR (default
  `instance/federation_ca/`): `ca.crt` (public) and `ca.key.enc`, the PKCS#8 key encrypted with the dashboard's
  CREDENTIALS_KEY (Fernet, like the orchestrator passwords it keeps), never a plain PEM private key on disk.
- A plant sends a certificate request (CSR) with its registration. The CA checks the request's signature (the
  plant holds the key) and issues a short-lived leaf: CN = the plant's name, SAN = the hostname it registered
  (DNS name or IP address), ExtendedKeyUsage serverAuth, not a CA. The request's own subject and extensions are
  ignored: the dashboard decides what the certificate says.
- Processes that only verify datasites (the scheduler, `flask factories check`) read `ca.crt` alone and never
  need the key. Several processes may start at once: the first to create `ca.key.enc` (O_EXCL) makes the CA,
  the others wait for its `ca.crt`.

What the certificates say is in dashboard.registry.certificates; `flask --app dashboard federation-ca` in
dashboard.cli.federation_ca.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dashboard.registry.certificates import (IssuedCertificate, check_common_name, fingerprint, parse_certificate_request,
                                          plant_certificate, plant_dns_name, self_signed_ca_certificate,
                                          subject_alt_name)
from shared.errors import ValidationError
from dashboard.errors import FederationCAUnavailable

log = logging.getLogger(__name__)

CERT_FILE, KEY_FILE = "ca.crt", "ca.key.enc"
CREATION_WAIT_S = 15.0


class FederationCA:
    """The CA's certificate, and its key encrypted under CREDENTIALS_KEY (decrypted only while signing)."""

    def __init__(self, directory: Path, certificate: x509.Certificate, credentials_key: str | None):
        self.directory = Path(directory)
        self.certificate = certificate
        self._credentials_key = credentials_key

    # --- files -----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | Path, credentials_key: str | None, *, create: bool = True) -> "FederationCA":
        """The CA in `directory`, made there first when it has none and `create` is true."""
        directory = Path(directory)
        cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
        if not cert_path.exists():
            if not create:
                raise FederationCAUnavailable(f"no federation CA in {str(directory)!r}: start the dashboard once to "
                                              "make it, or point DASHBOARD_CA_DIR at the dashboard's")
            if not credentials_key:
                raise FederationCAUnavailable("CREDENTIALS_KEY is not set: it encrypts the federation CA's key")
            cls._create(directory, credentials_key)
        return cls(directory, cls._read_certificate(cert_path, key_path), credentials_key)

    @staticmethod
    def _read_certificate(cert_path: Path, key_path: Path) -> x509.Certificate:
        deadline = time.monotonic() + CREATION_WAIT_S
        while not cert_path.exists():  # another process made the key and is writing the certificate
            if time.monotonic() > deadline:
                raise FederationCAUnavailable(f"{key_path} exists without {cert_path.name}: a CA creation was "
                                              f"interrupted; remove {str(key_path.parent)!r} and restart")
            time.sleep(0.1)
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as exc:
            raise FederationCAUnavailable(f"{cert_path} is not a PEM certificate") from exc
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            raise FederationCAUnavailable(f"{cert_path} is not a CA certificate")
        return certificate

    @classmethod
    def _create(cls, directory: Path, credentials_key: str) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            fd = os.open(directory / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process is making it: _read_certificate waits for its certificate
        except OSError as exc:
            raise FederationCAUnavailable(f"cannot create the federation CA in {str(directory)!r}: "
                                          f"{exc.strerror}") from exc
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet(credentials_key.encode()).encrypt(pem))
            fh.flush()
            os.fsync(fh.fileno())
        certificate = self_signed_ca_certificate(key, datetime.now(timezone.utc))
        tmp = directory / (CERT_FILE + ".tmp")
        tmp.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        tmp.replace(directory / CERT_FILE)  # last: its presence says the CA is complete
        log.warning("made the federation CA in %s (SHA-256 %s); its key is encrypted with CREDENTIALS_KEY: keep "
                    "both (a new CA means every plant must enrol again)", directory, fingerprint(certificate))

    def _private_key(self) -> ec.EllipticCurvePrivateKey:
        if not self._credentials_key:
            raise FederationCAUnavailable("CREDENTIALS_KEY is not set: the federation CA's key cannot be decrypted")
        try:
            pem = Fernet(self._credentials_key.encode()).decrypt((self.directory / KEY_FILE).read_bytes())
        except InvalidToken:
            raise FederationCAUnavailable(f"the federation CA's key in {self.directory} does not decrypt with this "
                                          "CREDENTIALS_KEY (was the key changed? the CA needs the one it was made "
                                          "with)") from None
        except OSError as exc:
            raise FederationCAUnavailable(f"cannot read the federation CA's key: {exc.strerror}") from exc
        key = serialization.load_pem_private_key(pem, password=None)
        if key.public_key() != self.certificate.public_key():
            raise FederationCAUnavailable(f"{KEY_FILE} and {CERT_FILE} in {self.directory} do not belong together")
        return key

    @property
    def certificate_path(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    # --- signing ---------------------------------------------------------------------------------------
    def issue(self, csr: x509.CertificateSigningRequest | str, plant_name: str, hostname: str,
              validity: timedelta, now: datetime | None = None) -> IssuedCertificate:
        """Sign the plant's request: CN = plant_name, SAN = hostname, serverAuth, `validity` long (never past the
        CA's own end). ValidationError (400, naming the field) for a request or name a certificate cannot carry."""
        if not isinstance(csr, x509.CertificateSigningRequest):
            csr = parse_certificate_request(csr)
        check_common_name(plant_name)
        san = subject_alt_name(hostname)
        # a second name only this plant's certificate carries: the dashboard verifies it (plant_dns_name), so a
        # certificate issued to another plant at the same host cannot stand in for this one
        plant_san = x509.DNSName(plant_dns_name(plant_name))
        now = now or datetime.now(timezone.utc)
        ca_key = self._private_key()
        not_after = min(now + validity, self.certificate.not_valid_after_utc)
        return plant_certificate(self.certificate, ca_key, csr, plant_name, [san, plant_san], now, not_after)


# --- the dashboard's processes ---------------------------------------------------------------------------
_cache: dict[str, FederationCA] = {}
_cache_lock = threading.Lock()


def federation_ca(config, *, create: bool = True) -> FederationCA:
    """This process's CA (from the app's config: DASHBOARD_CA_DIR, CREDENTIALS_KEY), read once."""
    directory = str(Path(config["DASHBOARD_CA_DIR"]).resolve())
    with _cache_lock:
        ca = _cache.get(directory)
        if ca is None or ca._credentials_key != config.get("CREDENTIALS_KEY"):
            ca = _cache[directory] = FederationCA.open(directory, config.get("CREDENTIALS_KEY"), create=create)
        return ca


def ensure_federation_ca(app) -> FederationCA:
    """At start (bootstrap): make the CA when there is none, and log which one this process trusts."""
    ca = federation_ca(app.config)
    log.info("federation CA %s (SHA-256 %s, %s); datasites %s", ca.certificate.subject.rfc4514_string(),
             fingerprint(ca.certificate)[:16], ca.certificate_path,
             "must serve HTTPS" if app.config["DASHBOARD_REQUIRE_TLS"] else
             "may serve plain HTTP (DASHBOARD_REQUIRE_TLS=false: development only)")
    return ca


@dataclass(frozen=True)
class PlantCertificateRequest:
    """A registration's certificate request, checked before the registration changes anything; signed by
    `issue()` only once the caller is admitted as this plant."""

    config: object
    csr: x509.CertificateSigningRequest
    plant_name: str
    hostname: str

    def issue(self) -> IssuedCertificate:
        from dashboard.models import record_audit

        validity = timedelta(days=float(self.config["DASHBOARD_CERT_VALIDITY_DAYS"]))
        issued = federation_ca(self.config).issue(self.csr, self.plant_name, self.hostname, validity)
        record_audit(f"factory:{self.plant_name}", "factory.certificate_issued", self.plant_name,
                     hostname=self.hostname, serial=issued.serial, not_after=issued.not_after.isoformat())
        log.info("federation CA signed %s's certificate for %s (serial %s, valid until %s)", self.plant_name,
                 self.hostname, issued.serial, issued.not_after.isoformat(timespec="minutes"))
        return issued


def certificate_request_of(config, body: dict, plant_name: str, hostname: str) -> PlantCertificateRequest | None:
    """The registration's `certificate_request`, checked (signature, key, name, hostname): 400 naming the field.
    None when the plant sent none and this dashboard admits plain HTTP (DASHBOARD_REQUIRE_TLS=false)."""
    csr_pem = body.get("certificate_request")
    if csr_pem is None:
        if config["DASHBOARD_REQUIRE_TLS"]:
            raise ValidationError("certificate_request", "is required: this dashboard reaches every datasite over "
                                                         "HTTPS (DASHBOARD_REQUIRE_TLS); an agent started with "
                                                         "--dev_mode serves plain HTTP")
        return None
    csr = parse_certificate_request(csr_pem)
    check_common_name(plant_name)
    subject_alt_name(hostname)
    return PlantCertificateRequest(config, csr, plant_name, hostname)


def datasite_ca_file(config) -> Path:
    """The CA file a datasite's certificate must chain to (verification only: the key is not needed)."""
    return federation_ca(config).certificate_path
