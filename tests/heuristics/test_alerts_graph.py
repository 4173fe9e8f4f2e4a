"""The graph typologies (heuristics/typologies/graph.py) on a simulated world with planted instances
(`--plant`), scored against its truth file; the planted rows reach the AMLworld source file the same; and
on AMLSim-format data written from AMLSim's own parameter files, the fan_in, fan_out, cycle and
scatter_gather alerts recover the planted alert accounts with no false alert."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tracer
from heuristics.typologies import AlertsError, run_alerts
from heuristics.typologies.scoring import score_alerts
from tracer.ingest.human.bank import ingest_bank
from tracer.simulate import simulate
from tracer.simulate.amlsim import write_amlsim

GRAPH = ["fan_in", "fan_out", "cycle", "scatter_gather", "gather_scatter"]
PARAMS = Path(__file__).resolve().parents[2] / "fixtures" / "aml" / "amlsim" / "params"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plant")
    store = tracer.open_store(tmp / "w.duckdb")
    summary = simulate(store, seed=1, scale="test", truth_path=tmp / "w.json", plant=2, sources_dir=tmp / "src")
    run_alerts(store, GRAPH)
    yield store, tmp / "w.json", summary
    store.close()


def test_planted_instances_and_look_alikes_are_in_the_truth(planted) -> None:
    _, truth, summary = planted
    kinds = sorted(t for i, t in summary.patterns.items() if i.startswith("plant/"))
    assert kinds == sorted([*GRAPH, "benign_payroll", "benign_merchant", "benign_bills"] * 2)
    patterns = {p["id"]: p for p in json.loads(truth.read_text())["patterns"]}
    assert patterns["operation-1/scatter-gather"]["type"] == "scatter_gather"
    assert all(p["transfer_ids"] and p["chain"] == "fiat" for i, p in patterns.items() if i.startswith("plant/"))


def test_every_planted_instance_is_found_and_ranked_first(planted) -> None:
    store, truth, _ = planted
    scores = score_alerts(store, truth, GRAPH)
    assert {n: (s.planted, s.found, s.precision_at_k, s.on_benign) for n, s in scores.items()} == {
        "fan_in": (3, 3, 1.0, 0), "fan_out": (2, 2, 1.0, 0), "cycle": (3, 3, 1.0, 0),
        "scatter_gather": (3, 3, 1.0, 0), "gather_scatter": (2, 2, 1.0, 0)}


def test_a_planted_cycle_alert_holds_exactly_its_transfers(planted) -> None:
    store, truth, _ = planted
    pattern = next(p for p in json.loads(truth.read_text())["patterns"] if p["id"] == "plant/cycle-1")
    rows = store.query("""
        SELECT a.alert_id, list(f.txid ORDER BY f.time, f.flow_id)
        FROM alerts a, unnest(a.evidence) e(flow_id) JOIN flows f USING (flow_id)
        WHERE a.typology = 'cycle' GROUP BY a.alert_id""")
    evidence = [sorted(txids) for _, txids in rows]
    assert sorted(pattern["transfer_ids"]) in evidence


def test_planted_rows_reach_the_amlworld_source_file(planted, tmp_path: Path) -> None:
    _, truth, summary = planted
    other = tracer.open_store(tmp_path / "from-sources.duckdb")
    try:
        ingest_bank(other, summary.sources.parent / "bank" / "simulate-1.csv", fmt="amlworld")
        txids = {t for (t,) in other.query("SELECT txid FROM transfers WHERE chain = 'fiat'")}
    finally:
        other.close()
    planted_ids = [t for p in json.loads(truth.read_text())["patterns"] if p["id"].startswith("plant/")
                   for t in p["transfer_ids"]]
    assert len(planted_ids) > 100 and set(planted_ids) <= txids


def test_plant_zero_leaves_the_world_as_it_was(tmp_path: Path) -> None:
    a, b = tracer.open_store(tmp_path / "a.duckdb"), tracer.open_store(tmp_path / "b.duckdb")
    try:
        simulate(a, seed=2, scale="test", truth_path=tmp_path / "a.json")
        simulate(b, seed=2, scale="test", truth_path=tmp_path / "b.json", plant=0)
        q = "SELECT txid, from_address, to_address, amount, time FROM transfers WHERE chain = 'fiat' ORDER BY ALL"
        assert a.query(q) == b.query(q)
    finally:
        a.close()
        b.close()


# AMLSim's conventions: an alert happens once within its period (5-20 days), a normal model recurs with
# the same counterparties (so fans and scatter-gathers are searched among one-off relationships);
# min_accounts counts the hub; along a cycle each hop keeps 1 - U(0, margin_ratio 0.1) of the amount (an
# alert's member may also pay a counterparty of its normal models, so cycles are searched over all flows,
# pruned by that share); amounts 100-200 USD.
AMLSIM_COMMON = {"window_days": "20", "hold_hours": "480", "one_off_only": "true", "min_score": "0.5",
                 "min_usd": "1"}
AMLSIM_SETTINGS = {"fan_in": {**AMLSIM_COMMON, "min_counterparties": "4"},
                   "fan_out": {**AMLSIM_COMMON, "min_counterparties": "4"},
                   "cycle": {"window_days": "20", "min_usd": "1", "max_hops": "10", "keep": "0.89", "grow": "1.0", "max_node_flows": "1000",
                             "min_score": "0.55"},
                   "scatter_gather": dict(AMLSIM_COMMON)}


def test_amlsim_alerts_are_recovered_from_its_transactions(tmp_path: Path) -> None:
    out = write_amlsim(PARAMS, tmp_path / "amlsim", seed=1, steps=60, normal_share=0.3)
    files = {k: Path(v) for k, v in out["files"].items()}
    header = files["transactions"].read_text().splitlines()[0]
    assert header == "tran_id,orig_acct,bene_acct,tx_type,base_amt,tran_timestamp,is_sar,alert_id"
    planted: dict[str, dict[int, set[str]]] = {}
    for line in files["alert_accounts"].read_text().splitlines()[1:]:
        alert_id, typ, acct = line.split(",")[:3]
        planted.setdefault(typ, {}).setdefault(int(alert_id), set()).add(f"bank:{acct}")
    assert {t: len(v) for t, v in planted.items()} == {"fan_in": 3, "fan_out": 3, "cycle": 4, "scatter_gather": 3}
    ws = tracer.open(tmp_path / "s.duckdb")
    try:
        ws.ingest("bank", files["transactions"], accounts=files["accounts"])
        run_alerts(ws.store, list(AMLSIM_SETTINGS), AMLSIM_SETTINGS)
        rows = ws.store.query("""
            SELECT a.typology, a.alert_id, list(ad.address) FROM alerts a, unnest(a.subjects) s(address_id)
            JOIN addresses ad USING (address_id) GROUP BY ALL""")
    finally:
        ws.close()
    result = {}
    for typ, members in planted.items():
        alerts = [set(subjects) for t, _, subjects in rows if t == typ]
        true = [s for s in alerts if any(len(s & m) >= 0.8 * len(m) and len(s & m) >= 0.5 * len(s)
                                         for m in members.values())]
        recovered = [a for a, m in members.items() if any(len(s & m) >= 0.8 * len(m) for s in true)]
        result[typ] = (len(recovered), len(alerts) - len(true))
    assert result == {"fan_in": (3, 0), "fan_out": (3, 0), "cycle": (4, 0), "scatter_gather": (3, 0)}


@pytest.mark.parametrize(("name", "setting", "message"), [
    ("cycle", {"max_hops": "1"}, "cycle.max_hops=1: must be >= 2"),
    ("cycle", {"keep": "1.2"}, "cycle.keep=1.2: must be > 0 and <= grow"),
    ("fan_in", {"window_days": "0"}, "fan_in.window_days=0.0: must be > 0"),
    ("scatter_gather", {"min_intermediaries": "1"}, "scatter_gather.min_intermediaries=1: must be >= 2"),
])
def test_a_value_a_detector_cannot_take_is_refused_and_nothing_is_stored(planted, name, setting, message) -> None:
    store, _, _ = planted
    before = store.count("alerts")
    with pytest.raises(AlertsError, match=re.escape(message)):
        run_alerts(store, [name], {name: setting})
    assert store.count("alerts") == before
