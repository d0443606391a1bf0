"""The plant's TLS material (factory_agent/tls.py) and the verified PySyft connection (shared/syft_tls.py),
against a real federation CA; no datasite is started here (the integration tests serve over TLS)."""

import os
from datetime import timedelta

import pytest
import requests
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import ec

from dashboard.registry.federation_ca import FederationCA
from factory_agent.plant.state import PlantState
from factory_agent.tls import PlantTLS, common_name, san_names, self_signed
from shared.errors import SecurityError
from shared.syft_tls import DatasiteSession, PlainHTTPRefused

MONTH = timedelta(days=30)


@pytest.fixture()
def ca(tmp_path):
    return FederationCA.open(tmp_path / "ca", Fernet.generate_key().decode())


@pytest.fixture()
def tls(tmp_path):
    return PlantTLS(PlantState(tmp_path / "state"), "plant_a", "plant-a.example.org")


def signed_chain(ca, tls, name="plant_a", host="plant-a.example.org", validity=MONTH) -> str:
    return ca.issue(tls.certificate_request(), name, host, validity).chain_pem


def test_before_the_dashboard_signs_the_datasite_serves_a_provisional_certificate_for_its_own_key(tls):
    assert "provisional" in tls.prepare()
    served = tls.served()
    assert self_signed(served) and served.public_key() == tls.key().public_key()
    assert common_name(served) == "plant_a" and san_names(served) == ["plant-a.example.org"]
    assert x509.load_pem_x509_certificates(tls.state.tls_trust_path().read_bytes()) == [served]
    for path in (tls.state.tls_key_path(), tls.state.tls_certificate_path(), tls.state.tls_trust_path()):
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert tls.needs_renewal()


def test_the_signed_chain_is_served_and_kept_across_a_restart(ca, tls, tmp_path):
    tls.prepare()
    provisional = tls.served()
    leaf = tls.install(signed_chain(ca, tls))
    served = x509.load_pem_x509_certificates(tls.state.tls_certificate_path().read_bytes())
    assert served == [leaf, ca.certificate]
    # the agent's own logins trust the CA, and the provisional certificate for the second before the reload
    assert x509.load_pem_x509_certificates(tls.state.tls_trust_path().read_bytes()) == [ca.certificate, provisional]
    restarted = PlantTLS(PlantState(tmp_path / "state"), "plant_a", "plant-a.example.org")
    assert "signed by the federation CA" in restarted.prepare()
    assert restarted.served() == leaf
    assert x509.load_pem_x509_certificates(tls.state.tls_trust_path().read_bytes()) == [ca.certificate]


def test_a_restart_under_another_public_hostname_serves_a_provisional_certificate_again(ca, tls, tmp_path):
    tls.install(signed_chain(ca, tls))
    moved = PlantTLS(PlantState(tmp_path / "state"), "plant_a", "plant-a.new.example.org")
    assert "provisional" in moved.prepare()
    assert san_names(moved.served()) == ["plant-a.new.example.org"]


@pytest.mark.parametrize("case, words", [
    ("another key", "not for this plant's key"),
    ("another name", "its CN is 'plant_b'"),
    ("another host", "not 'plant-a.example.org'"),
    ("another CA", "not signed by the CA in the chain"),
    ("leaf only", "holds 1 certificates"),
])
def test_a_chain_that_is_not_this_plants_is_refused_and_nothing_is_written(ca, tls, tmp_path, case, words):
    tls.prepare()
    before = tls.state.tls_certificate_path().read_bytes()
    if case == "another key":
        other = PlantTLS(PlantState(tmp_path / "other"), "plant_a", "plant-a.example.org")
        chain = signed_chain(ca, other)
    elif case == "another name":
        chain = signed_chain(ca, tls, name="plant_b")
    elif case == "another host":
        chain = signed_chain(ca, tls, host="plant-b.example.org")
    elif case == "another CA":
        leaf_pem = signed_chain(ca, tls).split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        chain = leaf_pem + FederationCA.open(tmp_path / "ca2", Fernet.generate_key().decode()).certificate_pem
    else:
        chain = signed_chain(ca, tls).split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    with pytest.raises(SecurityError, match=words):
        tls.install(chain)
    assert tls.state.tls_certificate_path().read_bytes() == before
    assert not tls.state.tls_ca_path().exists()


def test_renewal_is_due_once_less_than_a_third_of_the_validity_is_left(ca, tls):
    tls.prepare()
    leaf = tls.install(signed_chain(ca, tls))
    start = leaf.not_valid_before_utc
    lifetime = leaf.not_valid_after_utc - start
    assert not tls.needs_renewal(start + lifetime * 0.6)
    assert tls.needs_renewal(start + lifetime * 0.7)
    assert tls.needs_renewal(leaf.not_valid_after_utc + timedelta(seconds=1))


def test_the_datasite_key_is_made_once_and_kept(tls, tmp_path):
    key = tls.key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    again = PlantTLS(PlantState(tmp_path / "state"), "plant_a", "plant-a.example.org").key()
    assert again.public_key() == key.public_key()


def test_a_verified_datasite_session_never_sends_plain_http(tmp_path, ca):
    session = DatasiteSession(ca.certificate_path, "localhost")
    with pytest.raises(PlainHTTPRefused, match="plain HTTP to a datasite is refused"):
        session.get("http://127.0.0.1:9/api/v2/metadata", timeout=1)
    assert not session.trust_env  # REQUESTS_CA_BUNDLE and proxies from the environment do not apply
    assert isinstance(PlainHTTPRefused("x"), requests.exceptions.ConnectionError)

