"""`tracer ingest evm` / `tracer ingest etl` as an analyst runs them, including being killed mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from web3 import Web3

import tracer

from .fault_proxy import FaultProxy, block_of
from .test_node_failures import snapshot

TRACER = [sys.executable, "-c", "from tracer.cli import main; main()"]
ETH = Path(__file__).resolve().parents[2] / "fixtures" / "ethereum"


def run(*args: str, db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*TRACER, "--db", str(db), *args], capture_output=True, text=True, timeout=120)


def test_killed_ingest_rerun_ends_with_the_same_store_as_one_clean_run(tmp_path, anvil, scenario, clean):
    holder: dict[str, subprocess.Popen] = {}

    def kill_at_block_6(calls):
        if any((block_of(c) or 0) >= 6 for c in calls) and "proc" in holder:
            os.kill(holder["proc"].pid, signal.SIGKILL)
            return "drop"
        return None

    proxy = FaultProxy(anvil.url, kill_at_block_6)
    db = tmp_path / "killed.duckdb"
    try:
        holder["proc"] = subprocess.Popen(
            [*TRACER, "--db", str(db), "ingest", "evm", "--rpc", proxy.url, "--to-block", str(scenario.end),
             "--batch-size", "1", "--workers", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert holder["proc"].wait(timeout=120) == -signal.SIGKILL
    finally:
        proxy.stop()
    with tracer.open_store(db) as store:
        assert 0 < store.scalar("SELECT max(height) FROM blocks") < 6
        assert store.query("SELECT status FROM ingest_runs") == [("running",)]  # the killed run
    done = run("ingest", "evm", "--rpc", anvil.url, "--to-block", str(scenario.end), "--batch-size", "1",
               "--json", db=db)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert 1 < result["resumed_from"] <= 6 and result["blocks"] == scenario.end + 1 - result["resumed_from"]
    with tracer.open_store(db) as store:
        assert snapshot(store) == clean


def test_rerunning_a_finished_ingest_adds_nothing(tmp_path, anvil, scenario, clean):
    db = tmp_path / "s.duckdb"
    first = run("ingest", "evm", "--rpc", anvil.url, "--to-block", str(scenario.end), "--json", db=db)
    second = run("ingest", "evm", "--rpc", anvil.url, "--to-block", str(scenario.end), "--json", db=db)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["blocks"] == scenario.end + 1
    assert json.loads(second.stdout)["blocks"] == 0
    with tracer.open_store(db) as store:
        assert snapshot(store) == clean


def test_only_the_asked_tokens_are_ingested(tmp_path, anvil, scenario):
    db = tmp_path / "s.duckdb"
    out = run("ingest", "evm", "--rpc", anvil.url, "--to-block", str(scenario.end), "--tokens",
              scenario.usdt.upper().replace("0X", "0x"), "--json", db=db)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tokens"] == [Web3.to_checksum_address(scenario.usdt)] and result["transport"] == "web3"
    with tracer.open_store(db) as store:
        assert store.query("SELECT DISTINCT asset, symbol, decimals FROM transfers WHERE kind = 'erc20'") == [
            (scenario.usdt, "USDT", 6)]
        assert store.query("SELECT count(*) FROM transfers WHERE kind = 'erc20'") == [(4,)]


def test_node_down_exits_non_zero_naming_the_call(tmp_path):
    out = run("ingest", "evm", "--rpc", "http://127.0.0.1:9", "--retries", "0", db=tmp_path / "s.duckdb")
    assert out.returncode == 1
    assert "http://127.0.0.1:9 at node (eth_chainId): node unreachable" in out.stderr


def test_bad_etl_line_exits_non_zero_names_file_and_line_and_writes_nothing(tmp_path):
    src = (ETH / "test_export_blocks_job" / "blocks_with_transactions" / "expected_transactions.csv").read_text()
    lines = src.splitlines()
    lines[3] = lines[3].replace(",21000,", ",21OOO,")  # a gas limit with letters O for zeros
    bad = tmp_path / "transactions.csv"
    bad.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.duckdb"
    out = run("ingest", "etl", str(bad), db=db)
    assert out.returncode == 1
    assert f"{bad} at line 4" in out.stderr.replace("\n", "") and "does not convert" in out.stderr
    with tracer.open_store(db) as store:
        assert store.count("transactions") == 0 and store.count("transfers") == 0
        [(position, raw)] = store.query("SELECT position, raw FROM quarantine")
        assert position == "line 4" and '"gas": "21OOO"' in raw


def test_etl_ndjson_that_is_not_json_is_refused_with_its_line(tmp_path):
    f = tmp_path / "blocks.json"
    f.write_text((ETH / "test_stream" / "blocks_1755634_1755635" / "expected_blocks.json").read_text()
                 + '{"type": "block", "number": 3,\n')
    db = tmp_path / "s.duckdb"
    out = run("ingest", "etl", str(f), db=db)
    assert out.returncode == 1 and "line 3" in out.stderr and "not JSON" in out.stderr
    with tracer.open_store(db) as store:
        assert store.count("blocks") == 0


def test_an_unknown_transport_is_refused_before_the_node_is_asked(tmp_path):
    out = run("ingest", "evm", "--rpc", "http://127.0.0.1:9", "--transport", "ipc", db=tmp_path / "s.duckdb")
    assert out.returncode == 2
    assert "--transport must be one of web3, raw, not 'ipc'" in " ".join(out.stderr.split())
