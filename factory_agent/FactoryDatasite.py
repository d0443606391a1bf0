"""Start a plant's FactoryFL agent: a PySyft datasite with the plant's private data.

    python factory_agent/FactoryDatasite.py --factory_name plant_x --port 8091 \
        --data my.csv --label-column failure --group-column machine_id --time-column cycle

`--help` lists every flag and the FACTORY_* environment variable that sets it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from shared.quiet import tame_library_logging  # noqa: E402
from shared.errors import FederatedLearningError  # noqa: E402


def _process_start() -> float:
    """When this process started, so the log shows what the interpreter and the imports cost."""
    import psutil

    return psutil.Process().create_time()


def fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads their own malloc arenas (up to 8 per core), and memory freed in one arena is not
    reused by another: the datasite's server threads, the agent's and torch's then hold their peaks apart.
    Two arenas keep the plant's resident memory lower while it trains. Set before any thread starts;
    elsewhere than glibc (musl, macOS) this does nothing."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX (malloc.h)
    except (OSError, AttributeError):
        pass


def setup_logging(log_file: Path, verbose: bool) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(console)
    tame_library_logging()


def main(argv: list[str] | None = None) -> int:
    from factory_agent.config import parse_config

    fewer_malloc_arenas()
    try:
        config = parse_config(argv)
    except FederatedLearningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_file, config.verbose)
    log = logging.getLogger("factory_agent")
    log.info("FactoryFL agent %s starting (log file %s), %.2f s after its process started", config.factory_name,
             config.log_file, time.time() - _process_start())
    from factory_agent.agent import StepFailed, run

    try:
        return run(config)
    except StepFailed as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
