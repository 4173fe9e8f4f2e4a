"""A real post-Taproot block (mainnet 866342, 2024-10-19) loads alone and holds exactly what its bytes say.

The block (fixtures/bitcoin/taproot/block-866342.raw, see fixtures/SOURCES.md) is the only fixture after
Taproot activation (height 709,632): 2,757 of its 10,327 outputs pay P2TR (bc1p…) addresses and 3,949
of its OP_RETURN outputs are Runes runestones (``OP_RETURN OP_13 …``). Its parent is not in the
fixtures: the store takes its height from BIP34 (the coinbase's height push), so it loads on its own.

Every number asserted is computed twice: by ``walk`` below, a plain byte walker written for this test
(it shares no code with ``tracer.ingest.bitcoin.parse``), and as a literal that agrees with the facts
published for the block in fixtures/SOURCES.md (hash, parent, 4,864 transactions, 4,806 of them
witness-serialised, 2,757 P2TR outputs, file sha256).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import tracer
from tracer.ingest.bitcoin.blocks import ingest_bitcoin

BLOCK = Path(__file__).resolve().parents[2] / "fixtures" / "bitcoin" / "taproot" / "block-866342.raw"
HASH = "000000000000000000014ce9ba7c6760053c3c82ce6ab43d60afb101d3c8f1f1"
PREV = "000000000000000000020c03dec74937ecbb470cbe2dac058f5fa234bde6fa58"
SHA256 = "7a55d03136c845602da239365a5c82895c3120bed5f3889a7b3745cef4de2c08"


def _sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


@dataclass
class Walked:
    """What the raw bytes say, from a byte walk independent of the project's parser."""

    hash: str = ""
    prev: str = ""
    time: int = 0
    bip34_height: int = 0
    txids: list[str] = field(default_factory=list)
    witness_txs: int = 0
    outputs: list[tuple[str, int, int, bytes]] = field(default_factory=list)  # txid, n, value, script
    inputs: list[tuple[str, int, str, int]] = field(default_factory=list)  # txid, n, prev txid, prev n


def walk(data: bytes) -> Walked:
    w = Walked(hash=_sha256d(data[:80])[::-1].hex(), prev=data[4:36][::-1].hex(),
               time=struct.unpack_from("<I", data, 68)[0])
    pos = 80

    def varint() -> int:
        nonlocal pos
        first = data[pos]
        pos += 1
        if first < 0xFD:
            return first
        width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        pos += width
        return int.from_bytes(data[pos - width : pos], "little")

    for position in range(varint()):
        start = pos
        pos += 4
        segwit = data[pos : pos + 2] == b"\x00\x01"
        if segwit:
            pos += 2
            w.witness_txs += 1
        body = pos
        ins = []
        for _ in range(varint()):
            prev_txid, prev_n = data[pos : pos + 32][::-1].hex(), struct.unpack_from("<I", data, pos + 32)[0]
            pos += 36
            size = varint()
            if position == 0:  # BIP34: the coinbase script starts with a push of the height
                w.bip34_height = int.from_bytes(data[pos + 1 : pos + 1 + data[pos]], "little")
            pos += size + 4
            ins.append((prev_txid, prev_n))
        outs = []
        for _ in range(varint()):
            value = struct.unpack_from("<q", data, pos)[0]
            pos += 8
            size = varint()
            outs.append((value, data[pos : pos + size]))
            pos += size
        end_of_outputs = pos
        if segwit:
            for _ in ins:
                for _ in range(varint()):
                    size = varint()  # read before adding: `pos += varint()` would add to the old pos
                    pos += size
        pos += 4
        # txid: version + inputs + outputs + locktime, without marker, flag and witness
        txid = _sha256d(data[start : start + 4] + data[body:end_of_outputs] + data[pos - 4 : pos])[::-1].hex()
        w.txids.append(txid)
        w.outputs += [(txid, n, value, script) for n, (value, script) in enumerate(outs)]
        w.inputs += [(txid, n, p, i) for n, (p, i) in enumerate(ins) if position > 0]
    assert pos == len(data)
    return w


@pytest.fixture(scope="module")
def walked() -> Walked:
    data = BLOCK.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256  # the file is the one fixtures/SOURCES.md describes
    return walk(data)


@pytest.fixture(scope="module")
def taproot_store(tmp_path_factory):
    """A fresh store holding only block 866342 (its parent and every earlier block absent)."""
    store = tracer.open_store(tmp_path_factory.mktemp("taproot") / "taproot.duckdb")
    summary = ingest_bitcoin(store, [BLOCK])
    yield store, summary
    store.close()


def test_block_866342_loads_alone_with_its_published_hash_parent_and_bip34_height(walked, taproot_store):
    store, summary = taproot_store
    assert (walked.hash, walked.prev, walked.bip34_height) == (HASH, PREV, 866342)
    assert (summary.blocks, summary.transactions, summary.outputs, summary.inputs) == (1, 4864, 10327, 7973)
    assert store.query("SELECT height, hash, prev_hash, tx_count, time, height_source, size FROM blocks") == [
        (866342, HASH, PREV, 4864, dt.datetime(2024, 10, 19, 10, 49, 30), "bip34", 1_581_623)
    ]
    assert dt.datetime.fromtimestamp(walked.time, dt.UTC).replace(tzinfo=None) == dt.datetime(2024, 10, 19, 10, 49, 30)
    assert store.scalar("SELECT count(*) FROM blocks WHERE hash = ?", [PREV]) == 0  # loaded without its parent
    assert store.scalar("SELECT count(*) FROM quarantine") == 0


