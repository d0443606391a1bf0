"""A plant-floor job that runs on its own thread until the agent stops (the watch folder, the live stream)."""

from __future__ import annotations

import threading


class Background:
    """`run()` loops on `stop_event`; `start()` runs it on a daemon thread named `thread_name`, `stop()` ends it."""

    thread_name = "floor"

    def __init__(self):
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        raise NotImplementedError

    def start(self):
        self.thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
