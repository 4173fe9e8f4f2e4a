"""Property tests of the block parser: any transaction shape round-trips; any corruption is refused."""

from __future__ import annotations

import hashlib

from bitcoinlib.encoding import pubkeyhash_to_addr, pubkeyhash_to_addr_bech32
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.ingest.bitcoin.network import network
from tracer.ingest.bitcoin.parse import BlockError, parse_blocks

from .blockmaker import Tx, TxIn, TxOut, make_block
from .conftest import BTC

REGTEST = network("regtest")
MAINNET = network("mainnet")


def h160(b: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(b).digest()).digest()


def standard_script(kind: str, payload: bytes) -> tuple[bytes, str | None]:
    """A script of the kind and the address bitcoinlib's encoders give for it (regtest prefixes)."""
    p32 = hashlib.sha256(payload).digest()
    p20 = p32[:20]
    if kind == "p2pkh":
        return b"\x76\xa9\x14" + p20 + b"\x88\xac", pubkeyhash_to_addr(p20, prefix=b"\x6f")
    if kind == "p2sh":
        return b"\xa9\x14" + p20 + b"\x87", pubkeyhash_to_addr(p20, prefix=b"\xc4")
    if kind == "p2wpkh":
        return b"\x00\x14" + p20, pubkeyhash_to_addr_bech32(p20, prefix="bcrt", witver=0)
    if kind == "p2wsh":
        return b"\x00\x20" + p32, pubkeyhash_to_addr_bech32(p32, prefix="bcrt", witver=0)
    if kind == "p2tr":
        return b"\x51\x20" + p32, pubkeyhash_to_addr_bech32(p32, prefix="bcrt", witver=1)
    if kind == "p2pk":
        key = b"\x02" + p32
        return b"\x21" + key + b"\xac", pubkeyhash_to_addr(h160(key), prefix=b"\x6f")
    if kind == "nulldata":
        return b"\x6a" + bytes([len(p20)]) + p20, None
    raise AssertionError(kind)


KINDS = ["p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "p2pk", "nulldata"]
blob = st.binary(min_size=0, max_size=300)
txins = st.builds(
    TxIn,
    prev=st.binary(min_size=32, max_size=32),
    index=st.integers(0, 0xFFFFFFFF),
    script=blob,
    sequence=st.integers(0, 0xFFFFFFFF),
    witness=st.lists(st.binary(max_size=120), max_size=3),
).filter(lambda i: (i.prev, i.index) != (b"\x00" * 32, 0xFFFFFFFF))  # the null outpoint is the coinbase's alone
txouts = st.tuples(st.integers(0, 21 * 10**14), st.sampled_from(KINDS + ["raw"]), st.binary(min_size=1, max_size=40), blob)
txs = st.builds(
    lambda ins, outs, version, locktime: (ins, outs, version, locktime),
    st.lists(txins, min_size=1, max_size=4),
    st.lists(txouts, min_size=1, max_size=4),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 0xFFFFFFFF),
)


def made_tx(spec) -> Tx:
    ins, outs, version, locktime = spec
    scripts = [raw if kind == "raw" else standard_script(kind, payload)[0] for _, kind, payload, raw in outs]
    return Tx(ins, [TxOut(value, script) for (value, *_), script in zip(outs, scripts)], version, locktime)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(txs, min_size=0, max_size=5, unique_by=lambda spec: made_tx(spec).txid()))  # no txid twice in a block
def test_any_transaction_shape_round_trips_through_the_parser(specs):
    made, expected_outputs = [], []
    for ins, outs, version, locktime in specs:
        tx_outputs = []
        for value, kind, payload, raw in outs:
            script, address = (raw, "raw") if kind == "raw" else standard_script(kind, payload)
            tx_outputs.append(TxOut(value, script))
            expected_outputs.append((value, kind, address))
        made.append(Tx(ins, tx_outputs, version, locktime))
    block = make_block(b"\x00" * 32, 5, made)
    batch, _ = parse_blocks(block, [(0, len(block))], REGTEST, "generated")
    t = batch.transactions.to_pydict()
    assert t["txid"][1:] == [tx.txid()[::-1].hex() for tx in made]
    assert t["wtxid"][1:] == [tx.wtxid()[::-1].hex() for tx in made]
    assert t["size"][1:] == [len(tx.serialize()) for tx in made]
    assert t["version"][1:] == [tx.version for tx in made]
    assert t["locktime"][1:] == [tx.locktime for tx in made]
    assert batch.blocks[0]["bip34_height"] == 5
    ins = batch.inputs.to_pydict()
    want_ins = [(i.prev[::-1].hex(), i.index, i.sequence) for tx in made for i in tx.inputs]
    assert list(zip(ins["prev_txid"], ins["prev_n"], ins["sequence"]))[1:] == want_ins
    outs = batch.outputs.to_pydict()
    coinbase_outputs = t["output_count"][0]
    got = list(zip(outs["value"], outs["script_type"], outs["address"]))[coinbase_outputs:]
    assert len(got) == len(expected_outputs)
    for (value, stype, address), (want_value, kind, want_address) in zip(got, expected_outputs):
        assert value == want_value
        if kind != "raw":
            assert (stype, address) == (kind, want_address)
        else:
            assert address is None if stype == "nulldata" else address is not None


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_single_corrupted_byte_is_refused(data):
    raw = bytearray(BLOCK_227836)
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    try:
        parse_blocks(bytes(raw), [(0, len(raw))], MAINNET, "mutated")
    except BlockError as exc:
        assert exc.source == "mutated" and exc.offset == 0
    else:
        raise AssertionError(f"a block with byte {at} corrupted was accepted")


@settings(max_examples=40, deadline=None)
@given(st.integers(0, len((BTC / "block-227836.raw").read_bytes()) - 1))
def test_any_truncation_is_refused(cut):
    try:
        parse_blocks(BLOCK_227836[:cut], [(0, len(BLOCK_227836))], MAINNET, "cut")
    except BlockError as exc:
        assert "does not fit" in exc.reason or "truncated" in exc.reason
    else:
        raise AssertionError("a truncated block was accepted")


BLOCK_227836 = (BTC / "block-227836.raw").read_bytes()
