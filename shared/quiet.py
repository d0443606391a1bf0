"""PySyft prints progress bars, banners and success notes on stdout; keep them out of the agent's console
and put them in its log at debug level instead (STYLE 15)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

NOISY_LOGGERS = ("syft", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "urllib3")


def tame_library_logging() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet(logger: logging.Logger) -> Iterator[None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        text = (out.getvalue() + err.getvalue()).strip()
        if text:
            logger.debug("pysyft said: %s", text[-2000:])
