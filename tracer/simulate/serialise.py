"""The simulated Bitcoin chain as real serialised blocks: transactions, txids, merkle roots, headers.

A regtest world (``tracer simulate --sources``) is written as Bitcoin Core blk files that the block
ingester reads and verifies, so every transaction is serialised (BIP144 where it has a witness), its
txid and wtxid are double SHA-256 of those bytes, every block gets its BIP141 witness commitment, its
merkle root, nBits ``0x207fffff`` (regtest's proof-of-work limit) and a nonce found by trying.

Scripts: each output's scriptPubKey is built from its address's payload (P2PKH ``76a914…88ac``, P2SH
``a914…87``, P2WPKH ``0014…``, P2WSH ``0020…``, P2TR ``5120…``; the coinbase's OP_RETURN carries the
witness commitment). scriptSigs and witnesses have the *shape and size* the simulator's size estimates
assume (``IN_BASE``, ``IN_WIT`` in ``ledger.py``: a 72-byte DER-shaped signature and a 33-byte key for
P2PKH and P2WPKH, 2-of-3 multisig for P2WSH, a 64-byte Schnorr-sized signature for P2TR). The keys,
redeem scripts and witness scripts are the preimages the addresses commit to (:func:`script_material`),
so an indexer that derives input addresses from the spending scripts finds the spent output's address;
the signatures are only DER-shaped (random keys are not curve points anyone holds). The ingester, like an
indexer, does not run scripts; a full node would refuse these blocks.

Everything runs in one compiled pass per blk file (numba): block by block, each transaction is written
at its offset of the file's buffer and hashed; a transaction's inputs name txids computed earlier in
the same pass (parents always precede their children in block and position order), so no Python loop
runs over transactions. SHA-256 (FIPS 180-4) is the numba one of :mod:`tracer.codecs.hashes` (the
ingester verifies every hash with hashlib, which is the cross-check).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from tracer.codecs.hashes import SHA256_H0 as _H0, SHA256_K as _K, sha256d as _sha256d

BLK_FILE_BYTES = 128 << 20  # Bitcoin Core's MAX_BLOCKFILE_SIZE
REGTEST_BITS = 0x207FFFFF
BLOCK_VERSION = 0x20000000
COINBASE_TAG = b"/moneytrail simulate/"  # 21 bytes; 4 more bytes of the seed make the 25-byte push


@njit(cache=True)
def _merkle(hashes, n, work, ctx, tmp, out, out_off):
    """Bitcoin's merkle root of hashes[:n] (rows of 32 bytes; an odd level repeats its last hash)."""
    for i in range(n):
        work[i, :] = hashes[i, :]
    pair = np.empty(64, np.uint8)
    while n > 1:
        m = (n + 1) // 2
        for i in range(m):
            a, b = 2 * i, min(2 * i + 1, n - 1)
            pair[:32] = work[a, :]
            pair[32:] = work[b, :]
            _sha256d(pair, 0, 64, work[i], 0, ctx, tmp)
        n = m
    out[out_off : out_off + 32] = work[0, :]


@njit(cache=True, inline="always")
def _le(buf, p, value, width):
    for i in range(width):
        buf[p + i] = (value >> (8 * i)) & 0xFF
    return p + width


@njit(cache=True, inline="always")
def _varint(buf, p, n):
    if n < 253:
        buf[p] = n
        return p + 1
    buf[p] = 0xFD
    return _le(buf, p + 1, n, 2)


@njit(cache=True, inline="always")
def _copy(buf, p, src):
    for i in range(src.size):
        buf[p + i] = src[i]
    return p + src.size


@njit(cache=True)
def _der_sig(buf, p, r, s, long):
    """A DER-shaped ECDSA signature with SIGHASH_ALL: 72 bytes (r with a 0x00 pad) or 71."""
    buf[p] = 0x30
    buf[p + 1] = 0x45 if long else 0x44
    buf[p + 2] = 0x02
    p += 3
    if long:
        buf[p] = 0x21
        buf[p + 1] = 0x00
        p += 2
    else:
        buf[p] = 0x20
        p += 1
    p = _copy(buf, p, r)
    buf[p] = 0x02
    buf[p + 1] = 0x20
    p = _copy(buf, p + 2, s)
    buf[p] = 0x01
    return p + 1


