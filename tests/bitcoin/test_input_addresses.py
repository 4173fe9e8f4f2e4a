"""Input addresses derived from the spending script (tracer/ingest/bitcoin/spending.py) on real blocks: the
counts per form, agreement with the spent output wherever both are known, the resolution when the spent
output arrives later (and a disagreement quarantined), and multi-input clustering of block 540107 against an
independent networkx recomputation. The numba RIPEMD-160 / SHA-256 are checked against hashlib."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracer  # first: sets BCL_DATA_DIR before bitcoinlib is imported

# isort: split
from bitcoinlib.keys import Address, Key

from tracer.codecs.hashes import hash160_ranges, ripemd160, sha256_ranges
from tracer.ingest.bitcoin.blocks import frame_blk
from tracer.ingest.bitcoin.network import network
from tracer.ingest.bitcoin.parse import parse_blocks

from .blockmaker import Tx, TxIn, TxOut, make_block

BTC = Path(__file__).resolve().parents[2] / "fixtures" / "bitcoin"
BLOCK_540107 = BTC / "block-540107.raw"


def _hash160(b: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(b).digest()).digest()


# -- the hashes --------------------------------------------------------------------------------------------
def test_ripemd160_and_sha256_equal_hashlib_on_every_length_class() -> None:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 4096, dtype=np.uint8)
    lengths = np.concatenate([np.arange(0, 140), [191, 192, 255, 256, 1000, 2047]]).astype(np.int64)
    starts = rng.integers(0, 2000, lengths.size).astype(np.int64)
    out = np.zeros(20, np.uint8)
    scratch = (np.zeros(5, np.int64), np.zeros(16, np.int64), np.zeros(128, np.uint8))
    for s, n in zip(starts, lengths):
        ripemd160(data, s, n, out, 0, *scratch)
        assert bytes(out) == hashlib.new("ripemd160", data[s : s + n].tobytes()).digest()
    h160, h256 = hash160_ranges(data, starts, lengths), sha256_ranges(data, starts, lengths)
    assert [bytes(r) for r in h160] == [_hash160(data[s : s + n].tobytes()) for s, n in zip(starts, lengths)]
    assert [bytes(r) for r in h256] == [hashlib.sha256(data[s : s + n].tobytes()).digest() for s, n in zip(starts, lengths)]
    # published vectors (Dobbertin, Bosselaers & Preneel)
    for text, digest in ((b"", "9c1185a5c5e9fc54612808977ee8f548b2258d31"),
                         (b"abc", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"),
                         (b"1234567890" * 8, "9b752e45573d4b39f4dbd3323cab82bf63326bfb")):
        buf = np.frombuffer(text, np.uint8) if text else np.zeros(1, np.uint8)
        ripemd160(buf, 0, len(text), out, 0, *scratch)
        assert bytes(out).hex() == digest


# -- real blocks -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def block_540107(tmp_path_factory):
    """Block 540107 (Sept 2018) ingested alone, then clustered: no input's spent output is stored except the
    35 spending earlier transactions of the same block."""
    ws = tracer.open(tmp_path_factory.mktemp("b540107") / "w.duckdb")
    ws.ingest("bitcoin", [BLOCK_540107])
    result = ws.cluster()
    yield ws, result
    ws.close()


def test_block_540107_inputs_get_their_address_from_the_spending_script(block_540107) -> None:
    ws, _ = block_540107
    rows = ws.rows("""SELECT address_source, spend_type, count(*), count(address_id), count(value) FROM inputs
                      GROUP BY ALL ORDER BY ALL""")
    assert rows == [("prevout", "p2pkh", 30, 30, 30), ("prevout", "p2sh-p2wpkh", 5, 5, 5),
                    ("script", "p2pkh", 263, 263, 0), ("script", "p2sh-multisig", 28, 28, 0),
                    ("script", "p2sh-p2wpkh", 94, 94, 0), ("script", "p2sh-p2wsh", 6599, 6599, 0),
                    ("script", "p2wpkh", 13, 13, 0), (None, None, 1, 0, 0)]  # the coinbase
    # each script address is a party with the output script type it stands for
    assert ws.rows("""SELECT a.script_type, count(DISTINCT a.address) FROM inputs i JOIN addresses a USING (address_id)
                      WHERE i.address_source = 'script' GROUP BY ALL ORDER BY ALL""") == [
        ("p2pkh", 212), ("p2sh", 3925), ("p2wpkh", 13)]
    assert ws.rows("SELECT count(*) FROM inputs i JOIN addresses a USING (address_id) WHERE a.address <> i.address") == [(0,)]
    # flows carry value: an input whose spent output is unknown has no input leg yet
    assert ws.rows("SELECT count(*), sum(amount) FROM flows WHERE leg = 'in'") == \
        ws.rows("SELECT count(*), sum(value) FROM inputs WHERE value IS NOT NULL")
    assert ws.rows("SELECT count(*) FROM flows WHERE leg = 'in'") == [(35,)]
    assert ws.rows("SELECT count(*) FROM quarantine") == [(0,)]


def test_block_540107_clusters_equal_networkx_components_of_the_same_multi_input_pairs(block_540107) -> None:
    ws, result = block_540107
    assert ws.rows("SELECT count(*) FROM tx_flags WHERE flag LIKE 'coinjoin:%'") == [(0,)]
    rows = ws.rows("""SELECT txid, address FROM inputs WHERE address IS NOT NULL AND prev_txid IS NOT NULL
                      AND txid NOT IN (SELECT txid FROM tx_flags WHERE flag LIKE 'coinjoin:%')""")
    g = nx.Graph()
    g.add_nodes_from(a for (a,) in ws.rows("SELECT address FROM addresses WHERE chain = 'bitcoin'"))
    by_tx: dict[str, set[str]] = {}
    for txid, address in rows:
        by_tx.setdefault(txid, set()).add(address)
    for addresses in by_tx.values():
        first, *rest = sorted(addresses)
        g.add_edges_from((first, b) for b in rest)
    expected = {frozenset(c) for c in nx.connected_components(g)}
    stored: dict[int, set[str]] = {}
    for address, cluster_id in ws.rows("SELECT address, cluster_id FROM clusters WHERE chain = 'bitcoin'"):
        stored.setdefault(cluster_id, set()).add(address)
    assert {frozenset(c) for c in stored.values()} == expected
    multi = sorted((len(c) for c in expected if len(c) > 1), reverse=True)
    assert (len(multi), sum(multi), multi[:3]) == (56, 4046, [3804, 86, 9])
    assert (result.addresses, result.clusters, result.largest, result.unresolved_inputs) == (4541, 551, 3804, 0)
    # before this change every one of these inputs had no address and no cluster formed (35 resolved in-block)
    assert ws.rows("SELECT count(*) FROM inputs WHERE address_source = 'prevout'") == [(35,)]


def test_script_address_equals_the_spent_outputs_address_wherever_both_are_stored(loaded) -> None:
    """Every real fixture in one store: each input whose spent output is stored is compared, independently of
    the ingester's own check, with the address this test derives from the parsed scripts."""
    store, _ = loaded
    derived = {}
    for path in [BTC / "blk-heights-0-438.dat", *sorted(BTC.glob("block-*.raw"))]:
        data = path.read_bytes()
        if data[:4] == bytes.fromhex("f9beb4d9"):
            spans = frame_blk(data, network("mainnet"), path.name)
        else:
            spans = [(0, len(data))]
        ins = parse_blocks(data, spans, network("mainnet"), path.name)[0].inputs
        derived.update(zip(zip(ins["txid"].to_pylist(), ins["n"].to_pylist()),
                           zip(ins["script_address"].to_pylist(), ins["spend_type"].to_pylist())))
    both = store.query("""SELECT i.txid, i.n, o.address, i.address, i.address_source, i.spend_type FROM inputs i
                          JOIN outputs o ON o.txid = i.prev_txid AND o.n = i.prev_n""")
    compared = Counter()
    for txid, n, out_address, stored, source, spend_type in both:
        address, kind = derived[(txid, n)]
        assert stored == out_address and source == "prevout" and spend_type == kind
        if address is not None:
            assert address == out_address, (txid, n)
            compared[kind] += 1
    assert dict(compared) == {"p2pkh": 482, "p2sh-multisig": 77, "p2sh-p2wpkh": 25, "p2sh-p2wsh": 6, "p2wpkh": 206,
                              "p2wsh": 31}
    assert len(both) - sum(compared.values()) == 7  # P2PK spends of heights 0-438: a signature, no key
    assert store.scalar("SELECT count(*) FROM quarantine") == 0


