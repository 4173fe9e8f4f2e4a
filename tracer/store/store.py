"""Open or create the DuckDB store, apply numbered migrations, record provenance, load Arrow batches.

Every ingest runs inside a :class:`Run`: a row of ``ingest_runs`` that names the source, its
parameters, when it ran, what it wrote and how it ended. Every row an ingester writes carries that
``run_id``, so any fact in the store can be traced back to the file offset, RPC call or CSV line it
came from. Writes happen in explicit transactions (one per batch): a failure rolls the batch back and
leaves the store as it was after the last committed batch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tracer.store import graph

DEFAULT_DB = "moneytrail.duckdb"
# the tables `tracer info` and Workspace.counts report
CANONICAL_TABLES = ("blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "flows", "clusters",
                    "cluster_links", "labels", "ads", "ad_payments", "reports", "prices", "alerts", "quarantine")
# migrations whose data conversion is done in Python right after their SQL, in the same transaction
_PYTHON_STEPS = {5: graph.backfill}
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class StoreError(RuntimeError):
    """A refusal by the store (wrong network, bad schema version, ...)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def migrations() -> list[tuple[int, str, str]]:
    """The numbered migrations shipped with the package, in order: (version, name, sql)."""
    found = []
    for entry in resources.files("tracer.store.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two migrations share a number: {versions}")
    return found


