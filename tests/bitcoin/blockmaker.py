"""Serialise transactions and blocks (legacy and BIP144) for tests of the parser and the loader.

Blocks are made for regtest, whose proof-of-work limit lets a nonce be found in a few tries; chains can
start at Bitcoin Core's regtest genesis block (:func:`regtest_genesis`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field


def sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


@dataclass
class TxIn:
    prev: bytes  # 32 bytes, internal order
    index: int
    script: bytes = b""
    sequence: int = 0xFFFFFFFF
    witness: list[bytes] = field(default_factory=list)


@dataclass
class TxOut:
    value: int
    script: bytes


@dataclass
class Tx:
    inputs: list[TxIn]
    outputs: list[TxOut]
    version: int = 2
    locktime: int = 0

    @property
    def segwit(self) -> bool:
        return any(i.witness for i in self.inputs)

    def body(self) -> tuple[bytes, bytes]:
        ins = varint(len(self.inputs)) + b"".join(
            i.prev + struct.pack("<I", i.index) + varint(len(i.script)) + i.script + struct.pack("<I", i.sequence)
            for i in self.inputs
        )
        outs = varint(len(self.outputs)) + b"".join(
            struct.pack("<q", o.value) + varint(len(o.script)) + o.script for o in self.outputs
        )
        return ins, outs

    def serialize(self, with_witness: bool = True) -> bytes:
        ins, outs = self.body()
        v, lt = struct.pack("<i", self.version), struct.pack("<I", self.locktime)
        if not (with_witness and self.segwit):
            return v + ins + outs + lt
        wit = b"".join(varint(len(i.witness)) + b"".join(varint(len(w)) + w for w in i.witness) for i in self.inputs)
        return v + b"\x00\x01" + ins + outs + wit + lt

    def txid(self) -> bytes:
        return sha256d(self.serialize(with_witness=False))

    def wtxid(self) -> bytes:
        return sha256d(self.serialize())


def merkle(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        if len(hashes) % 2:
            hashes = hashes + [hashes[-1]]
        hashes = [sha256d(hashes[i] + hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def coinbase(height: int, outputs: list[TxOut], witness_commitment: bytes | None = None) -> Tx:
    script = bytes([3]) + height.to_bytes(3, "little") + b"moneytrail"
    outs = list(outputs)
    cb_in = TxIn(b"\x00" * 32, 0xFFFFFFFF, script)
    if witness_commitment is not None:
        outs.append(TxOut(0, bytes.fromhex("6a24aa21a9ed") + witness_commitment))
        cb_in.witness = [b"\x00" * 32]
    return Tx([cb_in], outs)


def make_block(prev_hash: bytes, height: int, txs: list[Tx], time: int = 1_700_000_000,
               coinbase_outputs: list[TxOut] | None = None, version: int = 0x20000000,
               coinbase_tx: Tx | None = None) -> bytes:
    """A valid regtest block: coinbase (with BIP34 height and witness commitment if needed) + txs.

    ``coinbase_tx`` replaces the generated coinbase (e.g. the same coinbase twice, as before BIP34,
    in version-1 blocks)."""
    cb_outs = coinbase_outputs or [TxOut(50 * 10**8, bytes.fromhex("0014") + b"\x11" * 20)]
    commitment = None
    if any(t.segwit for t in txs):
        wroot = merkle([b"\x00" * 32] + [t.wtxid() for t in txs])
        commitment = sha256d(wroot + b"\x00" * 32)
    all_txs = [coinbase_tx or coinbase(height, cb_outs, commitment)] + txs
    root = merkle([t.txid() for t in all_txs])
    body = varint(len(all_txs)) + b"".join(t.serialize() for t in all_txs)
    return mine(struct.pack("<i", version) + prev_hash + root, time) + body


def mine(head: bytes, time: int, bits: int = 0x207FFFFF, nonce: int = 0) -> bytes:
    """The 80-byte header for the first 68 bytes ``head`` with the first nonce meeting regtest's target."""
    target = (bits & 0xFFFFFF) << (8 * ((bits >> 24) - 3))
    for n in range(nonce, nonce + (1 << 20)):
        header = head + struct.pack("<III", time, bits, n)
        if int.from_bytes(sha256d(header), "little") <= target:
            return header
    raise RuntimeError("no nonce found")


# Bitcoin Core's regtest genesis block: mainnet's genesis transaction under regtest's time, bits and nonce.
GENESIS_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054"
    "696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420"
    "666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61"
    "deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000")


def regtest_genesis() -> bytes:
    header = struct.pack("<i", 1) + b"\x00" * 32 + sha256d(GENESIS_COINBASE) + struct.pack("<III", 1296688602, 0x207FFFFF, 2)
    return header + varint(1) + GENESIS_COINBASE


def block_hash(block: bytes) -> bytes:
    """The block's hash in internal byte order (what a child's header names as its parent)."""
    return sha256d(block[:80])


def blk_file(blocks: list[bytes], magic: bytes = bytes.fromhex("fabfb5da")) -> bytes:
    """Blocks framed as Bitcoin Core writes blk*.dat (regtest magic by default)."""
    return b"".join(magic + struct.pack("<I", len(b)) + b for b in blocks)
