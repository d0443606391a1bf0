"""What the plant benchmarks share: a plant's memory (all its processes), a peak sampler, and the moment the
dashboard lists plants online."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Memory:
    processes: int
    rss_mb: float  # resident set, summed over the processes (shared pages count once per process)
    pss_mb: float  # proportional set: shared pages split between the processes that map them

    def __add__(self, other: "Memory") -> "Memory":
        return Memory(self.processes + other.processes, self.rss_mb + other.rss_mb, self.pss_mb + other.pss_mb)


def tree_memory(pid: int) -> Memory:
    """Memory of a process and all its descendants (a plant: its agent and whatever it started)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return Memory(0, 0.0, 0.0)
    rss = pss = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss, pss = rss + info.rss, pss + info.pss
    return Memory(len(procs), rss / 2**20, pss / 2**20)


class PeakSampler:
    """Samples the memory of some process trees every `interval` s on a thread; `peak[pid]` is the highest RSS."""

    def __init__(self, pids: list[int], interval: float = 0.1):
        self.pids = pids
        self.interval = interval
        self.peak: dict[int, Memory] = {pid: Memory(0, 0.0, 0.0) for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in self.pids:
                now = tree_memory(pid)
                if now.rss_mb > self.peak[pid].rss_mb:
                    self.peak[pid] = now

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def wait_online(dashboard, names: list[str], started: float, timeout: float = 300) -> dict[str, float]:
    """Seconds from `started` (time.monotonic) until the dashboard lists each plant online, polled every 0.1 s."""
    online: dict[str, float] = {}
    deadline = started + timeout
    while len(online) < len(names):
        if time.monotonic() > deadline:
            raise RuntimeError(f"plants not online after {timeout:.0f} s: {sorted(set(names) - set(online))}")
        listed = dashboard.factories()
        now = time.monotonic() - started
        for name in names:
            if name not in online and listed.get(name, {}).get("status") == "online":
                online[name] = now
        time.sleep(0.1)
    return online
