"""Transfers are keyed (chain, txid, kind, idx): a transaction's native, ERC-20 and internal transfers
number their idx independently, and all of them are stored and in flows.

The contract is real code on anvil, assembled below and installed with ``anvil_setCode``: called with
ether, it emits two ERC-20 ``Transfer`` logs and forwards the ether to a payee. In the first transaction of
a block that is a native transfer (idx 0), ERC-20 transfers with log index 0 and 1, and an internal
transfer at trace position ``0`` (frame 1): under a key without the kind, idx 0 and idx 1 would each name
two different transfers.
"""

from __future__ import annotations

import csv

import tracer
from tracer.balances import balances
from tracer.export.etl import as_csv_text, export_rows
from tracer.ingest.evm.etl import ingest_etl
from tracer.ingest.evm.node import ingest_evm
from tracer.ingest.evm.rpc import TRANSFER_TOPIC

CONTRACT = "0x" + "c0" * 20


def forwarder_code(payee: str) -> str:
    """Runtime code: LOG3 Transfer(caller -> payee, callvalue); LOG3 Transfer(payee -> caller, 7);
    CALL payee with callvalue; STOP."""
    p = bytes.fromhex(payee[2:])
    topic = bytes.fromhex(TRANSFER_TOPIC[2:])
    code = bytearray()
    code += b"\x34\x60\x00\x52"  # CALLVALUE PUSH1 0 MSTORE
    code += b"\x73" + p + b"\x33\x7f" + topic + b"\x60\x20\x60\x00\xa3"  # PUSH20 payee CALLER PUSH32 topic LOG3
    code += b"\x60\x07\x60\x00\x52"  # PUSH1 7 PUSH1 0 MSTORE
    code += b"\x33\x73" + p + b"\x7f" + topic + b"\x60\x20\x60\x00\xa3"  # CALLER PUSH20 payee PUSH32 topic LOG3
    code += b"\x60\x00\x60\x00\x60\x00\x60\x00\x34\x73" + p + b"\x5a\xf1"  # CALL(gas, payee, callvalue, 0, 0, 0, 0)
    code += b"\x50\x00"  # POP STOP
    return "0x" + code.hex()


def test_native_erc20_and_internal_transfers_of_one_transaction_are_all_stored_and_in_flows(tmp_path, anvil_factory):
    node = anvil_factory()
    a = node.accounts
    payee = a[2]
    node.rpc("anvil_setCode", CONTRACT, forwarder_code(payee))
    value = 3 * 10**18
    txid = node.send(a[1], CONTRACT, value, gas=200_000)
    assert [int(lg["logIndex"], 16) for lg in node.receipt(txid)["logs"]] == [0, 1]
    height = node.height()
    store = tracer.open_store(tmp_path / "s.duckdb")
    ingest_evm(store, node.url, 0, height, traces=True)

    want = [
        ("erc20", 0, CONTRACT, a[1], payee, str(value), None),
        ("erc20", 1, CONTRACT, payee, a[1], "7", None),
        ("internal", 1, "ETH", CONTRACT, payee, str(value), "0"),
        ("native", 0, "ETH", a[1], CONTRACT, str(value), None),
    ]
    rows = ("SELECT kind, idx, asset, from_address, to_address, amount_raw, trace_address FROM transfers "
            "WHERE txid = ? ORDER BY kind, idx")
    assert store.query(rows, [txid]) == want
    flows = store.query("SELECT kind, idx, asset, src, dst, amount_raw FROM flows WHERE txid = ? ORDER BY kind, idx",
                        [txid])
    assert flows == [w[:6] for w in want]
    assert store.query("SELECT count(DISTINCT flow_id), count(flow_id) FROM transfers WHERE txid = ?", [txid]) == [
        (4, 4)]
    # (chain, txid, idx) names two transfers twice; (chain, txid, kind, idx) each one once
    assert store.query("SELECT idx, count(*) FROM transfers WHERE txid = ? GROUP BY chain, txid, idx ORDER BY idx",
                       [txid]) == [(0, 2), (1, 2)]
    assert store.query("SELECT count(*) FROM (SELECT chain, txid, kind, idx FROM transfers GROUP BY ALL "
                       "HAVING count(*) > 1)") == [(0,)]
    # the payee really got the ether and the tokens: the store's balances equal the node's
    assert balances(store, "anvil", "ETH", height)[payee] == node.balance(payee, height) - node.balance(payee, 0) == value
    assert balances(store, "anvil", CONTRACT, height)[payee] == value - 7

    # rerun: every block is read again and replaced, nothing added
    ingest_evm(store, node.url, 0, height, traces=True, chain="anvil")
    assert store.query(rows, [txid]) == want and store.count("flows") == 4

    # an ethereum-etl import of the same token transfers replaces the erc20 rows by (chain, txid, kind, idx)
    # and leaves the native and internal rows of the same idx alone
    exported = as_csv_text(export_rows(store, "anvil", "token_transfers"), "token_transfers")
    path = tmp_path / "token_transfers.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(exported[0]))
        w.writeheader()
        w.writerows(exported)
    assert ingest_etl(store, [path], chain_id=31337)["erc20_transfers"] == 2
    assert store.query(rows, [txid]) == want
    assert store.query("SELECT kind, idx FROM flows WHERE txid = ? ORDER BY kind, idx", [txid]) == [
        (w[0], w[1]) for w in want]
    store.close()
