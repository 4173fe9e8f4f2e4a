"""Blocks arrive in any order (as Bitcoin Core writes them); ingesting twice adds nothing; reruns resume."""

from __future__ import annotations

import random

import pytest

import tracer
from tracer.errors import IngestError
from tracer.ingest.bitcoin.blocks import frame_blk, ingest_bitcoin
from tracer.ingest.bitcoin.network import network

from .conftest import BLK, BTC

TABLES = ("blocks", "transactions", "outputs", "inputs")
COLUMNS = {
    "blocks": "height, hash, prev_hash, time, tx_count, size",
    "transactions": "txid, block_height, position, fee, is_coinbase, input_count, output_count",
    "outputs": "txid, n, address, script_type, value, spent_by_txid, spent_by_n, block_height",
    "inputs": "txid, n, prev_txid, prev_n, address, value, block_height",
}
SATOSHI_TO_HAL = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


def content(store) -> dict:
    return {t: store.query(f"SELECT {COLUMNS[t]} FROM {t} ORDER BY ALL") for t in TABLES}


def write_blk(path, blocks: list[bytes]) -> None:
    magic = network("mainnet").magic
    path.write_bytes(b"".join(magic + len(b).to_bytes(4, "little") + b for b in blocks))


def real_blocks() -> list[bytes]:
    data = BLK.read_bytes()
    return [data[o : o + s] for o, s in frame_blk(data, network("mainnet"), str(BLK))]


def test_blocks_shuffled_inside_a_blk_file_give_the_same_store(tmp_path, store):
    blocks = real_blocks()
    shuffled = blocks[:]
    random.Random(7).shuffle(shuffled)
    write_blk(tmp_path / "blk00000.dat", shuffled)
    ingest_bitcoin(store, [tmp_path])
    with tracer.open_store(tmp_path / "ordered.duckdb") as ordered:
        ingest_bitcoin(ordered, [BLK])
        assert content(store) == content(ordered)
    assert store.scalar("SELECT max(height) FROM blocks") == 438


def test_spending_block_before_funding_block_resolves_when_the_funding_block_arrives(tmp_path, store):
    blocks = real_blocks()
    write_blk(tmp_path / "late.dat", blocks[100:])  # holds block 170, Satoshi's payment to Hal Finney
    write_blk(tmp_path / "early.dat", blocks[:100])  # holds block 9, whose coinbase it spends
    ingest_bitcoin(store, [tmp_path / "late.dat"])
    # parent unknown, all version 1: heights and the spent outputs are not known yet
    assert store.scalar("SELECT count(*) FROM blocks WHERE height IS NULL") == 339
    assert store.query("SELECT address, value FROM inputs WHERE txid = ?", [SATOSHI_TO_HAL]) == [(None, None)]
    assert store.scalar("SELECT fee FROM transactions WHERE txid = ?", [SATOSHI_TO_HAL]) is None
    ingest_bitcoin(store, [tmp_path / "early.dat"])
    assert store.query("SELECT address, value FROM inputs WHERE txid = ?", [SATOSHI_TO_HAL]) == [
        ("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", 5_000_000_000)
    ]
    assert store.scalar("SELECT fee FROM transactions WHERE txid = ?", [SATOSHI_TO_HAL]) == 0
    assert store.query("SELECT block_height FROM transactions WHERE txid = ?", [SATOSHI_TO_HAL]) == [(170,)]
    assert store.scalar("SELECT count(*) FROM blocks WHERE height IS NULL") == 0
    assert store.scalar("SELECT count(*) FROM outputs WHERE block_height IS NULL") == 0
    with tracer.open_store(tmp_path / "ordered.duckdb") as ordered:
        ingest_bitcoin(ordered, [BLK])
        assert content(store) == content(ordered)


def test_ingesting_the_same_blocks_twice_adds_nothing(tmp_path, store):
    first = ingest_bitcoin(store, [BTC / "block-227835.raw", BTC / "block-227836.raw"])
    before = content(store)
    # a copy under another name defeats the file checkpoint: the block hashes still dedupe
    copy = tmp_path / "copy.raw"
    copy.write_bytes((BTC / "block-227836.raw").read_bytes())
    again = ingest_bitcoin(store, [BTC / "block-227835.raw", BTC / "block-227836.raw", copy])
    assert (first.blocks, first.transactions) == (2, 222)
    assert (again.blocks, again.transactions, again.units_skipped, again.blocks_skipped) == (0, 0, 2, 1)
    assert content(store) == before
    # the parties: every output address and every address derived from an input's spending script
    assert store.scalar("SELECT count(*) FROM addresses") == store.scalar(
        """SELECT count(*) FROM (SELECT address FROM outputs WHERE address IS NOT NULL
                                 UNION SELECT address FROM inputs WHERE address IS NOT NULL)""") == 488


def test_a_block_written_twice_in_one_blk_file_is_stored_once(tmp_path, store):
    blocks = real_blocks()[:5]
    write_blk(tmp_path / "blk00000.dat", blocks + blocks[2:3])
    summary = ingest_bitcoin(store, [tmp_path])
    assert summary.blocks == 5
    assert store.scalar("SELECT count(*) FROM transactions") == 5


def test_zero_padding_after_the_last_block_ends_the_file(tmp_path, store):
    blocks = real_blocks()[:3]
    write_blk(tmp_path / "blk00000.dat", blocks)
    with open(tmp_path / "blk00000.dat", "ab") as f:
        f.write(b"\x00" * 4096)  # Bitcoin Core pre-allocates blk files
    assert ingest_bitcoin(store, [tmp_path]).blocks == 3