@njit(cache=True)
def _script_pubkey(buf, p, script, pl, commitment, coinbase):
    if script == 0:  # P2PKH
        buf[p], buf[p + 1], buf[p + 2], buf[p + 3] = 25, 0x76, 0xA9, 0x14
        p = _copy(buf, p + 4, pl[:20])
        buf[p], buf[p + 1] = 0x88, 0xAC
        return p + 2
    if script == 1:  # P2SH
        buf[p], buf[p + 1], buf[p + 2] = 23, 0xA9, 0x14
        p = _copy(buf, p + 3, pl[:20])
        buf[p] = 0x87
        return p + 1
    if script == 2:  # P2WPKH
        buf[p], buf[p + 1], buf[p + 2] = 22, 0x00, 0x14
        return _copy(buf, p + 3, pl[:20])
    if script == 3 or script == 4:  # P2WSH, P2TR
        buf[p], buf[p + 1], buf[p + 2] = 34, 0x00 if script == 3 else 0x51, 0x20
        return _copy(buf, p + 3, pl)
    if coinbase:  # BIP141 witness commitment
        buf[p], buf[p + 1], buf[p + 2] = 38, 0x6A, 0x24
        buf[p + 3], buf[p + 4], buf[p + 5], buf[p + 6] = 0xAA, 0x21, 0xA9, 0xED
        return _copy(buf, p + 7, commitment)
    buf[p], buf[p + 1], buf[p + 2] = 34, 0x6A, 0x20  # OP_RETURN of 32 zero bytes
    buf[p + 3 : p + 35] = 0
    return p + 35


@njit(cache=True)
def _witness_script(buf, p, key):
    """The 105-byte 2-of-3 multisig witness script of a P2WSH address: keys 02‖key, 03‖key, 02‖reversed key."""
    buf[p], buf[p + 1], buf[p + 2] = 0x52, 33, 0x02
    p = _copy(buf, p + 3, key)
    buf[p], buf[p + 1] = 33, 0x03
    p = _copy(buf, p + 2, key)
    buf[p], buf[p + 1] = 33, 0x02
    for j in range(32):
        buf[p + 2 + j] = key[31 - j]
    buf[p + 34], buf[p + 35] = 0x53, 0xAE
    return p + 36


def script_material(keys: np.ndarray, scripts: np.ndarray) -> np.ndarray:
    """(N, 84) per address from its 32 random key bytes: [0:32] what its scriptPubKey commits to, [32:64] the
    key bytes, [64:84] HASH160(02‖key). The scripts the blocks carry then hash to the addresses they spend
    from, as on the real chain (the ingester derives input addresses from them, spending.py): P2PKH and P2WPKH
    commit to HASH160(02‖key), P2SH (P2SH-P2WPKH) to HASH160(0014‖HASH160(02‖key)), P2WSH to SHA-256 of
    :func:`_witness_script`, P2TR to the key bytes themselves (no key is read from a key-path spend)."""
    from tracer.codecs.hashes import hash160_ranges, sha256_ranges
    from tracer.simulate.ledger import P2PKH, P2SH, P2WPKH, P2WSH

    n = keys.shape[0]
    out = np.zeros((n, 84), np.uint8)
    out[:, :32] = keys
    out[:, 32:64] = keys
    pub = np.concatenate([np.full((n, 1), 2, np.uint8), keys], axis=1)
    out[:, 64:84] = hash160_ranges(pub.ravel(), np.arange(n, dtype=np.int64) * 33, np.full(n, 33, np.int64))
    keyed = (scripts == P2PKH) | (scripts == P2WPKH)
    out[keyed, :20] = out[keyed, 64:84]
    out[keyed, 20:32] = 0
    nested = np.flatnonzero(scripts == P2SH)
    if nested.size:
        redeem = np.concatenate([np.tile(np.array([0, 0x14], np.uint8), (nested.size, 1)), out[nested, 64:84]], axis=1)
        out[nested, :20] = hash160_ranges(redeem.ravel(), np.arange(nested.size, dtype=np.int64) * 22,
                                          np.full(nested.size, 22, np.int64))
        out[nested, 20:32] = 0
    multisig = np.flatnonzero(scripts == P2WSH)
    if multisig.size:
        script = np.zeros(multisig.size * 105, np.uint8)
        _witness_scripts(script, keys[multisig])
        out[multisig, :32] = sha256_ranges(script, np.arange(multisig.size, dtype=np.int64) * 105,
                                           np.full(multisig.size, 105, np.int64))
    return out


