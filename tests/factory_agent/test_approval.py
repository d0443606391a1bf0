"""Exact approval (DESIGN §9): the check that decides which PySyft code requests a plant approves by itself.

The request and the code are stand-ins holding what PySyft 0.9.5's server stores (user_code.py
submit_user_code_to_user_code, request.py); changes, links and policy rules are PySyft's own classes.
"""

import hashlib
import inspect
from dataclasses import asdict, replace
from types import SimpleNamespace

import pytest
from syft.client.api import ServerIdentity
from syft.server.credentials import SyftSigningKey
from syft.service.action.action_object import ActionObject
from syft.service.action.action_permissions import ActionPermission
from syft.service.action.action_service import ActionService
from syft.service.code.status_service import UserCodeStatusService
from syft.service.code.user_code import UserCode, UserCodeStatus, UserCodeStatusCollection, parse_user_code
from syft.service.code.user_code_service import UserCodeService
from syft.service.policy.policy import (ExactMatch, Matches, MixedInputPolicy, OutputPolicyExecuteCount,
                                        OutputPolicyExecuteOnce, UserOwned)
from syft.service.request.request import ActionStoreChange, UserCodeStatusChange
from syft.store.linked_obj import LinkedObject
from syft.types.uid import UID

from factory_agent.approval import MAX_REPORTED, ApprovalPolicy, PendingCodeRequest
from factory_agent.code_vetting import ARGUMENTS, CodeRequestView, ExpectedCode, shipped_source, vet_request
from factory_agent.dashboard_client import Heartbeat
from shared.vetted import ASSET_NAMES, fl_step

SERVER, SERVER_KEY = UID(), SyftSigningKey.generate().verify_key
ORCHESTRATOR = SimpleNamespace(id=UID(), email="orchestrator@pdm-factory.com")
ORCHESTRATOR_KEY = SyftSigningKey.generate().verify_key
ASSETS = {name: UID() for name in ASSET_NAMES}
EXPECTED = ExpectedCode(source=shipped_source(), server_id=SERVER, server_verify_key=SERVER_KEY, asset_ids=ASSETS,
                        orchestrator_id=ORCHESTRATOR.id, orchestrator_email=ORCHESTRATOR.email)


def this_plant():
    return ServerIdentity(server_name="plant_a", server_id=SERVER, verify_key=SERVER_KEY)


def dashboard_rules(**changes):
    """MixedInputPolicy(client, features=asset, labels=asset, index=asset, request=dict).init_kwargs, one server."""
    rules = {name: Matches(kw=name, val=uid) for name, uid in ASSETS.items()}
    rules["request"] = UserOwned(kw="request", type=dict)
    rules.update(changes)
    return {this_plant(): {k: v for k, v in rules.items() if v is not None}}


def stored_code(source=None, func_name="fl_step", owner=ORCHESTRATOR_KEY, input_kwargs=ARGUMENTS, **fields):
    """A UserCode as PySyft's server derives it from a submission (hash, names and wrapper from source + name)."""
    source = shipped_source() if source is None else source
    code_hash = hashlib.sha256(f"{source}{owner}".encode()).hexdigest()
    unique = f"user_func_{func_name}_{owner}_{code_hash}"
    code = dict(id=UID(), user_verify_key=owner, raw_code=source, service_func_name=func_name,
                unique_func_name=unique, code_hash=code_hash, input_kwargs=list(input_kwargs),
                signature=inspect.signature(fl_step), nested_codes={}, uses_datasite=False,
                parsed_code=parse_user_code(raw_code=source, func_name=unique, original_func_name=func_name,
                                            function_input_kwargs=list(input_kwargs)),
                input_policy_type=MixedInputPolicy, input_policy_init_kwargs=dashboard_rules(), input_policy_state=b"",
                output_policy_type=OutputPolicyExecuteOnce, output_policy_init_kwargs={"id": UID()},
                output_policy_state=b"",
                status_link=LinkedObject.from_uid(UID(), UserCodeStatusCollection, UserCodeStatusService, SERVER))
    code.update(fields)
    return SimpleNamespace(**code)


