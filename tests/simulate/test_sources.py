"""`simulate --sources`: the world as source files; ingesting them gives the store simulating gives.

Store A is the seed-7 world simulated with ``sources_dir`` (a regtest world: its Bitcoin chain is also
written as Bitcoin Core blk files). The files are ingested into an empty store B by the real
``tracer ingest`` commands, step by step as the manifest lists them; then every canonical table of A and
B is compared, ids included, with only provenance columns left out. What still differs is listed in
``DIFFERS`` with the reason, and the test checks that it is exactly that.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracer
from tracer.cli import app
from tracer.simulate import SimulationError, simulate

from .conftest import SEED

#: where a row came from, not what it says (the brief's provenance columns)
PROVENANCE = {"run_id", "source", "source_offset", "source_line", "fetched_at", "source_file"}
TABLES = ["blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "flows", "logs", "evm_tokens",
          "ads", "reports", "report_identifiers", "labels", "prices"]
#: (table, column) -> ({chain: value in A}, {chain: value in B}, why): the only differences left, each on
#: every row of the chain it names
DIFFERS = {
    ("blocks", "height_source"): ({"bitcoin": "simulate", "sim-evm": "simulate"}, {"bitcoin": "bip34", "sim-evm": "etl"},
                                  "how the height was learnt: the simulator made the block; the blk ingester read "
                                  "it from the coinbase (BIP34), the etl ingester from an export (provenance in all "
                                  "but name)"),
}

runner = CliRunner()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """(store A, its sources folder): the seed's world simulated with its sources written."""
    base = tmp_path_factory.mktemp("sources")
    src = base / "src"
    store = tracer.open_store(base / "a.duckdb")
    summary = simulate(store, seed=SEED, scale="test", truth_path=base / "out" / "truth.json", sources_dir=src)
    assert summary.sources == src / "manifest.json"
    yield store, src
    store.close()


@pytest.fixture(scope="module")
def sourced(simulated):
    """(store B, manifest, sources folder): the seed's sources ingested with the real commands."""
    src = simulated[1]
    manifest = json.loads((src / "manifest.json").read_text())
    db = src.parent / "b.duckdb"
    for step in manifest["steps"]:
        argv = [str(src / a) if a == step["path"] else a for a in step["argv"]]
        result = runner.invoke(app, ["--db", str(db), *argv])
        assert result.exit_code == 0, (step["argv"], result.output, result.exception)
    store = tracer.open_store(db)
    yield store, manifest, src
    store.close()


def _columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? "
        "ORDER BY ordinal_position", [table]).fetchall()]


def _rows(con, table: str, cols: list[str]) -> list[tuple]:
    return con.execute(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)} FROM {table} ORDER BY ALL").fetchall()


@pytest.mark.parametrize("table", TABLES)
def test_ingesting_the_sources_gives_the_simulated_table(simulated, sourced, table):
    a = simulated[0].con
    b = sourced[0].con
    cols = [c for c in _columns(a, table) if c not in PROVENANCE]
    assert cols == [c for c in _columns(b, table) if c not in PROVENANCE]
    known = {c: v for (t, c), v in DIFFERS.items() if t == table}
    same = [c for c in cols if c not in known]
    ours = _rows(a, table, same)
    theirs = _rows(b, table, same)
    if ours != theirs:
        diff = Counter()
        sa, sb = Counter(map(repr, ours)), Counter(map(repr, theirs))
        for k, c in enumerate(same):
            ca = Counter(repr(r[k]) for r in ours)
            cb = Counter(repr(r[k]) for r in theirs)
            if ca != cb:
                diff[c] = sum(((ca - cb) + (cb - ca)).values())
        pytest.fail(f"{table}: {len(ours)} rows simulated, {len(theirs)} ingested, "
                    f"{sum((sa - sb).values())} only simulated; columns that differ: {dict(diff)}")
    assert ours
    for col, (va, vb, _why) in known.items():
        q = f"SELECT chain, {col} FROM {table} GROUP BY ALL ORDER BY ALL"
        assert a.execute(q).fetchall() == sorted(va.items())
        assert b.execute(q).fetchall() == sorted(vb.items())