@njit(cache=True)
def _witness_scripts(buf, keys):
    for i in range(keys.shape[0]):
        _witness_script(buf, 105 * i, keys[i])


@njit(cache=True)
def _write_tx(r, buf, p, tx_version, tx_lock, tx_seg, tx_in0, tx_out0, in_prev_row, in_prev_n, in_seq,
              in_script, in_addr, out_value, out_script, out_addr, payload, txid, height, tag, commitment):
    """Serialise transaction row r at buf[p:]; return (end, witness start)."""
    zero = np.zeros(32, np.uint8)
    seg = tx_seg[r]
    p = _le(buf, p, tx_version[r], 4)
    if seg:
        buf[p], buf[p + 1] = 0, 1
        p += 2
    i0, i1 = tx_in0[r], tx_in0[r + 1]
    o0, o1 = tx_out0[r], tx_out0[r + 1]
    coinbase = in_prev_row[i0] < 0
    p = _varint(buf, p, i1 - i0)
    for i in range(i0, i1):
        if in_prev_row[i] < 0:
            p = _copy(buf, p, zero)
            p = _le(buf, p, 0xFFFFFFFF, 4)
            buf[p], buf[p + 1] = 30, 0x03  # BIP34: the height as a 3-byte push, then a 25-byte tag
            p = _le(buf, p + 2, height, 3)
            buf[p] = 25
            p = _copy(buf, p + 1, tag)
        else:
            prev = txid[in_prev_row[i]]
            p = _copy(buf, p, prev)
            p = _le(buf, p, in_prev_n[i], 4)
            pl = payload[in_addr[i]]
            if in_script[i] == 0:  # P2PKH: <sig> <pubkey>
                buf[p], buf[p + 1] = 107, 72
                p = _der_sig(buf, p + 2, prev, pl[:32], True)
                buf[p], buf[p + 1] = 33, 0x02
                p = _copy(buf, p + 2, pl[32:64])
            elif in_script[i] == 1:  # P2SH-P2WPKH: the redeem script 0014<HASH160(key)>
                buf[p], buf[p + 1], buf[p + 2], buf[p + 3] = 23, 22, 0x00, 0x14
                p = _copy(buf, p + 4, pl[64:84])
            else:
                buf[p] = 0
                p += 1
        p = _le(buf, p, in_seq[i], 4)
    p = _varint(buf, p, o1 - o0)
    for o in range(o0, o1):
        p = _le(buf, p, out_value[o], 8)
        a = out_addr[o]
        p = _script_pubkey(buf, p, out_script[o], payload[a, :32] if a >= 0 else zero, commitment, coinbase)
    wstart = p
    if seg:
        for i in range(i0, i1):
            s = in_script[i]
            if in_prev_row[i] < 0:  # the coinbase's witness reserved value
                buf[p], buf[p + 1] = 1, 32
                p = _copy(buf, p + 2, zero)
                continue
            prev = txid[in_prev_row[i]]
            pl = payload[in_addr[i]]
            if s == 0:  # a legacy input of a SegWit transaction: an empty witness
                buf[p] = 0
                p += 1
            elif s == 1 or s == 2:  # <sig> <pubkey>
                buf[p], buf[p + 1] = 2, 72
                p = _der_sig(buf, p + 2, prev, pl[:32], True)
                buf[p], buf[p + 1] = 33, 0x02
                p = _copy(buf, p + 2, pl[32:64])
            elif s == 3:  # 2-of-3 multisig: dummy, two signatures, the witness script (WITNESS_SCRIPT)
                buf[p], buf[p + 1], buf[p + 2] = 4, 0, 72
                p = _der_sig(buf, p + 3, prev, pl[:32], True)
                buf[p] = 71
                p = _der_sig(buf, p + 1, pl[:32], prev, False)
                buf[p] = 105
                p = _witness_script(buf, p + 1, pl[32:64])
            else:  # P2TR key path: one 64-byte signature
                buf[p], buf[p + 1] = 1, 64
                p = _copy(buf, p + 2, prev)
                p = _copy(buf, p, pl[:32])
    p = _le(buf, p, tx_lock[r], 4)
    return p, wstart