def status_change(code, status_of=None):
    """What code.request_code_execution builds: approve `status_of`'s status (the code's own by default)."""
    return UserCodeStatusChange(value=UserCodeStatus.APPROVED, linked_obj=(status_of or code).status_link,
                                linked_user_code=LinkedObject.from_uid(code.id, UserCode, UserCodeService, SERVER))


def read_permission_on(asset: str):
    link = LinkedObject.from_uid(ASSETS[asset], ActionObject, ActionService, SERVER)
    return ActionStoreChange(linked_obj=link, apply_permission_type=ActionPermission.READ)


def request(code, changes=None, requester=ORCHESTRATOR, requester_key=ORCHESTRATOR_KEY):
    return CodeRequestView(id=UID().no_dash, changes=tuple(changes or [status_change(code)]),
                           requester_key=requester_key, requester=requester, code=code,
                           submitted_at="2026-01-01T00:00:00+00:00")


def test_the_request_the_dashboard_submits_is_approved():
    assert vet_request(request(stored_code()), EXPECTED) is None


def test_the_shipped_source_declared_under_another_function_name_is_refused():
    # PySyft would run `result = dict(features=..., labels=..., index=..., request=...)`: every private row
    reason = vet_request(request(stored_code(func_name="dict")), EXPECTED)
    assert "declared function name 'dict' is not 'fl_step'" in reason


def test_the_spoof_with_a_blank_line_and_another_name_is_refused():
    reason = vet_request(request(stored_code(shipped_source() + "\n", func_name="dict")), EXPECTED)
    assert reason and "'dict'" in reason


@pytest.mark.parametrize("source", [
    shipped_source() + "\n",
    "\n" + shipped_source(),
    shipped_source().replace("\n", "\r\n"),
    shipped_source().replace("    return", "    return  "),
    "@sy.syft_function()\n" + shipped_source(),
    shipped_source().replace("return handle(", "__import__('os').system('id') or handle(")
    if "return handle(" in shipped_source() else shipped_source().replace("return ", "return 0 or ", 1),
], ids=["trailing blank line", "leading blank line", "CRLF", "trailing spaces", "decorator line", "changed body"])
def test_any_change_to_the_source_even_a_blank_line_is_refused(source):
    reason = vet_request(request(stored_code(source)), EXPECTED)
    assert reason and "not byte-for-byte the shipped fl_step" in reason


def test_a_request_with_a_second_change_is_refused_whatever_the_first():
    code = stored_code()
    reason = vet_request(request(code, [status_change(code), read_permission_on("features")]), EXPECTED)
    assert "holds 2 changes (UserCodeStatusChange, ActionStoreChange)" in reason


def test_a_request_that_only_asks_for_read_permission_is_refused():
    reason = vet_request(request(stored_code(), [read_permission_on("labels")]), EXPECTED)
    assert "ActionStoreChange, not a code-status change" in reason


def test_a_request_that_shows_fl_step_but_approves_another_codes_status_is_refused():
    # request.code resolves linked_user_code (the genuine fl_step); approving mutates linked_obj (the spoof's status)
    genuine, spoof = stored_code(), stored_code(shipped_source() + "\n", func_name="dict")
    reason = vet_request(request(genuine, [status_change(genuine, status_of=spoof)]), EXPECTED)
    assert "not the status of the code it shows" in reason


def test_a_change_to_another_status_than_approved_is_refused():
    code = stored_code()
    change = status_change(code)
    change.value = UserCodeStatus.DENIED
    assert "not APPROVED" in vet_request(request(code, [change]), EXPECTED)


