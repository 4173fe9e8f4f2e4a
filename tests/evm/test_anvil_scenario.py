"""The scripted anvil scenario, ingested and reconciled against the node's own balances."""

from __future__ import annotations

import tracer
from tracer.ingest.evm import balances, ingest_evm


def test_every_balance_from_the_store_equals_the_node(tmp_path, anvil, scenario):
    store = tracer.open(tmp_path / "s.duckdb")
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
