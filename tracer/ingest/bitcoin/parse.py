"""A fast, verifying parser of serialised Bitcoin blocks into columnar batches.

The parser knows nothing of DuckDB. One Python pass walks the varints of each block and records only
byte *offsets* (no per-field objects); everything else — values, outpoints, sequences, script types,
addresses, hex txids — is gathered from the block buffer with numpy over whole columns. Transaction
ids are double-SHA256 over memoryview slices of the buffer (hashlib, no copies).

Serialisation: legacy and BIP144 (SegWit marker/flag, witness after the outputs). The txid hashes the
serialisation without marker, flag and witness; the wtxid hashes all of it.

Verification before anything is stored: the merkle root over the txids, the BIP141 witness commitment
where the block carries witness data, proof of work against nBits (and nBits against the network's
proof-of-work limit), the first transaction being the only coinbase (no other transaction spends the
null outpoint), no txid twice in a block (CVE-2012-2459), the SegWit flag being 0x01, and the declared
size matching the parsed size. A block that fails raises :class:`BlockError` naming source, byte offset and block hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from struct import unpack_from

import numpy as np
import pyarrow as pa

from tracer.codecs.bitcoin_address import base58check_arrow, hash160, place, segwit_arrow
from tracer.columns import array, fixed_width_strings, strings, take
from tracer.ingest.bitcoin.network import Network
from tracer.ingest.bitcoin.spending import input_addresses

_sha256 = hashlib.sha256
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NULL_OUTPOINT = b"\x00" * 32 + b"\xff\xff\xff\xff"
_WITNESS_COMMITMENT = bytes.fromhex("6a24aa21a9ed")
SCRIPT_TYPES = ["nonstandard", "p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "witness_unknown", "p2pk", "nulldata", "multisig"]
_SCRIPT_TYPE_NAMES = strings(SCRIPT_TYPES)


class BlockError(ValueError):
    """A block failed to parse or verify."""

    def __init__(self, source: str, offset: int, block_hash: str | None, reason: str):
        self.source, self.offset, self.block_hash, self.reason = source, offset, block_hash, reason
        where = f"{source} at byte offset {offset}"
        if block_hash:
            where += f" (block {block_hash})"
        super().__init__(f"{where}: {reason}")


def sha256d(data: bytes | memoryview) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


def hex_chars(rows: np.ndarray, reverse: bool = False) -> np.ndarray:
    """(N, k) uint8 rows to (N, 2k) ASCII codes of their lowercase hex (reversed bytes for txids)."""
    n, k = rows.shape
    if reverse:
        rows = rows[:, ::-1]
    chars = np.empty((n, 2 * k), dtype=np.uint8)
    chars[:, 0::2] = _HEX[rows >> 4]
    chars[:, 1::2] = _HEX[rows & 15]
    return chars


def hex_rows(rows: np.ndarray, reverse: bool = False, null: np.ndarray | None = None) -> pa.Array:
    """(N, k) uint8 rows to an Arrow array of lowercase hex strings (reversed bytes for txids)."""
    return fixed_width_strings(hex_chars(rows, reverse), null)


def merkle_root(hashes: list[bytes]) -> bytes:
    """Bitcoin's merkle root (internal byte order); an odd level repeats its last hash."""
    level = hashes
    while len(level) > 1:
        if len(level) & 1:
            level = level + [level[-1]]
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def bits_to_target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000:
        return -1
    return mantissa >> (8 * (3 - exponent)) if exponent <= 3 else mantissa << (8 * (exponent - 3))


def coinbase_height(script: bytes) -> int | None:
    """BIP34: the coinbase scriptSig starts with the block height (a minimal push or OP_0/OP_1..16)."""
    if not script:
        return None
    op = script[0]
    if op == 0:
        return 0
    if 0x51 <= op <= 0x60:
        return op - 0x50
    if 1 <= op <= 8 and len(script) > op:
        return int.from_bytes(script[1 : 1 + op], "little")
    return None


@dataclass
class BlockBatch:
    """Parsed blocks of one source unit as columns, ready for a bulk load."""

    blocks: list[dict] = field(default_factory=list)
    transactions: pa.Table | None = None
    outputs: pa.Table | None = None
    inputs: pa.Table | None = None

    @property
    def tx_count(self) -> int:
        return 0 if self.transactions is None else len(self.transactions)