def test_a_request_from_another_account_is_refused():
    other_key = SyftSigningKey.generate().verify_key
    other = SimpleNamespace(id=UID(), email="someone@pdm-factory.com")
    reason = vet_request(request(stored_code(owner=other_key), requester=other, requester_key=other_key), EXPECTED)
    assert "requested by someone@pdm-factory.com, not by this plant's orchestrator account" in reason
    # the same e-mail address on another account (the server's user id decides)
    impostor = SimpleNamespace(id=UID(), email=ORCHESTRATOR.email)
    assert "not by this plant's orchestrator" in vet_request(request(stored_code(), requester=impostor), EXPECTED)
    assert "does not know" in vet_request(request(stored_code(), requester=None), EXPECTED)


def test_code_submitted_by_another_account_is_refused_even_when_the_orchestrator_asks():
    code = stored_code(owner=SyftSigningKey.generate().verify_key)
    assert "submitted by another account" in vet_request(request(code), EXPECTED)


def test_a_request_linking_code_that_is_not_on_the_datasite_is_refused():
    code = stored_code()
    view = replace(request(code), code=None)
    assert "is not a code object on this datasite" in vet_request(view, EXPECTED)


@pytest.mark.parametrize("rules,message", [
    (dashboard_rules(features=Matches(kw="features", val=UID())), "'features' is not bound to this plant's features"),
    (dashboard_rules(labels=Matches(kw="labels", val=ASSETS["features"])), "'labels' is not bound"),
    (dashboard_rules(index=None), "binds ['features', 'labels', 'request']"),
    (dashboard_rules(request=Matches(kw="request", val=ASSETS["features"])), "'request' is not a dict owned"),
    (dashboard_rules(request=UserOwned(kw="request", type=list)), "'request' is not a dict owned"),
], ids=["another asset", "swapped assets", "missing input", "request bound to an asset", "request not a dict"])
def test_inputs_not_bound_to_this_plants_three_assets_are_refused(rules, message):
    assert message in vet_request(request(stored_code(input_policy_init_kwargs=rules)), EXPECTED)


def test_an_extra_input_is_refused():
    rules = dashboard_rules(secret=Matches(kw="secret", val=UID()))
    reason = vet_request(request(stored_code(input_policy_init_kwargs=rules)), EXPECTED)
    assert "not ['features', 'labels', 'index', 'request']" in reason


def test_inputs_on_another_or_a_second_datasite_are_refused():
    (rules,) = dashboard_rules().values()
    elsewhere = ServerIdentity(server_name="plant_a", server_id=UID(), verify_key=SERVER_KEY)
    reason = vet_request(request(stored_code(input_policy_init_kwargs={elsewhere: rules})), EXPECTED)
    assert "another datasite" in reason
    two = {this_plant(): rules, elsewhere: {"x": Matches(kw="x", val=UID())}}
    assert "names 2 datasites" in vet_request(request(stored_code(input_policy_init_kwargs=two)), EXPECTED)


def test_another_input_policy_or_a_preset_policy_state_is_refused():
    assert "not a fresh MixedInputPolicy" in vet_request(request(stored_code(input_policy_type=ExactMatch)), EXPECTED)
    assert "not a fresh MixedInputPolicy" in vet_request(request(stored_code(input_policy_state=b"x")), EXPECTED)


@pytest.mark.parametrize("fields,message", [
    ({"output_policy_type": OutputPolicyExecuteCount}, "OutputPolicyExecuteCount, not a fresh SingleExecution"),
    ({"output_policy_init_kwargs": {"id": UID(), "limit": 10**6}}, "carries settings ['limit']"),
    ({"output_policy_state": b"state"}, "not a fresh SingleExecutionExactOutput"),
], ids=["another class", "another limit", "preset state"])
def test_another_output_policy_is_refused(fields, message):
    assert message in vet_request(request(stored_code(**fields)), EXPECTED)


