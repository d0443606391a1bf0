"""Attacks on one plant by someone holding its orchestrator's PySyft login (the DATA_SCIENTIST account the
dashboard keeps), against a real agent and a real dashboard (DESIGN §8–§9).

One dashboard and one plant serve the whole module (`target`); each attack is a test that leaves the plant as
an attacker would, so attacks added later run against the same plant. The genuine `fl_step`, as the dashboard
submits it, is approved once (`AttackTarget.vetted_code`) and the attacks build on it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from factory_agent.plant.state import MEMBERSHIP_REQUEST_FILE
from factoryfl_testing.harness import Agent, Dashboard
from factoryfl_testing.membership import administrator, certify
from shared.membership import MembershipCertificate
from shared.membership.admin import Administrator, load_request
from tests.integration.conftest import start_agents

pytestmark = pytest.mark.integration

PLANT = "plant_attacked"
VERDICT_TIMEOUT = 30  # the agent checks requests every 0.5 s and heartbeats every 1 s in the harness


@dataclass
class AttackTarget:
    agent: Agent
    dashboard: Dashboard
    port: int
    orchestrator_email: str
    orchestrator_password: str
    root_password: str
    admin: Administrator = None  # the federation's administrator, whose public key the plant pinned
    certificate: MembershipCertificate = None  # the plant's own, admitted from its membership request
    refused: dict[str, str] = field(default_factory=dict)  # request id -> part of the reason the plant gives
    _root: object = None

    def login(self, email: str | None = None, password: str | None = None):
        """Over HTTPS, verified against the federation CA, as the dashboard logs in."""
        return self.agent.login(email or self.orchestrator_email, password or self.orchestrator_password)

    def root(self):
        """The plant's root (data owner) client, logged in once."""
        if self._root is None:
            self._root = self.login("info@openmined.org", self.root_password)
        return self._root

    def assets(self, client) -> dict:
        from shared.vetted import ASSET_NAMES, DATASET_NAME

        (dataset,) = [d for d in client.datasets.get_all() if d.name == DATASET_NAME]
        return {name: dataset.assets[name] for name in ASSET_NAMES}

    def vetted_code(self, client):
        """The genuine fl_step, submitted as the dashboard does (syft_clients.PlantConnection), approved."""
        code = _find(client, lambda c: c.service_func_name == "fl_step" and c.raw_code == _shipped())
        if code is None:
            client.code.request_code_execution(submission(client, self.assets(client)))
        deadline = time.monotonic() + VERDICT_TIMEOUT
        while not (code := _find(client, lambda c: c.service_func_name == "fl_step"
                                 and c.raw_code == _shipped())) or not code.status.approved:
            assert time.monotonic() < deadline, "the plant did not approve the dashboard's own fl_step"
            time.sleep(0.5)
        return code

    def verdict(self, request_id: str) -> str:
        """The plant's log line about this request, once its agent has checked it."""
        deadline = time.monotonic() + VERDICT_TIMEOUT
        while time.monotonic() < deadline:
            lines = [line for line in self.agent.log().splitlines() if f"code request {request_id}" in line]
            if lines:
                return lines[-1]
            time.sleep(0.3)
        raise AssertionError(f"the plant's log says nothing about request {request_id}")

    def is_pending(self, request_id: str) -> bool:
        return any(str(r.id) == request_id for r in self.root().api.services.request.get_all_pending())


@pytest.fixture(scope="module")
def target(workdir, dashboard):
    # the plant's policy requires secure aggregation: the attacks on fl_step below show it holding; it pins the
    # federation key of an administrator outside the dashboard and verifies membership (no --trust-dashboard). It
    # opts out of verifying models (--verify-models no), so that each check below is met by itself, not by the
    # verification that the default policy puts in front of them all (tests/integration/test_verified_rounds.py)
    admin = administrator(workdir / "federation")
    (agent,) = start_agents(workdir, dashboard, [(PLANT, ["--rows", "300", "--require-secure-aggregation",
                                                          "--federation-key", str(admin.public_key_path),
                                                          "--trust-dashboard", "no", "--verify-models", "no"])])
    try:
        dashboard.wait_status(PLANT, ("online",))
        creds = json.loads((agent.state_dir / "credentials.json").read_text())
        own = admin.admit(load_request(agent.state_dir / MEMBERSHIP_REQUEST_FILE))[0]  # as the administrator does
        yield AttackTarget(agent=agent, dashboard=dashboard, port=agent.port, admin=admin, certificate=own,
                           orchestrator_email=creds["orchestrator_email"],
                           orchestrator_password=creds["orchestrator_password"], root_password=creds["root_password"])
    finally:
        agent.stop()


