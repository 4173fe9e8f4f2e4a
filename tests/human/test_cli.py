"""The `tracer` commands of the human side, run as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

import tracer

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def tracer_cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer.cli", "--db", str(db), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_bank_cli_loads_good_rows_and_exits_2_when_rows_are_quarantined(tmp_path: Path):
    db = tmp_path / "case.duckdb"
    done = tracer_cli(db, "ingest", "bank", str(FIXTURES / "aml" / "amlworld-bad.csv"), "--json")
    assert done.returncode == 2
    summary = json.loads(done.stdout)
    assert (summary["loaded"], summary["quarantined"], summary["reasons"]["bad date"]) == (3, 7, 1)
    assert "7 item(s) refused" in done.stderr
    clean = tracer_cli(db, "ingest", "bank", str(FIXTURES / "aml" / "amlworld-small.csv"), "--json")
    # lines 2 and 9 of the bad file are lines 2 and 10 of the small one: the same transfers, stored once
    assert clean.returncode == 0
    assert (json.loads(clean.stdout)["loaded"], json.loads(clean.stdout)["already_stored"]) == (10, 2)


def test_mapped_bank_csv_through_map_flags(tmp_path: Path):
    csv_path = tmp_path / "bank.csv"
    csv_path.write_text("when,from,to,value\n2024-01-01 10:00:00,A,B,10.00\n")
    done = tracer_cli(tmp_path / "m.duckdb", "ingest", "bank", str(csv_path), "--format", "mapped",
                      "--map", "time=when", "--map", "from_account=from", "--map", "to_account=to",
                      "--map", "amount=value", "--map", "default_currency=EUR", "--json")
    assert done.returncode == 0, done.stderr
    with tracer.open_store(tmp_path / "m.duckdb") as s:
        assert s.query("SELECT from_address, amount, symbol FROM transfers") == [("bank:A", 1000, "EUR")]


def test_missing_file_is_an_error_naming_it(tmp_path: Path):
    done = tracer_cli(tmp_path / "x.duckdb", "ingest", "prices", str(tmp_path / "nope.csv"))
    assert done.returncode == 1 and "nope.csv" in done.stderr and "no such file" in done.stderr


def test_labels_cli_import_and_tagpack_export(tmp_path: Path):
    db = tmp_path / "l.duckdb"
    done = tracer_cli(db, "ingest", "labels", str(FIXTURES / "labels" / "ofac-sdn"), "--allow-quarantine", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["loaded"] == 652
    out = tmp_path / "packs"
    exported = tracer_cli(db, "labels", "export", str(out))
    assert exported.returncode == 0 and exported.stdout.strip().endswith("ofac-sdn.yaml")
    pack = yaml.safe_load((out / "ofac-sdn.yaml").read_text())
    assert pack["confidence"] == "authority_data" and len(pack["tags"]) == 652
    # GraphSense codes on export: XBT becomes BTC; a USDT tag names its network
    currencies = {t["currency"] for t in pack["tags"]}
    assert currencies >= {"BTC", "ETH", "USDT"} and "XBT" not in currencies
    assert {t.get("network") for t in pack["tags"] if t["currency"] == "USDT"} == {"ETH", "TRX", "BTC"}
    again = tracer_cli(tmp_path / "again.duckdb", "ingest", "labels", str(out), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["loaded"] == 652
    with tracer.open_store(tmp_path / "again.duckdb") as s:
        assert dict(s.query("SELECT chain, count(*) FROM labels WHERE source_asset = 'USDT' GROUP BY chain")) == {
            "ethereum": 8, "tron": 11, "bitcoin": 7}