def test_code_whose_executed_wrapper_or_names_do_not_derive_from_the_checked_source_is_refused():
    code = stored_code()
    tampered = replace_fields(code, parsed_code=code.parsed_code.replace("result = fl_step(", "result = dict("))
    assert "not PySyft's wrapper" in vet_request(request(tampered), EXPECTED)
    assert "does not derive" in vet_request(request(replace_fields(code, unique_func_name="dict")), EXPECTED)
    assert "nested codes" in vet_request(request(replace_fields(code, nested_codes={"x": ()})), EXPECTED)
    assert "arguments" in vet_request(request(replace_fields(code, input_kwargs=["features"])), EXPECTED)


def replace_fields(code, **fields):
    return SimpleNamespace(**{**vars(code), **fields})


def test_heartbeats_carry_at_most_20_pending_requests_with_bounded_fields():
    policy = ApprovalPolicy(login_root=None, interval=1.0, orchestrator_email=ORCHESTRATOR.email)
    policy.pending = tuple(PendingCodeRequest(id=f"r{i}", requester="x@y.org", function="dict",
                                              submitted_at="2026-01-01T00:00:00+00:00", reason="why " * 500)
                           for i in range(MAX_REPORTED + 5))
    reported = policy.reported()
    assert len(reported) == MAX_REPORTED and [r.id for r in reported[:2]] == ["r0", "r1"]
    assert all(len(r.reason) == 300 and r.reason.endswith("…") for r in reported)
    beat = asdict(Heartbeat(factory_name="plant_a", timestamp="t", status="online", current_load={},
                            pending_code_requests=reported))
    assert beat["pending_code_requests"][0] == {"id": "r0", "requester": "x@y.org", "function": "dict",
                                                "submitted_at": "2026-01-01T00:00:00+00:00",
                                                "reason": reported[0].reason}


class FakeDatasite:
    """The few root-client calls ApprovalPolicy makes, over stored requests and codes."""

    def __init__(self, requests, codes, failing_applies=0):
        from syft.types.errors import SyftException

        def not_found(what):
            raise SyftException(public_message=f"{what} not found")

        self.requests, self.applied, self.failing_applies = list(requests), [], failing_applies
        self.decided = set()  # request ids the data owner approved or denied: held by their code, no longer pending
        self.codes = codes = {c.id: c for c in codes}
        self.removed_statuses = []
        services = SimpleNamespace(
            request=SimpleNamespace(get_all_pending=lambda: [r for r in self.requests
                                                            if r.id not in self.applied and r.id not in self.decided],
                                    apply=self._apply, get_by_usercode_id=self._requests_of,
                                    delete_by_uid=lambda uid: self.requests.remove(self._request(uid))),
            code=SimpleNamespace(get_by_id=lambda uid: codes.get(uid) or not_found("code"),
                                 get_all=lambda: list(codes.values()), delete=lambda uid: codes.pop(uid)),
            code_status=SimpleNamespace(get_by_uid=self._status, remove=lambda uid: self.removed_statuses.append(uid)),
            user=SimpleNamespace(get_by_verify_key=lambda verify_key: ORCHESTRATOR if verify_key == ORCHESTRATOR_KEY
                                 else not_found("user")))
        self.api = SimpleNamespace(services=services, server_uid=SERVER)
        self.metadata = SimpleNamespace(verify_key=str(SERVER_KEY))
        assets = {name: SimpleNamespace(action_id=uid) for name, uid in ASSETS.items()}
        self.datasets = SimpleNamespace(get_all=lambda: [SimpleNamespace(name="plant_sensors", assets=assets)])
        self.users = SimpleNamespace(get_all=lambda: [ORCHESTRATOR])

    def _request(self, uid):
        (request,) = [r for r in self.requests if r.id == uid]
        return request

    def _requests_of(self, usercode_id):
        """As PySyft's stash: the requests whose code-status change links the code."""
        return [r for r in self.requests
                if any(getattr(c, "linked_user_code", None) and c.linked_user_code.object_uid == usercode_id
                       for c in r.changes)]

    def _status(self, uid):
        """A code's status is approved once a request that sets it was applied."""
        return SimpleNamespace(approved=any(r.id in self.applied and any(
            getattr(c, "linked_obj", None) and c.linked_obj.object_uid == uid for c in r.changes)
            for r in self.requests))

    def _apply(self, uid):
        from syft.types.errors import SyftException

        if self.failing_applies:
            self.failing_applies -= 1
            raise SyftException(public_message="database is locked")
        self.applied.append(uid)