def _shipped() -> str:
    from factory_agent.code_vetting import shipped_source

    return shipped_source()


def _find(client, predicate):
    codes = [c for c in client.code.get_all() if predicate(c)]
    return codes[-1] if codes else None


def submission(client, assets):
    """What the dashboard submits: the shipped fl_step bound to the plant's three assets and a `request` dict."""
    import syft as sy
    from syft.service.policy.policy import MixedInputPolicy

    from shared.vetted import VETTED_FUNCTIONS

    return sy.syft_function(
        input_policy=MixedInputPolicy(client=client, features=assets["features"], labels=assets["labels"],
                                      index=assets["index"], request=dict),
        output_policy=sy.SingleExecutionExactOutput())(VETTED_FUNCTIONS["fl_step"])


def dict_spoof(client, assets, blank_lines: int = 1):
    """The shipped source declared as `dict`: PySyft would run `result = dict(features=..., ...)`. A blank line
    makes it a new code object for PySyft (its duplicate check compares the exact text)."""
    spoof = submission(client, assets)
    spoof.code += "\n" * blank_lines
    spoof.func_name = "dict"
    return spoof


def call_code(client, code, assets):
    """Run a code object on the plant's assets as the orchestrator; the `request` argument is the caller's dict."""
    import syft as sy

    request = sy.ActionObject.from_obj({"op": "leak"}).send(client)
    result = client.api.services.code.call(uid=code.id, features=assets["features"], labels=assets["labels"],
                                           index=assets["index"], request=request)
    return result.get() if hasattr(result, "get") else result


# --- a pending variant cannot block the genuine fl_step (issue 24) -------------------------------------------------
# PySyft keeps one code per source and account (its hash is sha256(source + key), not the name or the policies)
# and one request per code: a variant submitted first once blocked the dashboard's own submission for good.

def removed_line(target, code_id) -> str:
    """The plant's one WARNING about removing this code, once its approver has acted."""
    deadline = time.monotonic() + VERDICT_TIMEOUT
    while not (lines := [line for line in target.agent.log().splitlines() if f"REMOVED code {code_id}" in line]):
        assert time.monotonic() < deadline, f"the plant did not remove code {code_id}: {target.agent.log()[-2000:]}"
        time.sleep(0.3)
    assert len(lines) == 1 and "WARNING" in lines[0], lines
    return lines[0]


def dashboard_connection(target):
    """The dashboard's own path to the plant (syft_clients.PlantConnection): log in over verified TLS, find or
    submit the shipped fl_step, wait for its approval."""
    from dashboard.orchestration.syft_clients import DatasiteTrust, PlantAddress, PlantConnection

    address = PlantAddress(name=PLANT, hostname="localhost", port=target.port, email=target.orchestrator_email,
                           password=target.orchestrator_password, registered_at="attack")
    return PlantConnection(address, approval_timeout=VERDICT_TIMEOUT,
                           trust=DatasiteTrust(target.dashboard.ca_dir / "ca.crt"))