def test_a_spent_output_arriving_later_turns_script_addresses_into_prevout_ones(tmp_path) -> None:
    """Block 227836 spends 16 outputs of block 227835: loaded first, those inputs carry the script's address;
    when 227835 arrives the spent outputs confirm it, the value and the input legs of flows appear."""
    ws = tracer.open(tmp_path / "w.duckdb")
    ws.ingest("bitcoin", [BTC / "block-227836.raw"])
    spent = """SELECT txid, n, address, address_id, address_source, spend_type, value FROM inputs
               WHERE prev_txid IN (SELECT unnest(?)) AND txid IN (SELECT unnest(?)) ORDER BY ALL"""
    between = [_txids(BTC / "block-227835.raw"), _txids(BTC / "block-227836.raw")]
    before = ws.rows(spent, between)
    assert len(before) == 16 and {r[4:] for r in before} == {("script", "p2pkh", None)}
    assert ws.rows("SELECT count(*) FROM flows WHERE leg = 'in'") == [(4,)]  # inputs spending 227836's own outputs
    ws.ingest("bitcoin", [BTC / "block-227835.raw"])
    after = ws.rows(spent, between)
    assert [r[:4] for r in after] == [r[:4] for r in before]  # same address, same party id
    assert {r[4:6] for r in after} == {("prevout", "p2pkh")} and all(r[6] > 0 for r in after)
    legs = set(ws.rows("SELECT txid, idx, address_id_src, amount FROM (SELECT *, src_id AS address_id_src FROM flows) "
                       "WHERE leg = 'in'"))
    assert {(r[0], r[1], r[3], r[6]) for r in after} <= legs and len(legs) == 4 + 16 + ws.rows(
        "SELECT count(*) FROM inputs WHERE value IS NOT NULL AND txid IN (SELECT unnest(?))", [between[0]])[0][0]
    assert ws.rows("SELECT count(*) FROM quarantine") == [(0,)]
    ws.close()