def stored_request(code, changes=None):
    return SimpleNamespace(id=UID(), changes=list(changes or [status_change(code)]),
                           requesting_user_verify_key=ORCHESTRATOR_KEY,
                           request_time=SimpleNamespace(utc_timestamp=1767225600.0))


def test_the_policy_approves_the_genuine_request_and_reports_every_other_once_until_its_owner_decides(caplog):
    genuine, spoof = stored_code(), stored_code(shipped_source() + "\n", func_name="dict")
    approve, refuse, orphan = stored_request(genuine), stored_request(spoof), stored_request(stored_code())
    site = FakeDatasite([refuse, approve, orphan], [genuine, spoof])
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    with caplog.at_level("INFO", logger="factory_agent.approval"):
        for _ in range(3):
            policy.review_pending(site)
    assert site.applied == [approve.id] and policy.approved == 1
    assert [(p.id, p.function) for p in policy.pending] == [(str(refuse.id), "dict"), (str(orphan.id), "(no code)")]
    assert policy.pending[0].submitted_at == "2026-01-01T00:00:00+00:00"
    assert policy.pending[1].reason.startswith("the code it links to")
    assert caplog.text.count(f"code request {refuse.id}") == 1 and caplog.text.count(f"code request {orphan.id}") == 1
    site.requests.remove(refuse)  # the data owner approved or denied it
    policy.review_pending(site)
    assert [p.id for p in policy.pending] == [str(orphan.id)]


def test_a_failed_approval_is_reported_and_tried_again():
    genuine = stored_code()
    request = stored_request(genuine)
    site = FakeDatasite([request], [genuine], failing_applies=1)
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    policy.review_pending(site)
    assert "approving it failed on the datasite: database is locked" in policy.pending[0].reason
    policy.review_pending(site)
    assert site.applied == [request.id] and policy.pending == ()


def test_a_request_that_breaks_the_check_stays_pending_and_does_not_stop_the_others():
    genuine = stored_code()
    hostile, approve = stored_request(stored_code(shipped_source() + "\n")), stored_request(genuine)
    hostile.changes = 5  # not iterable: reading the request raises
    site = FakeDatasite([hostile, approve], [genuine])
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    policy.review_pending(site)
    assert site.applied == [approve.id]
    assert [p.id for p in policy.pending] == [str(hostile.id)]
    assert policy.pending[0].reason.startswith("it could not be checked (TypeError")


# --- a pending request cannot block the genuine one (issue 24): PySyft keeps one code per source and user -------

def test_the_shipped_source_under_another_name_is_removed_so_the_genuine_code_can_be_approved(caplog):
    """The source declared as `dict` has the genuine fl_step's PySyft hash (source and key alone): left pending,
    the dashboard's own submission would get this code back and "Request ... already exists"."""
    variant = stored_code(func_name="dict")
    held = stored_request(variant)
    site = FakeDatasite([held], [variant])
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    with caplog.at_level("INFO", logger="factory_agent.approval"):
        policy.review_pending(site)
    assert site.requests == [] and site.codes == {} and site.removed_statuses == [variant.status_link.object_uid]
    assert policy.pending == () and policy.removed == 1 and site.applied == []
    line = [r.message for r in caplog.records if r.message.startswith("REMOVED code")]
    assert len(line) == 1 and str(held.id) in line[0] and "declared function name 'dict'" in line[0]
    genuine = stored_code()  # what the dashboard's submission now makes: a new code with its request
    site.codes[genuine.id] = genuine
    site.requests.append(approve := stored_request(genuine))
    policy.review_pending(site)
    assert site.applied == [approve.id] and genuine.id in site.codes and policy.removed == 1