def test_every_transaction_is_stored_in_block_order_with_its_witness_flag(walked, taproot_store):
    store, _ = taproot_store
    assert len(walked.txids) == 4864 and walked.witness_txs == 4806
    assert [r[0] for r in store.query("SELECT txid FROM transactions WHERE block_height = 866342 ORDER BY position")] \
        == walked.txids
    assert store.scalar("SELECT count(*) FILTER (WHERE txid <> wtxid) FROM transactions") == 4806
    assert store.scalar("SELECT sum(weight) FROM transactions") <= 4_000_000
    assert store.query("SELECT txid FROM transactions WHERE is_coinbase") == [(walked.txids[0],)]


def test_outputs_sum_to_the_value_in_the_raw_bytes(walked, taproot_store):
    store, _ = taproot_store
    total = sum(value for _, _, value, _ in walked.outputs)
    assert (len(walked.outputs), total) == (10327, 42_929_906_976)
    assert store.query("SELECT count(*), sum(value) FROM outputs WHERE block_height = 866342") == [(10327, total)]
    stored = store.query("SELECT txid, n, value FROM outputs ORDER BY txid, n")
    assert stored == sorted((txid, n, value) for txid, n, value, _ in walked.outputs)
    # the coinbase claims the 3.125 BTC subsidy of the fourth halving era plus 5,026,183 sat of fees
    assert store.query("SELECT n, value, script_type FROM outputs WHERE txid = ? ORDER BY n", [walked.txids[0]]) == [
        (0, 317_526_183, "p2pkh"), (1, 0, "nulldata")]


def test_every_taproot_output_is_stored_as_p2tr_with_its_bc1p_address(walked, taproot_store):
    store, _ = taproot_store
    # P2TR: OP_1 PUSH32 <x-only key> (BIP341); counted on the raw scripts
    taproot = sorted((txid, n, value) for txid, n, value, script in walked.outputs
                     if len(script) == 34 and script[:2] == b"\x51\x20")
    assert (len(taproot), sum(v for *_, v in taproot)) == (2757, 1_055_538_574)
    stored = store.query("SELECT txid, n, value, address FROM outputs WHERE script_type = 'p2tr' ORDER BY txid, n")
    assert [r[:3] for r in stored] == taproot
    assert all(a.startswith("bc1p") and len(a) == 62 for *_, a in stored)
    assert len({a for *_, a in stored}) == 550  # many outputs pay the same few Runes/Ordinals addresses
    assert stored[0] == ("00131e89b7eb2e2315c8196517fc76b8976f77e01184ccd689620d534c9b65f5", 1, 24585,
                         "bc1pgm2372342pclap8pp8zj6cpasrkcgdh2kfdyrqp849l0sn8vvh4q9cxs4q")


def test_output_script_types_match_the_raw_script_patterns(walked, taproot_store):
    store, _ = taproot_store
    per_type = dict(store.query("SELECT script_type, count(*) FROM outputs GROUP BY 1"))
    assert per_type == {"p2wpkh": 3113, "p2tr": 2757, "nulldata": 3971, "p2sh": 210, "p2pkh": 204, "p2wsh": 72}
    op_return = [script for *_, script in walked.outputs if script[:1] == b"\x6a"]
    assert len(op_return) == 3971
    # Runes runestones (OP_RETURN OP_13 …): Core's Solver calls them NULL_DATA, they get no address
    assert Counter(script[:2] == b"\x6a\x5d" for script in op_return) == Counter({True: 3949, False: 22})
    assert store.scalar("SELECT count(*) FROM outputs WHERE script_type = 'nulldata' AND address IS NOT NULL") == 0


def test_inputs_spending_outputs_of_the_same_block_are_resolved_and_the_rest_wait(walked, taproot_store):
    store, summary = taproot_store
    outputs = {(txid, n): value for txid, n, value, _ in walked.outputs}
    in_block = [i for i in walked.inputs if (i[2], i[3]) in outputs]
    assert (len(walked.inputs), len(in_block)) == (7973 - 1, 4036)  # less the coinbase input
    assert summary.inputs_resolved == 4036
    assert store.scalar("SELECT count(*) FROM inputs WHERE value IS NOT NULL") == 4036
    assert store.scalar("SELECT sum(value) FROM inputs") == sum(outputs[(i[2], i[3])] for i in in_block)
    assert store.query("SELECT txid, n, prev_txid, prev_n FROM inputs WHERE prev_txid IS NOT NULL ORDER BY txid, n") \
        == sorted(walked.inputs)
    # a fee is known only where every input was funded inside this block (Runes mint chains, mostly)
    in_sum: Counter = Counter()
    unfunded = set()
    for txid, _, prev_txid, prev_n in walked.inputs:
        if (prev_txid, prev_n) in outputs:
            in_sum[txid] += outputs[(prev_txid, prev_n)]
        else:
            unfunded.add(txid)
    out_sum: Counter = Counter()
    for txid, _, value, _ in walked.outputs:
        out_sum[txid] += value
    fees = {txid: in_sum[txid] - out_sum[txid] for txid in in_sum if txid not in unfunded}
    assert (len(fees), sum(fees.values())) == (4004, 2_738_631)
    assert store.scalar("SELECT count(*) FROM transactions WHERE fee IS NOT NULL AND NOT is_coinbase") == len(fees)
    assert dict(store.query("SELECT txid, fee FROM transactions WHERE fee IS NOT NULL AND NOT is_coinbase")) == fees
