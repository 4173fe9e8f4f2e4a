"""`tracer demo` — what `make demo` runs — builds the whole demo store from fixtures/ and is rerunnable."""

from __future__ import annotations

import json
import subprocess
import sys

import tracer


def run_demo(tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "tracer.cli", "--db", str(tmp_path / "demo.duckdb"), "demo", "--no-serve",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )


def test_demo_builds_the_store_and_a_second_run_adds_nothing(tmp_path):
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "bitcoin: 445 real mainnet blocks, 6,975 transactions" in first.stdout
    assert "labels: fixtures/labels/ofac-sdn — 652 labels loaded" in first.stdout
    truth = json.loads((tmp_path / "out" / "ground_truth.json").read_text())
    assert truth["seed"] == 7 and truth["patterns"]
    with tracer.open_store(tmp_path / "demo.duckdb") as s:
        counts = {t: s.count(t) for t in ("blocks", "transactions", "labels", "transfers", "ads", "reports")}
        sources = {r[0] for r in s.query("SELECT DISTINCT source FROM ingest_runs WHERE status = 'ok'")}
    assert {"simulate", "bitcoin", "labels", "prices", "bank"} <= sources
    assert all(n > 0 for n in counts.values()), counts
    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "simulate: the store already holds the demo world" in second.stdout
    assert "bitcoin: 0 real mainnet blocks" in second.stdout
    with tracer.open_store(tmp_path / "demo.duckdb") as s:
        assert {t: s.count(t) for t in counts} == counts
