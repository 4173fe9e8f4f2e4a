"""`tracer simulate` from the command line, and what happens when it cannot finish."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import tracer
from tracer.cli import app
from tracer.simulate import SimulationError, resolve_scale, simulate

runner = CliRunner()


def test_cli_simulates_a_world_and_prints_a_json_summary(tmp_path):
    db = tmp_path / "cli.duckdb"
    truth = tmp_path / "out" / "truth.json"
    result = runner.invoke(app, ["--db", str(db), "simulate", "--seed", "5", "--scale", "1500", "--truth", str(truth),
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["seed"] == 5 and summary["counts"]["transactions"] > 1_000
    assert truth.is_file() and (tmp_path / "out" / "truth.addresses.parquet").is_file()
    with tracer.open_store(db) as store:
        assert store.count("transactions") > 1_000


def test_a_second_world_in_the_same_store_is_refused_and_nothing_is_added(tmp_path):
    db = tmp_path / "w.duckdb"
    args = ["--db", str(db), "simulate", "--seed", "5", "--scale", "1000", "--truth", str(tmp_path / "t.json")]
    assert runner.invoke(app, args).exit_code == 0
    with tracer.open_store(db) as store:
        before = store.count("transactions")
    again = runner.invoke(app, args[:4] + ["6"] + args[5:])
    assert again.exit_code != 0
    assert "already holds a simulated world" in str(again.exception or again.output)
    with tracer.open_store(db) as store:
        assert store.count("transactions") == before
        assert store.count("ingest_runs") == 1


@pytest.mark.parametrize("scale", ["huge", 10, "-3", 10**9])
def test_a_bad_scale_is_refused_with_its_value(scale):
    with pytest.raises(SimulationError, match=str(scale)):
        resolve_scale(scale)


def test_named_scales_resolve():
    assert [resolve_scale(s) for s in ("test", "demo", "1e5", "1e6", "1e7", "25000")] == [
        3_000, 10_000, 100_000, 1_000_000, 10_000_000, 25_000]


@pytest.mark.parametrize("plant", [-1, 1001])
def test_a_bad_plant_count_is_refused_with_exit_1_and_nothing_written(tmp_path, plant):
    db = tmp_path / "p.duckdb"
    result = runner.invoke(app, ["--db", str(db), "simulate", "--seed", "1", "--scale", "1000", "--truth",
                                 str(tmp_path / "t.json"), "--plant", str(plant)])
    assert result.exit_code == 1
    assert f"plant must be an integer from 0 to 1000, got {plant}" in str(result.exception or result.output)
    with tracer.open_store(db) as store:
        assert store.count("ingest_runs") == 0


def test_truth_path_must_be_json(store, tmp_path):
    with pytest.raises(SimulationError, match="must end in .json"):
        simulate(store, seed=1, scale=1_000, truth_path=tmp_path / "truth.parquet")
    assert store.count("ingest_runs") == 0


def test_a_failure_half_way_leaves_nothing_but_a_failed_run(store, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the truth folder should be")
    with pytest.raises(OSError):
        simulate(store, seed=1, scale=1_000, truth_path=blocker / "truth.json")
    assert store.query("SELECT source, status FROM ingest_runs") == [("simulate", "failed")]
    for table in ("blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "ads", "labels",
                  "prices", "chains"):
        assert store.count(table) == 0, table
    # and the store takes a world afterwards
    summary = simulate(store, seed=1, scale=1_000, truth_path=tmp_path / "ok" / "truth.json")
    assert summary.counts["transactions"] > 500


def test_progress_reports_every_stage_and_store_settings_come_back(store, tmp_path):
    before = store.query("SELECT current_setting('memory_limit'), current_setting('enable_progress_bar')")
    stages: list[str] = []
    simulate(store, seed=2, scale=1_000, truth_path=tmp_path / "t.json",
             progress=lambda stage, frac: stages.append(stage) if not stages or stages[-1] != stage else None)
    assert stages[0] == "bitcoin background" and stages[-1] == "done"
    assert {"ads and the operation", "writing Bitcoin tables", "bank"} <= set(stages)
    after = store.query("SELECT current_setting('memory_limit'), current_setting('enable_progress_bar')")
    assert after[0][1] == before[0][1]
    # DuckDB prints the limit rounded to 0.1 GiB, so what comes back is the same limit within that rounding
    (v0, u0), (v1, u1) = before[0][0].split(), after[0][0].split()
    assert u0 == u1 and abs(float(v0) - float(v1)) <= 0.1 + 1e-9
