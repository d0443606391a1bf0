"""Exact approval (DESIGN §9): the agent approves a PySyft code request only when approving it can do nothing but
let this plant's orchestrator run the shipped `fl_step` on this plant's three assets. Anything else stays
pending for the data owner, is logged once with the check it failed, and is reported in heartbeats.

The decision is factory_agent.code_vetting's `vet_request`, a pure function; `ApprovalPolicy` polls the datasite
as root, builds what it compares (`CodeRequestView`, `ExpectedCode`), and approves or reports.
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
        # a request the data owner decided leaves the datasite's pending list for good: forget it
        self._refused = verdicts
        self._logged.intersection_update(str(r.id) for r in requests)
        self.pending = tuple(still_pending)

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
