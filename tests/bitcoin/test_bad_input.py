"""Bad blocks and bad files are refused with an error naming file, byte offset and block; the store
keeps nothing of them (only the quarantine row and the failed run's provenance)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tracer
from tracer.errors import IngestError
from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.ingest.bitcoin.network import network
from tracer.ingest.bitcoin.parse import parse_blocks
from tracer.store import StoreError

from .blockmaker import Tx, TxIn, TxOut, blk_file, block_hash, make_block, regtest_genesis
from .conftest import BLK, BTC

DATA_TABLES = ("blocks", "transactions", "outputs", "inputs", "addresses")
B227835 = "00000000000001aa077d7aa84c532a4d69bdbff519609d1da0835261b7a74eb6"


def snapshot(store) -> dict:
    return {t: store.query(f"SELECT * FROM {t} ORDER BY ALL") for t in DATA_TABLES}


def tracer_cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tracer.cli", "--db", str(db), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def seeded(tmp_path):
    """A store already holding block 227836, so 'unchanged' is checked against real content."""
    db = tmp_path / "seeded.duckdb"
    with tracer.open_store(db) as s:
        ingest_bitcoin(s, [BTC / "block-227836.raw"])
        before = snapshot(s)
    return db, before


def assert_refused(db: Path, before: dict, result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in message, message
    with tracer.open_store(db) as s:
        assert snapshot(s) == before
        q = s.query("SELECT source, position, reason FROM quarantine")
        assert len(q) == 1
        assert s.scalar("SELECT count(*) FROM ingest_runs WHERE status = 'failed'") == 1
    return q[0]


def test_tampered_block_is_refused_and_nothing_is_written(tmp_path, seeded):
    db, before = seeded
    raw = bytearray((BTC / "block-227835.raw").read_bytes())
    batch, _ = parse_blocks(bytes(raw), [(0, len(raw))], network("mainnet"), "clean")
    # change which coin the second transaction spends: one byte of its first input's outpoint
    prev = bytes.fromhex(batch.inputs["prev_txid"][1].as_py())[::-1]
    at = raw.find(prev)
    assert at > 80
    raw[at + 3] ^= 0x01
    bad = tmp_path / "tampered.raw"
    bad.write_bytes(bytes(raw))
    result = tracer_cli(db, "ingest", "bitcoin", str(bad))
    source, position, reason = assert_refused(db, before, result, "tampered.raw", "byte offset 0", B227835, "merkle root")
    assert source == str(bad) and position == "byte offset 0" and "merkle root" in reason


def test_tampered_witness_is_refused_by_the_witness_commitment(tmp_path, seeded):
    db, before = seeded
    raw = bytearray((BTC / "block-702861.raw").read_bytes())
    # the last bytes before the final locktime of the last transaction are its witness (a signature)
    raw[-10] ^= 0x01
    bad = tmp_path / "witness.raw"
    bad.write_bytes(bytes(raw))
    result = tracer_cli(db, "ingest", "bitcoin", str(bad))
    assert_refused(db, before, result, "witness.raw", "witness commitment")


def test_header_change_fails_proof_of_work(tmp_path, seeded):
    db, before = seeded
    raw = bytearray((BTC / "block-227835.raw").read_bytes())
    raw[76] ^= 0xFF  # the nonce
    bad = tmp_path / "nonce.raw"
    bad.write_bytes(bytes(raw))
    result = tracer_cli(db, "ingest", "bitcoin", str(bad))
    assert_refused(db, before, result, "nonce.raw", "proof-of-work")


def test_truncated_blk_file_is_refused_whole(tmp_path, seeded):
    db, before = seeded
    data = BLK.read_bytes()
    bad = tmp_path / "blk00000.dat"
    bad.write_bytes(data[: len(data) - 100])  # the last block is cut short
    result = tracer_cli(db, "ingest", "bitcoin", str(bad))
    last_block_offset = len(data) - 8 - 216  # block 438 is 216 bytes
    _, position, reason = assert_refused(db, before, result, "blk00000.dat", f"byte offset {last_block_offset}", "truncated")
    assert position == f"byte offset {last_block_offset}" and "declares 216 bytes but only 116 remain" in reason


def test_wrong_magic_is_refused(tmp_path, seeded):
    db, before = seeded
    data = bytearray(BLK.read_bytes())
    second = 8 + 285
    data[second : second + 4] = bytes.fromhex("0b110907")  # testnet's magic in a mainnet file
    bad = tmp_path / "blk00001.dat"
    bad.write_bytes(bytes(data))
    result = tracer_cli(db, "ingest", "bitcoin", str(bad))
    assert_refused(db, before, result, "blk00001.dat", f"byte offset {second}", "wrong magic 0b110907", "testnet")


def test_garbage_hex_is_refused(tmp_path, seeded):
    db, before = seeded
    bad = tmp_path / "block.hex"
    bad.write_text((BTC / "block-227835.raw").read_bytes()[:200].hex() + "zz" + "00" * 50)
    result = tracer_cli(db, "ingest", "bitcoin", str(bad))
    assert_refused(db, before, result, "block.hex", "hex character 400", "not valid hex")


def test_hex_that_is_not_a_block_is_refused(tmp_path, seeded):
    db, before = seeded
    bad = tmp_path / "noise.hex"
    bad.write_text("00ff" * 300)
    result = tracer_cli(db, "ingest", "bitcoin", str(bad))
    assert_refused(db, before, result, "noise.hex", "byte offset 0")


def test_valid_hex_block_loads(tmp_path, store):
    hexfile = tmp_path / "227835.hex"
    hexfile.write_text((BTC / "block-227835.raw").read_bytes().hex() + "\n")
    summary = ingest_bitcoin(store, [hexfile])
    assert (summary.blocks, summary.transactions) == (1, 122)
    assert store.scalar("SELECT hash FROM blocks") == B227835


def test_a_store_refuses_a_second_network(tmp_path, seeded):
    db, before = seeded
    with tracer.open_store(db) as s:
        # real mainnet blocks easily meet regtest's proof-of-work limit; the store still refuses the mix
        with pytest.raises(StoreError, match="holds bitcoin mainnet; refusing to mix in regtest"):
            ingest_bitcoin(s, [BTC / "block-227835.raw"], network_name="regtest")
        assert snapshot(s) == before
    result = tracer_cli(db, "ingest", "bitcoin", "--network", "regtest", str(BTC / "block-227835.raw"))
    assert result.returncode == 1 and "refusing to mix in regtest" in result.stderr


def test_missing_path_is_a_clear_error(store, tmp_path):
    with pytest.raises(IngestError, match="no such file or directory"):
        ingest_bitcoin(store, [tmp_path / "nope.dat"])


def test_progress_bar_shows_blocks_and_transactions_per_second(tmp_path):
    result = tracer_cli(tmp_path / "p.duckdb", "ingest", "bitcoin", "--progress", str(BLK))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stderr.split())
    assert "439 blocks" in text and "blocks/s" in text and "446 tx" in text and "tx/s" in text
    assert "run 1: 439 blocks, 446 transactions" in text


def test_second_coinbase_is_refused(tmp_path):
    """A regtest block whose second transaction also spends the null outpoint (Core: bad-cb-multiple)."""
    genesis = regtest_genesis()
    cb2 = Tx([TxIn(b"\x00" * 32, 0xFFFFFFFF, b"\x02\x01\x00")], [TxOut(50 * 10**8, bytes.fromhex("0014") + b"\x22" * 20)])
    bad_block = make_block(block_hash(genesis), 1, [cb2])
    db = tmp_path / "regtest.duckdb"
    with tracer.open_store(db) as s:
        ingest_bitcoin(s, [_blk(tmp_path / "blk00000.dat", [genesis])], network_name="regtest")
        before = snapshot(s)
    bad = _blk(tmp_path / "blk00001.dat", [genesis, bad_block])
    result = tracer_cli(db, "ingest", "bitcoin", "--network", "regtest", str(bad))
    offset = 8 + len(genesis) + 8
    bad_hash = block_hash(bad_block)[::-1].hex()
    source, position, reason = assert_refused(db, before, result, "blk00001.dat", f"byte offset {offset}", bad_hash,
                                              "second coinbase")
    assert (source, position) == (str(bad), f"byte offset {offset}")
    assert reason == "transaction 1 spends the null outpoint: a second coinbase (only the first transaction of a block may be one)"


def test_duplicated_txids_in_a_block_are_refused(tmp_path, seeded):
    """CVE-2012-2459: block 413567 (1,557 transactions, an odd count) with its last transaction repeated
    has the same merkle root, so the same valid header and proof of work; it must still be refused."""
    db, before = seeded
    raw = (BTC / "block-413567.raw").read_bytes()
    batch, _ = parse_blocks(raw, [(0, len(raw))], network("mainnet"), "clean")
    last = raw[len(raw) - batch.transactions["size"][-1].as_py():]
    assert raw[80:83] == b"\xfd" + (1557).to_bytes(2, "little")
    forged = raw[:80] + b"\xfd" + (1558).to_bytes(2, "little") + raw[83:] + last
    bad = tmp_path / "forged.raw"
    bad.write_bytes(forged)
    dup = batch.transactions["txid"][-1].as_py()
    source, position, reason = assert_refused(db, before, tracer_cli(db, "ingest", "bitcoin", str(bad)), "forged.raw",
                                              "byte offset 0", batch.blocks[0]["hash"], "appears twice")
    assert reason == f"transaction {dup} appears twice in the block (duplicated merkle leaves, CVE-2012-2459)"


def test_segwit_flag_other_than_one_is_refused(tmp_path, seeded):
    """BIP144's flag byte must be 0x01; block 702861's coinbase (a SegWit transaction) with flag 0x02."""
    db, before = seeded
    raw = bytearray((BTC / "block-702861.raw").read_bytes())
    flag = 80 + 3 + 4 + 1  # header, varint(2500), the coinbase's version, the marker
    assert raw[flag - 1 : flag + 1] == b"\x00\x01"
    raw[flag] = 0x02
    bad = tmp_path / "flag.raw"
    bad.write_bytes(bytes(raw))
    block = "000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae"
    _, position, reason = assert_refused(db, before, tracer_cli(db, "ingest", "bitcoin", str(bad)), "flag.raw",
                                         "byte offset 0", block, "SegWit flag")
    assert (position, reason) == ("byte offset 0", "transaction 0 has SegWit flag 0x02; BIP144 allows only 0x01")


def _blk(path: Path, blocks: list[bytes]) -> Path:
    path.write_bytes(blk_file(blocks))
    return path


def test_good_block_beside_a_tampered_one_loads_and_the_refusal_is_recorded_once(tmp_path, seeded):
    db, _ = seeded
    raw = bytearray((BTC / "block-227835.raw").read_bytes())
    raw[200] ^= 0x01  # inside the first transaction: the merkle root no longer matches
    bad = tmp_path / "tampered.raw"
    bad.write_bytes(bytes(raw))
    good = BTC / "block-413567.raw"
    for attempt in (1, 2):
        result = tracer_cli(db, "ingest", "bitcoin", str(bad), str(good))
        assert result.returncode == 1, result.stderr
        [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
        assert line.startswith(f"error: {bad} at byte offset 0") and "merkle root" in line
        assert line.endswith("1 of 2 file(s) refused, the others loaded"), line
        with tracer.open_store(db) as s:
            heights = [h for (h,) in s.query("SELECT height FROM blocks ORDER BY height")]
            assert heights == [227836, 413567], attempt
            assert s.query("SELECT source, position FROM quarantine") == [(str(bad), "byte offset 0")], attempt
