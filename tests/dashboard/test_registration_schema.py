"""What a registrant may send: an address the dashboard may connect to (no SSRF), capabilities that every later
round can use, keys of the right shape. Each refusal is a 400 naming the field; nothing is stored."""

import socket

import pytest

from dashboard.extensions import db
from dashboard.models import Factory
from dashboard.registry.addresses import AddressRefused, check_plant_host
from tests.dashboard.conftest import ENROLL, registration

ALWAYS_REFUSED = ["169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "METADATA.google.internal.",
                  "0.0.0.0", "::", "224.0.0.1", "ff02::1", "fe80::1", "169.254.1.1", "::ffff:169.254.169.254",
                  "255.255.255.255", "240.0.0.1"]
PRIVATE = ["127.0.0.1", "localhost", "::1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "100.64.0.1", "fc00::1",
           "::ffff:127.0.0.1", "127.0.0.2"]
NOT_A_HOSTNAME = ["", " ", "exa mple.com", "-plant.example.com", "plant..example.com", "2130706433", "127.1",
                  "0x7f000001", "a" * 64 + ".example.com", "plant.example.com/path", "http://plant.example.com",
                  "plant.example.com:8080", "[::1]", "plant\n", " plant.example.com", 42, None]


@pytest.fixture()
def public_dns(monkeypatch):
    """Names under .example resolve to the addresses after 'to-': plant.to-93.184.216.34.example."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".example") and ".to-" in host:
            address = host.split(".to-", 1)[1].removesuffix(".example").replace("-", ":")
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def post(client, body):
    return client.post("/register_factory", json=body, headers={"Authorization": f"Bearer {ENROLL}"})


def refused_naming(resp, field):
    assert resp.status_code == 400, (field, resp.get_json())
    assert resp.get_json()["detail"]["field"] == field, (field, resp.get_json())
    return resp.get_json()["error"]


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Factory))


# one app per test, many requests: building the app and its database is what takes time here
def test_ssrf_hostnames_are_400_naming_factory_hostname(app, client):
    app.config["ALLOW_PRIVATE_PLANTS"] = False
    for hostname in ALWAYS_REFUSED + PRIVATE + NOT_A_HOSTNAME:
        refused_naming(post(client, registration(factory_hostname=hostname)), "factory_hostname")
    assert stored(app) == 0


def test_metadata_link_local_multicast_and_unspecified_stay_refused_when_private_plants_are_allowed(app, client):
    assert app.config["ALLOW_PRIVATE_PLANTS"]
    for hostname in ALWAYS_REFUSED + NOT_A_HOSTNAME:
        refused_naming(post(client, registration(factory_hostname=hostname)), "factory_hostname")
    assert stored(app) == 0


def test_private_plants_are_accepted_only_when_allowed(app, client):
    for i, hostname in enumerate(["localhost", "10.0.0.5", "::1", "192.168.1.1"]):
        assert post(client, registration(f"lab_{i}", factory_hostname=hostname)).status_code == 201, hostname


def test_every_address_a_name_resolves_to_is_checked(app, client, public_dns):
    app.config["ALLOW_PRIVATE_PLANTS"] = False
    assert post(client, registration("public", factory_hostname="plant.to-93.184.216.34.example")).status_code == 201
    assert post(client, registration("literal", factory_hostname="93.184.216.34")).status_code == 201
    error = refused_naming(post(client, registration("rebound", factory_hostname="plant.to-10.1.2.3.example")),
                           "factory_hostname")
    assert "resolves to 10.1.2.3" in error and "private" in error
    error = refused_naming(post(client, registration("meta", factory_hostname="plant.to-169.254.169.254.example")),
                           "factory_hostname")
    assert "metadata" in error
    refused_naming(post(client, registration("nowhere", factory_hostname="no-such-plant.invalid")),
                   "factory_hostname")


def test_a_name_is_refused_when_any_of_its_addresses_is(monkeypatch):
    both = lambda name: ["93.184.216.34", "127.0.0.1"]  # noqa: E731
    with pytest.raises(AddressRefused, match="127.0.0.1"):
        check_plant_host("plant.example.com", allow_private=False, resolve=both)
    assert check_plant_host("plant.example.com", allow_private=True, resolve=both)
    assert check_plant_host("factory_a", allow_private=True, resolve=lambda n: ["172.18.0.4"])  # compose names


def test_ports_outside_1_65535_are_400_naming_factory_port(client):
    for port in (0, 65536, -1, "8080", True, 80.5, None):
        refused_naming(post(client, registration(factory_port=port)), "factory_port")


def caps(**changes):
    body = registration()["capabilities"]
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


def schema(**changes):
    s = {"label_column": "y", "numeric_columns": ["a", "b"], "categorical": {}}
    s.update(changes)
    return s


BROKEN_CAPABILITIES = [
    (None, "capabilities"),
    ("all", "capabilities"),
    (caps(supported_models=["cnn", "transformer"]), "capabilities.supported_models"),
    (caps(supported_models=[]), "capabilities.supported_models"),
    (caps(supported_models="cnn"), "capabilities.supported_models"),
    (caps(supported_models=...), "capabilities.supported_models"),
    (caps(data_type="images"), "capabilities.data_type"),
    (caps(data_type=...), "capabilities.data_type"),
    (caps(num_samples=-1), "capabilities.num_samples"),
    (caps(num_samples=1.5), "capabilities.num_samples"),
    (caps(num_samples="100"), "capabilities.num_samples"),
    (caps(num_samples=True), "capabilities.num_samples"),
    (caps(features="a,b"), "capabilities.features"),
    (caps(features=["a", 3]), "capabilities.features[1]"),
    (caps(features=["a", "x" * 201]), "capabilities.features[1]"),
    (caps(features=[f"f{i}" for i in range(4097)]), "capabilities.features"),
    (caps(features=["b", "a"]), "capabilities.features"),  # not the schema's features
    (caps(schema=...), "capabilities.schema"),
    (caps(schema={}), "capabilities.schema"),
    (caps(schema="label=y"), "capabilities.schema"),
    (caps(schema=schema(label_column=None)), "capabilities.schema.label_column"),
    (caps(schema=schema(label_column="")), "capabilities.schema.label_column"),
    (caps(schema=schema(numeric_columns="a,b")), "capabilities.schema.numeric_columns"),
    (caps(schema=schema(numeric_columns=[]), features=[]), "capabilities.schema"),  # no feature at all
    (caps(schema=schema(categorical=["a"])), "capabilities.schema.categorical"),
    (caps(schema=schema(categorical={"c": "x"})), "capabilities.schema.categorical.c"),
    (caps(schema=schema(numeric_columns=["a", "a"]), features=["a", "a"]), "capabilities.features"),
    (caps(schema=schema(label_column="a")), "capabilities.schema.label_column"),
    (caps(schema=schema(group_column=5)), "capabilities.schema.group_column"),
    (caps(schema=schema(extra=1)), "capabilities.schema.extra"),
    (caps(splits={"train": -1}), "capabilities.splits.train"),
    (caps(splits={"holdout": 3}), "capabilities.splits"),
    (caps(source=["x"]), "capabilities.source"),
    (caps(gpu_count=8), "capabilities.gpu_count"),
]


def test_broken_capabilities_are_400_naming_the_field(app, client):
    for capabilities, field in BROKEN_CAPABILITIES:
        body = registration()
        body["capabilities"] = capabilities
        refused_naming(post(client, body), field)
    assert stored(app) == 0


def test_a_schema_with_categories_is_accepted_and_listed(client):
    s = schema(numeric_columns=["a"], categorical={"type": ["L", "M"]}, group_column="m", time_column="t")
    body = registration(capabilities=caps(schema=s, features=["a", "type=L", "type=M"],
                                          splits={"train": 70, "validation": 15, "test": 15},
                                          source="simulator:default", byzantine="scale:-8"))
    assert post(client, body).status_code == 201


def test_keys_must_be_64_lowercase_hex_characters(app, client):
    for field in ("secagg_public_key", "identity_public_key"):
        for value in ("ab" * 31, "ab" * 33, "AB" * 32, "zz" * 32, "ab" * 32 + "\n", 1234, ["ab" * 32],
                      "-----BEGIN PUBLIC KEY-----"):
            refused_naming(post(client, registration(**{field: value})), field)
    assert stored(app) == 0
