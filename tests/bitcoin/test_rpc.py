"""The Bitcoin Core JSON-RPC source, against a real HTTP JSON-RPC server serving the real blocks."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from bitcoinlib.encoding import pubkeyhash_to_addr_bech32

import tracer
from tracer.errors import IngestError
from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.ingest.bitcoin.rpc import BitcoinRPC

from .blockmaker import TxOut, block_hash, make_block, regtest_genesis
from .conftest import BLK
from .core_rpc_server import CoreRPCServer
from .test_order_and_idempotence import SATOSHI_TO_HAL, content, real_blocks


def segwit_addr(tag: int) -> str:
    """The regtest P2WPKH address of the 20 bytes ``tag`` repeated (encoded by bitcoinlib)."""
    return pubkeyhash_to_addr_bech32(bytes([tag]) * 20, prefix="bcrt", witver=0)


@pytest.fixture(scope="module")
def blocks() -> list[bytes]:
    return real_blocks()


@pytest.fixture()
def cookie(tmp_path):
    path = tmp_path / ".cookie"
    path.write_text("__cookie__:s3cret")
    return path


def test_rpc_ingest_equals_the_blk_file_ingest(tmp_path, store, blocks, cookie):
    with CoreRPCServer(blocks) as node:
        summary = ingest_bitcoin(store, rpc=BitcoinRPC(node.url, cookie=cookie), from_height=0, to_height=438, confirmations=0)
        # one batch of getblockhash and one of getblock per 50 heights, not one HTTP call per block
        assert node.calls.count("getblock") == 439
    assert (summary.blocks, summary.transactions) == (439, 446)
    assert store.scalar("SELECT count(*) FROM blocks WHERE height_source = 'rpc'") == 439
    assert store.query("SELECT address, value FROM inputs WHERE txid = ?", [SATOSHI_TO_HAL]) == [
        ("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", 5_000_000_000)
    ]
    with tracer.open_store(tmp_path / "files.duckdb") as files:
        ingest_bitcoin(files, [BLK])
        assert content(store) == content(files)


def test_rpc_to_height_defaults_to_the_node_tip_and_user_password_auth_works(store, blocks):
    with CoreRPCServer(blocks[:120], user="alice", password="pw") as node:
        summary = ingest_bitcoin(store, rpc=BitcoinRPC(node.url, user="alice", password="pw"), from_height=100,
                                 confirmations=0)
    assert (summary.blocks, store.scalar("SELECT min(height) FROM blocks"), store.scalar("SELECT max(height) FROM blocks")) == (20, 100, 119)


def test_rpc_height_out_of_range_is_core_error_named_with_the_call(store, blocks, cookie):
    with CoreRPCServer(blocks[:60], tip=70) as node:  # a node that claims more blocks than it serves
        with pytest.raises(IngestError, match=r"getblockhash\(60\): node error -8: Block height out of range"):
            ingest_bitcoin(store, rpc=BitcoinRPC(node.url, cookie=cookie), from_height=0, to_height=70, confirmations=0)
    # the first batch (heights 0-49) committed; the failing batch wrote nothing
    assert store.scalar("SELECT max(height) FROM blocks") == 49
    assert store.scalar("SELECT status FROM ingest_runs") == "failed"


def test_rpc_tampered_block_is_refused_naming_its_height(store, blocks, cookie):
    served = list(blocks[:60])
    bad = bytearray(served[9])
    bad[-20] ^= 0x01  # inside the coinbase output script of block 9
    served[9] = bytes(bad)
    with CoreRPCServer(served) as node:
        with pytest.raises(IngestError, match=r"block height 9 .*merkle root"):
            ingest_bitcoin(store, rpc=BitcoinRPC(node.url, cookie=cookie), from_height=0, to_height=59, confirmations=0)
    assert store.count("blocks") == 0
    assert store.query("SELECT position FROM quarantine") == [("block height 9",)]


def test_rpc_wrong_credentials_and_unreachable_node_are_clear_errors(store, blocks, tmp_path):
    wrong = tmp_path / "wrong.cookie"
    wrong.write_text("__cookie__:nope")
    with CoreRPCServer(blocks[:5]) as node:
        with pytest.raises(IngestError, match="authentication refused"):
            ingest_bitcoin(store, rpc=BitcoinRPC(node.url, cookie=wrong), to_height=4, confirmations=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(IngestError, match=r"getblockchaininfo\(\): node unreachable after 2 tries"):
        ingest_bitcoin(store, rpc=BitcoinRPC(f"http://127.0.0.1:{port}", retries=1))


def test_cli_rpc_with_cookie(tmp_path, blocks, cookie):
    db = tmp_path / "cli.duckdb"
    with CoreRPCServer(blocks[:30]) as node:
        result = subprocess.run(
            [sys.executable, "-m", "tracer.cli", "--db", str(db), "ingest", "bitcoin", "--rpc", node.url,
             "--rpc-cookie", str(cookie), "--from-height", "0", "--to-height", "29", "--confirmations", "0", "--json"],
            capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert '"blocks": 30' in result.stdout and '"transactions": 30' in result.stdout
    with tracer.open_store(db) as s:
        assert s.scalar("SELECT max(height) FROM blocks") == 29


def _chain(parent: bytes, start: int, miners: list[int], time: int) -> list[bytes]:
    """Regtest blocks on ``parent`` at heights start, start+1, …, each paying its miner 50 BTC."""
    out = []
    for k, tag in enumerate(miners):
        out.append(make_block(block_hash(out[-1] if out else parent), start + k, [], time + 600 * k,
                              [TxOut(50 * 10**8, bytes.fromhex("0014") + bytes([tag]) * 20)]))
    return out


def test_reorg_over_rpc_rolls_back_to_the_fork_point(store, cookie):
    """The node reorganises above height 1: the next run marks the store's blocks above the fork stale
    (kept), takes them out of flows, and reads the node's new branch from height 2."""
    genesis = regtest_genesis()
    shared = _chain(genesis, 1, [1], 1_700_000_000)
    old = _chain(shared[-1], 2, [2, 3], 1_700_001_200)
    new = _chain(shared[-1], 2, [4, 5, 6], 1_700_001_300)
    hashes = lambda blocks: [block_hash(b)[::-1].hex() for b in blocks]  # noqa: E731
    with CoreRPCServer([genesis, *shared, *old], chain="regtest") as node:
        rpc = BitcoinRPC(node.url, cookie=cookie)
        first = ingest_bitcoin(store, rpc=rpc, network_name="regtest", confirmations=0)
        assert (first.blocks, first.to_height) == (4, 3)
        node.serve([genesis, *shared, *new])
        second = ingest_bitcoin(store, rpc=rpc, network_name="regtest", confirmations=0)
    assert (second.blocks, second.blocks_rolled_back, second.to_height) == (3, 2, 4)
    assert second.notes == ["reorg: rolled back to height 1, the last block the node and the store share"]
    assert store.query("SELECT hash, height, in_best_chain FROM blocks ORDER BY in_best_chain, height") == [
        *[(h, k + 2, False) for k, h in enumerate(hashes(old))],
        *[(h, k, True) for k, h in enumerate(hashes([genesis, *shared, *new]))],
    ]
    # flows: the genesis, shared and new coinbases only; the rolled-back blocks' coinbases wait in stale_*
    assert store.query("SELECT height, dst FROM flows WHERE height > 1 ORDER BY height") == [
        (2 + k, segwit_addr(tag)) for k, tag in enumerate([4, 5, 6])]
    assert store.query("SELECT count(*) FROM stale_transactions") == [(2,)]
    assert store.scalar("SELECT status FROM ingest_runs ORDER BY run_id DESC LIMIT 1") == "ok"


def test_rpc_stays_confirmations_below_the_tip(store, blocks):
    with CoreRPCServer(blocks[:120]) as node:
        summary = ingest_bitcoin(store, rpc=BitcoinRPC(node.url, user="__cookie__", password="s3cret"), from_height=100)
        assert (summary.blocks, summary.to_height) == (14, 113)  # tip 119, 6 confirmations by default
        capped = ingest_bitcoin(store, rpc=BitcoinRPC(node.url, user="__cookie__", password="s3cret"),
                                from_height=100, to_height=119, confirmations=2)
    assert (capped.blocks, capped.to_height) == (4, 117)
    assert capped.notes == ["stopped at height 117: 119 is within 2 confirmations of the tip 119"]
    assert store.scalar("SELECT max(height) FROM blocks") == 117