def _classify_outputs(arr: np.ndarray, so: np.ndarray, sl: np.ndarray, net: Network, buf: memoryview):
    """Script type and address for every output (vectorised; a few rare types per row)."""
    n = so.size
    top = arr.size - 1

    def at(k: int) -> np.ndarray:
        return arr[np.minimum(so + k, top)]

    last = arr[np.clip(so + sl - 1, 0, top)]
    b0, b1, b2 = at(0), at(1), at(2)
    has = sl > 0
    p2pkh = (sl == 25) & (b0 == 0x76) & (b1 == 0xA9) & (b2 == 0x14) & (at(23) == 0x88) & (last == 0xAC)
    p2sh = (sl == 23) & (b0 == 0xA9) & (b1 == 0x14) & (last == 0x87)
    p2wpkh = (sl == 22) & (b0 == 0x00) & (b1 == 0x14)
    p2wsh = (sl == 34) & (b0 == 0x00) & (b1 == 0x20)
    p2tr = (sl == 34) & (b0 == 0x51) & (b1 == 0x20)
    witness_other = (
        (sl >= 4) & (sl <= 42) & (b0 >= 0x51) & (b0 <= 0x60) & (b1.astype(np.int64) == sl - 2) & ~p2tr
    )
    p2pk = ((sl == 35) & (b0 == 0x21) & (last == 0xAC) & ((b1 == 2) | (b1 == 3))) | (
        (sl == 67) & (b0 == 0x41) & (last == 0xAC) & (b1 == 4)
    )
    nulldata = has & (b0 == 0x6A)
    second_last = arr[np.clip(so + sl - 2, 0, top)]
    multisig_candidate = (
        (sl >= 37) & (last == 0xAE) & (b0 >= 0x51) & (b0 <= 0x60) & (second_last >= 0x51) & (second_last <= 0x60)
    )
    codes = np.zeros(n, dtype=np.int8)  # index into SCRIPT_TYPES; 0 = nonstandard
    pieces: list[tuple[np.ndarray, pa.Array]] = []

    def put(mask: np.ndarray, name: str, values: pa.Array | None) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        codes[idx] = SCRIPT_TYPES.index(name)
        if values is not None:
            pieces.append((idx, values))

    def payload(mask: np.ndarray, start: int, length: int) -> np.ndarray:
        base = so[mask]
        return arr[base[:, None] + np.arange(start, start + length)]

    if p2pkh.any():
        put(p2pkh, "p2pkh", base58check_arrow(net.p2pkh_version, payload(p2pkh, 3, 20)))
    if p2sh.any():
        put(p2sh, "p2sh", base58check_arrow(net.p2sh_version, payload(p2sh, 2, 20)))
    if p2wpkh.any():
        put(p2wpkh, "p2wpkh", segwit_arrow(net.hrp, 0, payload(p2wpkh, 2, 20)))
    if p2wsh.any():
        put(p2wsh, "p2wsh", segwit_arrow(net.hrp, 0, payload(p2wsh, 2, 32)))
    if p2tr.any():
        put(p2tr, "p2tr", segwit_arrow(net.hrp, 1, payload(p2tr, 2, 32)))
    # np.unique imports numpy.ma (~25 ms of start-up): only when there is something to group
    for length in np.unique(sl[witness_other]) if witness_other.any() else ():
        for version_op in np.unique(b0[witness_other & (sl == length)]):
            mask = witness_other & (sl == length) & (b0 == version_op)
            put(mask, "witness_unknown", segwit_arrow(net.hrp, int(version_op) - 0x50, payload(mask, 2, int(length) - 2)))
    if p2pk.any():
        # P2PK pays a public key; wallets and explorers show it as the P2PKH address of that key.
        idx = np.flatnonzero(p2pk)
        hashes = [hash160(buf[so[i] + 1 : so[i] + sl[i] - 1]) for i in idx]
        put(p2pk, "p2pk", base58check_arrow(net.p2pkh_version, hashes))
    put(nulldata, "nulldata", None)
    # Bare multisig and non-standard scripts have no address: give them a stable id from the script.
    multisig_idx, multisig_ids = [], []
    for i in np.flatnonzero(multisig_candidate):
        script = bytes(buf[so[i] : so[i] + sl[i]])
        shape = _multisig_shape(script)
        if shape is not None:
            multisig_idx.append(i)
            multisig_ids.append(f"multisig:{shape[0]}of{shape[1]}:{hash160(script).hex()}")
    if multisig_idx:
        put(np.isin(np.arange(n), multisig_idx), "multisig", strings(multisig_ids))
    other = np.flatnonzero(codes == 0)
    if other.size:
        ids = ["nonstandard:" + hash160(buf[so[i] : so[i] + sl[i]]).hex() for i in other]
        pieces.append((other, strings(ids)))
    address = place(n, pieces)
    stype = take(_SCRIPT_TYPE_NAMES, codes)
    return stype, address