def test_a_variant_of_fl_step_submitted_first_is_never_approved_and_does_not_block_the_genuine_one(target):
    """Runs first in the module, before anyone submitted the genuine fl_step (the variant must come first)."""
    from syft.types.errors import SyftException

    from shared.protocol import StatsRequest

    client = target.login()
    assets = target.assets(client)
    assert _find(client, lambda c: c.raw_code == _shipped()) is None, "the genuine fl_step was submitted already"
    part, train_rows = attack_model()

    def variant():  # the shipped source, byte for byte, declared as `dict`: the genuine fl_step's PySyft hash
        spoof = submission(client, assets)
        spoof.func_name = "dict"
        return spoof

    # 1. a variant with its request: the plant refuses the request, and removes the code and the request
    request = client.code.request_code_execution(variant())
    first = SimpleNamespace(id=request.changes[0].linked_user_code.object_uid)  # the plant may remove it any time
    with pytest.raises(SyftException):  # waiting for approval, or already gone
        call_code(client, first, assets)
    assert "declared function name 'dict' is not 'fl_step'" in target.verdict(str(request.id))
    line = removed_line(target, first.id)
    assert str(request.id) in line and "never approved and never run" in line
    root = target.root()
    assert first.id not in {c.id for c in root.code.get_all()}
    assert str(request.id) not in {str(r.id) for r in root.api.services.request.get_all()}
    # 2. a variant with no request, the dashboard right behind it: PySyft files the dashboard's request under the
    #    variant, the plant refuses and removes it, the dashboard submits again and its own code is approved
    client.api.services.code.submit(variant())
    second = _find(client, lambda c: c.service_func_name == "dict" and c.raw_code == _shipped())
    connection = dashboard_connection(target)
    assert "never approved and never run" in removed_line(target, second.id)
    genuine = _find(client, lambda c: c.service_func_name == "fl_step" and c.raw_code == _shipped())
    assert genuine.status.approved and connection.fl_step.pre_kwargs["uid"] == genuine.id
    reply = connection.call(StatsRequest(90, part.features))
    assert reply.count == len(train_rows)
    # 3. the variant again, after the approval: PySyft refuses it outright, the genuine code runs on
    with pytest.raises(SyftException, match="already exists"):
        client.code.request_code_execution(variant())
    with pytest.raises(SyftException, match="already exists"):
        client.api.services.code.submit(variant())
    time.sleep(1.5)  # several approval passes
    assert connection.call(StatsRequest(91, part.features)).count == len(train_rows)
    assert [c.id for c in target.root().code.get_all() if c.raw_code == _shipped()] == [genuine.id]
    assert target.agent.log().count("REMOVED code") == 2
    assert "approved code request" in target.agent.log() and target.agent.log().count("approved code request") == 1


def test_the_dashboards_own_fl_step_is_approved(target):
    client = target.login()
    code = target.vetted_code(client)
    assert code.status.approved and code.service_func_name == "fl_step"
    # the approval is visible in PySyft a moment before the agent has written its log line about it
    deadline = time.monotonic() + VERDICT_TIMEOUT
    while "approved code request" not in target.agent.log():
        assert time.monotonic() < deadline, target.agent.log()[-2000:]
        time.sleep(0.3)


def test_the_shipped_source_declared_as_dict_stays_pending_and_cannot_run(target):
    from syft.types.errors import SyftException

    client = target.login()
    assets = target.assets(client)
    target.vetted_code(client)
    request = client.code.request_code_execution(dict_spoof(client, assets))
    request_id = str(request.id)
    verdict = target.verdict(request_id)
    assert "NOT approved automatically" in verdict
    assert "declared function name 'dict' is not 'fl_step'" in verdict
    target.refused[request_id] = "declared function name 'dict'"
    time.sleep(1.5)  # several more approval passes: still pending, logged once
    assert target.is_pending(request_id)
    assert target.agent.log().count(f"code request {request_id}") == 1
    spoof = _find(client, lambda c: c.service_func_name == "dict")
    with pytest.raises(SyftException, match="waiting for approval"):
        call_code(client, spoof, assets)


def test_a_request_that_shows_fl_step_but_approves_the_spoofs_status_stays_pending(target):
    """The admin sees `request.code` (linked_user_code: the genuine fl_step); approving would set the status it
    links separately (linked_obj: the spoof's), letting `dict` run on the private rows."""
    from syft.service.code.user_code import UserCodeStatus
    from syft.service.request.request import SubmitRequest, UserCodeStatusChange
    from syft.store.linked_obj import LinkedObject
    from syft.types.errors import SyftException

    client = target.login()
    assets = target.assets(client)
    genuine = target.vetted_code(client)
    client.api.services.code.submit(dict_spoof(client, assets, blank_lines=2))
    spoof = _find(client, lambda c: c.service_func_name == "dict" and c.raw_code.endswith("\n\n\n"))
    change = UserCodeStatusChange(value=UserCodeStatus.APPROVED, linked_obj=spoof.status_link,
                                  linked_user_code=LinkedObject.from_obj(genuine, server_uid=genuine.server_uid))
    request = client.api.services.request.submit(SubmitRequest(changes=[change]))
    request_id = str(request.id)
    assert "not the status of the code it shows" in target.verdict(request_id)
    target.refused[request_id] = "not the status of the code it shows"
    assert target.is_pending(request_id)
    with pytest.raises(SyftException, match="waiting for approval"):
        call_code(client, spoof, assets)


