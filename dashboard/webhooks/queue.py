"""What waits for the operators' webhook (dashboard.webhooks.sender): a bounded queue that gives up a plant's signals
(`alert.opened`, `drift.high`) before any other event, and their per-plant debounce.

A plant decides when its open-alert count rises, so a plant flapping 0/1 in its heartbeats could otherwise queue
one event per heartbeat and crowd out other plants' alerts, `plant.offline` and `experiment.failed`. Hence: at
most one `alert.opened` per plant per interval (the rises within it are held and sent as one when it ends, with
their number in `detail.rises`), and a full queue drops its oldest alert event to make room; only a queue full
of offline/failed events drops one of those (the newest, logged by the caller).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace

ALERT_OPENED = "alert.opened"
DRIFT_HIGH = "drift.high"  # a plant's drift crossed into "drifted" (dashboard.models.drift)
PLANT_SIGNALS = (ALERT_OPENED, DRIFT_HIGH)  # decided by a plant's heartbeats: debounced, dropped first when full


class EventQueue:
    """FIFO of webhook events with `task_done`/`join` like queue.Queue, where a full queue evicts alerts first."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.items: deque = deque()
        self.unfinished = 0
        self.changed = threading.Condition()

    def __len__(self) -> int:
        with self.changed:
            return len(self.items)

    def put(self, item):
        """Queue `item`; returns the event given up for it (the oldest alert, or `item` itself when the queue is
        full of events that are not alerts), or None."""
        with self.changed:
            dropped = None
            if len(self.items) >= self.capacity:
                oldest_alert = next((i for i, queued in enumerate(self.items) if queued.kind in PLANT_SIGNALS), None)
                if oldest_alert is None:  # full of offline/failed events: the newest is the one given up
                    return item
                dropped = self.items[oldest_alert]
                del self.items[oldest_alert]
                self.unfinished -= 1
            self.items.append(item)
            self.unfinished += 1
            self.changed.notify_all()
            return dropped

    def get(self, timeout: float):
        """The oldest event, or None after `timeout` seconds without one."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.items, timeout):
                return None
            return self.items.popleft()

    def task_done(self) -> None:
        with self.changed:
            self.unfinished -= 1
            self.changed.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait until every queued event was handled; False after `timeout` seconds."""
        with self.changed:
            return self.changed.wait_for(lambda: self.unfinished <= 0, timeout)


class AlertDebounce:
    """At most one event of each plant signal per plant per `interval` seconds; the rises in between are held as one
    event (the latest, counting them) that `due` hands out once the plant's interval has passed."""

    def __init__(self, interval: float, clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.lock = threading.Lock()
        self.last_sent: dict[tuple[str, str], float] = {}  # (kind, plant) -> when one last went
        self.held: dict[tuple[str, str], tuple] = {}  # (kind, plant) -> (latest event, rises it stands for)

    def offer(self, item):
        """`item` (counting any rises held for its plant) when it may go now, else None: held."""
        with self.lock:
            now = self.clock()
            key = (item.kind, item.subject)
            _, rises = self.held.pop(key, (None, 0))
            last = self.last_sent.get(key)
            if last is None or now - last >= self.interval:
                self.last_sent[key] = now
                return counted(item, rises + 1)
            self.held[key] = (item, rises + 1)
            return None

    def due(self) -> list:
        """The held events whose plant's interval has passed, each counting the rises it stands for."""
        with self.lock:
            now = self.clock()
            ready = [s for s in self.held if now - self.last_sent.get(s, now - self.interval) >= self.interval]
            out = []
            for key in ready:
                item, rises = self.held.pop(key)
                self.last_sent[key] = now
                out.append(counted(item, rises))
            return out


def counted(item, rises: int):
    return replace(item, detail={**item.detail, "rises": rises})
