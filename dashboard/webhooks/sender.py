"""The operators' webhook (DESIGN §10, `DASHBOARD_ALERT_WEBHOOK`): a JSON POST when a plant opens new alerts, a
plant's drift crosses into "drifted", a plant goes offline, or an experiment fails.

Delivery never blocks a request or a scheduler job: events wait in a bounded queue for one background thread
that posts each with a timeout and retries with growing pauses. A plant sends at most one `alert.opened` (and
one `drift.high`) per `DASHBOARD_ALERT_WEBHOOK_MIN_INTERVAL` seconds (default 300; the events in between go out as
one, counted in `detail.rises`), and a full queue gives up its oldest plant event before any offline or failed
one (dashboard.webhooks.queue; per process: each gunicorn worker keeps its own interval).
An event is queued only once the transaction that caused it commits (a rolled-back change calls no one):
`notify_after_commit` keeps it in the session until SQLAlchemy's `after_commit`.

Where events come from: the heartbeat hook (dashboard.registry.floor: alerts were opened since the last beat, or
the drift ratio crossed into "drifted"), and two attribute listeners installed here, so the round engine and the
liveness job need no call of their own: an experiment's status set to `failed`, and a plant's status set to
`offline` through the ORM (the liveness job; a plant that says it is stopping is not an outage and sends nothing).

Payload: {"event": "alert.opened" | "drift.high" | "plant.offline" | "experiment.failed", "subject": plant or
experiment name, "at": ISO time (UTC), "detail": {...}}. The URL is the operator's, yet only http and https are
accepted and redirects are not followed; its path may hold a secret, so logs name only its host.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from dashboard.webhooks.queue import PLANT_SIGNALS, AlertDebounce, EventQueue
from shared.enums import ExperimentStatus, FactoryStatus
from shared.errors import ConfigurationError

log = logging.getLogger(__name__)
EXTENSION = "factoryfl_webhook"
PENDING = "factoryfl_webhook_events"  # key in Session.info: events waiting for their transaction to commit
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class WebhookSettings:
    url: str | None
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry, doubled for each next one
    alert_interval: float = 300.0  # at most one alert.opened per plant in this many seconds

    @classmethod
    def from_config(cls, config) -> "WebhookSettings":
        url, timeout = config.get("ALERT_WEBHOOK"), float(config.get("ALERT_WEBHOOK_TIMEOUT", 5.0))
        if not 0 < timeout <= 60:
            raise ConfigurationError(f"DASHBOARD_ALERT_WEBHOOK_TIMEOUT must be between 0 and 60 seconds, got {timeout}")
        interval = float(config.get("ALERT_WEBHOOK_MIN_INTERVAL", 300.0))
        if not 0 <= interval <= 86_400:
            raise ConfigurationError(f"DASHBOARD_ALERT_WEBHOOK_MIN_INTERVAL must be between 0 and 86400 seconds, "
                                     f"got {interval}")
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(f"DASHBOARD_ALERT_WEBHOOK must be an http:// or https:// URL with a host, "
                                         f"got scheme {parts.scheme!r}")
        return cls(url=url or None, timeout=timeout, alert_interval=interval)


@dataclass(frozen=True)
class WebhookEvent:
    kind: str
    subject: str
    detail: dict = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def to_json(self) -> dict:
        return {"event": self.kind, "subject": self.subject, "at": self.at, "detail": self.detail}


class WebhookSender:
    """One background thread posting queued events; `send` returns at once."""

    def __init__(self, settings: WebhookSettings, session: requests.Session | None = None, clock=time.monotonic):
        self.settings = settings
        self.session = session or requests.Session()
        self.queue = EventQueue(QUEUE_SIZE)
        self.debounce = AlertDebounce(settings.alert_interval, clock)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.delivered = self.failed = 0

    @property
    def host(self) -> str:
        return urlsplit(self.settings.url or "").hostname or "-"

    def send(self, item: WebhookEvent) -> bool:
        """Queue an event, or hold an alert for its plant's interval (False without a URL, or when dropped)."""
        if not self.settings.url:
            return False
        self._start()
        if item.kind in PLANT_SIGNALS:
            item = self.debounce.offer(item)
            if item is None:
                return True  # held: it goes out, counted, when the plant's interval ends
        return self._enqueue(item)

    def _enqueue(self, item: WebhookEvent) -> bool:
        dropped = self.queue.put(item)
        if dropped is not None:
            log.warning("webhook queue full (%d events): dropped %s %s", QUEUE_SIZE, dropped.kind, dropped.subject)
        return dropped is not item

    def _start(self) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="webhook", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            for held in self.debounce.due():
                self._enqueue(held)
            item = self.queue.get(timeout=0.5)
            if item is None:
                continue
            try:
                self.deliver(item)
            finally:
                self.queue.task_done()

    def deliver(self, item: WebhookEvent) -> bool:
        """POST with a timeout; retry a network error or a non-2xx answer with growing pauses."""
        reason = "not sent"
        for attempt in range(self.settings.retries + 1):
            if attempt and self.stopping.wait(self.settings.backoff * 2 ** (attempt - 1)):
                break
            try:
                resp = self.session.post(self.settings.url, json=item.to_json(), timeout=self.settings.timeout,
                                         allow_redirects=False)
                if 200 <= resp.status_code < 300:
                    self.delivered += 1
                    return True
                reason = f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                reason = type(exc).__name__
        self.failed += 1
        log.warning("webhook to %s failed for %s %s after %d attempt(s): %s", self.host, item.kind, item.subject,
                    self.settings.retries + 1, reason)
        return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up (tests, shutdown)."""
        return self.queue.join(timeout)

    def stop(self) -> None:
        self.stopping.set()


def notify_after_commit(session: Session, item: WebhookEvent) -> None:
    """Queue `item` for the webhook when `session`'s transaction commits (dropped on rollback)."""
    session.info.setdefault(PENDING, []).append(item)