def test_the_vetted_code_with_an_extra_read_permission_stays_pending_and_nothing_is_applied(target):
    from syft.service.action.action_object import ActionObject
    from syft.service.action.action_permissions import ActionPermission
    from syft.service.action.action_service import ActionService
    from syft.service.code.user_code import UserCodeStatus
    from syft.service.request.request import ActionStoreChange, SubmitRequest, UserCodeStatusChange
    from syft.store.linked_obj import LinkedObject
    from syft.types.errors import SyftException

    client = target.login()
    assets = target.assets(client)
    genuine = target.vetted_code(client)
    read_features = ActionStoreChange(
        linked_obj=LinkedObject.from_uid(assets["features"].action_id, ActionObject, ActionService,
                                         client.api.server_uid),
        apply_permission_type=ActionPermission.READ)
    code_status = UserCodeStatusChange(value=UserCodeStatus.APPROVED, linked_obj=genuine.status_link,
                                       linked_user_code=LinkedObject.from_obj(genuine, server_uid=genuine.server_uid))
    request = client.api.services.request.submit(SubmitRequest(changes=[code_status, read_features]))
    request_id = str(request.id)
    assert "holds 2 changes (UserCodeStatusChange, ActionStoreChange)" in target.verdict(request_id)
    target.refused[request_id] = "holds 2 changes"
    assert target.is_pending(request_id)
    fresh = target.login()
    features = target.assets(fresh)["features"]
    assert features.data is None
    with pytest.raises(SyftException):
        features.pointer.get()


def test_the_dashboard_lists_the_refused_requests_with_their_reasons(target):
    if not target.refused:  # run alone: make one refused request
        client = target.login()
        target.vetted_code(client)
        request = client.code.request_code_execution(dict_spoof(client, target.assets(client), blank_lines=3))
        target.verdict(str(request.id))
        target.refused[str(request.id)] = "declared function name 'dict'"

    def listed():
        reported = target.dashboard.factories()[PLANT].get("pending_code_requests") or []
        by_id = {r["id"]: r for r in reported}
        return by_id if set(target.refused) <= set(by_id) else None

    by_id = target.dashboard.wait_for(listed, timeout=VERDICT_TIMEOUT, what="the refused requests in a heartbeat")
    for request_id, reason in target.refused.items():
        entry = by_id[request_id]
        assert reason in entry["reason"]
        assert entry["requester"] == target.orchestrator_email and entry["submitted_at"].startswith("20")
        assert entry["function"] in ("dict", "fl_step")


# --- attacks through the approved fl_step itself: the plant's policy and its closed protocol ------------------
# The plant runs with --require-secure-aggregation (the fixture), so these also show that policy holding.

def fl_step(target, wire: dict) -> dict:
    """Call the approved fl_step with a request of the attacker's choosing, as the dashboard would."""
    client = target.login()
    target.vetted_code(client)
    assets = target.assets(client)
    result = client.code.fl_step(features=assets["features"], labels=assets["labels"], index=assets["index"],
                                 request=wire)
    return result.get() if hasattr(result, "get") else result


def attack_model():
    """A well-formed model part for this plant: its own features, an honest scaler, the default CNN."""
    import numpy as np

    from shared.data.simulator import FAILURE_MODE_COLUMNS, GROUP_COLUMN, LABEL_COLUMN, TIME_COLUMN, simulate
    from shared.data.csv_loader import load_frame
    from shared.data.scaler import Scaler, feature_stats
    from shared.models import ModelSpec, build_model, get_weights
    from shared.protocol import ModelPart, ScalerMsg

    data = load_frame(simulate("default", rows=300, seed=0), LABEL_COLUMN, FAILURE_MODE_COLUMNS, GROUP_COLUMN,
                      TIME_COLUMN, seed=0)  # the plant's own data, as the simulator makes it (seed 0)
    scaler = Scaler.from_stats(feature_stats(data.features[data.split == 0]))
    spec = ModelSpec("cnn", len(data.schema.feature_names))
    part = ModelPart(tuple(data.schema.feature_names), ScalerMsg(scaler.mean, scaler.scale), spec,
                     get_weights(build_model(spec, seed=0)))
    return part, np.asarray(data.features[data.split == 0])