@njit(cache=True)
def _hash_tx(buf, start, end, wstart, seg, txid, wtxid, strip, ctx, tmp):
    """wtxid: all the bytes; txid: without marker, flag and witness (copied into ``strip``, returned
    grown if it was too small)."""
    _sha256d(buf, start, end - start, wtxid, 0, ctx, tmp)
    if not seg:
        txid[:] = wtxid
        return strip
    n = wstart - start - 6
    if strip.size < n + 8:
        strip = np.zeros(2 * (n + 8), np.uint8)
    strip[:4] = buf[start : start + 4]
    strip[4 : 4 + n] = buf[start + 6 : wstart]
    strip[4 + n : 8 + n] = buf[end - 4 : end]
    _sha256d(strip, 0, n + 8, txid, 0, ctx, tmp)
    return strip


@njit(cache=True)
def _build_blocks(b0, b1, blk_tx0, blk_height, blk_time, blk_off, magic, prev_hash, tx_version, tx_lock, tx_seg,
                  tx_size, tx_in0, tx_out0, in_prev_row, in_prev_n, in_seq, in_script, in_addr, out_value,
                  out_script, out_addr, payload, tag, buf, txid, wtxid, bhash, merkle, nonce, k, h0):
    """Write blocks [b0, b1) (framed: magic, size, block) into buf at blk_off[b] - blk_off[b0].

    Returns -1, or the row of the first transaction whose serialisation is not the size the simulator
    estimated (a bug in the estimates: the caller refuses the world)."""
    ctx = (np.zeros(8, np.int64), np.zeros(64, np.int64), np.zeros(128, np.uint8), k, h0)
    tmp = np.zeros(32, np.uint8)
    max_tx = 1
    for b in range(b0, b1):
        max_tx = max(max_tx, blk_tx0[b + 1] - blk_tx0[b])
    work = np.zeros((max_tx, 32), np.uint8)
    leaves = np.zeros((max_tx, 32), np.uint8)
    strip = np.zeros(1 << 16, np.uint8)
    commitment = np.zeros(32, np.uint8)
    root = np.zeros(64, np.uint8)  # witness root, then the 32 zero bytes of the reserved value
    prev = prev_hash.copy()
    base = blk_off[b0]
    for b in range(b0, b1):
        r0, r1 = blk_tx0[b], blk_tx0[b + 1]
        p = blk_off[b] - base
        p = _copy(buf, p, magic)
        size = 80 + (1 if r1 - r0 < 253 else 3)
        for r in range(r0, r1):
            size += tx_size[r]
        p = _le(buf, p, size, 4)
        head = p
        p = _varint(buf, p + 80, r1 - r0)
        cb_at = p
        p += tx_size[r0]
        for r in range(r0 + 1, r1):  # the coinbase commits to the others' wtxids: it comes last
            start = p
            p, wstart = _write_tx(r, buf, p, tx_version, tx_lock, tx_seg, tx_in0, tx_out0, in_prev_row, in_prev_n,
                                  in_seq, in_script, in_addr, out_value, out_script, out_addr, payload, txid,
                                  blk_height[b], tag, commitment)
            if p - start != tx_size[r]:
                return r
            strip = _hash_tx(buf, start, p, wstart, tx_seg[r], txid[r], wtxid[r], strip, ctx, tmp)
        leaves[0, :] = 0
        for r in range(r0 + 1, r1):
            leaves[r - r0, :] = wtxid[r, :]
        _merkle(leaves, r1 - r0, work, ctx, tmp, root, 0)
        root[32:] = 0
        _sha256d(root, 0, 64, commitment, 0, ctx, tmp)
        end, wstart = _write_tx(r0, buf, cb_at, tx_version, tx_lock, tx_seg, tx_in0, tx_out0, in_prev_row, in_prev_n,
                                in_seq, in_script, in_addr, out_value, out_script, out_addr, payload, txid,
                                blk_height[b], tag, commitment)
        if end - cb_at != tx_size[r0]:
            return r0
        strip = _hash_tx(buf, cb_at, end, wstart, True, txid[r0], wtxid[r0], strip, ctx, tmp)
        _merkle(txid[r0:r1], r1 - r0, work, ctx, tmp, merkle[b], 0)
        q = _le(buf, head, BLOCK_VERSION, 4)
        q = _copy(buf, q, prev)
        q = _copy(buf, q, merkle[b])
        q = _le(buf, q, blk_time[b], 4)
        q = _le(buf, q, REGTEST_BITS, 4)
        tries = 0
        while True:  # regtest's target 0x7fffff << 232: about one header in two meets it
            _le(buf, q, tries, 4)
            _sha256d(buf, head, 80, bhash[b], 0, ctx, tmp)
            hb = bhash[b]
            ok = hb[31] < 0x7F
            if hb[31] == 0x7F and hb[30] == 0xFF and hb[29] == 0xFF:
                ok = True
                for i in range(29):
                    if hb[i] != 0:
                        ok = False
            if ok:
                break
            tries += 1
        nonce[b] = tries
        prev[:] = bhash[b, :]
    return -1