def test_a_grown_blk_file_is_read_again_for_its_new_blocks(tmp_path, store):
    blocks = real_blocks()
    path = tmp_path / "blk00000.dat"
    write_blk(path, blocks[:10])
    assert ingest_bitcoin(store, [tmp_path]).blocks == 10
    write_blk(path, blocks[:25])  # Bitcoin Core appended blocks
    again = ingest_bitcoin(store, [tmp_path])
    assert (again.blocks, again.blocks_skipped) == (15, 10)
    assert store.scalar("SELECT max(height) FROM blocks") == 24


def test_a_failed_batch_leaves_earlier_batches_committed_and_a_rerun_resumes(tmp_path, store):
    good = BTC / "block-227835.raw"
    bad = tmp_path / "bad.raw"
    bad.write_bytes(b"\x01" * 100)
    # small files are grouped into one batch (one transaction); a bad file does not take its group down:
    # the group is retried file by file, the good one commits, the bad one is refused (per-file atomicity)
    with pytest.raises(IngestError, match="bad.raw.*1 of 2 file"):
        ingest_bitcoin(store, [good, bad])
    assert store.scalar("SELECT count(*) FROM blocks") == 1
    # one file per batch: the same
    with pytest.raises(IngestError, match="bad.raw"):
        ingest_bitcoin(store, [good, bad], batch_bytes=1)
    assert store.scalar("SELECT count(*) FROM blocks") == 1
    assert store.scalar("SELECT count(*) FROM quarantine") == 1  # refused twice, recorded once
    summary = ingest_bitcoin(store, [good, BTC / "block-227836.raw"])
    assert (summary.units_skipped, summary.blocks) == (1, 1)
    assert store.query("SELECT height FROM blocks ORDER BY height") == [(227835,), (227836,)]


SPENT = [  # (funding txid, n, spending txid, its input n, funding height): every spend among blocks 0-438
    ("0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9", 0, SATOSHI_TO_HAL, 0, 9),
    (SATOSHI_TO_HAL, 1, "a16f3ce4dd5deb92d98ef5cf8afeaf0775ebca408f708b2146c4fb42b41e14be", 0, 170),
    ("a16f3ce4dd5deb92d98ef5cf8afeaf0775ebca408f708b2146c4fb42b41e14be", 1,
     "591e91f809d716912ca1d4a9295e70c3e78bab077683f79350f101da64588073", 0, 181),
    ("591e91f809d716912ca1d4a9295e70c3e78bab077683f79350f101da64588073", 0,
     "298ca2045d174f8a158961806ffc4ef96fad02d71a6b84d9fa0491813a776160", 0, 182),
    ("591e91f809d716912ca1d4a9295e70c3e78bab077683f79350f101da64588073", 1,
     "12b5633bad1f9c167d523ad1aa1947b2732a865bf5414eab2f9e5ae5d5c191ba", 0, 182),
    ("12b5633bad1f9c167d523ad1aa1947b2732a865bf5414eab2f9e5ae5d5c191ba", 0,
     "4385fcf8b14497d0659adccfe06ae7e38e0b5dc95ff8a13d7c62035994a0cd79", 0, 183),
    ("12b5633bad1f9c167d523ad1aa1947b2732a865bf5414eab2f9e5ae5d5c191ba", 1,
     "828ef3b079f9c23829c56fe86e85b4a69d9e06e5b54ea597eef5fb3ffef509fe", 0, 183),
]


def test_inputs_find_outputs_committed_by_earlier_batches_and_runs(tmp_path, store):
    """The outpoint lookup (an integer join on txkey, n, then the matched rows read by row id) finds
    outputs stored by an earlier transaction of the same run, by an earlier run, and by the same batch."""
    blocks = real_blocks()
    for name, part in (("a.dat", blocks[:100]), ("b.dat", blocks[100:182]), ("c.dat", blocks[182:])):
        write_blk(tmp_path / name, part)
    # a: block 9 (funds 170); b: 170 spends 9 (earlier batch), 181 spends 170 (same batch); c: 182 spends
    # 181 (earlier run), 183 spends 182 (same batch)
    first = ingest_bitcoin(store, [tmp_path / "a.dat", tmp_path / "b.dat"], batch_bytes=1)
    second = ingest_bitcoin(store, [tmp_path / "c.dat"])
    assert (first.units, first.inputs_resolved, second.inputs_resolved) == (2, 2, 5)
    assert store.query(
        "SELECT txid, n, spent_by_txid, spent_by_n, block_height FROM outputs WHERE spent_by_txid IS NOT NULL "
        "ORDER BY block_height, txid, n") == SPENT
    assert store.query(
        "SELECT count(*) FILTER (WHERE value IS NOT NULL), count(*) FILTER (WHERE prev_txid IS NOT NULL), count(*) "
        "FROM inputs") == [(7, 7, 446)]
    assert store.query("SELECT count(*), count(*) FILTER (WHERE leg = 'in') FROM flows") == [(458, 7)]
    assert store.scalar("SELECT count(*) FROM utxo_pending") == 0
    with tracer.open_store(tmp_path / "ordered.duckdb") as ordered:
        ingest_bitcoin(ordered, [BLK])
        assert content(store) == content(ordered)
