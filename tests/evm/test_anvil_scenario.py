"""The scripted anvil scenario, ingested and reconciled against the node's own balances."""

from __future__ import annotations

import tracer
from tracer.balances import balances
from tracer.ingest.evm.node import ingest_evm


def test_every_balance_from_the_store_equals_the_node(tmp_path, anvil, scenario):
    store = tracer.open_store(tmp_path / "s.duckdb")
    res = ingest_evm(store, anvil.url, 0, scenario.end, traces=True, batch_size=3)
    assert res.chain == "anvil" and res.blocks == scenario.end + 1
    eth = balances(store, "anvil", "ETH", scenario.end)
    addresses = set(eth) | set(anvil.accounts) | {scenario.splitter, scenario.outsider}
    for addr in addresses:
        want = anvil.balance(addr, scenario.end) - anvil.balance(addr, 0)
        assert eth.get(addr, 0) == want, addr
    for token in (scenario.usdt, scenario.big):
        got = balances(store, "anvil", token, scenario.end)
        for addr in set(got) | set(anvil.accounts):
            if addr == "0x0000000000000000000000000000000000000000":
                continue
            want = anvil.call_uint(token, "balanceOf(address)", ["address"], [addr], scenario.end)
            assert got.get(addr, 0) == want, (token, addr)


def test_scenario_rows_are_exact(tmp_path, anvil, scenario):
    store = tracer.open_store(tmp_path / "s.duckdb")
    ingest_evm(store, anvil.url, 0, scenario.end, traces=True)
    tx = scenario.txs

    def transfers(name: str) -> list[tuple]:
        return store.query("SELECT kind, asset, from_address, to_address, amount, amount_raw, symbol, decimals "
                           "FROM transfers WHERE txid = ? ORDER BY idx, kind", [tx[name]])

    a = anvil.accounts
    # Reverted: no value moved, no logs, but the sender paid a fee.
    for name in ("usdt_reverted", "split_reverted"):
        assert transfers(name) == []
        assert store.query("SELECT count(*) FROM logs WHERE txid = ?", [tx[name]]) == [(0,)]
        [(status, fee, value_raw)] = store.query(
            "SELECT status, fee, value_raw FROM transactions WHERE txid = ?", [tx[name]])
        assert status == 0 and fee > 0
    assert store.query("SELECT value_raw FROM transactions WHERE txid = ?", [tx["split_reverted"]]) == [
        ("1000000000000000000",)]
    # Self-transfer, zero values, amounts above 2**64 and above 10**38.
    assert transfers("eth_self") == [("native", "ETH", a[4], a[4], 10**17, str(10**17), "ETH", 18)]
    assert transfers("eth_zero") == []
    assert transfers("usdt_zero") == [("erc20", scenario.usdt, a[1], a[5], 0, "0", "USDT", 6)]
    assert transfers("eth_above_2_64") == [("native", "ETH", a[1], a[7], 20 * 10**18, str(20 * 10**18), "ETH", 18)]
    assert transfers("big_above_2_64") == [
        ("erc20", scenario.big, a[2], a[6], 2**65 + 7, str(2**65 + 7), "BIG", 18)]
    assert transfers("big_above_1e38") == [("erc20", scenario.big, a[3], a[7], None, str(10**40 + 1), "BIG", 18)]
    # Internal payouts: three from the split, one from the partial payout whose second call failed.
    assert transfers("split")[1:] == [
        ("internal", "ETH", scenario.splitter, p, 10**18, str(10**18), "ETH", 18)
        for p in (a[8], a[9], scenario.outsider)]
    assert transfers("split_partial")[1:] == [
        ("internal", "ETH", scenario.splitter, a[8], 10**18, str(10**18), "ETH", 18)]
    assert store.query("SELECT symbol, name, decimals, status FROM evm_tokens ORDER BY symbol") == [
        ("BIG", "Big Token", 18, "ok"), ("USDT", "Tether USD", 6, "ok")]


def test_parity_trace_block_gives_the_same_internal_transfers_as_call_tracer(tmp_path, anvil, scenario):
    rows = []
    for api in ("call", "parity"):
        store = tracer.open_store(tmp_path / f"{api}.duckdb")
        ingest_evm(store, anvil.url, 0, scenario.end, traces=True, trace_api=api)
        rows.append(store.query("SELECT * EXCLUDE (run_id) FROM transfers ORDER BY block_height, txid, kind, idx"))
        store.close()
    assert rows[0] == rows[1]
    assert sum(r[10] == "internal" for r in rows[1]) == 4