@dataclass
class Chain:
    """The chain's columns in block and position order (rows), as :func:`write_blk_files` needs them."""

    blk_tx0: np.ndarray     # (blocks + 1) first transaction row of each block
    blk_height: np.ndarray
    blk_time: np.ndarray    # whole seconds since the epoch
    tx_version: np.ndarray
    tx_lock: np.ndarray
    tx_seg: np.ndarray      # has a witness (BIP144 serialisation)
    tx_size: np.ndarray
    tx_in0: np.ndarray      # (rows + 1) first input of each row
    tx_out0: np.ndarray     # (rows + 1) first output of each row
    in_prev_row: np.ndarray  # row of the transaction spent, -1 for a coinbase
    in_prev_n: np.ndarray
    in_seq: np.ndarray
    in_script: np.ndarray   # script type of the output spent
    in_addr: np.ndarray     # its address (payload row)
    out_value: np.ndarray
    out_script: np.ndarray
    out_addr: np.ndarray    # payload row, -1 for OP_RETURN
    payload: np.ndarray     # (addresses, 84) uint8: script_material


@dataclass
class Hashes:
    txid: np.ndarray    # (rows, 32) internal byte order
    wtxid: np.ndarray
    block_hash: np.ndarray  # (blocks, 32)
    merkle_root: np.ndarray
    nonce: np.ndarray


def write_blk_files(chain: Chain, magic: bytes, prev_hash: bytes, seed: int, folder: Path) -> Hashes:
    """Serialise and hash the whole chain into ``folder/blk00000.dat``, … (files of at most 128 MiB, as
    Bitcoin Core cuts them); ``prev_hash`` is the first block's parent (internal byte order)."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = chain.blk_height.size
    rows = chain.tx_size.size
    ntx = np.diff(chain.blk_tx0)
    block_size = 80 + np.where(ntx < 253, 1, 3) + np.add.reduceat(chain.tx_size, chain.blk_tx0[:-1])
    framed = 8 + block_size
    off = np.concatenate([[0], np.cumsum(framed)]).astype(np.int64)
    # files: blocks in order, a new file when the next block would pass the limit (a loop over blocks)
    starts, used = [0], 0
    for b, size in enumerate(framed.tolist()):
        if used and used + size > BLK_FILE_BYTES:
            starts.append(b)
            used = 0
        used += size
    starts.append(nb)
    hashes = Hashes(np.zeros((rows, 32), np.uint8), np.zeros((rows, 32), np.uint8), np.zeros((nb, 32), np.uint8),
                    np.zeros((nb, 32), np.uint8), np.zeros(nb, np.int64))
    tag = np.frombuffer(COINBASE_TAG + int(seed % 2**32).to_bytes(4, "little"), np.uint8)
    prev = np.frombuffer(prev_hash, np.uint8).copy()
    magic_a = np.frombuffer(magic, np.uint8)
    for k, (b0, b1) in enumerate(zip(starts[:-1], starts[1:])):
        buf = np.zeros(int(off[b1] - off[b0]), np.uint8)
        bad = _build_blocks(b0, b1, chain.blk_tx0, chain.blk_height, chain.blk_time, off, magic_a, prev,
                            chain.tx_version, chain.tx_lock, chain.tx_seg, chain.tx_size, chain.tx_in0, chain.tx_out0,
                            chain.in_prev_row, chain.in_prev_n, chain.in_seq, chain.in_script, chain.in_addr,
                            chain.out_value, chain.out_script, chain.out_addr, chain.payload, tag, buf, hashes.txid,
                            hashes.wtxid, hashes.block_hash, hashes.merkle_root, hashes.nonce, _K, _H0)
        if bad >= 0:
            raise ValueError(f"transaction row {bad}: its serialisation is not the size the simulator estimated")
        (folder / f"blk{k:05d}.dat").write_bytes(buf.tobytes())
        prev = hashes.block_hash[b1 - 1].copy()
    return hashes
