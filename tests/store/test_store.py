"""The store: migrations and schema version, provenance, chain claims, the query command."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pyarrow as pa
import pytest

import tracer
from tracer.store import StoreError
from tracer.store.store import migrations

CANONICAL = {
    "addresses", "blocks", "transactions", "outputs", "inputs", "transfers", "cluster_members", "cluster_evidence",
    "labels", "ads", "ad_payments", "reports", "prices", "alerts", "cases", "case_items", "audit_log",
    "quarantine", "ingest_runs",
}


def test_a_new_store_has_every_canonical_table_and_the_latest_schema_version(tmp_path):
    with tracer.open_store(tmp_path / "s.duckdb") as s:
        tables = {r[0] for r in s.query("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'")}
        assert CANONICAL <= tables
        views = {r[0] for r in s.query("SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'")}
        assert "flows" in tables and "flows_v4" in views
        assert {"clusters", "cluster_links", "cluster_labels"} <= views  # integer tables underneath (migration 010)
        shipped = [v for v, _, _ in migrations()]
        assert shipped[0] == 1 and shipped == sorted(set(shipped))
        assert s.schema_version == shipped[-1]
        assert [r[0] for r in s.query("SELECT version FROM schema_migrations ORDER BY version")] == shipped


def store_at_first_migration(path) -> duckdb.DuckDBPyConnection:
    """A store that only the first migration was applied to, as an older moneytrail left it (open)."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)")
    version, name, sql = migrations()[0]
    con.execute(sql)
    con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    return con


def test_an_older_store_is_migrated_on_open_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    con = store_at_first_migration(path)
    con.execute("INSERT INTO prices VALUES ('BTC', TIMESTAMP '2024-01-01', 42000.5, 'test', NULL)")
    con.close()
    with tracer.open_store(path) as s:
        assert s.schema_version == migrations()[-1][0]
        assert s.query("SELECT asset, usd FROM prices") == [("BTC", 42000.5)]


def schema_of(path) -> dict[str, list[tuple]]:
    """Everything a migration defines: tables and their columns (types, defaults, nullability), views,
    indexes, constraints, sequences, macros, and the rows migrations seed (applied_at aside)."""
    con = duckdb.connect(str(path), read_only=True)
    own = "database_name = current_database() AND NOT internal"
    found = {
        "tables": con.execute(f"SELECT table_name, sql FROM duckdb_tables() WHERE {own} ORDER BY 1").fetchall(),
        "columns": con.execute(f"""SELECT table_name, column_index, column_name, data_type, column_default, is_nullable
                                   FROM duckdb_columns() WHERE {own} ORDER BY 1, 2""").fetchall(),
        "views": con.execute(f"SELECT view_name, sql FROM duckdb_views() WHERE {own} ORDER BY 1").fetchall(),
        "indexes": con.execute("SELECT index_name, table_name, sql FROM duckdb_indexes() "
                               "WHERE database_name = current_database() ORDER BY 1").fetchall(),
        "constraints": con.execute("""SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints()
                                      WHERE database_name = current_database() ORDER BY ALL""").fetchall(),
        "sequences": con.execute("""SELECT sequence_name, start_value, increment_by, last_value FROM duckdb_sequences()
                                    WHERE database_name = current_database() ORDER BY 1""").fetchall(),
        "macros": con.execute("""SELECT function_name, macro_definition FROM duckdb_functions()
                                 WHERE database_name = current_database() AND NOT internal ORDER BY ALL""").fetchall(),
        "migrations": con.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall(),
    }
    for (table, _sql) in found["tables"]:
        if table != "schema_migrations":
            found[f"rows of {table}"] = con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()
    con.close()
    return found


def test_a_new_store_made_in_one_step_has_the_schema_of_migrating_one_migration_at_a_time(tmp_path):
    # a new store applies every migration in one transaction; an older store gets them one by one
    fresh = tmp_path / "fresh.duckdb"
    tracer.open_store(fresh).close()
    stepwise = tmp_path / "stepwise.duckdb"
    store_at_first_migration(stepwise).close()
    tracer.open_store(stepwise).close()
    a, b = schema_of(fresh), schema_of(stepwise)
    assert a == b
    assert [v for v, _ in a["migrations"]] == [v for v, _, _ in migrations()]
    assert len(a["tables"]) >= len(CANONICAL) and a["views"] and a["rows of price_assets"]


