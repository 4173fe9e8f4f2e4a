"""Property tests for the decoders: Transfer logs, token metadata, quantities, withdrawals."""

from __future__ import annotations

import csv
import json

from eth_abi import encode
from eth_abi.exceptions import DecodingError
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

import tracer
from tracer.export.etl import export_rows
from tracer.ingest.evm.etl import _withdrawals_json, ingest_etl
from tracer.ingest.evm.mapper import dec, q, transfer_words
from tracer.ingest.evm.rpc import TRANSFER_TOPIC
from tracer.ingest.evm.tokens import ERC20_ABI, LEGACY_ABI, token_decimals, token_text

CODEC = Web3().codec


def answer(abi: list[dict], fn: str, data: bytes):
    """Decode a contract's return data the way web3 does for ``contract.functions.<fn>().call()``."""
    [out] = [f["outputs"][0]["type"] for f in abi if f["name"] == fn]
    return CODEC.decode([out], data)[0]


addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
uint256 = st.integers(min_value=0, max_value=2**256 - 1)


def word(x: bytes) -> str:
    return "0x" + x.rjust(32, b"\0").hex()


@given(addresses, addresses, uint256)
def test_indexed_transfer_log_decodes_exactly(frm, to, value):
    topics = [TRANSFER_TOPIC, word(bytes.fromhex(frm[2:])), word(bytes.fromhex(to[2:]))]
    assert transfer_words(topics, "0x" + encode(["uint256"], [value]).hex()) == (frm, to, value)


@given(addresses, addresses, uint256)
def test_unindexed_transfer_log_of_early_tokens_decodes_exactly(frm, to, value):
    data = "0x" + encode(["address", "address", "uint256"], [frm, to, value]).hex()
    assert transfer_words([TRANSFER_TOPIC], data) == (frm, to, value)


@given(addresses, addresses, uint256)
def test_erc721_transfer_with_token_id_is_not_an_amount(frm, to, token_id):
    topics = [TRANSFER_TOPIC, word(bytes.fromhex(frm[2:])), word(bytes.fromhex(to[2:])),
              "0x" + encode(["uint256"], [token_id]).hex()]
    assert transfer_words(topics, "0x") is None


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=5), st.binary(max_size=100))
def test_other_logs_never_decode_as_transfers(topics, data):
    hexed = ["0x" + t.hex() for t in topics]
    if hexed and hexed[0] == TRANSFER_TOPIC:
        return
    assert transfer_words(hexed, "0x" + data.hex()) is None


@given(st.text(min_size=1, max_size=60).filter(lambda s: "\0" not in s and s.strip() == s))
def test_token_symbol_as_abi_string_decodes(s):
    assert token_text(answer(ERC20_ABI, "symbol", encode(["string"], [s]))) == s


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=32))
def test_token_symbol_as_legacy_bytes32_decodes(s):
    data = s.encode().ljust(32, b"\0")
    try:  # the standard string ABI must not read a bytes32 answer as text; the legacy ABI reads it
        answer(ERC20_ABI, "symbol", data)
        standard_read_it = True
    except DecodingError:
        standard_read_it = False
    assert not standard_read_it
    assert token_text(answer(LEGACY_ABI, "symbol", data)) == s


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_decimals_above_255_are_refused(v):
    try:
        got = token_decimals(answer(ERC20_ABI, "decimals", encode(["uint256"], [v])))
    except DecodingError:  # web3's uint8 decoder refuses non-zero padding: fetch_metadata records None
        got = None
    assert got == (v if v <= 255 else None)


@given(uint256)
def test_quantities_are_exact_and_only_fit_decimal38_when_they_do(v):
    assert q(hex(v)) == v
    assert dec(v) == (v if v < 10**38 else None)


@given(st.lists(st.tuples(st.integers(0, 2**63), st.integers(0, 2**40), addresses, st.integers(0, 2**63)),
                max_size=20))
def test_withdrawals_in_both_ethereum_etl_forms_read_the_same(ws):
    objs = [{"index": i, "validator_index": v, "address": a, "amount": m} for i, v, a, m in ws]
    csv_form = ",".join(json.dumps(o, separators=(",", ":")) for o in objs)  # CSV export
    repr_form = str(objs)  # ethereum-etl's JSON export of a stream block
    assert json.loads(_withdrawals_json(csv_form)) == objs
    assert json.loads(_withdrawals_json(repr_form)) == objs


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(addresses, addresses, addresses, uint256, st.binary(min_size=32, max_size=32),
                          st.integers(0, 10_000), st.integers(0, 20_000_000)), min_size=1, max_size=8,
                unique_by=lambda r: (r[4], r[5])))
def test_token_transfers_csv_round_trips_through_the_store(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("etl")
    path = d / "token_transfers.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["token_address", "from_address", "to_address", "value", "transaction_hash", "log_index",
                    "block_number"])
        for token, frm, to, value, txh, idx, height in rows:
            w.writerow([token, frm, to, value, "0x" + txh.hex(), idx, height])
    store = tracer.open_store(d / "s.duckdb")
    ingest_etl(store, [path])
    got = {(r["transaction_hash"], r["log_index"]): r for r in export_rows(store, "ethereum", "token_transfers")}
    assert len(got) == len(rows)
    for token, frm, to, value, txh, idx, height in rows:
        r = got[("0x" + txh.hex(), idx)]
        assert (r["token_address"], r["from_address"], r["to_address"], r["value"], r["block_number"]) == (
            token, frm, to, value, height)
    store.close()
