"""Exact approval (DESIGN §9): the agent approves a PySyft code request only when approving it can do nothing but
let this plant's orchestrator run the shipped `fl_step` on this plant's three assets. Anything else stays
pending for the data owner, is logged once with the check it failed, and is reported in heartbeats.

The decision is factory_agent.code_vetting's `vet_request`, a pure function; `ApprovalPolicy` polls the datasite
as root, builds what it compares (`CodeRequestView`, `ExpectedCode`), and approves or reports.

A pending request must not block the genuine one (issue 24). PySyft 0.9.5 keeps one UserCode per code hash, the
sha256 of the submitted source and the submitter's key alone (service/code/user_code.py `get_code_hash`; not the
declared name, nor the input or output policy), and one request per UserCode (`_request_code_execution`: "Request
... already exists for this UserCode"). So the shipped source submitted by the orchestrator under another name
or policy, or bound in a hand-built request, or submitted with no request at all, takes the genuine fl_step's
hash: the dashboard's own submission then gets that code back and no request, for good. The plant removes
exactly those (`unblock`): the orchestrator's codes with the genuine hash that are not approved and hold no request
the policy approves, with their requests and status, and logs it; never one whose request the data owner decided
(a genuine fl_step the owner denied stays denied). Requests of other code stay pending for the data owner, as
before: they block nothing. The dashboard retries its submission (dashboard/orchestration/syft_clients.py).
PySyft is imported inside functions only: it reads settings from the environment at import (datasite.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timezone

from factory_agent.code_vetting import FUNCTION_NAME, CodeRequestView, ExpectedCode, shipped_source, vet_request
from shared.protocol.registry import MAX_PENDING_CODE_REQUESTS, PENDING_CODE_REQUEST_FIELDS, PendingCodeRequest
from shared.quiet import quiet
from shared.vetted import ASSET_NAMES, DATASET_NAME

log = logging.getLogger(__name__)

MAX_REPORTED = MAX_PENDING_CODE_REQUESTS  # pending requests in one heartbeat
FIELD_LIMITS = PENDING_CODE_REQUEST_FIELDS
# a code with the genuine hash and no request yet is removed only this long after its submission: PySyft makes
# the code, then its request, in one call of the dashboard's
UNREQUESTED_GRACE_S = 10.0


def _age_s(value) -> float:
    """Seconds since a syft DateTime (infinite when it has none: an object without a time is not new)."""
    timestamp = getattr(value, "utc_timestamp", None)
    return float("inf") if timestamp is None else datetime.now(timezone.utc).timestamp() - timestamp


def _isoformat(value) -> str:
    timestamp = getattr(value, "utc_timestamp", None)  # syft DateTime
    if timestamp is None:
        return str(value or "")
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


class ApprovalPolicy:
    """Polls the datasite's pending requests as root; approves the exact ones, reports the others."""

    def __init__(self, login_root, interval: float, orchestrator_email: str):
        self._login_root = login_root
        self.interval = interval
        self.orchestrator_email = orchestrator_email
        self.source = shipped_source()
        self.approved = 0
        self.removed = 0  # codes that held the genuine fl_step's hash without its approval (unblock)
        self._expected: ExpectedCode | None = None
        self._refused: dict[str, PendingCodeRequest] = {}  # request id -> why, for requests still pending
        self._logged: set[str] = set()
        # the heartbeat thread reads this; the approval thread replaces it whole (no lock needed)
        self.pending: tuple[PendingCodeRequest, ...] = ()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="approval", daemon=True)

    def start(self) -> None:
        log.info("code approval policy: auto-approve only the shipped %s (sha256 of its source %s…) on this "
                 "plant's %s assets, requested by %s; everything else waits for the data owner", FUNCTION_NAME,
                 hashlib.sha256(self.source.encode()).hexdigest()[:12], DATASET_NAME, self.orchestrator_email)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def reported(self) -> list[PendingCodeRequest]:
        """The newest pending requests, bounded for a heartbeat."""
        return [p.bounded() for p in self.pending[:MAX_REPORTED]]

    # --- one pass ------------------------------------------------------------------------------
    def expected(self, root) -> ExpectedCode:
        from syft.server.credentials import SyftVerifyKey

        datasets = [d for d in root.datasets.get_all() if d.name == DATASET_NAME]
        if len(datasets) != 1:
            raise LookupError(f"expected one dataset {DATASET_NAME!r} on this datasite, found {len(datasets)}")
        orchestrators = [u for u in root.users.get_all() if u.email == self.orchestrator_email]
        if len(orchestrators) != 1:
            raise LookupError(f"expected one orchestrator account {self.orchestrator_email}, "
                              f"found {len(orchestrators)}")
        assets = datasets[0].assets
        return ExpectedCode(source=self.source, server_id=root.api.server_uid,
                            server_verify_key=SyftVerifyKey.from_string(root.metadata.verify_key),
                            asset_ids={name: assets[name].action_id for name in ASSET_NAMES},
                            orchestrator_id=orchestrators[0].id, orchestrator_email=self.orchestrator_email)

    def review_pending(self, root) -> None:
        if self._expected is None:
            self._expected = self.expected(root)
        with quiet(log):
            requests = root.api.services.request.get_all_pending()  # newest first
        still_pending, verdicts, users = [], {}, {}  # users: verify key -> the server's user record, this pass
        for request in requests:
            request_id = str(request.id)
            refused = self._refused.get(request_id)
            if refused is None:
                view, reason = self._check(root, request, users)
                if reason is None:
                    failure = self._approve(root, request.id, view)
                    if failure is None:
                        continue
                    still_pending.append(self._refuse(view, failure))  # not a verdict: tried again next pass
                    continue
                refused = self._refuse(view, reason)
            verdicts[request_id] = refused
            still_pending.append(refused)
        removed = self.unblock(root, users, verdicts)
        if removed:
            still_pending = [p for p in still_pending if p.id not in removed]
            verdicts = {k: v for k, v in verdicts.items() if k not in removed}
        # a request the data owner decided leaves the datasite's pending list for good: forget it
        self._refused = verdicts
        self._logged.intersection_update(str(r.id) for r in requests)
        self.pending = tuple(still_pending)

    # --- a pending request cannot block the genuine one (module docstring) --------------------------------------
    def unblock(self, root, users: dict, refused: dict[str, PendingCodeRequest]) -> set[str]:
        """Remove every code of the orchestrator's that holds the genuine fl_step's PySyft hash without its
        approval and whose every request this pass `refused` (by vetting), with those requests; the ids of the
        requests removed. A code whose request this pass approved is approved by now and kept, as is one whose
        approval failed (tried again next pass) or one with a request the data owner decided; one not yet
        requested is kept for UNREQUESTED_GRACE_S."""
        from syft.service.code.user_code import get_code_hash

        with quiet(log):
            codes = root.api.services.code.get_all()
        removed: set[str] = set()
        for code in codes:
            try:
                key = code.user_verify_key
                if code.code_hash != get_code_hash(self.source, key) or not self._is_orchestrator(root, key, users):
                    continue
                with quiet(log):
                    if code.status_link is not None and root.api.services.code_status.get_by_uid(
                            uid=code.status_link.object_uid).approved:
                        continue
                    held = root.api.services.request.get_by_usercode_id(usercode_id=code.id)
                if not held and _age_s(getattr(code, "submit_time", None)) < UNREQUESTED_GRACE_S:
                    continue
                if any(str(r.id) not in refused for r in held):  # approvable (its approval may have failed this
                    continue  # pass), or decided by the data owner: not this policy's to remove
                removed |= self._remove(root, code, held, refused)
            except Exception:  # a hostile or half-made object: log it, keep the policy running
                log.exception("could not check or remove code %s", getattr(code, "id", "?"))
        return removed

    def _is_orchestrator(self, root, key, users: dict) -> bool:
        if str(key) not in users:
            users[str(key)] = self._fetch(lambda: root.api.services.user.get_by_verify_key(verify_key=key),
                                          "code owner")
        return getattr(users[str(key)], "id", None) == self._expected.orchestrator_id

    def _remove(self, root, code, held: list, refused: dict[str, PendingCodeRequest]) -> set[str]:
        ids = {str(r.id) for r in held}
        with quiet(log):
            for request in held:
                root.api.services.request.delete_by_uid(uid=request.id)
            root.api.services.code.delete(uid=code.id)
            if code.status_link is not None:
                root.api.services.code_status.remove(uid=code.status_link.object_uid)
        self.removed += 1
        reasons = "; ".join(refused[i].reason for i in sorted(ids) if i in refused) or (
            "no request approved it" if held else "it was submitted without a request")
        log.warning("REMOVED code %s (declared %s, submitted by %s) and its request(s) %s, never approved and never "
                    "run: it holds the shipped %s's source, so PySyft files the genuine %s under it, but it is not "
                    "approvable (%s). PySyft keeps one code and one request per source and account: left pending, "
                    "it would block the dashboard's genuine %s for good", code.id, ascii(code.service_func_name)[:60],
                    self.orchestrator_email, ", ".join(sorted(ids)) or "(none)", FUNCTION_NAME, FUNCTION_NAME,
                    reasons, FUNCTION_NAME)
        return ids

    def _check(self, root, request, users: dict) -> tuple[CodeRequestView, str | None]:
        """The request's view and why it is refused (None: approve). A request that cannot even be read or
        checked is refused, so a hand-built one can neither get through nor stop the check of the others."""
        view = CodeRequestView(id=str(request.id), changes=(), requester_key=None, requester=None, code=None,
                               submitted_at="")
        try:
            view = self._view(root, request, users)
            return view, vet_request(view, self._expected)
        except Exception as exc:  # any failure on hostile input means "not approved", never a stopped policy
            log.debug("request %s could not be checked", view.id, exc_info=True)
            return view, f"it could not be checked ({type(exc).__name__}: {str(exc)[:120]})"

    def _view(self, root, request, users: dict) -> CodeRequestView:
        from syft.service.request.request import UserCodeStatusChange

        changes = tuple(request.changes)
        code = None
        links = [c.linked_user_code for c in changes if isinstance(c, UserCodeStatusChange)]
        if links:
            code = self._fetch(lambda: root.api.services.code.get_by_id(uid=links[0].object_uid), "code")
        key = request.requesting_user_verify_key
        if str(key) not in users:
            users[str(key)] = self._fetch(lambda: root.api.services.user.get_by_verify_key(verify_key=key),
                                          "requesting user")
        return CodeRequestView(id=str(request.id), changes=changes, requester_key=key, requester=users[str(key)],
                               code=code,
                               submitted_at=_isoformat(request.request_time))

    @staticmethod
    def _fetch(get, what: str):
        """A linked object by uid as root, or None when it is not there (a hand-built request may link anything)."""
        from syft.types.errors import SyftException

        try:
            with quiet(log):
                found = get()
        except SyftException as exc:
            log.debug("%s of a pending request not found: %s", what, exc)
            return None
        return None if type(found).__name__ == "SyftError" else found

    def _approve(self, root, request_uid, view: CodeRequestView) -> str | None:
        from syft.types.errors import SyftException

        try:
            with quiet(log):
                # by uid: the server applies the stored request, which the requester cannot change
                root.api.services.request.apply(uid=request_uid)
        except SyftException as exc:
            return f"approving it failed on the datasite: {exc.public_message}"
        self.approved += 1
        log.info("approved code request %s: the shipped %s requested by %s", view.id, FUNCTION_NAME,
                 view.requester.email)
        return None

    def _refuse(self, view: CodeRequestView, reason: str) -> PendingCodeRequest:
        requester = getattr(view.requester, "email", None) or f"unknown account {str(view.requester_key)[:16]}"
        function = getattr(view.code, "service_func_name", None) or "(no code)"
        refused = PendingCodeRequest(id=view.id, requester=requester, function=function,
                                     submitted_at=view.submitted_at, reason=reason)
        if view.id not in self._logged:
            self._logged.add(view.id)
            log.warning("code request %s for %r by %s is NOT approved automatically: %s. It stays pending for "
                        "the plant's data owner", view.id, function, requester, reason)
        return refused

    def _loop(self) -> None:
        root, last_failure = None, None
        while not self._stop.wait(self.interval):
            try:
                root = root or self._login_root()
                self.review_pending(root)
                last_failure = None
            except Exception as exc:  # keep the policy alive: a failed check is retried next interval
                failure = f"{type(exc).__name__}: {exc}"
                if failure != last_failure:  # once per distinct failure, not every interval
                    log.exception("checking code requests failed; retrying every %.1f s", self.interval)
                last_failure, root, self._expected = failure, None, None
