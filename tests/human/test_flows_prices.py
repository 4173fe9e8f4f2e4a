"""Prices and the `flows` view: Bitcoin (real blocks), fiat, USD at the latest price at or before t."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tracer.ingest.human.bank import ingest_bank
from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.ingest.prices import ingest_prices

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HAL = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"  # block 170: Satoshi -> Hal Finney


def test_prices_load_and_rerun_adds_nothing(store):
    first = ingest_prices(store, FIXTURES / "human" / "prices.csv")
    again = ingest_prices(store, FIXTURES / "human" / "prices.csv")
    assert (first["loaded"], again["loaded"], again["already_stored"]) == (8, 0, 8)
    assert store.query("SELECT CAST(time AS VARCHAR), usd FROM prices WHERE asset = 'BTC' ORDER BY time")[2] == (
        "2022-09-03 00:00:00", 19810.55)


def test_bad_price_rows_are_quarantined_with_line(store, tmp_path: Path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"symbol,date,close\nBTC,2022-09-01,20000\nBTC,yesterday,1\nETH,2022-09-01,-3\n"
                     b"ETH,2022-09-02,abc\nETH,2022-09-03\n\xff\xfe,2022-09-01,1\nEUR,2022-09-01T12:00:00+02:00,1.1\n")
    summary = ingest_prices(store, path)
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (7, 2, 5)
    assert dict(store.query("SELECT position, reason FROM quarantine")) == {
        "line 3": "bad date: yesterday", "line 4": "price must be positive: -3",
        "line 5": "price is not a number: abc", "line 6": "wrong number of fields: 2, expected 3",
        "line 7": "broken encoding: not valid UTF-8"}
    # an offset is converted to UTC
    assert str(store.scalar("SELECT time FROM prices WHERE asset = 'EUR'")) == "2022-09-01 10:00:00"


def test_bitcoin_flows_are_exact_bipartite_rows(store, tmp_path: Path):
    ingest_bitcoin(store, [FIXTURES / "bitcoin" / "blk-heights-0-438.dat"])
    (tmp_path / "btc.csv").write_text("asset,time,usd\nBTC,2009-01-01,0.001\nBTC,2009-01-13,0.002\n")
    ingest_prices(store, tmp_path / "btc.csv")
    rows = store.query("SELECT src, dst, asset, amount, usd, kind, leg, idx FROM flows WHERE txid = ? "
                       "ORDER BY leg, idx", [HAL])
    assert rows == [
        ("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", f"tx:{HAL}", "BTC", Decimal(5_000_000_000),
         pytest.approx(0.05), "utxo", "in", 0),
        (f"tx:{HAL}", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3", "BTC", Decimal(1_000_000_000),
         pytest.approx(0.01), "utxo", "out", 0),
        (f"tx:{HAL}", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "BTC", Decimal(4_000_000_000),
         pytest.approx(0.04), "utxo", "out", 1),
    ]
    # value is conserved per transaction: inputs = outputs + fee, never split by guesswork
    assert store.scalar("SELECT sum(amount) FROM flows WHERE chain = 'bitcoin' AND leg = 'out'") == \
        store.scalar("SELECT sum(value) FROM outputs")


def test_fiat_flows_get_usd_from_the_latest_price_at_or_before(store):
    ingest_bank(store, FIXTURES / "aml" / "amlworld-small.csv")
    ingest_prices(store, FIXTURES / "human" / "prices.csv")
    usd = dict(store.query("SELECT t.source_line, f.usd FROM flows f JOIN transfers t ON t.chain = f.chain "
                           "AND t.txid = f.txid AND t.idx = f.idx WHERE f.chain = 'fiat'"))
    assert usd[2] == pytest.approx(3697.34)  # US Dollar at 1
    # 0.00291233 BTC on 2022-09-03 08:12 at the 2022-09-03 00:00 price 19810.55
    assert usd[12] == pytest.approx(0.00291233 * 19810.55)
    assert store.scalar("SELECT count(*) FROM flows") == 12


def test_flow_before_any_price_has_no_usd(store, tmp_path: Path):
    (tmp_path / "late.csv").write_text("asset,time,usd\nBTC,2030-01-01,1\n")
    ingest_prices(store, tmp_path / "late.csv")
    ingest_bank(store, FIXTURES / "aml" / "amlworld-small.csv")
    assert store.scalar("SELECT usd FROM flows WHERE symbol = 'BTC'") is None


def test_token_transfers_are_scaled_by_their_decimals(store, tmp_path: Path):
    import pyarrow as pa

    # one USDT (6 decimals) transfer row as the EVM ingest stores it: asset = contract, symbol = USDT
    store.append("transfers", pa.table({
        "chain": ["ethereum"], "asset": ["0xdac17f958d2ee523a2206206994597c13d831ec7"], "txid": ["0x" + "ab" * 32],
        "idx": pa.array([7], pa.int64()), "from_address": ["0x" + "11" * 20], "to_address": ["0x" + "22" * 20],
        "amount": pa.array([1_500_000], pa.decimal128(38, 0)), "amount_raw": ["1500000"],
        "time": pa.array([__import__("datetime").datetime(2022, 9, 2)], pa.timestamp("us")),
        "kind": ["erc20"], "symbol": ["USDT"], "decimals": pa.array([6], pa.int32())}))
    ingest_prices(store, FIXTURES / "human" / "prices.csv")
    assert store.query("SELECT src, dst, amount, usd, kind FROM flows") == [
        ("0x" + "11" * 20, "0x" + "22" * 20, Decimal(1_500_000), 1.5, "erc20")]