def test_the_manifest_lists_every_file_in_ingest_order_and_the_script_runs_the_same_steps(sourced):
    _, manifest, src = sourced
    commands = [s["argv"][1] for s in manifest["steps"]]
    assert commands == ["bitcoin", "ads", "etl", "bank", "prices", "labels", "reports"]
    for step in manifest["steps"]:
        assert (src / step["path"]).exists() and step["rows"]
    written = {p.relative_to(src).parts[0] for p in src.rglob("*") if p.is_file()}
    assert written == {"manifest.json", "ingest.sh", "blocks", "ads.jsonl", "evm", "bank", "prices.csv", "labels",
                       "reports.jsonl"}
    script = [shlex.split(line) for line in (src / "ingest.sh").read_text().splitlines() if line.startswith("tracer ")]
    assert [cmd[3:] for cmd in script] == [s["argv"] for s in manifest["steps"]]


def test_re_running_the_manifest_adds_nothing(sourced):
    store, manifest, src = sourced
    before = {t: store.count(t) for t in TABLES}
    db = store.path
    store.con.execute("CHECKPOINT")
    for step in manifest["steps"]:
        argv = [str(src / a) if a == step["path"] else a for a in step["argv"]]
        result = runner.invoke(app, ["--db", str(db), *argv])
        assert result.exit_code == 0, (step["argv"], result.output)
    assert {t: store.count(t) for t in TABLES} == before


def test_a_sources_folder_that_is_not_empty_is_refused(store, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x").write_text("")
    with pytest.raises(SimulationError, match="new or empty"):
        simulate(store, seed=1, scale=1000, truth_path=tmp_path / "t.json", sources_dir=tmp_path / "src")


def test_cli_writes_sources_and_names_the_manifest(tmp_path):
    result = runner.invoke(app, ["--db", str(tmp_path / "w.duckdb"), "simulate", "--seed", "3", "--scale", "1000",
                                 "--truth", str(tmp_path / "t.json"), "--sources", str(tmp_path / "src"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sources"] == str(tmp_path / "src" / "manifest.json")
    assert Path(tmp_path / "src" / "bank" / "simulate-3.csv").is_file()


def test_the_serialisers_sha256_is_hashlibs_at_every_padding_boundary():
    import hashlib

    import numpy as np

    from tracer.simulate import serialise

    ctx = (np.zeros(8, np.int64), np.zeros(64, np.int64), np.zeros(128, np.uint8), serialise._K, serialise._H0)
    out, tmp = np.zeros(32, np.uint8), np.zeros(32, np.uint8)
    data = np.frombuffer(bytes(range(256)) * 5, np.uint8)
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000):
        serialise._sha256d(data, 7, n, out, 0, ctx, tmp)
        assert out.tobytes() == hashlib.sha256(hashlib.sha256(data[7:7 + n].tobytes()).digest()).digest(), n


def test_the_blk_files_hold_a_regtest_chain_with_real_headers(simulated, sourced):
    a = simulated[0]
    src = simulated[1]
    blk = (src / "blocks" / "blk00000.dat").read_bytes()
    assert blk[:4] == bytes.fromhex("fabfb5da")
    assert a.query("SELECT network FROM chains WHERE chain = 'bitcoin'") == [("regtest",)]
    assert a.query("SELECT DISTINCT bits FROM blocks WHERE chain = 'bitcoin'") == [(0x207FFFFF,)]
    assert a.query("SELECT min(height) FROM blocks WHERE chain = 'bitcoin'") == [(1_000_000,)]
    prefixes = a.query("""SELECT DISTINCT CASE WHEN address LIKE 'bcrt1%' THEN 'bcrt1' ELSE left(address, 1) END
                          FROM addresses WHERE chain = 'bitcoin' ORDER BY 1""")
    assert {p for (p,) in prefixes} <= {"bcrt1", "m", "n", "2"} and ("bcrt1",) in prefixes
    # the stored chain is the files': what the ingester verified (merkle roots, proof of work, witness
    # commitments) is what the simulator stored
    assert sourced[0].query("SELECT count(*) FROM blocks WHERE chain = 'bitcoin'") == \
        a.query("SELECT count(*) FROM blocks WHERE chain = 'bitcoin'")
