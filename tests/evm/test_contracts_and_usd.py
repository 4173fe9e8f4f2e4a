"""The shipped contract bytecode is what its Solidity source compiles to; USD values of transfers."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pyarrow as pa

import tracer
from tracer.balances import transfers_usd
from tracer.ingest.evm.node import ingest_evm
from tracer.store import graph

from .conftest import ROOT, TOOLS


def test_shipped_bytecode_is_what_the_solidity_source_compiles_to(tmp_path):
    if not (TOOLS / "solcjs").exists():
        subprocess.run(["make", "anvil"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run([str(TOOLS / "solcjs"), "--bin", "--abi", "--optimize", "-o", str(tmp_path),
                    "fixtures/evm/Token.sol", "fixtures/evm/Splitter.sol"], cwd=ROOT, check=True, capture_output=True)
    for name in ("Token", "Splitter"):
        built = (tmp_path / f"fixtures_evm_{name}_sol_{name}.bin").read_text().strip()
        shipped = (Path(ROOT) / "fixtures" / "evm" / f"{name}.bin").read_text().strip()
        assert built == shipped, name


def test_usd_value_of_an_eth_and_a_usdt_transfer_uses_the_price_at_that_time(tmp_path, anvil, scenario):
    store = tracer.open_store(tmp_path / "s.duckdb")
    ingest_evm(store, anvil.url, 0, scenario.end)
    eth_tx, usdt_tx = scenario.txs["eth"], scenario.txs["usdt"]
    [(t,)] = store.query("SELECT time FROM transfers WHERE txid = ?", [eth_tx])
    store.append("prices", pa.table({
        "asset": ["ETH", "ETH", "USDT", "ETH"],
        "time": pa.array([t - dt.timedelta(days=1), t - dt.timedelta(hours=1), t - dt.timedelta(hours=2),
                          t + dt.timedelta(hours=1)], pa.timestamp("us")),
        "usd": [1000.0, 3000.0, 0.999, 9999.0],
        "source": ["test"] * 4,
    }))
    rows = {(r["txid"], r["asset"]): r for r in transfers_usd(store, "anvil").to_pylist()}
    eth = rows[(eth_tx, "ETH")]
    assert (eth["amount_raw"], eth["usd_price"]) == ("1500000000000000000", 3000.0)
    assert eth["usd"] == 4500.0  # 1.5 ETH at the latest price before the transfer, not the later one
    usdt = rows[(usdt_tx, scenario.usdt)]
    assert (usdt["amount_raw"], usdt["symbol"], usdt["decimals"]) == ("250000000", "USDT", 6)
    # the test token calls itself USDT, but it is not Tether's contract: no USD value
    assert (usdt["price_asset"], usdt["usd"]) == (None, None)
    # once an analyst declares which series values this contract, its transfers are revalued
    graph.set_token_price_asset(store, "anvil", scenario.usdt, "USDT", "test: the scenario's stablecoin")
    usdt = {(r["txid"], r["asset"]): r for r in transfers_usd(store, "anvil").to_pylist()}[(usdt_tx, scenario.usdt)]
    assert abs(usdt["usd"] - 249.75) < 1e-9
    big = [r for r in rows.values() if r["symbol"] == "BIG"]
    assert big and all(r["usd"] is None for r in big)  # no price, no invented value


def test_flows_view_values_eth_and_usdt_transfers_like_transfers_usd(tmp_path, anvil, scenario):
    store = tracer.open_store(tmp_path / "s.duckdb")
    ingest_evm(store, anvil.url, 0, scenario.end)
    [(t,)] = store.query("SELECT min(time) FROM transfers")
    graph.set_token_price_asset(store, "anvil", scenario.usdt, "USDT", "test: the scenario's stablecoin")
    store.append("prices", pa.table({
        "asset": ["ETH", "USDT"], "time": pa.array([t - dt.timedelta(days=1)] * 2, pa.timestamp("us")),
        "usd": [2500.0, 1.0], "source": ["test"] * 2,
    }))
    ours = {(r["txid"], r["kind"], r["idx"]): r["usd"] for r in transfers_usd(store, "anvil").to_pylist()}
    flows = store.query("SELECT txid, kind, idx, asset, usd FROM flows WHERE chain = 'anvil' AND symbol IN ('ETH', 'USDT')")
    assert len(flows) == 10  # 6 ether payments (2 into the splitter) + 4 USDT transfers
    for txid, kind, idx, _asset, usd in flows:
        assert usd == ours[(txid, kind, idx)]
    assert dict(((r[0], r[3]), r[4]) for r in flows)[(scenario.txs["usdt"], scenario.usdt)] == 250.0
