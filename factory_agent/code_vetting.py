"""The exact-approval decision (DESIGN §9): may this plant approve a PySyft code request by itself? Only when
approving it can do nothing but let this plant's orchestrator run the shipped `fl_step` on this plant's three
assets.

Why a hash of the source is not enough (PySyft 0.9.5, verified):
- PySyft executes `parsed_code`, built server-side from the source *and* the declared function name: the wrapper
  ends with `result = <service_func_name>(**inputs)`, so the shipped source declared as `dict` returns the rows.
- `request.approve()` applies every change of a request, so an extra change (read permission on an asset) rides
  along with the vetted code.
- The code-status change names the code (`linked_user_code`, what an admin is shown) and, separately, the status
  object it sets to approved (`linked_obj`): a hand-built request can show `fl_step` and approve another code.

`vet_request` is the whole decision, a pure function over a snapshot of the request (`CodeRequestView`) and what
this plant expects (`ExpectedCode`); factory_agent.approval polls the datasite, builds both, and acts.
PySyft is imported inside functions only: it reads settings from the environment at import (datasite.py).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass
from typing import Any

from shared.vetted import ASSET_NAMES, DATASET_NAME, fl_step

FUNCTION_NAME = "fl_step"
ARGUMENTS = (*ASSET_NAMES, "request")  # fl_step's parameters, in order; `request` is the orchestrator's dict


def shipped_source() -> str:
    """The exact text the dashboard submits: `sy.syft_function(...)(fl_step)` sends `dedent(getsource(fl_step))`,
    which for a module-level function is `getsource` itself. Read once, when the policy starts (the file on
    disk may change under a running agent; the function it imported does not)."""
    return inspect.getsource(fl_step)


@dataclass(frozen=True)
class ExpectedCode:
    """What this plant approves: server-side facts read as root, never values taken from the request."""

    source: str  # shipped_source()
    server_id: Any  # UID of this datasite
    server_verify_key: Any  # SyftVerifyKey of this datasite
    asset_ids: dict  # {asset name: action UID} of DATASET_NAME on this datasite
    orchestrator_id: Any  # UID of the orchestrator's user account
    orchestrator_email: str


@dataclass(frozen=True)
class CodeRequestView:
    """One pending request as the datasite stores it, with the objects it links to fetched by uid as root."""

    id: str
    changes: tuple  # the stored Change objects
    requester_key: Any  # request.requesting_user_verify_key (set by the server from the caller's login)
    requester: Any  # the server's user record (UserView: id, email) for requester_key; None if unknown
    code: Any  # the stored UserCode the code-status change links to; None if none or not found
    submitted_at: str


@functools.cache
def _syft():
    """The PySyft classes the checks compare against, imported on first use."""
    from types import SimpleNamespace

    from syft.client.api import ServerIdentity
    from syft.service.code.status_service import UserCodeStatusService
    from syft.service.code.user_code import UserCode, UserCodeStatus, UserCodeStatusCollection, parse_user_code
    from syft.service.code.user_code_service import UserCodeService
    from syft.service.policy.policy import Matches, MixedInputPolicy, OutputPolicyExecuteOnce, UserOwned
    from syft.service.request.request import UserCodeStatusChange

    return SimpleNamespace(**locals())


def vet_request(view: CodeRequestView, expected: ExpectedCode) -> str | None:
    """None when the request may be approved; otherwise why not (the first check that fails)."""
    sy = _syft()
    if len(view.changes) != 1:
        kinds = ", ".join(type(c).__name__ for c in view.changes) or "none"
        return (f"holds {len(view.changes)} changes ({kinds}); only a request with exactly one change, the code "
                "status, is approved automatically")
    (change,) = view.changes
    if type(change) is not sy.UserCodeStatusChange:
        return f"its change is a {type(change).__name__}, not a code-status change"
    if change.value != sy.UserCodeStatus.APPROVED:
        return f"it asks for code status {change.value}, not APPROVED"
    if view.requester is None:
        return "requested by an account this datasite does not know"
    if view.requester.id != expected.orchestrator_id or view.requester.email != expected.orchestrator_email:
        return (f"requested by {view.requester.email}, not by this plant's orchestrator account "
                f"{expected.orchestrator_email}")
    code_link, code = change.linked_user_code, view.code
    if (code is None or code_link.object_type is not sy.UserCode or code_link.service_type is not sy.UserCodeService
            or code_link.object_uid != code.id):
        return f"the code it links to ({code_link.object_uid}) is not a code object on this datasite"
    if code.user_verify_key != view.requester_key:
        return "the code was submitted by another account than the one asking for its approval"
    status_link, own_status = change.linked_obj, code.status_link
    if (status_link.object_type is not sy.UserCodeStatusCollection
            or status_link.service_type is not sy.UserCodeStatusService
            or own_status.object_type is not sy.UserCodeStatusCollection
            or own_status.service_type is not sy.UserCodeStatusService
            or status_link.object_uid != own_status.object_uid):
        return (f"it would approve status {status_link.object_uid}, not the status of the code it shows "
                f"({code.service_func_name!r}, status {own_status.object_uid})")
    return _vet_code(code, expected, sy) or _vet_policies(code, expected, sy)


def _vet_code(code, expected: ExpectedCode, sy) -> str | None:
    """The code PySyft will execute is exactly the shipped fl_step, wrapped by PySyft under the name fl_step."""
    if code.service_func_name != FUNCTION_NAME:
        return (f"declared function name {code.service_func_name!r} is not {FUNCTION_NAME!r} (PySyft runs "
                f"`result = {code.service_func_name}(**inputs)` after the source)")
    if code.raw_code != expected.source:
        difference = _first_difference(code.raw_code, expected.source)
        return f"its source is not byte-for-byte the shipped {FUNCTION_NAME} ({difference})"
    code_hash = hashlib.sha256(f"{code.raw_code}{code.user_verify_key}".encode()).hexdigest()
    executed_name = f"user_func_{FUNCTION_NAME}_{code.user_verify_key}_{code_hash}"  # generate_unique_func_name
    if code.code_hash != code_hash or code.unique_func_name != executed_name:
        return "its stored hash or executed function name does not derive from its source"
    parameters = tuple(getattr(code.signature, "parameters", {}))
    if tuple(code.input_kwargs) != ARGUMENTS or parameters != ARGUMENTS:
        return f"its arguments {tuple(code.input_kwargs)} / {parameters} are not {ARGUMENTS}"
    if code.nested_codes or code.uses_datasite:
        return "it calls other code on the datasite (nested codes or the datasite argument)"
    wrapper = sy.parse_user_code(raw_code=expected.source, func_name=code.unique_func_name,
                                 original_func_name=FUNCTION_NAME, function_input_kwargs=list(ARGUMENTS))
    if code.parsed_code != wrapper:
        return f"the code PySyft would execute is not PySyft's wrapper of the shipped {FUNCTION_NAME}"
    return None


def _vet_policies(code, expected: ExpectedCode, sy) -> str | None:
    """Inputs bound to this plant's three assets plus the caller's own `request` dict; single-execution output."""
    if code.input_policy_type is not sy.MixedInputPolicy or code.input_policy_state:
        return f"its input policy is {_name(code.input_policy_type)}, not a fresh MixedInputPolicy"
    servers = code.input_policy_init_kwargs or {}
    if len(servers) != 1:
        return f"its input policy names {len(servers)} datasites, not this one alone"
    ((server, rules),) = servers.items()
    if (type(server) is not sy.ServerIdentity or server.server_id != expected.server_id
            or server.verify_key != expected.server_verify_key):
        return f"its input policy binds inputs on another datasite ({getattr(server, 'server_id', server)})"
    if not isinstance(rules, dict) or set(rules) != set(ARGUMENTS):
        bound = sorted(map(str, rules)) if isinstance(rules, dict) else type(rules).__name__
        return f"its input policy binds {bound}, not {list(ARGUMENTS)}"
    for name in ASSET_NAMES:
        rule = rules[name]
        if (type(rule) is not sy.Matches or rule.kw != name or rule.requires_input is not True
                or rule.val != expected.asset_ids[name]):
            return f"its input {name!r} is not bound to this plant's {name} asset of {DATASET_NAME!r}"
    rule = rules["request"]
    if (type(rule) is not sy.UserOwned or rule.kw != "request" or rule.requires_input is not True
            or rule.type is not dict):
        return "its input 'request' is not a dict owned by the caller"
    if code.output_policy_type is not sy.OutputPolicyExecuteOnce or code.output_policy_state:
        return f"its output policy is {_name(code.output_policy_type)}, not a fresh SingleExecutionExactOutput"
    if set(code.output_policy_init_kwargs or {}) - {"id"}:
        return f"its output policy carries settings {sorted(set(code.output_policy_init_kwargs) - {'id'})}"
    return None


def _name(policy_type) -> str:
    return getattr(policy_type, "__name__", type(policy_type).__name__)


def _first_difference(got: str, want: str) -> str:
    got_lines, want_lines = got.splitlines(keepends=True), want.splitlines(keepends=True)
    for number, (a, b) in enumerate(zip(got_lines, want_lines), start=1):
        if a != b:
            return f"first difference at line {number}"
    if len(got_lines) != len(want_lines):
        return f"{len(got_lines)} lines where the shipped text has {len(want_lines)}"
    return "a different line ending"