def test_a_script_address_the_spent_output_contradicts_is_quarantined_with_its_position(tmp_path) -> None:
    """A disagreement would mean a misread script or a hash collision; it is forced here by corrupting one
    stored script address before the spent output arrives."""
    ws = tracer.open(tmp_path / "w.duckdb")
    ws.ingest("bitcoin", [BTC / "block-227836.raw"])
    (txid, n, true_address), = ws.rows("""SELECT txid, n, address FROM inputs WHERE prev_txid IN (SELECT unnest(?))
                                           ORDER BY txid, n LIMIT 1""", [_txids(BTC / "block-227835.raw")])
    ws.store.con.execute("UPDATE inputs SET address = '1BitcoinEaterAddressDontSendf59kuE' WHERE txid = ? AND n = ?",
                         [txid, n])
    ws.ingest("bitcoin", [BTC / "block-227835.raw"])
    (source, position, raw, reason), = ws.rows("SELECT source, position, raw, reason FROM quarantine")
    block = ws.rows("SELECT hash FROM blocks WHERE height = 227836")[0][0]
    assert source.endswith("block-227836.raw")
    assert position == f"block {block} tx {txid} input {n}" and raw == "1BitcoinEaterAddressDontSendf59kuE"
    assert reason == ("address derived from the p2pkh spending script (1BitcoinEaterAddressDontSendf59kuE) differs "
                      f"from the spent output's address ({true_address})")
    # the spent output's address stands; the row no longer claims a script derivation
    assert ws.rows("SELECT address, address_source, spend_type FROM inputs WHERE txid = ? AND n = ?", [txid, n]) == \
        [(true_address, "prevout", None)]
    ws.close()


def _txids(path: Path) -> list[str]:
    data = path.read_bytes()
    return parse_blocks(data, [(0, len(data))], network("mainnet"), path.name)[0].transactions["txid"].to_pylist()


# -- properties: any pushes parse; a constructed spend gives the key's address --------------------------------
EASY = dataclasses.replace(network("mainnet"), pow_limit=(1 << 256) - 1)
PAY = TxOut(1000, bytes.fromhex("0014") + b"\x22" * 20)


def _push(b: bytes) -> bytes:
    if len(b) < 0x4C:
        return bytes([len(b)]) + b
    if len(b) < 256:
        return b"\x4c" + bytes([len(b)]) + b
    return b"\x4d" + len(b).to_bytes(2, "little") + b


def _parse_one(txs: list[Tx]):
    block = make_block(b"\x00" * 32, 5, txs)
    return parse_blocks(block, [(0, len(block))], EASY, "made")[0].inputs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=80), st.lists(st.binary(max_size=90), max_size=4),
                          st.sampled_from(["pushes", "raw"])), min_size=1, max_size=6))
