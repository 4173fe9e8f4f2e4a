"""The `tracer` entry point as users run it (a plain subprocess): a quick start, a query that cannot
change the store by accident, sources that hold nothing, labels checked against the store's network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tracer
import tracer.cli
import tracer.store

ROOT = Path(__file__).resolve().parents[2]
#: Libraries that `tracer --help` and `tracer <command> --help` must not load (docs/benchmarks.md).
HEAVY = {"duckdb", "pyarrow", "pandas", "numpy", "web3", "dash", "plotly", "bitcoinlib", "requests"}


def tracer_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def imported_by(*args: str) -> set[str]:
    """Top-level packages imported while running `tracer ARGS` (from ``python -X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "tracer.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_help_of_the_cli_and_of_every_command_loads_no_heavy_library():
    for args in (["--help"], ["ingest", "--help"], ["ingest", "bitcoin", "--help"], ["ingest", "evm", "--help"],
                 ["query", "--help"], ["dashboard", "--help"], ["simulate", "--help"]):
        assert imported_by(*args) & HEAVY == set(), args


def test_import_tracer_is_light_and_tracer_open_still_opens_a_store(tmp_path):
    probe = (f"import sys, tracer; light = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r}); "
             "s = tracer.open(sys.argv[1]); print(light, type(s).__name__, s.store.schema_version > 0, "
             "tracer.StoreError.__name__)")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "s.duckdb")], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout == "[] Workspace True StoreError\n", done.stderr
    assert tracer.cli.DEFAULT_DB == tracer.store.DEFAULT_DB


def test_query_is_read_only_unless_write_is_given(tmp_path):
    db = tmp_path / "case.duckdb"
    tracer.open_store(db).close()
    refused = tracer_cli("--db", str(db), "query", "drop table blocks")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f"error: --db {db} is opened read-only: Invalid Input Error: Cannot execute statement of type \"DROP\" "
        f"on database \"case\" which is attached in read-only mode!; add --write to change the store\n")
    with tracer.open_store(db, read_only=True) as store:
        assert store.count("blocks") == 0  # the table is still there
    dropped = tracer_cli("--db", str(db), "query", "drop table prices", "--write")
    assert dropped.returncode == 0, dropped.stderr
    with tracer.open_store(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'prices'") == [(0,)]


def test_query_of_a_table_that_does_not_exist_is_one_line(tmp_path):
    db = tmp_path / "case.duckdb"
    tracer.open_store(db).close()
    done = tracer_cli("--db", str(db), "query", "select * from nonexistent")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: query on {db}: Catalog Error: Table with name nonexistent does not exist!")
    assert done.stderr.endswith("LINE 1: select * from nonexistent\n")


def test_query_does_not_create_a_store_where_there_is_none(tmp_path):
    db = tmp_path / "typo.duckdb"
    done = tracer_cli("--db", str(db), "query", "select 1")
    assert (done.returncode, done.stderr) == (
        1, f"error: --db {db}: no store at this path; build one with `tracer ingest …` or `tracer demo`\n")
    assert not db.exists()


def test_etl_on_an_empty_folder_says_so_and_exits_1(tmp_path):
    (tmp_path / "exports").mkdir()
    db = tmp_path / "case.duckdb"
    done = tracer_cli("--db", str(db), "ingest", "etl", str(tmp_path / "exports"))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"error: {tmp_path / 'exports'} at directory: empty directory: nothing to ingest\n"
    assert not db.exists()  # refused before the store was opened


def test_etl_on_a_folder_of_other_files_says_which_files_it_takes(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "notes.txt").write_text("not an export\n")
    done = tracer_cli("--db", str(tmp_path / "case.duckdb"), "ingest", "etl", str(tmp_path / "exports"))
    assert done.returncode == 1
    assert done.stderr == (f"error: {tmp_path / 'exports'} at directory: no ethereum-etl export files (blocks, "
                           "transactions, receipts, logs, token_transfers as .csv or .json)\n")


def test_every_ingest_of_a_header_only_csv_says_nothing_was_ingested(tmp_path):
    headers = {
        "bank": (ROOT / "fixtures" / "aml" / "amlworld-small.csv").read_text().splitlines()[0],
        "prices": "asset,time,usd", "reports": "report_id,kind,narrative", "ads": "ad_id,site,posted_at,title,body",
        "labels": "chain,address,label",
    }
    db = tmp_path / "case.duckdb"
    for command, header in headers.items():
        path = tmp_path / f"{command}.csv"
        path.write_text(header + "\n")
        done = tracer_cli("--db", str(db), "ingest", command, str(path))
        assert (done.returncode, done.stderr) == (1, f"error: {path} at whole file: no rows found: nothing was ingested\n")


def test_a_labels_file_whose_every_row_is_refused_exits_2_even_when_quarantine_is_allowed(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("chain,address,label\nbitcoin,not-an-address,x\nethereum,0x12,y\n")
    done = tracer_cli("--db", str(tmp_path / "case.duckdb"), "ingest", "labels", str(path), "--allow-quarantine")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"error: {path}: all 2 item(s) refused, nothing loaded (mostly: not a valid bitcoin address); "
        "see: tracer query \"SELECT position, reason FROM quarantine WHERE run_id = 1\"")


def test_regtest_store_accepts_bcrt1_labels_from_the_command_line(tmp_path):
    db = tmp_path / "regtest.duckdb"
    with tracer.open_store(db) as store:
        store.claim_chain("bitcoin", "utxo", "regtest", None, None)
    path = tmp_path / "labels.csv"
    path.write_text("chain,address,label\nbitcoin,bcrt1qmy63mjadtw8nhzl69ukdepwzsyvv4yexu0a96h,test wallet\n")
    done = tracer_cli("--db", str(db), "ingest", "labels", str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (1, 1, 0)