def cohort(target, prefix: str = "peer"):
    """This plant with its registered key and two peers the administrator admitted (with keys the test holds): a
    genuine cohort of three, threshold two, every certificate relayed as the dashboard does."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from shared.protocol import SecAggRequest
    from shared.secagg.keys import public_hex
    from shared.secagg.quantize import fraction_bits

    keys = {PLANT: _own_key(target)}  # the key it registered, read from its state folder
    keys.update({f"{prefix}_{i}": public_hex(X25519PrivateKey.generate()) for i in range(2)})
    certificates = {PLANT: target.certificate.to_wire(),
                    **{name: certify(target.admin, name, key).to_wire() for name, key in keys.items()
                       if name != PLANT}}
    return SecAggRequest(participants=keys, threshold=2, fraction_bits=fraction_bits(3, 100.0), weighting="samples",
                         clip=100.0, certificates=certificates)


def _own_key(target) -> str:
    from factory_agent.plant.state import PlantState

    return PlantState(target.agent.state_dir).secagg_public_key()


def refused_at_the_plant(target, answer: dict, words: str) -> None:
    assert answer["ok"] is False, answer
    assert words in answer["error"], answer["error"]
    deadline = time.monotonic() + VERDICT_TIMEOUT
    while words not in target.agent.log():  # the reason is in the plant's own log too
        assert time.monotonic() < deadline, f"the plant's log does not say {words!r}"
        time.sleep(0.3)


def test_a_path_in_the_experiment_id_is_refused_at_the_plant(target):
    from shared.protocol import StatsRequest

    part, _ = attack_model()
    wire = {**StatsRequest(1, part.features).to_wire(), "experiment": "../../../tmp/owned"}
    refused_at_the_plant(target, fl_step(target, wire), "experiment must be an integer")


def test_an_unmasked_update_is_refused_when_the_plants_policy_requires_secure_aggregation(target):
    from shared.protocol import RoundRef, TrainRequest, TrainSettings

    part, _ = attack_model()
    answer = fl_step(target, TrainRequest(RoundRef(101, 1), part, TrainSettings()).to_wire())
    refused_at_the_plant(target, answer, "requires secure aggregation")
    assert "weights" not in answer


def test_a_crafted_scaler_is_refused_at_the_plant(target):
    import numpy as np

    from shared.protocol import ModelPart, RoundRef, ScalerMsg, TrainRequest, TrainSettings

    part, train_rows = attack_model()
    mean, scale = part.scaler.mean.copy(), part.scaler.scale.copy()
    column = int(np.argmax(train_rows.std(0)))
    mean[column], scale[column] = float(np.median(train_rows[:, column])), 1e-6  # x > median, as a 0/1 feature
    crafted = ModelPart(part.features, ScalerMsg(mean, scale), part.spec, part.weights)
    answer = fl_step(target, TrainRequest(RoundRef(102, 1), crafted, TrainSettings(), cohort(target)).to_wire())
    refused_at_the_plant(target, answer, "scaler does not fit this plant's own statistics")


def test_a_second_masking_under_one_context_is_refused_at_the_plant(target):
    from shared.protocol import RoundRef, TrainRequest, TrainSettings

    part, _ = attack_model()
    setup = cohort(target)
    before = len(target.agent.log())
    first = fl_step(target, TrainRequest(RoundRef(103, 1), part, TrainSettings(), setup).to_wire())
    assert first["ok"], first
    assert "weights" not in first and len(first["masked"]) > 0
    # PySyft's second run of the call on the empty mocks is no replay: no refusal logged (plant.twin_run)
    assert "REFUSED" not in target.agent.log()[before:]
    # the same context again, learning rate ~0: masked(first) - masked(second) would be the update in the clear
    again = fl_step(target, TrainRequest(RoundRef(103, 1), part, TrainSettings(learning_rate=1e-9), setup).to_wire())
    words = "train was already called 1 time(s) for experiment 103 round 1 attempt 1"
    refused_at_the_plant(target, again, words)
    refusals = [line for line in target.agent.log()[before:].splitlines() if "REFUSED" in line]
    assert len(refusals) == 1 and words in refusals[0], refusals  # the genuine replay, logged once


def test_a_threshold_at_half_the_cohort_is_refused_at_the_plant(target):
    from shared.protocol import RoundRef, SecAggRequest, TrainRequest, TrainSettings

    part, _ = attack_model()
    setup = cohort(target)
    weak = SecAggRequest(setup.participants, 1, setup.fraction_bits, setup.weighting, setup.clip)
    answer = fl_step(target, TrainRequest(RoundRef(104, 1), part, TrainSettings(), weak).to_wire())
    refused_at_the_plant(target, answer, "it must be more than half the cohort")


def test_statistics_hold_no_minimum_or_maximum(target):
    from shared.protocol import StatsRequest

    part, train_rows = attack_model()
    answer = fl_step(target, StatsRequest(105, part.features).to_wire())
    assert answer["ok"], answer
    assert not {"min", "max"} & set(answer)
    assert answer["count"] == len(train_rows)


# --- cost (issue 24): work is bounded by what it costs, refused before any array is made ------------------------

def test_the_4096_feature_evaluation_is_refused_before_the_plant_allocates_anything(target):
    """One evaluate call with a model over 4,096 features the plant lacks (4,084 absent) and 256 channels: 239k
    parameters, within max_model_parameters; it once took a plant from 0.65 to 1.88 GiB for 6 s of CPU."""
    import numpy as np
    import psutil

    from shared.models import ModelSpec, build_model, get_weights
    from shared.protocol import EvaluateRequest, ModelPart, RoundRef, ScalerMsg

    part, _ = attack_model()
    absent = 4096 - len(part.features)
    names = part.features + tuple(f"absent_{i}" for i in range(absent))
    spec = ModelSpec("cnn", len(names), channels=256, hidden_size=16)
    scaler = ScalerMsg(np.concatenate([part.scaler.mean, np.zeros(absent)]),
                       np.concatenate([part.scaler.scale, np.ones(absent)]))
    attack = ModelPart(names, scaler, spec, get_weights(build_model(spec, seed=0)))
    wire = EvaluateRequest(RoundRef(106, 1), attack).to_wire()
    fl_step(target, EvaluateRequest(RoundRef(107, 1), part).to_wire())  # the plant warm: torch loaded, one scoring
    plant = psutil.Process(target.agent.proc.pid)  # the datasite runs in the agent's process
    before = plant.memory_info().rss
    answer = fl_step(target, wire)
    grown = plant.memory_info().rss - before
    refused_at_the_plant(target, answer, f"the model names {absent} features this plant lacks")
    assert "max_missing_features" in answer["error"]
    print(f"plant RSS before {before / 2 ** 20:.0f} MiB, grown by {grown / 2 ** 20:.1f} MiB over the refused call")
    assert grown < 50 * 2 ** 20, grown  # the request itself (4 MB of weights) crosses; no rows x 4,096 copy


# --- TLS (DESIGN §4): the datasite speaks only TLS, with the federation CA's certificate for this plant ---------

def test_only_a_client_trusting_the_federation_ca_logs_in_and_plain_http_gets_no_answer(target, tmp_path):
    """What the orchestrator's password and every update travel in: a client that trusts the system's CAs, or
    another federation's CA, fails TLS verification before it sends anything; plain HTTP is not answered; the
    certificate is the dashboard CA's, for this plant's name and registered host."""
    import socket

    import requests
    import syft as sy
    from cryptography import x509
    from cryptography.fernet import Fernet
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from cryptography.x509.verification import PolicyBuilder, Store

    from dashboard.registry.federation_ca import FederationCA
    from factory_agent.tls import served_certificate_der
    from shared.syft_tls import login

    email, password, port = target.orchestrator_email, target.orchestrator_password, target.port
    dashboard_ca = target.dashboard.ca_dir / "ca.crt"
    assert login("localhost", port, email, password, ca_file=dashboard_ca).datasets.get_all()  # the dashboard's way

    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):  # the system's CAs
        requests.get(f"https://localhost:{port}/api/v2/metadata", timeout=10)
    stranger = FederationCA.open(tmp_path / "another_federation", Fernet.generate_key().decode())
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        login("localhost", port, email, password, ca_file=stranger.certificate_path)
    with pytest.raises(requests.exceptions.SSLError, match="127.0.0.1"):  # the right CA, a name not in the SAN
        login("127.0.0.1", port, email, password, ca_file=dashboard_ca)

    with pytest.raises(requests.exceptions.ConnectionError):  # PySyft's default: plain HTTP
        sy.login(url="localhost", port=port, email=email, password=password)
    with socket.create_connection(("localhost", port), timeout=10) as raw:
        raw.sendall(b"GET /api/v2/metadata HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            answer = raw.recv(64)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")

    leaf = x509.load_der_x509_certificate(served_certificate_der("localhost", port))
    ca = x509.load_pem_x509_certificate(dashboard_ca.read_bytes())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == PLANT
    from dashboard.registry.certificates import plant_dns_name

    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["localhost", plant_dns_name(PLANT)]  # the host it registered, and its own name
    assert ExtendedKeyUsageOID.SERVER_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert leaf.issuer == ca.subject
    PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("localhost")).verify(leaf, [])
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 31


# --- membership: a stolen dashboard database or CA folder admits no one (issue 24, item 1) -------------------
# The attacker holds everything the dashboard holds: its registry (names -> keys), its CA, the orchestrator login.
# It does not hold the federation key, which the plant pinned at enrolment.

def _masks_nothing(target, setup, round_no: int, words: str) -> None:
    from shared.protocol import RoundRef, TrainRequest, TrainSettings

    part, _ = attack_model()
    answer = fl_step(target, TrainRequest(RoundRef(round_no, 1), part, TrainSettings(), setup).to_wire())
    refused_at_the_plant(target, answer, words)
    assert "masked" not in answer and "weights" not in answer
    # refused before anything: the same round with a genuine cohort is still the plant's first masking of it
    genuine = fl_step(target, TrainRequest(RoundRef(round_no, 1, 2), part, TrainSettings(), cohort(target)).to_wire())
    assert genuine["ok"], genuine


def test_a_cohort_the_dashboard_invents_with_keys_it_holds_is_refused_at_the_plant(target):
    from shared.protocol import SecAggRequest

    invented = cohort(target, "invented")
    bare = SecAggRequest(invented.participants, 2, invented.fraction_bits, invented.weighting, invented.clip)
    _masks_nothing(target, bare, 120, "has no membership certificate")


def test_a_members_key_swapped_for_one_the_attacker_holds_is_refused_at_the_plant(target):
    from dataclasses import replace

    from shared.secagg.keys import public_hex
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    setup = cohort(target)
    swapped = replace(setup, participants={**setup.participants, "peer_0": public_hex(X25519PrivateKey.generate())})
    _masks_nothing(target, swapped, 121, "another secure-aggregation key than its certificate")


def test_a_revoked_members_certificate_replayed_is_refused_at_the_plant(target):
    from dataclasses import replace

    setup = cohort(target)
    listing = target.admin.revoke({setup.certificates["peer_1"]["serial"]})
    _masks_nothing(target, replace(setup, revocations=listing.to_wire()), 122, "is revoked")
    # the relay drops the list afterwards: the plant kept the newest it saw, the member stays out
    from shared.protocol import RoundRef, TrainRequest, TrainSettings

    part, _ = attack_model()
    answer = fl_step(target, TrainRequest(RoundRef(123, 1), part, TrainSettings(), setup).to_wire())
    refused_at_the_plant(target, answer, "is revoked")


def test_certificates_signed_by_another_federation_key_are_refused_at_the_plant(target, tmp_path):
    from dataclasses import replace

    rogue = administrator(tmp_path / "rogue")  # e.g. made with the dashboard's CA folder: any key not pinned
    setup = cohort(target)
    forged = {name: certify(rogue, name, key, target.certificate.identity_public_key if name == PLANT else None
                            ).to_wire() for name, key in setup.participants.items()}
    _masks_nothing(target, replace(setup, certificates=forged), 124, "is from federation")