def _multisig_shape(script: bytes) -> tuple[int, int] | None:
    """(m, n) when the script is OP_m <n pushed keys> OP_n OP_CHECKMULTISIG, else None."""
    m, n = script[0] - 0x50, script[-2] - 0x50
    p, keys = 1, 0
    while p < len(script) - 2:
        size = script[p]
        if size not in (33, 65):
            return None
        p += 1 + size
        keys += 1
    if p != len(script) - 2 or keys != n or not 1 <= m <= n:
        return None
    return m, n


def parse_blocks(
    data: bytes | bytearray | memoryview,
    spans: list[tuple[int, int]],
    net: Network,
    source: str,
) -> tuple[BlockBatch, list[int]]:
    """Parse and verify the blocks at ``spans`` (offset, size) of ``data``.

    Returns the batch and, per block, the index of its first transaction. Raises BlockError on the
    first block that fails; nothing is returned for any block in that case (the caller stores the
    batch atomically or not at all).
    """
    d = data if isinstance(data, bytes) else bytes(data)  # indexing bytes is cheaper than a memoryview
    buf = memoryview(d)
    arr = np.frombuffer(d, dtype=np.uint8)
    # per tx
    tx_start: list[int] = []
    tx_end: list[int] = []
    tx_ids: list[bytes] = []
    tx_wids: list[bytes] = []
    tx_nin: list[int] = []
    tx_nout: list[int] = []
    tx_wsize: list[int] = []
    # per input / output: offsets only
    in_prev: list[int] = []
    in_seq: list[int] = []
    in_wit: list[int] = []  # per input, the offset of its witness (item count), -1 without one
    out_val: list[int] = []
    out_script: list[int] = []
    out_len: list[int] = []
    blocks: list[dict] = []
    first_tx: list[int] = []

    # Varints are read inline rather than through a helper: a Python call per varint costs about a
    # third of the walk, and this loop runs once per input, output and witness item of the chain.
    for offset, size in spans:
        end = offset + size
        block_hash = None
        try:
            if size < 81 or end > len(buf):
                raise BlockError(source, offset, None, f"block of {size} bytes does not fit the data")
            header = buf[offset : offset + 80]
            hash_bytes = sha256d(header)
            block_hash = hash_bytes[::-1].hex()
            version, = unpack_from("<i", buf, offset)
            time, bits, nonce = unpack_from("<III", buf, offset + 68)
            p = offset + 80
            b = d[p]
            p += 1
            if b < 0xFD:
                ntx = b
            elif b == 0xFD:
                ntx, = unpack_from("<H", d, p)
                p += 2
            elif b == 0xFE:
                ntx, = unpack_from("<I", d, p)
                p += 4
            else:
                ntx, = unpack_from("<Q", d, p)
                p += 8
            if ntx == 0 or ntx * 60 > size:
                raise BlockError(source, offset, block_hash, f"implausible transaction count {ntx}")
            first_tx.append(len(tx_ids))
            block_first = len(tx_ids)
            has_witness = False
            for _ in range(ntx):
                start = p
                p += 4
                segwit = d[p] == 0 and d[p + 1] != 0
                if segwit:
                    if d[p + 1] != 1:  # BIP144: the flag is 0x01; Core refuses any other (unknown optional data)
                        raise BlockError(source, offset, block_hash, f"transaction {len(tx_ids) - block_first} has "
                                         f"SegWit flag {d[p + 1]:#04x}; BIP144 allows only 0x01")
                    p += 2
                    has_witness = True
                b = d[p]
                p += 1
                if b < 0xFD:
                    nin = b
                elif b == 0xFD:
                    nin, = unpack_from("<H", d, p)
                    p += 2
                else:
                    nin, = unpack_from("<I", d, p)
                    p += 4
                for _ in range(nin):
                    in_prev.append(p)
                    p += 36
                    b = d[p]
                    p += 1
                    if b < 0xFD:
                        p += b
                    elif b == 0xFD:
                        p += unpack_from("<H", d, p)[0] + 2
                    else:
                        p += unpack_from("<I", d, p)[0] + 4
                    in_seq.append(p)
                    p += 4
                b = d[p]
                p += 1
                if b < 0xFD:
                    nout = b
                elif b == 0xFD:
                    nout, = unpack_from("<H", d, p)
                    p += 2
                else:
                    nout, = unpack_from("<I", d, p)
                    p += 4
                for _ in range(nout):
                    out_val.append(p)
                    p += 8
                    b = d[p]
                    p += 1
                    if b < 0xFD:
                        slen = b
                    elif b == 0xFD:
                        slen, = unpack_from("<H", d, p)
                        p += 2
                    else:
                        slen, = unpack_from("<I", d, p)
                        p += 4
                    out_script.append(p)
                    out_len.append(slen)
                    p += slen
                wstart = p
                if segwit:
                    for _ in range(nin):
                        in_wit.append(p)
                        b = d[p]
                        p += 1
                        if b < 0xFD:
                            items = b
                        elif b == 0xFD:
                            items, = unpack_from("<H", d, p)
                            p += 2
                        else:
                            items, = unpack_from("<I", d, p)
                            p += 4
                        for _ in range(items):
                            b = d[p]
                            p += 1
                            if b < 0xFD:
                                p += b
                            elif b == 0xFD:
                                p += unpack_from("<H", d, p)[0] + 2
                            else:
                                p += unpack_from("<I", d, p)[0] + 4
                else:
                    in_wit.extend([-1] * nin)
                p += 4
                if p > end:
                    raise BlockError(source, offset, block_hash, f"transaction {len(tx_ids) - block_first} runs past the end of the block")
                if segwit:
                    h = _sha256(buf[start : start + 4])
                    h.update(buf[start + 6 : wstart])
                    h.update(buf[p - 4 : p])
                    tx_ids.append(_sha256(h.digest()).digest())
                    tx_wids.append(sha256d(buf[start:p]))
                    tx_wsize.append(p - 4 - wstart + 2)
                else:
                    txid = sha256d(buf[start:p])
                    tx_ids.append(txid)
                    tx_wids.append(txid)
                    tx_wsize.append(0)
                tx_start.append(start)
                tx_end.append(p)
                tx_nin.append(nin)
                tx_nout.append(nout)
            if p != end:
                raise BlockError(source, offset, block_hash, f"block declares {size} bytes but its transactions end after {p - offset}")
        except BlockError:
            raise
        except (IndexError, ValueError) as exc:  # struct.error is a ValueError subclass
            raise BlockError(source, offset, block_hash, f"malformed or truncated block ({exc})") from None

        # -- verification ----------------------------------------------------------------------
        ids = tx_ids[block_first:]
        if merkle_root(ids) != bytes(header[36:68]):
            raise BlockError(source, offset, block_hash, "merkle root does not match the transactions (tampered or corrupt)")
        if len(set(ids)) != len(ids):
            # CVE-2012-2459: repeating the last transactions keeps the merkle root (an odd level repeats
            # its last hash), so a block with a duplicated txid has a valid header and must be refused
            seen: set[bytes] = set()
            dup = next(t for t in ids if t in seen or seen.add(t))
            raise BlockError(source, offset, block_hash, f"transaction {dup[::-1].hex()} appears twice in the block "
                             "(duplicated merkle leaves, CVE-2012-2459)")
        target = bits_to_target(bits)
        if target <= 0 or target > net.pow_limit:
            raise BlockError(source, offset, block_hash, f"nBits {bits:#010x} is outside the {net.name} proof-of-work limit")
        if int.from_bytes(hash_bytes, "little") > target:
            raise BlockError(source, offset, block_hash, f"block hash does not meet its proof-of-work target (nBits {bits:#010x})")
        cb = in_prev[len(in_prev) - sum(tx_nin[block_first:])]
        if bytes(buf[cb : cb + 36]) != _NULL_OUTPOINT:
            raise BlockError(source, offset, block_hash, "first transaction is not a coinbase")
        if has_witness:
            _check_witness_commitment(buf, arr, tx_wids[block_first:], tx_start[block_first], tx_end[block_first],
                                      out_val, out_script, out_len, tx_nout[block_first], len(out_val) - sum(tx_nout[block_first:]),
                                      source, offset, block_hash)
        script_len_off = cb + 36
        slen = buf[script_len_off]
        cb_script = bytes(buf[script_len_off + 1 : script_len_off + 1 + slen]) if slen < 0xFD else b""
        blocks.append(
            {
                "hash": block_hash,
                "prev_hash": bytes(header[4:36])[::-1].hex(),
                "merkle_root": bytes(header[36:68])[::-1].hex(),
                "version": version,
                "time": time,
                "bits": bits,
                "nonce": nonce,
                "tx_count": ntx,
                "size": size,
                "source_offset": offset,
                "bip34_height": coinbase_height(cb_script) if version >= 2 else None,
            }
        )

    batch = BlockBatch(blocks=blocks)
    if not tx_ids:
        return batch, first_tx
    _check_single_coinbase(arr, in_prev, tx_nin, first_tx, blocks, source)
    batch.transactions, batch.outputs, batch.inputs = _columns(
        arr, buf, net, tx_ids, tx_wids, tx_start, tx_end, tx_nin, tx_nout, tx_wsize,
        in_prev, in_seq, in_wit, out_val, out_script, out_len, first_tx,
    )
    return batch, first_tx