def test_a_store_from_a_newer_moneytrail_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    tracer.open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now())")
    con.close()
    with pytest.raises(StoreError, match="schema version 999, newer than this moneytrail knows"):
        tracer.open_store(path)


def test_runs_record_source_parameters_status_and_counts(store):
    run = store.begin_run("prices", "prices.csv", {"delimiter": ","})
    store.append("prices", pa.table({"asset": ["BTC"], "time": pa.array([0], pa.timestamp("s")),
                                     "usd": [1.0], "run_id": [run.run_id]}))
    run.add(rows=1)
    run.quarantine("line 3", "BTC,yesterday,1", "bad date")
    run.finish()
    row = store.query("SELECT source, target, parameters, status, row_counts, finished IS NOT NULL FROM ingest_runs")[0]
    assert row[:2] == ("prices", "prices.csv") and json.loads(row[2]) == {"delimiter": ","}
    assert row[3] == "ok" and json.loads(row[4]) == {"rows": 1, "quarantined": 1} and row[5]
    assert store.query("SELECT run_id, source, position, raw, reason FROM quarantine") == [
        (run.run_id, "prices.csv", "line 3", "BTC,yesterday,1", "bad date")
    ]
    failed = store.begin_run("prices", "other.csv")
    failed.fail("boom")
    assert store.query("SELECT status, error FROM ingest_runs WHERE run_id = ?", [failed.run_id]) == [("failed", "boom")]


def test_a_failed_batch_rolls_back_everything_it_wrote(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.append("prices", pa.table({"asset": ["ETH"], "time": pa.array([0], pa.timestamp("s")), "usd": [2.0]}))
            raise RuntimeError("crash in the middle of a batch")
    assert store.count("prices") == 0


def test_chain_claims_refuse_another_network_or_chain_id(store):
    store.claim_chain("ethereum", "account", "mainnet", 1, None)
    store.claim_chain("ethereum", "account", "mainnet", 1, None)  # the same claim again is fine
    with pytest.raises(StoreError, match="holds ethereum mainnet \\(chain id 1\\); refusing to mix in mainnet \\(chain id 5\\)"):
        store.claim_chain("ethereum", "account", "mainnet", 5, None)
    assert store.query("SELECT chain, network, chain_id FROM chains") == [("ethereum", "mainnet", 1)]


def run_cli(db, *args):
    return subprocess.run([sys.executable, "-m", "tracer.cli", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=120)


def test_query_prints_csv_and_json(tmp_path):
    db = tmp_path / "q.duckdb"
    with tracer.open_store(db) as s:
        s.append("prices", pa.table({"asset": ["BTC", "ETH"], "time": pa.array([0, 60], pa.timestamp("s")),
                                     "usd": [30000.25, 2000.0]}))
    out = run_cli(db, "query", "SELECT asset, usd FROM prices ORDER BY asset")
    assert out.returncode == 0 and out.stdout == "asset,usd\nBTC,30000.25\nETH,2000.0\n"
    out = run_cli(db, "query", "SELECT asset, time FROM prices ORDER BY asset", "--format", "json")
    assert json.loads(out.stdout) == [{"asset": "BTC", "time": "1970-01-01 00:00:00"},
                                      {"asset": "ETH", "time": "1970-01-01 00:01:00"}]
    bad = run_cli(db, "query", "SELECT nope FROM prices")
    assert bad.returncode != 0 and "nope" in bad.stderr


def test_info_lists_tables_and_schema_version(tmp_path):
    out = run_cli(tmp_path / "i.duckdb", "info")
    assert out.returncode == 0
    assert f"schema version {migrations()[-1][0]}" in out.stdout and "transactions:" in out.stdout


def test_usage_errors_exit_2_with_clicks_message(tmp_path):
    bad_option = run_cli(tmp_path / "u.duckdb", "query", "SELECT 1", "--format", "xml")
    assert bad_option.returncode == 2 and "Invalid value for '--format'" in bad_option.stderr
    unknown = run_cli(tmp_path / "u.duckdb", "nosuch")
    assert unknown.returncode == 2 and "No such command 'nosuch'" in unknown.stderr
    assert "Traceback" not in bad_option.stderr + unknown.stderr