def test_random_scripts_and_witnesses_never_crash_and_any_address_is_a_standard_form(spec) -> None:
    inputs = []
    for k, (blob, witness, how) in enumerate(spec):
        script = b"".join(_push(blob[i : i + 30]) for i in range(0, len(blob), 30)) if how == "pushes" else blob
        inputs.append(TxIn(bytes([k + 1]) * 32, k, script, witness=witness))
    ins = _parse_one([Tx(inputs, [PAY])])
    kinds = ins["spend_type"].to_pylist()[1:]
    addresses = ins["script_address"].to_pylist()[1:]
    assert len(kinds) == len(spec)
    for kind, address in zip(kinds, addresses):
        assert (kind is None) == (address is None)
        if kind is not None:
            prefix = {"p2pkh": "1", "p2wpkh": "bc1q", "p2wsh": "bc1q"}.get(kind, "3")
            assert address.startswith(prefix)


SIG = bytes.fromhex("30440220") + b"\x01" * 32 + bytes.fromhex("0220") + b"\x02" * 32 + b"\x01"  # DER shape + SIGHASH_ALL


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=1, max_value=2**255), st.booleans())
def test_a_constructed_p2pkh_or_p2wpkh_spend_gives_the_address_bitcoinlib_derives_from_the_key(secret, compressed):
    key = Key(secret, network="bitcoin", compressed=compressed)
    pub = key.public_byte
    spends = [TxIn(b"\x01" * 32, 0, _push(SIG) + _push(pub))]
    expected = [("p2pkh", key.address())]
    if compressed:  # SegWit keys are compressed (BIP143); nested P2SH-P2WPKH too
        spends.append(TxIn(b"\x02" * 32, 0, b"", witness=[SIG, pub]))
        expected.append(("p2wpkh", key.address(encoding="bech32", script_type="p2wpkh")))
        redeem = b"\x00\x14" + _hash160(pub)
        spends.append(TxIn(b"\x03" * 32, 0, _push(redeem), witness=[SIG, pub]))
        expected.append(("p2sh-p2wpkh", Address(pub, script_type="p2sh_p2wpkh", encoding="base58", network="bitcoin").address))
    ins = _parse_one([Tx(spends, [PAY])])
    assert list(zip(ins["spend_type"].to_pylist()[1:], ins["script_address"].to_pylist()[1:])) == expected


def _multisig(m: int, keys: list[bytes]) -> bytes:
    return bytes([0x50 + m]) + b"".join(bytes([len(k)]) + k for k in keys) + bytes([0x50 + len(keys), 0xAE])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([2, 3]), st.binary(min_size=32, max_size=32)), min_size=1, max_size=15),
       st.data())
def test_constructed_multisig_spends_give_the_script_hash_addresses_bitcoinlib_derives(keys, data) -> None:
    """P2SH multisig (OP_0, m signatures, the redeem script), P2SH-P2WSH and P2WSH with the same script as the
    witness script: the addresses bitcoinlib encodes from the script (HASH160 for P2SH, SHA-256 for P2WSH).
    Redeem scripts above 75 bytes exercise OP_PUSHDATA1 / OP_PUSHDATA2."""
    pubs = [bytes([prefix]) + body for prefix, body in keys]
    m = data.draw(st.integers(min_value=1, max_value=len(pubs)))
    script = _multisig(m, pubs)
    sigs = [SIG] * m
    p2wsh_redeem = b"\x00\x20" + hashlib.sha256(script).digest()
    spends = [TxIn(b"\x01" * 32, 0, b"\x00" + b"".join(_push(s) for s in sigs) + _push(script)),
              TxIn(b"\x02" * 32, 0, _push(p2wsh_redeem), witness=[b"", *sigs, script]),
              TxIn(b"\x03" * 32, 0, b"", witness=[b"", *sigs, script])]
    expected = [("p2sh-multisig", Address(script, script_type="p2sh", encoding="base58", network="bitcoin").address),
                ("p2sh-p2wsh", Address(p2wsh_redeem, script_type="p2sh", encoding="base58", network="bitcoin").address),
                ("p2wsh", Address(script, script_type="p2wsh", encoding="bech32", network="bitcoin").address)]
    ins = _parse_one([Tx(spends, [PAY])])
    assert list(zip(ins["spend_type"].to_pylist()[1:], ins["script_address"].to_pylist()[1:])) == expected
    # one signature short is not the multisig shape: no address
    if m > 1:
        short = TxIn(b"\x04" * 32, 0, b"\x00" + b"".join(_push(s) for s in sigs[1:]) + _push(script))
        assert _parse_one([Tx([short], [PAY])])["script_address"].to_pylist()[1:] == [None]
