"""The plant's SQLite files (its ledgers, its scores and alerts): one helper for an immediate transaction on a
file, owner-only, with its schema in place."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def immediate_transaction(path: Path, schema: str) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE on `path` (created 0600 with `schema`), COMMIT on success, ROLLBACK on any error."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        os.chmod(path, 0o600)
        connection.executescript(schema)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    finally:
        connection.close()
