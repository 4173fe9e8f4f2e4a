"""The alerts framework (heuristics/typologies/base.py) on a bank file written here, through the real
AMLworld ingester: structuring found with its exact evidence, reruns update instead of duplicating, an
analyst's status survives a rerun, parameters are checked, and the CLI explains an alert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tracer
from heuristics.typologies import AlertsError, make_params

HEADER = ("Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
          "Payment Currency,Payment Format,Is Laundering")


def row(t: str, fb: str, fa: str, tb: str, ta: str, usd: float, fmt: str) -> str:
    return f"{t},{fb},{fa},{tb},{ta},{usd:.2f},US Dollar,{usd:.2f},US Dollar,{fmt},0"


# Account 0A1 deposits cash just under 10,000 four times in two days (structuring); 0B2 deposits cash once
# under 10,000 and pays ordinary bills (no alert); 0C3 receives three just-under wires from three senders
# within a day (the receiving shape), and 0D4 receives three from one sender only (not the receiving shape).
ROWS = [
    row("2024/03/01 09:00", "010", "0A1", "010", "0A1", 9500.00, "Cash"),
    row("2024/03/01 15:30", "010", "0A1", "010", "0A1", 9800.00, "Cash"),
    row("2024/03/02 10:00", "010", "0A1", "010", "0A1", 9100.00, "Cash"),
    row("2024/03/02 16:45", "010", "0A1", "010", "0A1", 9900.00, "Cash"),
    row("2024/03/05 12:00", "010", "0A1", "020", "0E5", 35000.00, "Wire"),
    row("2024/03/01 10:00", "020", "0B2", "020", "0B2", 9700.00, "Cash"),
    row("2024/03/01 11:00", "020", "0B2", "030", "0F6", 120.00, "ACH"),
    row("2024/03/02 11:00", "020", "0B2", "030", "0F7", 80.00, "ACH"),
    row("2024/03/03 08:00", "030", "0S1", "040", "0C3", 9200.00, "Wire"),
    row("2024/03/03 09:00", "030", "0S2", "040", "0C3", 9300.00, "Wire"),
    row("2024/03/03 13:00", "030", "0S3", "040", "0C3", 9400.00, "Wire"),
    row("2024/03/04 08:00", "030", "0S4", "040", "0D4", 9200.00, "Wire"),
    row("2024/03/04 09:00", "030", "0S4", "040", "0D4", 9300.00, "Wire"),
    row("2024/03/04 10:00", "030", "0S4", "040", "0D4", 9400.00, "Wire"),
]


@pytest.fixture()
def ws(tmp_path: Path):
    csv = tmp_path / "bank.csv"
    csv.write_text("\n".join([HEADER, *ROWS]) + "\n")
    w = tracer.open(tmp_path / "s.duckdb")
    w.ingest("bank", csv)
    yield w
    w.close()


def test_structuring_finds_both_shapes_with_their_evidence(ws) -> None:
    result = ws.alerts(["structuring"])
    assert result.found == {"structuring": 3} and result.new == {"structuring": 3}
    queue = ws.alert_queue("structuring")
    focal = {a["focal"]: a for a in queue}
    assert set(focal) == {"010:0A1", "040:0C3", "030:0S4"}
    # 0A1: four cash deposits, all of its movements in the window
    a = focal["010:0A1"]
    assert a["flows"] == 4 and a["usd"] == pytest.approx(38_300.00)
    assert a["score"] == pytest.approx((1 - 0.5 ** 2) * 1.0)
    # 0C3 receives three from three senders; 0S4's three wires are the sending shape, and its receiver 0D4
    # (one sender) is not alerted
    assert focal["040:0C3"]["flows"] == 3 and focal["040:0C3"]["usd"] == pytest.approx(27_900.00)
    assert focal["030:0S4"]["flows"] == 3
    # the queue is ordered by score
    assert [a["score"] for a in queue] == sorted((a["score"] for a in queue), reverse=True)
    e = ws.explain_alert(a["alert_id"])
    assert [round(f["usd"], 2) for f in e["flows"]] == [9500.00, 9800.00, 9100.00, 9900.00]
    assert e["subjects"][0]["address"] == "010:0A1" and e["params"]["min_count"] == 3


def test_rerun_updates_and_keeps_status(ws) -> None:
    first = ws.alerts(["structuring"])
    ws.store.con.execute("UPDATE alerts SET status = 'escalated' WHERE alert_id = 1")
    second = ws.alerts(["structuring"])
    assert second.new == {"structuring": 0} and second.updated == {"structuring": 3}
    rows = ws.rows("SELECT alert_id, status, first_run, run_id FROM alerts ORDER BY alert_id")
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[0][1] == "escalated"
    assert {r[2] for r in rows} == {first.run_id} and {r[3] for r in rows} == {second.run_id}
    # a stricter rerun finds fewer but never deletes what was raised
    third = ws.alerts(["structuring"], structuring={"min_count": 4})
    assert third.found == {"structuring": 1} and ws.rows("SELECT count(*) FROM alerts")[0][0] == 3


def test_parameters_are_checked() -> None:
    assert make_params("structuring", {"min_count": "5", "chains": "fiat,bitcoin"}).chains == ("fiat", "bitcoin")
    with pytest.raises(AlertsError, match="has no parameter 'nope'"):
        make_params("structuring", {"nope": 1})
    with pytest.raises(AlertsError, match="structuring.min_count='x'"):
        make_params("structuring", {"min_count": "x"})
    with pytest.raises(AlertsError, match="unknown typology 'bogus'"):
        make_params("bogus")


def test_cli_runs_lists_and_explains(ws, tmp_path: Path) -> None:
    db = str(ws.store.path)
    ws.close()

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tracer.cli", "--db", db, *args], capture_output=True, text=True)

    run = cli("alerts", "--typology", "structuring", "--set", "structuring.min_count=4", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["found"] == {"structuring": 1}
    listed = cli("alerts", "list", "--json")
    assert [a["focal"] for a in json.loads(listed.stdout)] == ["010:0A1"]
    shown = cli("alerts", "explain", "1")
    assert "4 movements of 8,500–10,000 USD sent or deposited within 31.8 h" in shown.stdout
    assert shown.stdout.count(" -> 010:0A1 ") == 4
    bad = cli("alerts", "--set", "structuring=4")
    assert bad.returncode == 1 and bad.stderr.startswith("error: --set 'structuring=4': expected TYPOLOGY.PARAMETER")
    missing = cli("alerts", "explain", "99")
    assert missing.returncode == 1 and "no alert 99" in missing.stderr


def test_scoring_against_truth_patterns(ws, tmp_path: Path) -> None:
    """heuristics.typologies.scoring: an alert is true when its evidence holds a planted movement."""
    from heuristics.typologies.scoring import score_alerts

    ws.alerts(["structuring"])
    txid = {r[0]: r[1] for r in ws.rows("SELECT time::TEXT || ' ' || src || ' ' || usd, txid FROM flows "
                                         "WHERE chain = 'fiat'")}
    planted = [txid["2024-03-01 09:00:00 010:0A1 9500.0"], txid["2024-03-02 10:00:00 010:0A1 9100.0"]]
    benign = [txid["2024-03-04 08:00:00 030:0S4 9200.0"]]
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"patterns": [
        {"id": "p1", "type": "structuring", "chain": "fiat", "transfer_ids": planted},
        {"id": "p2", "type": "structuring", "chain": "fiat", "transfer_ids": [txid["2024-03-05 12:00:00 010:0A1 35000.0"]]},
        {"id": "b1", "type": "benign_wires", "chain": "fiat", "transfer_ids": benign}]}))
    s = score_alerts(ws.store, truth)["structuring"]
    assert (s.planted, s.alerts, s.true_alerts, s.found, s.on_benign) == (2, 3, 1, 1, 1)
    assert s.precision == pytest.approx(1 / 3) and s.recall == 0.5 and s.missed == ["p2"]
    assert s.precision_at_k == 0.5  # the top two: 0A1 (true) and one of the others
