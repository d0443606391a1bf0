"""`--watch-dir`: every CSV file dropped into the folder is scored with the plant's model and written beside it
as `<name>.scores.csv` (the columns of DESIGN §7); a file that cannot be scored gets `<name>.error.txt` with one
line saying why. Both are written to a hidden temporary file and renamed, so a reader never sees half of one.

The folder is polled (no inotify: the same code on every OS and on network shares). A file is read only once its
size and modification time held still between two looks (a copy still in progress is not read half-way), and
it is done once a scores or error file at least as new as it sits beside it: a file replaced by a newer one is
scored again, anything else never twice. Hidden files and our own outputs are ignored. Without a model yet the
files wait."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path

from factory_agent.floor.scoring import FloorScorer, NoModelYet
from shared.errors import FederatedLearningError

log = logging.getLogger(__name__)
OUTPUT_SUFFIXES = (".scores.csv", ".error.txt")


def outputs_of(path: Path) -> tuple[Path, Path]:
    stem = path.name[:-len(".csv")]
    return path.with_name(f"{stem}.scores.csv"), path.with_name(f"{stem}.error.txt")


def write_atomically(path: Path, write) -> None:
    """`write(file object)` into a hidden temporary file beside `path`, then rename it to `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def one_line(message: str, limit: int = 500) -> str:
    return " ".join(str(message).split())[:limit]


class WatchFolder:
    def __init__(self, folder: Path, scorer: FloorScorer, interval: float = 2.0, max_bytes: int = 256 * 1024 * 1024):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scorer = scorer
        self.interval = interval
        self.max_bytes = max_bytes
        self.seen: dict[Path, tuple[int, int]] = {}  # size, mtime_ns at the previous look
        self.waiting_said = False
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def candidates(self) -> list[Path]:
        found = []
        for path in sorted(self.folder.iterdir()):
            name = path.name
            if name.startswith(".") or not name.lower().endswith(".csv") or name.endswith(OUTPUT_SUFFIXES) \
                    or not path.is_file():
                continue
            mtime = path.stat().st_mtime_ns
            if any(out.exists() and out.stat().st_mtime_ns >= mtime for out in outputs_of(path)):
                continue
            found.append(path)
        return found

    def scan_once(self) -> list[Path]:
        """Score every file that is ready; returns the files handled in this look."""
        handled, now_seen = [], {}
        for path in self.candidates():
            stat = path.stat()
            now_seen[path] = (stat.st_size, stat.st_mtime_ns)
            if self.seen.get(path) != now_seen[path]:
                continue  # new or still changing: look again next time
            if self.scorer.delivery.current is None:
                if not self.waiting_said:
                    log.info("%s waits in %s: no released model has reached this plant yet", path.name, self.folder)
                    self.waiting_said = True
                continue
            self.handle(path, stat.st_size)
            handled.append(path)
        self.seen = now_seen
        return handled

    def handle(self, path: Path, size: int) -> None:
        from shared.data.csv_loader import read_csv

        scores_path, error_path = outputs_of(path)
        try:
            if size > self.max_bytes:
                raise FederatedLearningError(f"the file is {size} bytes; this plant scores files up to "
                                             f"{self.max_bytes} bytes (split it)")
            batch = self.scorer.score(read_csv(path), f"file:{path.name}")
        except NoModelYet:
            return
        except FederatedLearningError as exc:
            self._fail(path, error_path, str(exc))
            return
        except (ValueError, KeyError, OSError, MemoryError) as exc:  # pandas and the OS: still one clear line
            log.debug("scoring %s failed", path, exc_info=True)
            self._fail(path, error_path, f"{type(exc).__name__}: {exc}")
            return
        write_atomically(scores_path, lambda fh: batch.scores.to_csv(fh, index=False))
        error_path.unlink(missing_ok=True)
        opened = sum(c.opened for c in batch.changes)
        log.info("scored %s: %d rows in %.2f s with model #%d -> %s (%d alert(s) opened)", path.name,
                 len(batch.scores), batch.seconds, batch.model.id, scores_path.name, opened)

    @staticmethod
    def _fail(path: Path, error_path: Path, message: str) -> None:
        line = one_line(message)
        write_atomically(error_path, lambda fh: fh.write(f"error: {line}\n"))
        log.warning("%s not scored: %s (wrote %s)", path.name, line, error_path.name)

    def run(self) -> None:
        log.info("watching %s for CSV files to score (every %.1f s)", self.folder, self.interval)
        while not self.stop_event.wait(self.interval):
            try:
                self.scan_once()
            except OSError as exc:  # the folder vanished or went read-only: say so, keep trying
                log.warning("cannot read the watch folder %s: %s", self.folder, exc)

    def start(self) -> "WatchFolder":
        self.thread = threading.Thread(target=self.run, name="watch-dir", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
