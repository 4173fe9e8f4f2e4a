"""The flow typologies (peeling_chain, pass_through, off_ramp, ad_fee_payer, structuring, labelled_counterparty)
on a simulated world with planted instances (`simulate --plant 1`, seed 1, scale test) and on real data
(real Bitcoin blocks with real WalletExplorer TagPack labels): each planted instance is found with its exact
evidence, benign look-alikes score below every planted instance, and a flagged label raises a score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tracer
from heuristics.typologies.scoring import score_alerts
from tracer.errors import MoneytrailError

ROOT = Path(__file__).resolve().parents[2]
FLOW = ["structuring", "peeling_chain", "pass_through", "off_ramp", "ad_fee_payer"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("flowworld")
    ws = tracer.open(base / "w.duckdb")
    ws.simulate(seed=1, scale="test", truth_path=base / "truth.json", plant=1)
    ws.cluster(summary=False)
    ws.alerts(FLOW)
    truth = json.loads((base / "truth.json").read_text())
    yield ws, {p["id"]: p for p in truth["patterns"]}, base / "truth.json"
    ws.close()


def alerts_of(ws, typology: str) -> list[dict]:
    """Every alert of a typology with the chain and txid of each evidence flow."""
    rows = ws.rows("""
        SELECT a.alert_id, a.score, a.focal_id, list(f.txid ORDER BY f.flow_id), list(f.flow_id ORDER BY f.flow_id)
        FROM alerts a, unnest(a.evidence) AS e(flow_id) JOIN flows f ON f.flow_id = e.flow_id
        WHERE a.typology = ? GROUP BY ALL ORDER BY a.score DESC, a.alert_id""", [typology])
    return [{"alert_id": r[0], "score": r[1], "focal_id": r[2], "txids": r[3], "flows": r[4]} for r in rows]


def flows_of(ws, chain: str, txids: list[str]) -> list[int]:
    return [r[0] for r in ws.rows("SELECT flow_id FROM flows WHERE chain = ? AND list_contains(?, txid) "
                                  "ORDER BY flow_id", [chain, txids])]


def test_every_planted_instance_is_found_and_ranks_first(world) -> None:
    ws, _, truth = world
    scores = score_alerts(ws.store, truth, FLOW)
    for name in FLOW:
        s = scores[name]
        assert s.recall == 1.0 and s.precision_at_k == 1.0 and s.missed == [], s
    assert {n: (scores[n].planted, scores[n].found) for n in FLOW} == {
        "structuring": (2, 2), "peeling_chain": (2, 2), "pass_through": (2, 2), "off_ramp": (3, 3),
        "ad_fee_payer": (1, 1)}


def test_peeling_chain_evidence_is_exactly_the_planted_hops(world) -> None:
    ws, patterns, _ = world
    planted = patterns["planted/peeling-chain-1"]
    want = flows_of(ws, "bitcoin", planted["txids"])
    hits = [a for a in alerts_of(ws, "peeling_chain") if set(a["txids"]) & set(planted["txids"])]
    assert len(hits) == 1 and hits[0]["flows"] == want
    assert len(planted["txids"]) == 8 and hits[0]["score"] == pytest.approx(1 - 0.5 ** 5)
    # the benign spending chains (15-45 % paid at each hop) are no peeling chain; off-ramps: the operation's
    # deposits at Kestrel, the planted Bitcoin and USDT ones
    benign = {t for p in patterns.values() if p["type"] == "benign_spending_chain" for t in p["txids"]}
    assert not any(set(a["txids"]) & benign for a in alerts_of(ws, "peeling_chain"))


def test_pass_through_finds_each_mule_with_its_flows_and_payday_scores_below(world) -> None:
    ws, patterns, _ = world
    found_scores = []
    for pid, chain in (("planted/fiat-pass-through-1", "fiat"), ("planted/usdt-pass-through-1", "sim-evm")):
        p = patterns[pid]
        movements = set(p.get("transfer_ids", []) + p.get("txids", []))
        if chain == "sim-evm":  # the last mule's deposits at the exchange are the off-ramp pattern
            movements |= set(patterns["planted/usdt-off-ramp-1"]["txids"])
        mules = set(p["accounts"] if chain == "fiat" else p["addresses"])
        hits = [a for a in alerts_of(ws, "pass_through") if set(a["txids"]) & movements]
        focal = dict(ws.rows("SELECT address_id, address FROM addresses WHERE list_contains(?, address_id)",
                             [[a["focal_id"] for a in hits]]))
        assert {focal[a["focal_id"]] for a in hits} == mules
        for a in hits:  # every evidence flow is one of the planted movements
            assert set(a["txids"]) <= movements
        found_scores += [a["score"] for a in hits]
    payday = set(patterns["planted/payday-bills-1"]["transfer_ids"])
    benign = [a["score"] for a in alerts_of(ws, "pass_through") if set(a["txids"]) & payday]
    assert max(benign, default=0.0) < min(found_scores)


def test_off_ramp_and_structuring_evidence(world) -> None:
    ws, patterns, _ = world
    dep = patterns["planted/off-ramp-1"]["txids"]  # two deposits and the exchange's sweep
    hits = [a for a in alerts_of(ws, "off_ramp") if set(a["txids"]) & set(dep)]
    # the first deposit spends the chain's remainder, the second the first's change (two hops along the
    # remainder): each alert holds the deposit's input and its output to the deposit address
    assert sorted((a["txids"], a["score"]) for a in hits) == sorted(
        [([dep[0], dep[0]], pytest.approx(1 - 0.5 ** 5)), ([dep[1], dep[1]], pytest.approx(1 - 0.5 ** 5))])
    s = patterns["planted/structuring-1"]
    hits = [a for a in alerts_of(ws, "structuring") if set(a["txids"]) & set(s["transfer_ids"])]
    assert len(hits) == 1 and sorted(hits[0]["txids"]) == sorted(s["transfer_ids"][:-1])  # the cash, not the wire


def test_ad_fee_payer_is_the_operations_poster(world) -> None:
    ws, patterns, _ = world
    top = alerts_of(ws, "ad_fee_payer")[0]
    assert sorted(top["txids"]) == sorted(patterns["operation-1/ad-fees"]["txids"])
    assert top["score"] == pytest.approx(1 - 0.5 ** 28)


def test_a_flagged_label_raises_the_score(world, tmp_path: Path) -> None:
    ws, patterns, _ = world
    planted = patterns["planted/peeling-chain-2"] if "planted/peeling-chain-2" in patterns else None
    assert planted is None  # --plant 1: one planted chain; the operation's own chain is the second
    op = patterns["operation-1/peeling-chain"]
    before = {a["alert_id"]: a["score"] for a in alerts_of(ws, "peeling_chain") if set(a["txids"]) & set(op["txids"])}
    labels = tmp_path / "flag.csv"
    labels.write_text("chain,address,label,category,source,confidence,actor,abuse\n"
                      f"bitcoin,{op['addresses'][3]},test ransomware label,,test,1,,ransomware\n")
    ws.ingest("labels", labels)
    ws.alerts(["peeling_chain", "labelled_counterparty"])
    after = {a["alert_id"]: a["score"] for a in alerts_of(ws, "peeling_chain") if set(a["txids"]) & set(op["txids"])}
    raised = [k for k in before if after[k] > before[k]]
    assert raised and all(after[k] == pytest.approx(min(1.0, before[k] * 1.5)) for k in raised)
    lab = [a for a in ws.alert_queue("labelled_counterparty") if a["focal"] == op["addresses"][3]]
    assert len(lab) == 1 and lab[0]["summary"].endswith("labelled test ransomware label")
    ws.store.con.execute("DELETE FROM labels WHERE label = 'test ransomware label'")
    ws.store.con.execute("DELETE FROM alerts WHERE typology = 'labelled_counterparty'")
    ws.alerts(["peeling_chain"])  # back to the module's state for the other tests


def test_plant_is_checked(tmp_path: Path) -> None:
    with tracer.open(tmp_path / "s.duckdb") as ws, pytest.raises(MoneytrailError, match="plant must be an integer"):
        ws.simulate(seed=1, scale="test", truth_path=tmp_path / "t.json", plant=-1)
    run = subprocess.run([sys.executable, "-m", "tracer.cli", "--db", str(tmp_path / "c.duckdb"), "simulate", "--seed",
                          "1", "--scale", "test", "--truth", str(tmp_path / "t.json"), "--plant", "-2"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "plant must be an integer from 0 to 1000, got -2" in run.stderr


def test_real_blocks_and_tagpack_labels(tmp_path: Path) -> None:
    """Real 2013 mainnet blocks with the real WalletExplorer TagPack and the real OFAC SDN lists: the
    gambling-labelled address (SatoshiDice's 'original', block 227835) raises a labelled_counterparty
    alert with its four incoming flows and its label; no sanctioned address has a flow in these blocks."""
    with tracer.open(tmp_path / "real.duckdb") as ws:
        ws.ingest("bitcoin", [ROOT / "fixtures/bitcoin/block-227835.raw", ROOT / "fixtures/bitcoin/block-227836.raw"])
        ws.ingest("labels", ROOT / "fixtures/labels/tagpacks/walletexplorer.yaml")
        ws.ingest("labels", ROOT / "fixtures/labels/ofac-sdn")
        result = ws.alerts(["labelled_counterparty", "peeling_chain"])
        queue = ws.alert_queue("labelled_counterparty")
        assert [(a["focal"], a["flows"]) for a in queue] == [("14ChPPM8rPYJeHnw6kMVUDnNNKx1KnjYW4", 4)]
        assert queue[0]["score"] == pytest.approx(0.5 * (0.75 + 0.25 * (1 - 0.5 ** 3)))
        e = ws.explain_alert(queue[0]["alert_id"])
        assert e["subjects"][0]["labels"] == "original"
        assert [f["txid"][:16] for f in e["flows"]] == ["d0a3d4dd7d8ac61f", "33c904acb9cfc913", "8165b92912672190",
                                                         "44c0d47683bfd19b"]
        assert result.found["peeling_chain"] == len(ws.alert_queue("peeling_chain", top=0))