def _check_single_coinbase(arr, in_prev, tx_nin, first_tx, blocks, source) -> None:
    """Only the first transaction of a block may spend the null outpoint (Core: bad-cb-multiple and
    bad-txns-prevout-null). One vectorised pass over every input of the batch."""
    if not in_prev:
        return
    nin = np.asarray(tx_nin, dtype=np.int64)
    po = np.asarray(in_prev, dtype=np.int64)
    null = (_gather(arr, po, 36) == np.frombuffer(_NULL_OUTPOINT, dtype=np.uint8)).all(axis=1)
    tx_of_in = np.repeat(np.arange(nin.size), nin)
    firsts = np.asarray(first_tx, dtype=np.int64)
    bad = np.flatnonzero(null & ~np.isin(tx_of_in, firsts))
    if bad.size:
        tx = int(tx_of_in[bad[0]])
        k = int(np.searchsorted(firsts, tx, side="right")) - 1
        b = blocks[k]
        raise BlockError(source, b["source_offset"], b["hash"], f"transaction {tx - int(firsts[k])} spends the null "
                         "outpoint: a second coinbase (only the first transaction of a block may be one)")


def _check_witness_commitment(buf, arr, wids, cb_start, cb_end, out_val, out_script, out_len, cb_nout, cb_first_out,
                              source, offset, block_hash) -> None:
    """BIP141: the coinbase commits to the witness merkle root (coinbase wtxid counted as zero)."""
    commitment = None
    for k in range(cb_first_out, cb_first_out + cb_nout):
        so, sl = out_script[k], out_len[k]
        if sl >= 38 and bytes(buf[so : so + 6]) == _WITNESS_COMMITMENT:
            commitment = bytes(buf[so + 6 : so + 38])
    if commitment is None:
        raise BlockError(source, offset, block_hash, "block has witness data but no witness commitment")
    # the coinbase witness holds one 32-byte reserved value: it is the last 33 bytes before locktime
    reserved = bytes(buf[cb_end - 4 - 32 : cb_end - 4])
    root = merkle_root([b"\x00" * 32] + wids[1:])
    if sha256d(root + reserved) != commitment:
        raise BlockError(source, offset, block_hash, "witness commitment does not match the witness data (tampered or corrupt)")