class Store:
    """A handle on one DuckDB file. Every stage takes one as its first argument."""

    def __init__(self, path: str | Path = DEFAULT_DB, read_only: bool = False):
        self.path = str(path)
        self.con = duckdb.connect(self.path, read_only=read_only)
        self.con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self.migrate()

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply every migration not yet applied; return the schema version."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        applied = {r[0] for r in self.con.execute("SELECT version FROM schema_migrations").fetchall()}
        shipped = migrations()
        known = {v for v, _, _ in shipped}
        newer = sorted(applied - known)
        if newer:
            raise StoreError(
                f"{self.path} has schema version {max(newer)}, newer than this moneytrail knows "
                f"({max(known)}); upgrade moneytrail"
            )
        pending = [m for m in shipped if m[0] not in applied]
        if not applied:
            # a new store: every migration in one transaction, one commit instead of one per migration, and
            # no data conversions (a new store has no rows to convert); the schema is the same as applying
            # them one by one (tests/store/test_store.py checks it)
            with self.transaction():
                for migration in pending:
                    self._apply(*migration, convert=False)
        else:
            for migration in pending:
                with self.transaction():
                    self._apply(*migration)
        return self.schema_version

    def _apply(self, version: int, name: str, sql: str, convert: bool = True) -> None:
        self.con.execute(sql)
        if convert and version in _PYTHON_STEPS:
            _PYTHON_STEPS[version](self)
        self.con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, utcnow()])

    @property
    def schema_version(self) -> int:
        return int(self.scalar("SELECT max(version) FROM schema_migrations") or 0)

    # -- transactions -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic batch: everything inside commits together or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    # -- loading ----------------------------------------------------------------------------------
    def append(self, table: str, data: pa.Table | pa.RecordBatch) -> int:
        """Bulk-insert an Arrow table by column name (missing columns become NULL).

        The money graph follows its sources here: transfers get their party ids and flows, and new
        prices revalue the flows they price (see :mod:`tracer.store.graph`).
        """
        if len(data) == 0:
            return 0
        with self.view(f"_arrow_{table}", data) as view:
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {view}")
            self.inserted(table, view)
        return len(data)

    def inserted(self, table: str, rows: str) -> None:
        """Keep the money graph in step after rows were inserted into ``table`` (``rows``: a table or view
        holding them). ``append`` calls it; a writer that inserts with its own SQL calls it too."""
        if table == "transfers":
            graph.link_transfers(self)
        elif table == "prices":
            since = self.scalar(f"SELECT min(time) FROM {rows}")
            assets = [r[0] for r in self.query(f"SELECT DISTINCT upper(asset) FROM {rows}")]
            graph.reprice(self, assets, since)

    @contextlib.contextmanager
    def view(self, name: str, data: pa.Table | pa.RecordBatch) -> Iterator[str]:
        """Expose an Arrow table to SQL under ``name`` for the duration of the block (zero copy)."""
        # DuckDB 2 refuses to register while an earlier result on the connection is unconsumed.
        self.con.complete()
        self.con.register(name, data)
        try:
            yield name
        finally:
            self.con.unregister(name)

    def arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """The whole result as an Arrow table."""
        self.con.complete()
        return self.con.sql(sql, params=params or None).to_arrow_table()

    def batches(self, sql: str, params: list[Any] | None = None, rows: int = 1 << 20) -> Iterator[pa.RecordBatch]:
        """The result as Arrow record batches of at most ``rows`` rows, streamed: memory bounded by a batch,
        whatever the result's size (a chain's cluster members, say). Read it out before the next statement."""
        self.con.complete()
        yield from self.con.sql(sql, params=params or None).to_arrow_reader(rows)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def one(self, sql: str, params: list[Any] | None = None) -> tuple | None:
        """The first row, or None (fetches the whole result so the connection is left clean)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    # -- provenance -------------------------------------------------------------------------------
    def begin_run(self, source: str, target: str | None, parameters: dict[str, Any] | None = None) -> Run:
        run_id = int(self.scalar(
            "INSERT INTO ingest_runs(run_id, source, target, parameters, started, status) "
            "VALUES (nextval('run_id_seq'), ?, ?, ?, ?, 'running') RETURNING run_id",
            [source, target, json.dumps(parameters or {}, default=str), utcnow()],
        ))
        return Run(self, run_id, source, target)

    def quarantine(self, run_id: int | None, source: str, position: str, raw: Any, reason: str) -> None:
        """Record a refused item; nothing is dropped silently."""
        if isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw[:4096]).hex()
        elif raw is not None and not isinstance(raw, str):
            raw = json.dumps(raw, default=str)
        if isinstance(raw, str) and len(raw) > 8192:
            raw = raw[:8192] + "…"
        # idempotent across reruns: the same refusal of the same item is recorded once
        if self.con.execute("SELECT count(*) FROM quarantine WHERE source = ? AND position = ? AND reason = ?",
                            [source, position, reason]).fetchall()[0][0]:
            return
        self.con.execute(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, source, position, raw, reason, utcnow()],
        )

    # -- chains -----------------------------------------------------------------------------------
    def claim_chain(self, chain: str, kind: str, network: str, chain_id: int | None, run_id: int | None) -> None:
        """Record which network a chain name holds; refuse a second, different one."""
        row = self.one("SELECT network, chain_id FROM chains WHERE chain = ?", [chain])
        if row is None:
            self.con.execute(
                "INSERT INTO chains VALUES (?, ?, ?, ?, ?)", [chain, kind, network, chain_id, run_id]
            )
            return
        if chain_id is not None and row[1] == chain_id and row[0] == f"chain-{chain_id}" != network:
            # a chain id the registry (tracer/chains.py) did not know when this store was written: same chain
            self.con.execute("UPDATE chains SET network = ? WHERE chain = ?", [network, chain])
            return
        if row[0] != network or (chain_id is not None and row[1] is not None and row[1] != chain_id):
            raise StoreError(
                f"{self.path} holds {chain} {row[0]}"
                + (f" (chain id {row[1]})" if row[1] is not None else "")
                + f"; refusing to mix in {network}"
                + (f" (chain id {chain_id})" if chain_id is not None else "")
            )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Run:
    """One ingest run's provenance row; finish() or fail() closes it."""

    def __init__(self, store: Store, run_id: int, source: str, target: str | None):
        self.store, self.run_id, self.source, self.target = store, run_id, source, target
        self.counts: dict[str, int] = {}

    def add(self, **counts: int) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + int(value)

    def finish(self) -> None:
        self.store.con.execute(
            "UPDATE ingest_runs SET finished = ?, status = 'ok', row_counts = ? WHERE run_id = ?",
            [utcnow(), json.dumps(self.counts), self.run_id],
        )

    def fail(self, error: BaseException | str) -> None:
        self.store.con.execute(
            "UPDATE ingest_runs SET finished = ?, status = 'failed', row_counts = ?, error = ? "
            "WHERE run_id = ?",
            [utcnow(), json.dumps(self.counts), str(error), self.run_id],
        )

    def quarantine(self, position: str, raw: Any, reason: str, source: str | None = None) -> None:
        self.store.quarantine(self.run_id, source or self.target or self.source, position, raw, reason)
        self.add(quarantined=1)


def open_store(path: str | Path = DEFAULT_DB, read_only: bool = False) -> Store:
    return Store(path, read_only=read_only)
