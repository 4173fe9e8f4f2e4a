"""Same seed, same store: a world is reproducible row for row."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tracer
from tracer.simulate import simulate
from tracer.simulate.ledger import Ledger

TABLES = ["blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "labels", "ads", "ad_payments",
          "reports", "report_identifiers", "prices", "logs", "evm_tokens", "chains", "quarantine", "flows"]


def make(tmp: Path, seed: int, slice_tx: int = Ledger.SLICE_TX):
    """A 2,000-transaction world; ``slice_tx`` is how many transactions the Bitcoin tables are written in at
    a time (by default the whole world at once)."""
    store = tracer.open_store(tmp / "w.duckdb")
    default, Ledger.SLICE_TX = Ledger.SLICE_TX, slice_tx
    try:
        summary = simulate(store, seed=seed, scale=2_000, truth_path=tmp / "truth" / "t.json")
    finally:
        Ledger.SLICE_TX = default
    return store, summary


def contents(store, table: str) -> list[tuple]:
    return store.con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    a = make(tmp_path_factory.mktemp("a"), 11)
    b = make(tmp_path_factory.mktemp("b"), 11, slice_tx=450)  # the same world written in five slices
    yield a, b
    a[0].close()
    b[0].close()


def test_same_seed_gives_an_identical_store(pair):
    """Also when one of the two wrote its Bitcoin tables and flows in slices of 450 transactions."""
    (sa, _), (sb, _) = pair
    for table in TABLES:
        assert contents(sa, table) == contents(sb, table), table
    for table in ("transactions", "outputs", "inputs", "flows"):  # and in the same order on disk
        q = f"SELECT * FROM {table} WHERE chain = 'bitcoin'"
        assert sa.con.execute(q).fetchall() == sb.con.execute(q).fetchall(), table
    runs = "SELECT run_id, source, parameters, status, row_counts FROM ingest_runs ORDER BY run_id"
    assert sa.con.execute(runs).fetchall() == sb.con.execute(runs).fetchall()


def test_same_seed_gives_identical_ground_truth_files(pair):
    (_, a), (_, b) = pair
    for fa, fb in zip(a.truth_files, b.truth_files):
        if fa.suffix == ".parquet":
            assert pq.read_table(fa).equals(pq.read_table(fb))
        else:
            assert fa.read_bytes() == fb.read_bytes(), fa.name


def test_another_seed_gives_another_world(pair, tmp_path):
    (sa, _), _ = pair
    sc, _ = make(tmp_path, 12)
    try:
        q = "SELECT txid FROM transactions WHERE chain = 'bitcoin' ORDER BY block_height, position LIMIT 50"
        assert set(sa.con.execute(q).fetchall()).isdisjoint(sc.con.execute(q).fetchall())
    finally:
        sc.close()
