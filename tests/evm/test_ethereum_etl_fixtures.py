"""Real mainnet data from ethereum-etl's own tests: our rows equal ethereum-etl's, field by field.

Two ways in, one answer: (1) the raw JSON-RPC responses a mainnet node gave (replayed over HTTP by
``FixtureNode``) go through ``ingest_evm``; (2) ethereum-etl's expected exports go through
``ingest_etl``. Both are rendered back with ``export_rows`` and compared with ethereum-etl's
expected files on every column those files have. Not compared: the stream's bookkeeping fields
``type``, ``item_id`` and ``item_timestamp`` (derived by ethereum-etl's streamer, not chain data).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import tracer
from tracer.errors import IngestError
from tracer.export.etl import as_csv_text, export_rows
from tracer.ingest.evm.etl import ingest_etl
from tracer.ingest.evm.node import ingest_evm
from tracer.store import StoreError

from .fixture_node import FixtureNode

ETH = Path(__file__).resolve().parents[2] / "fixtures" / "ethereum"
BLOCKS = ETH / "test_export_blocks_job"
RECEIPTS = ETH / "test_export_receipts_job" / "receipts_with_logs"
TRANSFERS = ETH / "test_export_token_transfers_job" / "block_with_transfers"
STREAM = ETH / "test_stream" / "blocks_1755634_1755635"
BOOKKEEPING = {"type", "item_id", "item_timestamp"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_ndjson(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in BOOKKEEPING}
            for line in path.read_text().splitlines() if line.strip()]


def receipts_from(transactions: list[dict]) -> list[dict]:
    """ethereum-etl's receipts export, rebuilt from the receipt fields we keep on transactions."""
    return [{"transaction_hash": t["hash"], "transaction_index": t["transaction_index"],
             "block_hash": t["block_hash"], "block_number": t["block_number"],
             "cumulative_gas_used": t["receipt_cumulative_gas_used"], "gas_used": t["receipt_gas_used"],
             "contract_address": t["receipt_contract_address"], "root": t["receipt_root"],
             "status": t["receipt_status"], "effective_gas_price": t["receipt_effective_gas_price"],
             "l1_fee": t["receipt_l1_fee"], "l1_gas_used": t["receipt_l1_gas_used"],
             "l1_gas_price": t["receipt_l1_gas_price"], "l1_fee_scalar": t["receipt_l1_fee_scalar"]}
            for t in transactions]


def assert_same_csv(ours: list[dict], expected: list[dict[str, str]], key: str) -> None:
    assert expected, "fixture has rows"
    got = {r[key]: r for r in as_csv_text(ours, "")}
    assert len(got) == len(expected)
    for row in expected:
        mine = got[row[key]]
        for col, want in row.items():
            assert mine[col] == want, (row[key], col)


def assert_same_json(ours: list[dict], expected: list[dict], key: tuple[str, ...]) -> None:
    assert expected, "fixture has rows"
    got = {tuple(r[k] for k in key): r for r in ours}
    assert len(got) == len(expected)
    for row in expected:
        mine = got[tuple(row[k] for k in key)]
        for col, want in row.items():
            assert mine[col] == want, (key, col)


@pytest.fixture
def store(tmp_path):
    s = tracer.open_store(tmp_path / "eth.duckdb")
    yield s
    s.close()


@pytest.mark.parametrize("case,lo,hi", [
    ("block_without_transactions", 0, 0),
    ("blocks_with_transactions", 47218, 47219),
])
def test_rpc_blocks_equal_ethereum_etl_export(store, case, lo, hi):
    node = FixtureNode(BLOCKS / case)
    try:
        res = ingest_evm(store, node.url, lo, hi, receipts="none", confirmations=0)
    finally:
        node.stop()
    assert res.chain == "ethereum" and res.blocks == hi - lo + 1
    assert_same_csv(export_rows(store, "ethereum", "blocks"), read_csv(BLOCKS / case / "expected_blocks.csv"),
                    "number")
    txs = export_rows(store, "ethereum", "transactions")
    expected = read_csv(BLOCKS / case / "expected_transactions.csv")
    if expected:
        assert_same_csv(txs, expected, "hash")
    else:
        assert txs == []