def test_the_approved_genuine_code_and_other_sources_are_never_removed():
    genuine, other = stored_code(), stored_code(shipped_source() + "\n", func_name="dict")
    approve, refuse = stored_request(genuine), stored_request(other)
    site = FakeDatasite([approve, refuse], [genuine, other])
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    for _ in range(2):
        policy.review_pending(site)
    assert set(site.codes) == {genuine.id, other.id} and policy.removed == 0
    assert [p.id for p in policy.pending] == [str(refuse.id)]  # another source blocks nothing: the owner's


def test_the_genuine_source_submitted_without_a_request_is_removed_after_a_grace():
    """code.submit alone: the dashboard would find its own source unapproved, with no request to approve."""
    from syft.types.datetime import DateTime

    fresh = replace_fields(stored_code(), submit_time=DateTime.now())
    site = FakeDatasite([], [fresh])
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    policy.review_pending(site)
    assert fresh.id in site.codes  # its request may be on the way (PySyft makes the code first)
    old = replace_fields(fresh, submit_time=SimpleNamespace(utc_timestamp=1767225600.0))
    site.codes[fresh.id] = old
    policy.review_pending(site)
    assert site.codes == {} and policy.removed == 1


@pytest.mark.parametrize("fields, reason", [
    (dict(input_policy_init_kwargs=dashboard_rules(labels=Matches(kw="labels", val=ASSETS["features"]))),
     "'labels' is not bound"),
    (dict(output_policy_type=OutputPolicyExecuteCount), "output policy"),
    (dict(input_kwargs=None), "it could not be checked (TypeError"),
], ids=["another input binding", "another output policy", "a code that breaks the check"])
def test_a_variant_holding_the_genuine_hash_is_never_approved_and_is_removed_with_its_reason(fields, reason, caplog):
    variant = replace_fields(stored_code(), **fields)
    held = stored_request(variant)
    site = FakeDatasite([held], [variant])
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    with caplog.at_level("INFO", logger="factory_agent.approval"):
        policy.review_pending(site)
    assert site.applied == [] and policy.approved == 0
    assert site.codes == {} and site.requests == [] and policy.pending == ()
    (line,) = [r for r in caplog.records if r.message.startswith("REMOVED code")]
    assert line.levelname == "WARNING" and str(variant.id) in line.message and reason in line.message, line.message


def test_a_code_the_data_owner_decided_is_kept_so_a_denied_genuine_fl_step_stays_denied():
    """The owner's veto: removing a denied genuine code would let the dashboard resubmit it and the policy
    approve it."""
    genuine = stored_code()
    decided = stored_request(genuine)
    site = FakeDatasite([decided], [genuine])
    site.decided.add(decided.id)
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    policy.review_pending(site)
    assert genuine.id in site.codes and site.requests == [decided] and policy.removed == 0 and site.applied == []


def test_another_accounts_code_with_the_shipped_source_is_not_removed():
    """Its hash is the shipped source under that account's key; it blocks nothing of the orchestrator's."""
    other_key = SyftSigningKey.generate().verify_key
    foreign = stored_code(func_name="dict", owner=other_key)
    held = replace_fields(stored_request(foreign), requesting_user_verify_key=other_key)
    site = FakeDatasite([held], [foreign])
    policy = ApprovalPolicy(login_root=lambda: site, interval=0.1, orchestrator_email=ORCHESTRATOR.email)
    policy.review_pending(site)
    assert foreign.id in site.codes and [p.id for p in policy.pending] == [str(held.id)] and policy.removed == 0
