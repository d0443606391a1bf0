"""`--watch-dir`: every CSV file dropped into the folder is scored with the plant's model and written beside it
as `<name>.scores.csv` (the columns of DESIGN §7); a file that cannot be scored gets `<name>.error.txt` with one
line saying why. Both are written to a hidden temporary file and renamed, so a reader never sees half of one.

Only regular files are read (STYLE 17: whoever can write into the folder is not trusted with what this agent
can read): a symbolic link, a FIFO or a device is skipped, and a file with other hard links is refused, since
either could name a file its dropper cannot read, whose per-row scores would then tell them about it. The file
is opened without following a link, and its type and size come from the open descriptor (no check-then-read
race); an error file quotes at most a short, sanitised excerpt of a cell.

The folder is polled (no inotify: the same code on every OS and on network shares). A file is read only once its
size and modification time held still between two looks (a copy still in progress is not read half-way), and
it is done once a scores or error file at least as new as it sits beside it: a file replaced by a newer one is
scored again, anything else never twice. Hidden files and our own outputs are ignored. Without a model yet the
files wait."""

from __future__ import annotations

import errno
import io
import logging
import os
import secrets
import stat
from pathlib import Path

from factory_agent.floor.background import Background
from factory_agent.floor.scoring import FloorScorer, NoModelYet
from shared.errors import DataError, FederatedLearningError

log = logging.getLogger(__name__)
OUTPUT_SUFFIXES = (".scores.csv", ".error.txt")


def outputs_of(path: Path) -> tuple[Path, Path]:
    stem = path.name[:-len(".csv")]
    return path.with_name(f"{stem}.scores.csv"), path.with_name(f"{stem}.error.txt")


def write_atomically(path: Path, write) -> None:
    """`write(file object)` into a hidden temporary file beside `path`, then rename it to `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)  # never through a planted link
    try:
        with os.fdopen(os.open(tmp, flags, 0o666), "w", newline="", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def one_line(message: str, limit: int = 500) -> str:
    """One line of at most `limit` printable characters."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(str(message).split())[:limit])


def lstat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path`, read through one descriptor opened without following a link; its type, links and
    size are checked on that descriptor, and never more than `max_bytes` is read (a file may still grow)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # Linux; the BSDs
            raise DataError("it is a symbolic link: not read (copy the file itself into the folder)") from exc
        raise
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise DataError("it is not a regular file: not read")
        if info.st_nlink > 1:
            raise DataError(f"it has {info.st_nlink} hard links: not read (copy the file itself into the folder)")
        if info.st_size > max_bytes:
            raise DataError(f"the file is {info.st_size} bytes; this plant scores files up to {max_bytes} bytes "
                            "(split it)")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"the file grew past {max_bytes} bytes while it was read; this plant scores files up to "
                        f"{max_bytes} bytes (split it)")
    return data


class WatchFolder(Background):
    thread_name = "watch-dir"

    def __init__(self, folder: Path, scorer: FloorScorer, interval: float = 2.0, max_bytes: int = 256 * 1024 * 1024):
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scorer = scorer
        self.interval = interval
        self.max_bytes = max_bytes
        self.seen: dict[Path, tuple[int, int]] = {}  # size, mtime_ns at the previous look
        self.skipped: set[str] = set()  # links and special files already logged
        self.waiting_said = False

    def candidates(self) -> list[tuple[Path, os.stat_result]]:
        """Regular CSV files not yet scored, each with its lstat (a link is never followed, not even to look)."""
        found = []
        for path in sorted(self.folder.iterdir()):
            name = path.name
            if name.startswith(".") or not name.lower().endswith(".csv") or name.endswith(OUTPUT_SUFFIXES):
                continue
            info = lstat_or_none(path)
            if info is None or not stat.S_ISREG(info.st_mode):
                if info is not None and name not in self.skipped:
                    self.skipped.add(name)
                    log.warning("%s in %s is a link or not a regular file: skipped (copy the file itself)", name,
                                self.folder)
                continue
            outputs = (lstat_or_none(out) for out in outputs_of(path))
            if any(out is not None and out.st_mtime_ns >= info.st_mtime_ns for out in outputs):
                continue
            found.append((path, info))
        return found

    def scan_once(self) -> list[Path]:
        """Score every file that is ready; returns the files handled in this look."""
        handled, now_seen = [], {}
        for path, info in self.candidates():
            now_seen[path] = (info.st_size, info.st_mtime_ns)
            if self.seen.get(path) != now_seen[path]:
                continue  # new or still changing: look again next time
            if self.scorer.delivery.current is None:
                if not self.waiting_said:
                    log.info("%s waits in %s: no released model has reached this plant yet", path.name, self.folder)
                    self.waiting_said = True
                continue
            self.handle(path)
            handled.append(path)
        self.seen = now_seen
        return handled

    def handle(self, path: Path) -> None:
        from shared.data.csv_loader import read_csv_file

        scores_path, error_path = outputs_of(path)
        try:
            frame = read_csv_file(io.BytesIO(read_regular_file(path, self.max_bytes)), path.name)
            batch = self.scorer.score(frame, f"file:{path.name}")
        except NoModelYet:
            return
        except FederatedLearningError as exc:
            self._fail(path, error_path, str(exc))
            return
        except (ValueError, KeyError, OSError, MemoryError) as exc:  # pandas and the OS: still one clear line
            log.debug("scoring %s failed", path, exc_info=True)  # a library's message may quote whole cells
            self._fail(path, error_path, f"{type(exc).__name__}: {one_line(exc, 60)}")
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