def test_rpc_block_483920_with_receipts_logs_and_token_transfers_equals_ethereum_etl(store):
    node = FixtureNode(BLOCKS / "block_with_logs", RECEIPTS, TRANSFERS)
    try:
        res = ingest_evm(store, node.url, 483920, 483920, confirmations=0)
    finally:
        node.stop()
    assert res.receipts_mode == "tx"  # no eth_getBlockReceipts recorded: per-transaction fallback
    txs = export_rows(store, "ethereum", "transactions")
    assert_same_csv(export_rows(store, "ethereum", "blocks"),
                    read_csv(BLOCKS / "block_with_logs" / "expected_blocks.csv"), "number")
    assert_same_csv(txs, read_csv(BLOCKS / "block_with_logs" / "expected_transactions.csv"), "hash")
    assert_same_csv(receipts_from(txs), read_csv(RECEIPTS / "expected_receipts.csv"), "transaction_hash")
    assert_same_csv(export_rows(store, "ethereum", "logs"), read_csv(RECEIPTS / "expected_logs.csv"), "log_index")
    assert_same_csv(export_rows(store, "ethereum", "token_transfers"),
                    read_csv(TRANSFERS / "expected_token_transfers.csv"), "log_index")
    # Native value moved only by the two plain payments; fees are exact gas_used × gas price.
    assert store.query("SELECT count(*), sum(amount) FROM transfers WHERE kind = 'native'") == [
        (2, 11000440000000000 + int(read_csv(BLOCKS / "block_with_logs" / "expected_transactions.csv")[3]["value"]))]
    assert store.scalar("SELECT sum(fee) FROM transactions") == 143706 * 50_000_000_000


def test_rpc_token_transfers_through_eth_getlogs_equal_ethereum_etl(store):
    node = FixtureNode(BLOCKS / "block_with_logs", TRANSFERS)
    try:
        ingest_evm(store, node.url, 483920, 483920, receipts="none", confirmations=0)
    finally:
        node.stop()
    assert_same_csv(export_rows(store, "ethereum", "token_transfers"),
                    read_csv(TRANSFERS / "expected_token_transfers.csv"), "log_index")


def test_rpc_stream_blocks_1755634_1755635_equal_ethereum_etl_stream(store):
    node = FixtureNode(STREAM)
    try:
        ingest_evm(store, node.url, 1755634, 1755635, confirmations=0)
    finally:
        node.stop()
    assert_same_json(export_rows(store, "ethereum", "blocks"), read_ndjson(STREAM / "expected_blocks.json"),
                     ("number",))
    assert_same_json(export_rows(store, "ethereum", "transactions"),
                     read_ndjson(STREAM / "expected_transactions.json"), ("hash",))
    assert_same_json(export_rows(store, "ethereum", "logs"), read_ndjson(STREAM / "expected_logs.json"),
                     ("transaction_hash", "log_index"))
    assert_same_json(export_rows(store, "ethereum", "token_transfers"),
                     read_ndjson(STREAM / "expected_token_transfers.json"), ("transaction_hash", "log_index"))


# -- ethereum-etl exports imported with `tracer ingest etl` ------------------------------------------

@pytest.mark.parametrize("case", ["block_without_transactions", "blocks_with_transactions", "block_with_logs",
                                  "blocks_with_transactions_and_withdrawals"])
def test_etl_csv_blocks_and_transactions_import_exactly(store, case):
    d = BLOCKS / case
    ingest_etl(store, [d / "expected_blocks.csv", d / "expected_transactions.csv"])
    assert_same_csv(export_rows(store, "ethereum", "blocks"), read_csv(d / "expected_blocks.csv"), "number")
    expected = read_csv(d / "expected_transactions.csv")
    txs = export_rows(store, "ethereum", "transactions")
    if expected:
        assert_same_csv(txs, expected, "hash")
    else:
        assert txs == []


def test_etl_json_blocks_with_withdrawals_import_exactly(store):
    d = BLOCKS / "blocks_with_transactions_and_withdrawals"
    ingest_etl(store, [d / "expected_blocks.json", d / "expected_transactions.json"])
    blocks = export_rows(store, "ethereum", "blocks")
    expected = read_ndjson(d / "expected_blocks.json")
    assert [len(b["withdrawals"]) for b in expected] == [16, 16]
    assert_same_json(blocks, expected, ("number",))
    assert_same_json(export_rows(store, "ethereum", "transactions"),
                     read_ndjson(d / "expected_transactions.json"), ("hash",))
    assert store.count("transactions") == 298
    assert store.scalar("SELECT sum(tx_count) FROM blocks") == 298


