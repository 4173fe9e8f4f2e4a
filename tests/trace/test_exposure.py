"""Exposure screening: direct and haircut-weighted indirect exposure per label category, and the risk level
with its rule; on a hand-built fiat case with exact values and on real block 170."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

import tracer

ROOT = Path(__file__).resolve().parents[2]


def _transfers(rows: list[tuple[str, str, int, int]]) -> pa.Table:
    """(from, to, cents, minute) rows as fiat USD transfers."""
    n = len(rows)
    t0 = dt.datetime(2024, 1, 1)
    return pa.table({
        "chain": ["fiat"] * n, "asset": ["USD"] * n, "txid": [f"t{i}" for i in range(n)], "idx": [0] * n,
        "from_address": [r[0] for r in rows], "to_address": [r[1] for r in rows],
        "amount": pa.array([r[2] for r in rows], pa.decimal128(38, 0)), "amount_raw": [str(r[2]) for r in rows],
        "time": pa.array([t0 + dt.timedelta(minutes=r[3]) for r in rows], pa.timestamp("us")),
        "kind": ["wire"] * n, "symbol": ["USD"] * n, "decimals": pa.array([2] * n, pa.int32()),
    })


def _label(ws, address: str, label: str, category: str | None = None, abuse: str | None = None) -> None:
    chain = "fiat" if address.startswith("bank:") else "bitcoin"
    ws.store.con.execute("INSERT INTO labels (chain, address, label, category, abuse, source, confidence) "
                         "VALUES (?, ?, ?, ?, ?, 'test', 1.0)", [chain, address, label, category, abuse])


def test_indirect_exposure_is_haircut_weighted_and_sets_the_risk_level(tmp_path):
    ws = tracer.open(tmp_path / "s.duckdb")
    # A (ransomware) and C (clean) pay B 100 and 300 USD; B pays D 200 USD; D pays E (an exchange) 150 USD
    ws.store.append("transfers", _transfers([("bank:A", "bank:B", 10_000, 1), ("bank:C", "bank:B", 30_000, 2),
                                             ("bank:B", "bank:D", 20_000, 3), ("bank:D", "bank:E", 15_000, 4)]))
    _label(ws, "bank:A", "Locker gang", abuse="ransomware")
    _label(ws, "bank:E", "Some Exchange", category="exchange")
    one = ws.exposure(["bank:D"], hops=1).as_json()
    assert (one["received_total"], one["sent_total"]) == (200.0, 150.0)
    cats = {c["category"]: c for c in one["categories"]}
    assert set(cats) == {"exchange"} and cats["exchange"]["direct_sent"] == 150.0
    assert one["risk"]["level"] == "low"
    two = ws.exposure(["bank:D"], hops=2).as_json()
    cats = {c["category"]: c for c in two["categories"]}
    # B received 400, a quarter of it from A: a quarter of the 200 D received from B is A's
    assert cats["ransomware"]["indirect_received"] == 50.0 and cats["ransomware"]["direct_received"] == 0.0
    assert cats["ransomware"]["share_received"] == 0.25 and cats["ransomware"]["class"] == "severe"
    assert two["risk"] == {"level": "severe", "rule": "25.0% of the flow from/to ransomware within the hops"}
    # B itself was paid by A directly
    assert ws.exposure(["bank:B"], hops=1).as_json()["risk"]["level"] == "severe"
    ws.close()


def test_hal_finneys_first_coins_came_directly_from_satoshis_address(tmp_path):
    ws = tracer.open(tmp_path / "s.duckdb")
    ws.ingest("bitcoin", [ROOT / "fixtures" / "bitcoin" / "blk-heights-0-438.dat"])
    satoshi, hal = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
    _label(ws, satoshi, "test: a mixer", category="mixing_service")
    result = ws.exposure([hal], hops=1).as_json()
    [mixer] = [c for c in result["categories"] if c["category"] == "mixing_service"]
    # Hal's only receipt in these blocks is block 170's 10 BTC, paid from 12cb… (no prices: BTC units)
    assert result["received_total"] == 10.0 and mixer["direct_received"] == 10.0
    assert result["risk"] == {"level": "high", "rule": "direct exposure to mixing_service (10.00)"}
    ws.close()
