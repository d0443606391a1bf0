"""The approval policy: approve a code request only when its source is one of this version's vetted
functions (shared.vetted); leave everything else pending for a human and say so once in the log."""

from __future__ import annotations

import logging
import threading

from shared.quiet import quiet
from shared.vetted import source_hash, vetted_hashes

log = logging.getLogger(__name__)


class ApprovalPolicy:
    def __init__(self, login_root, interval: float):
        self._login_root = login_root
        self.interval = interval
        self.allow_list = vetted_hashes()
        self._reported: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="approval", daemon=True)
        self.approved = 0

    def start(self) -> None:
        log.info("code approval policy: auto-approve %d vetted function(s): %s", len(self.allow_list),
                 ", ".join(sorted(set(self.allow_list.values()))))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def review_pending(self, root) -> None:
        for request in root.requests:
            if not str(request.status).endswith("PENDING"):
                continue
            code = request.code
            digest = source_hash(code.raw_code)
            requester = getattr(request, "requesting_user_email", "?")
            if digest in self.allow_list:
                with quiet(log):
                    request.approve()
                self.approved += 1
                log.info("approved vetted code %s (sha256 %s…) requested by %s", code.service_func_name,
                         digest[:12], requester)
            elif str(request.id) not in self._reported:
                self._reported.add(str(request.id))
                log.warning("code request %s for %r by %s is NOT on the vetted list (sha256 %s…): left "
                            "pending for a human to review", request.id, code.service_func_name, requester,
                            digest[:12])

    def _loop(self) -> None:
        root = None
        while not self._stop.wait(self.interval):
            try:
                root = root or self._login_root()
                self.review_pending(root)
            except Exception:  # keep the policy alive: a failed check is retried next interval
                log.exception("checking code requests failed; retrying in %.0f s", self.interval)
                root = None