def test_etl_receipts_logs_and_token_transfers_import_exactly(store):
    ingest_etl(store, [BLOCKS / "block_with_logs", RECEIPTS / "expected_receipts.csv", RECEIPTS / "expected_logs.csv",
                       TRANSFERS / "expected_token_transfers.csv"])
    txs = export_rows(store, "ethereum", "transactions")
    assert_same_csv(receipts_from(txs), read_csv(RECEIPTS / "expected_receipts.csv"), "transaction_hash")
    assert_same_csv(export_rows(store, "ethereum", "logs"), read_csv(RECEIPTS / "expected_logs.csv"), "log_index")
    assert_same_csv(export_rows(store, "ethereum", "token_transfers"),
                    read_csv(TRANSFERS / "expected_token_transfers.csv"), "log_index")
    # The CSV token transfers carry no time: it is taken from the imported block.
    assert store.query("SELECT DISTINCT epoch(time)::BIGINT FROM transfers WHERE kind = 'erc20'") == [(1446561880,)]
    # Provenance: every imported row names its file line (and run).
    assert store.query("SELECT source_line, source LIKE '%block_with_logs/expected_blocks.csv' FROM blocks") == [
        (2, True)]
    assert store.query("SELECT position, source_line FROM transactions ORDER BY position") == [
        (0, 2), (1, 3), (2, 4), (3, 5)]
    assert store.query("SELECT kind, idx, source_line FROM transfers ORDER BY kind, idx") == [
        ("erc20", 0, 2), ("erc20", 1, 3), ("native", 0, 4), ("native", 0, 5)]
    assert store.query("SELECT log_index, source_line FROM logs ORDER BY log_index") == [(0, 2), (1, 3)]


def test_etl_logs_alone_give_the_token_transfers_ethereum_etl_extracts(store):
    d = ETH / "test_extract_token_transfers_job" / "logs"
    res = ingest_etl(store, [d / "logs.csv"])
    assert res["erc20_transfers"] == 0 and store.count("logs") == 3
    assert_same_csv(export_rows(store, "ethereum", "token_transfers"), read_csv(d / "expected_token_transfers.csv"),
                    "log_index")


def test_etl_stream_ndjson_imports_exactly_and_twice_adds_nothing(store):
    files = [STREAM / f"expected_{k}.json" for k in ("blocks", "transactions", "logs", "token_transfers")]
    ingest_etl(store, files)
    first = {t: store.count(t) for t in ("blocks", "transactions", "logs", "transfers")}
    ingest_etl(store, files)
    assert {t: store.count(t) for t in first} == first == {"blocks": 2, "transactions": 2, "logs": 2,
                                                           "transfers": 2}
    assert_same_json(export_rows(store, "ethereum", "transactions"),
                     read_ndjson(STREAM / "expected_transactions.json"), ("hash",))
    assert_same_json(export_rows(store, "ethereum", "token_transfers"),
                     read_ndjson(STREAM / "expected_token_transfers.json"), ("transaction_hash", "log_index"))


def test_traces_asked_of_a_node_without_debug_tracing_is_a_clear_error(store):
    node = FixtureNode(STREAM)
    try:
        with pytest.raises(IngestError) as err:
            ingest_evm(store, node.url, 1755634, 1755635, traces=True, confirmations=0)
    finally:
        node.stop()
    assert "debug_traceBlockByNumber" in str(err.value) and "block 1755634" in str(err.value)
    assert store.count("blocks") == 0


def test_csv_row_with_a_missing_field_is_refused_with_its_line(store, tmp_path):
    src = (RECEIPTS / "expected_logs.csv").read_text().splitlines()
    src[2] = src[2].rsplit(",", 3)[0]  # cut the last topics off line 3
    bad = tmp_path / "logs.csv"
    bad.write_text("\n".join(src) + "\n")
    with pytest.raises(IngestError) as err:
        ingest_etl(store, [bad])
    assert err.value.position == "line 3" and "header has 8" in err.value.reason
    assert store.count("logs") == 0
    assert store.query("SELECT position FROM quarantine") == [("line 3",)]


def test_etl_into_a_store_holding_another_chain_id_is_refused(store):
    d = BLOCKS / "block_without_transactions"
    ingest_etl(store, [d / "expected_blocks.csv"])
    with pytest.raises(StoreError, match="refusing to mix"):
        ingest_etl(store, [BLOCKS / "blocks_with_transactions" / "expected_blocks.csv"], chain="ethereum",
                   chain_id=11155111)
    assert store.query("SELECT height FROM blocks") == [(0,)]
    # without --chain, the chain id names the chain (the registry, tracer/chains.py)
    assert ingest_etl(store, [BLOCKS / "blocks_with_transactions"], chain_id=11155111)["chain"] == "sepolia"
    assert store.query("SELECT * EXCLUDE (run_id) FROM chains ORDER BY chain") == [
        ("ethereum", "account", "mainnet", 1), ("sepolia", "account", "sepolia", 11155111)]
