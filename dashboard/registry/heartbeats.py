"""Heartbeats buffered in each process and written in batches (issue #17).

POST /heartbeat checks the plant's token against a per-process cache of token digests (dashboard.api.factories)
and hands the accepted heartbeat to this process's `HeartbeatBuffer`. A flusher thread writes what waits, in one
transaction: one multi-row INSERT into `heartbeats`, one UPDATE per plant with its latest heartbeat (never older than
what the row holds: a re-registration or another worker's newer heartbeat wins). Two modes (`BufferSettings`):

- buffered (default): the heartbeat is answered at once and written within `flush_interval` seconds. The buffer is
  written when the process stops normally (atexit: gunicorn's SIGTERM, `python -m dashboard` on SIGINT or
  SIGTERM), and by gunicorn's `worker_exit` hook (gunicorn.conf.py). On SIGKILL (or a power cut) the heartbeats
  accepted since the last write are lost: at most `flush_interval` seconds of them (and at most one per plant
  whose interval is longer than that), never a registration, and liveness recovers with the plant's next beat.
  A write that fails (full disk, database down) keeps the rows and retries; meanwhile new heartbeats get 503.
- durable: the request waits until the batch holding its row is committed (group commit: one transaction for
  every heartbeat that arrived while the previous one was written), so a 200 always means the row is stored.

The token cache: name -> (id, digest of the token, interval, reported pending requests). A registration in this
process drops the name; a token that does not match is looked up again before a 401 (a plant re-registered through
another worker); every write re-reads the digests of the plants it writes and drops changed entries, so another
worker's re-registration makes an old token fail here within one flush interval.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass

from dashboard.extensions import db
from dashboard.registry.heartbeat_store import AcceptedHeartbeat, TokenCache, write_batch
from dashboard.errors import RegistryUnavailable

log = logging.getLogger(__name__)
EXTENSION = "factoryfl_heartbeats"
RETRY_MAX_S = 5.0  # longest pause between two tries of a failing write
WRITE_TRIES = 2
IDLE_EXIT_S = 30.0  # the writer thread ends after this long without heartbeats (and starts again with the next)


@dataclass(frozen=True)
class BufferSettings:
    flush_interval: float = 0.2  # seconds between two writes of the buffer
    max_rows: int = 2000  # written at once when this many wait
    max_buffered: int = 50_000  # beyond this many unwritten rows (a failing database), heartbeats get 503
    durable: bool = False  # answer only once the row is committed

    @classmethod
    def from_config(cls, config) -> "BufferSettings":
        return cls(flush_interval=float(config.get("HEARTBEAT_FLUSH_INTERVAL", cls.flush_interval)),
                   durable=bool(config.get("HEARTBEAT_DURABLE", cls.durable)))


class _Batch:
    """The heartbeats one write takes; durable requests wait for its outcome."""

    def __init__(self) -> None:
        self.beats: list[AcceptedHeartbeat] = []
        self.opened = 0.0  # when its first heartbeat came
        self.waiters = 0
        self.done = threading.Event()
        self.error: str | None = None


class HeartbeatBuffer:
    """This process's unwritten heartbeats and the thread that writes them (module docstring). The thread starts
    with the first heartbeat and ends after IDLE_EXIT_S without any (apps made by tests do not keep threads)."""

    def __init__(self, app, settings: BufferSettings):
        self.app = app
        self.settings = settings
        self.tokens = TokenCache()
        self.pid = os.getpid()
        self.failing: str | None = None  # why the last write failed; None: it succeeded
        self.written = 0
        self._batch = _Batch()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def accept(self, beat: AcceptedHeartbeat) -> None:
        """Buffered: queued (RegistryUnavailable while writes fail). Durable: returns once the row is committed."""
        with self._cond:
            if self._closed:
                raise RegistryUnavailable("the dashboard is stopping: retry the heartbeat")
            if not self.settings.durable and (self.failing or len(self._batch.beats) >= self.settings.max_buffered):
                raise RegistryUnavailable(f"the dashboard's database cannot be written: {self.failing or 'backlog'}")
            batch = self._batch
            if not batch.beats:
                batch.opened = time.monotonic()
            batch.beats.append(beat)
            batch.waiters += self.settings.durable
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heartbeat writer", daemon=True)
                self._thread.start()
            self._cond.notify()
        if self.settings.durable:
            batch.done.wait()
            if batch.error:
                raise RegistryUnavailable(f"the dashboard's database cannot be written: {batch.error}")

    def flush(self) -> None:
        """Write what waits now, in this thread (a page or API call that lists plants reads its own writes)."""
        with self._cond:
            if not self._batch.beats or self._closed:
                return
            batch, self._batch = self._batch, _Batch()
        self._write(batch)

    def _pause(self) -> float:
        return min(RETRY_MAX_S, self.settings.flush_interval * 4) if self.failing else self.settings.flush_interval

    def _next(self) -> _Batch | None:
        """The batch to write when it is due; None when the thread should end (closed, or idle)."""
        with self._cond:
            idle_since = time.monotonic()
            while True:
                batch, now = self._batch, time.monotonic()
                if batch.beats and (self._closed or batch.waiters or len(batch.beats) >= self.settings.max_rows
                                    or now - batch.opened >= self._pause()):
                    self._batch = _Batch()
                    return batch
                if not batch.beats and (self._closed or now - idle_since >= IDLE_EXIT_S):
                    self._thread = None
                    return None
                self._cond.wait(batch.opened + self._pause() - now if batch.beats else IDLE_EXIT_S)

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            self._write(batch)

    def _store(self, beats: list[AcceptedHeartbeat]) -> None:
        for attempt in range(WRITE_TRIES):  # a lost connection or a lock conflict passes on a second try
            try:
                with self.app.app_context():
                    try:
                        self.tokens.revalidate(write_batch(beats))
                        return
                    finally:
                        db.session.remove()
            except Exception as exc:  # noqa: BLE001 - the last try's error goes to the caller
                if attempt == WRITE_TRIES - 1:
                    raise
                log.warning("writing %d heartbeats failed (%s): trying again", len(beats), type(exc).__name__)

    def _write(self, batch: _Batch) -> None:
        try:
            self._store(batch.beats)
        except Exception as exc:  # a full disk, a lost database: kept (buffered) or refused (durable), and said
            reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200] if str(exc) else type(exc).__name__
            log.error("could not store %d heartbeats: %s", len(batch.beats), reason)
            batch.error = reason
            with self._cond:
                self.failing = reason
                if not self.settings.durable:  # accepted already: keep them, first in line for the next try
                    if not self._batch.beats:
                        self._batch.opened = time.monotonic()
                    self._batch.beats[:0] = batch.beats
        else:
            with self._cond:
                if self.failing:
                    log.info("heartbeats are stored again")
                self.failing = None
                self.written += len(batch.beats)
        finally:
            batch.done.set()

    def close(self, timeout: float = 10.0) -> None:
        """Write what waits and stop the writer (atexit, gunicorn's worker_exit)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        left = len(self._batch.beats)
        if left:  # a failing database: the last try is made here, in the stopping process
            batch, self._batch = self._batch, _Batch()
            self._write(batch)
            if batch.error:
                log.error("stopping with %d heartbeats not stored: %s", left, batch.error)


def init_app(app) -> None:
    """The buffer is made in the process that first takes a heartbeat (after gunicorn forks its workers)."""
    app.extensions[EXTENSION] = None


def buffer_of(app) -> HeartbeatBuffer:
    app = app._get_current_object() if hasattr(app, "_get_current_object") else app  # the writer needs the app
    current = app.extensions.get(EXTENSION)
    if current is None or current.pid != os.getpid():
        with _creation_lock:
            current = app.extensions.get(EXTENSION)
            if current is None or current.pid != os.getpid():
                current = HeartbeatBuffer(app, BufferSettings.from_config(app.config))
                app.extensions[EXTENSION] = current
                atexit.register(_close, weakref.ref(current))
    return current


def flush_all(app) -> None:
    """Write this process's heartbeats now and stop its writer (gunicorn's worker_exit hook)."""
    current = app.extensions.get(EXTENSION)
    if current is not None and current.pid == os.getpid():
        current.close()


def _close(ref: "weakref.ref[HeartbeatBuffer]") -> None:
    if (current := ref()) is not None and current.pid == os.getpid():
        current.close()


_creation_lock = threading.Lock()