def _gather(arr: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    return arr[offsets[:, None] + np.arange(width)]


def _columns(arr, buf, net, tx_ids, tx_wids, tx_start, tx_end, tx_nin, tx_nout, tx_wsize,
             in_prev, in_seq, in_wit, out_val, out_script, out_len, first_tx):
    ntx = len(tx_ids)
    nin = np.asarray(tx_nin, dtype=np.int64)
    nout = np.asarray(tx_nout, dtype=np.int64)
    block_of_tx = np.repeat(np.arange(len(first_tx)), np.diff(np.append(first_tx, ntx)))
    position = np.arange(ntx) - np.asarray(first_tx, dtype=np.int64)[block_of_tx]
    is_coinbase = position == 0
    size = np.asarray(tx_end, dtype=np.int64) - np.asarray(tx_start, dtype=np.int64)
    wsize = np.asarray(tx_wsize, dtype=np.int64)
    start = np.asarray(tx_start, dtype=np.int64)
    end = np.asarray(tx_end, dtype=np.int64)
    txid_rows = np.frombuffer(b"".join(tx_ids), dtype=np.uint8).reshape(ntx, 32)
    wtxid_rows = np.frombuffer(b"".join(tx_wids), dtype=np.uint8).reshape(ntx, 32)
    txid_chars = hex_chars(txid_rows, reverse=True)
    transactions = pa.table(
        {
            "txid": fixed_width_strings(txid_chars),
            "wtxid": hex_rows(wtxid_rows, reverse=True),
            "block_index": array(block_of_tx, pa.int32()),
            "position": array(position, pa.int32()),
            "version": array(_gather(arr, start, 4).view("<i4").ravel().astype(np.int64)),
            "locktime": array(_gather(arr, end - 4, 4).view("<u4").ravel().astype(np.int64)),
            "size": array(size, pa.int32()),
            "weight": array((size - wsize) * 3 + size, pa.int32()),
            "is_coinbase": array(is_coinbase),
            "input_count": array(nin, pa.int32()),
            "output_count": array(nout, pa.int32()),
        }
    )
    tx_of_out = np.repeat(np.arange(ntx), nout)
    out_n = np.arange(tx_of_out.size) - np.repeat(np.cumsum(nout) - nout, nout)
    vo = np.asarray(out_val, dtype=np.int64)
    so = np.asarray(out_script, dtype=np.int64)
    sl = np.asarray(out_len, dtype=np.int64)
    values = _gather(arr, vo, 8).view("<i8").ravel() if vo.size else np.zeros(0, np.int64)
    stype, addr = _classify_outputs(arr, so, sl, net, buf)
    outputs = pa.table(
        {
            "txid": fixed_width_strings(txid_chars[tx_of_out]),
            "n": array(out_n, pa.int32()),
            "address": addr,
            "script_type": stype,
            "value": array(values, pa.int64()),
            "tx_index": array(tx_of_out, pa.int64()),
        }
    )
    tx_of_in = np.repeat(np.arange(ntx), nin)
    in_n = np.arange(tx_of_in.size) - np.repeat(np.cumsum(nin) - nin, nin)
    po = np.asarray(in_prev, dtype=np.int64)
    coinbase_in = is_coinbase[tx_of_in]
    prev_rows = _gather(arr, po, 32) if po.size else np.zeros((0, 32), np.uint8)
    prev_n = _gather(arr, po + 32, 4).view("<u4").ravel().astype(np.int64) if po.size else np.zeros(0, np.int64)
    seq = _gather(arr, np.asarray(in_seq, dtype=np.int64), 4).view("<u4").ravel().astype(np.int64) if po.size else np.zeros(0, np.int64)
    spend_type, script_address = input_addresses(buf, arr, net, po, np.asarray(in_seq, dtype=np.int64),
                                                 np.asarray(in_wit, dtype=np.int64), coinbase_in)
    inputs = pa.table(
        {
            "txid": fixed_width_strings(txid_chars[tx_of_in]),
            "n": array(in_n, pa.int32()),
            "prev_txid": hex_rows(prev_rows, reverse=True, null=coinbase_in),
            "prev_n": array(prev_n, pa.int64(), null=coinbase_in),
            "sequence": array(seq, pa.int64()),
            "tx_index": array(tx_of_in, pa.int64()),
            "script_address": script_address,
            "spend_type": spend_type,
        }
    )
    return transactions, outputs, inputs