def sender() -> WebhookSender | None:
    return current_app.extensions.get(EXTENSION) if has_app_context() else None


def _after_commit(session: Session) -> None:
    items = session.info.pop(PENDING, None)
    target = sender() if items else None
    for item in items or ():
        if target is not None:
            target.send(item)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


def _status_listener(kind: str, watched: str, describe):
    def on_set(target, value, oldvalue, _initiator):
        # only a change of a loaded, different status: a new row (oldvalue is a marker symbol) is no outage
        if value == watched and isinstance(oldvalue, str) and oldvalue != watched:
            session = object_session(target)
            described = describe(target) if session is not None else None
            if described is not None:  # None: not an event (a plant an admin decommissioned is no outage)
                subject, detail = described
                notify_after_commit(session, WebhookEvent(kind, subject, {"previous_status": oldvalue, **detail}))
    return on_set


_installed = threading.Lock()
_listeners_on = False


def init_app(app) -> None:
    """Validate the settings (a bad URL stops the dashboard at start) and install the listeners once."""
    global _listeners_on
    from dashboard.models import Experiment, Factory

    app.extensions[EXTENSION] = WebhookSender(WebhookSettings.from_config(app.config))
    with _installed:
        if _listeners_on:
            return
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        event.listen(Experiment.status, "set", _status_listener(
            "experiment.failed", ExperimentStatus.FAILED.value, lambda e: (e.name, {"experiment_id": e.id})),
            active_history=True)  # the old value even when a commit expired it: a change is told from a repeat
        event.listen(Factory.status, "set", _status_listener(
            "plant.offline", FactoryStatus.OFFLINE.value,
            lambda f: None if f.decommissioned_at is not None else (f.name, {"last_heartbeat": str(f.last_heartbeat)})),
            active_history=True)
        _listeners_on = True
