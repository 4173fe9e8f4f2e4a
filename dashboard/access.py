"""How the dashboard reaches the DuckDB store without locking other processes out of it.

DuckDB lets one process write a database file, or several processes read it, but not both at once
(https://duckdb.org/docs/current/connect/concurrency), and one process cannot hold a read-only and a
read-write connection to the same file at the same time. An analyst keeps the dashboard open while
`tracer ingest …` or `tracer cluster` writes the same store, so the dashboard must not sit on a lock.

The choice: a short connection per request. Pages open the store READ-ONLY, query, and close; the one
write (adding an item to a case, with its audit_log row) opens a read-write connection for that single
transaction and closes it. A lock serialises the dashboard's own requests, because the web server
answers on several threads and the two connection modes cannot coexist in one process. Between
requests the dashboard holds nothing, so an ingest can run; while an ingest holds the file, the
dashboard says the store is busy instead of failing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from tracer.store import StoreError
from tracer.workspace import Workspace


class StoreBusy(RuntimeError):
    """Another process holds the store's write lock (an ingest is running)."""


class StoreAccess:
    """Opens the store per request: read-only for pages, read-write only for case actions."""

    def __init__(self, db_path: str | Path):
        self.path = Path(db_path)
        if not self.path.is_file():
            raise StoreError(f"no store at {self.path}; build one with `tracer ingest …` or `tracer demo`")
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Apply pending migrations once at start-up, so read-only pages see the current schema."""
        try:
            with self.writing():
                pass
        except StoreBusy:
            pass  # an ingest is writing (and migrating) it: read what is there

    @contextlib.contextmanager
    def reading(self) -> Iterator[Workspace]:
        with self._lock:
            store = self._open(read_only=True)
            try:
                yield store
            finally:
                store.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Workspace]:
        with self._lock:
            store = self._open(read_only=False)
            try:
                yield store
            finally:
                store.close()

    def _open(self, read_only: bool) -> Workspace:
        try:
            return Workspace(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(f"{self.path} is being written by another process; try again shortly") from exc
            raise
