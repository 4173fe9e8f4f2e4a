"""Vectorised Bitcoin address encoders: Base58Check (P2PKH, P2SH) and Bech32/Bech32m (SegWit).

Addresses are derived for whole columns at once with numpy (no per-address Python big-integer
arithmetic): a batch of payloads is divided by 58**5 limb-wise, and the BCH checksum of BIP173/BIP350
is run column by column over all rows together. Only the double-SHA256 checksum of Base58Check is per
row (hashlib, in C).

References: Base58Check (Bitcoin Core ``base58.cpp``); BIP173 (Bech32, SegWit v0); BIP350 (Bech32m,
SegWit v1+, e.g. Taproot).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pyarrow as pa

from tracer.columns import take

B58_ALPHABET = np.frombuffer(b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", dtype=np.uint8)
BECH32_CHARSET = np.frombuffer(b"qpzry9x8gf2tvdw0s3jn54khce6mua7l", dtype=np.uint8)
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# _GEN_TABLE[b] = XOR of _GEN[i] for every bit i set in b: one gather instead of five branches.
_GEN_TABLE = np.array(
    [np.bitwise_xor.reduce([g for i, g in enumerate(_GEN) if (b >> i) & 1] or [0]) for b in range(32)],
    dtype=np.uint32,
)
_LIMB = 58**5  # < 2**30, so limb * 256 + byte stays far inside uint64


def _as_rows(payloads: np.ndarray | list[bytes], width: int | None = None) -> np.ndarray:
    if isinstance(payloads, np.ndarray):
        arr = payloads
    else:
        payloads = list(payloads)
        w = width if width is not None else (len(payloads[0]) if payloads else 0)
        arr = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), w)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise ValueError("payloads must be a 2-D uint8 array (rows of equal length)")
    return arr


def _chars_to_arrow(chars: np.ndarray) -> pa.Array:
    """Rows of ASCII codes (space-padded on the left) to an Arrow string array (numpy only: no
    pyarrow.compute, whose import costs a whole process ~50 ms)."""
    n, w = chars.shape
    keep = chars != 0x20
    lead = np.where(keep.any(axis=1), keep.argmax(axis=1), w)  # leading spaces per row
    kept = np.arange(w) >= lead[:, None]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(w - lead, out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                   pa.py_buffer(np.ascontiguousarray(chars[kept]))])


def base58_encode_rows(rows: np.ndarray) -> pa.Array:
    """Base58-encode every row of an (N, L) uint8 array; leading zero bytes become '1'.

    The payload is read as big-endian 32-bit limbs and divided by 58**5 limb by limb (the remainder
    stays below 2**30, so remainder * 2**32 + limb fits in uint64): five Base58 digits per pass.
    """
    n, length = rows.shape
    ndigits = math.ceil(length * 8 / math.log2(58))
    nlimbs = math.ceil(ndigits / 5)
    width = nlimbs * 5
    digits = np.zeros((n, width), dtype=np.uint8)
    words = math.ceil(length / 4)
    padded = np.zeros((n, words * 4), dtype=np.uint8)
    padded[:, words * 4 - length :] = rows
    work = padded.view(">u4").astype(np.uint64)
    start = 0
    for k in range(nlimbs):
        rem = np.zeros(n, dtype=np.uint64)
        for j in range(start, words):
            cur = (rem << np.uint64(32)) | work[:, j]
            q = cur // _LIMB
            work[:, j] = q
            rem = cur - q * _LIMB
        while start < words and not work[:, start].any():
            start += 1
        for d in range(5):
            digits[:, width - 1 - (k * 5 + d)] = (rem % 58).astype(np.uint8)
            rem //= 58
    chars = B58_ALPHABET[digits]
    nonzero = digits != 0
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), width)
    zbytes = rows != 0
    leading_zero_bytes = np.where(zbytes.any(axis=1), zbytes.argmax(axis=1), length)
    pos = np.arange(width)[None, :]
    chars[pos < first[:, None]] = ord(" ")
    chars[(pos < first[:, None]) & (pos >= (first - leading_zero_bytes)[:, None])] = ord("1")
    return _chars_to_arrow(chars)


def base58check_arrow(version: int, payloads: np.ndarray | list[bytes]) -> pa.Array:
    """Base58Check addresses for one version byte over a column of payloads."""
    arr = _as_rows(payloads)
    n, width = arr.shape
    full = np.empty((n, width + 5), dtype=np.uint8)
    full[:, 0] = version
    full[:, 1 : width + 1] = arr
    buf = memoryview(np.ascontiguousarray(full[:, : width + 1]).tobytes())
    step = width + 1
    sha256 = hashlib.sha256
    checks = b"".join(sha256(sha256(buf[i * step : (i + 1) * step]).digest()).digest()[:4] for i in range(n))
    full[:, width + 1 :] = np.frombuffer(checks, dtype=np.uint8).reshape(n, 4)
    return base58_encode_rows(full)


def base58check_encode(version: int, payloads: np.ndarray | list[bytes]) -> list[str]:
    """Base58Check-encode each payload with the version byte (0x00 P2PKH, 0x05 P2SH on mainnet)."""
    return base58check_arrow(version, payloads).to_pylist()


def _to_5bit(arr: np.ndarray) -> np.ndarray:
    n, width = arr.shape
    bits = np.unpackbits(arr, axis=1)
    groups = math.ceil(width * 8 / 5)
    pad = groups * 5 - width * 8
    if pad:
        bits = np.concatenate([bits, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    return (bits.reshape(n, groups, 5) * np.array([16, 8, 4, 2, 1], dtype=np.uint8)).sum(axis=2, dtype=np.uint8)


def _hrp_state(hrp: str) -> int:
    chk = 1
    for v in [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]:
        b = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        chk ^= int(_GEN_TABLE[b])
    return chk


def segwit_arrow(hrp: str, witver: int, programs: np.ndarray | list[bytes]) -> pa.Array:
    """SegWit addresses (BIP173 Bech32 for v0, BIP350 Bech32m for v1+) over a column of programs."""
    arr = _as_rows(programs)
    n = arr.shape[0]
    data = np.empty((n, 1 + math.ceil(arr.shape[1] * 8 / 5)), dtype=np.uint8)
    data[:, 0] = witver
    data[:, 1:] = _to_5bit(arr)
    chk = np.full(n, _hrp_state(hrp), dtype=np.uint32)
    columns = [data[:, j].astype(np.uint32) for j in range(data.shape[1])] + [np.zeros(n, np.uint32)] * 6
    for v in columns:
        b = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        chk ^= _GEN_TABLE[b]
    chk ^= BECH32_CONST if witver == 0 else BECH32M_CONST
    checksum = np.stack([(chk >> (5 * (5 - i))) & 31 for i in range(6)], axis=1).astype(np.uint8)
    prefix = np.frombuffer(hrp.encode() + b"1", dtype=np.uint8)
    chars = np.concatenate(
        [np.broadcast_to(prefix, (n, prefix.size)), BECH32_CHARSET[data], BECH32_CHARSET[checksum]], axis=1
    )
    return _chars_to_arrow(chars)


def segwit_encode(hrp: str, witver: int, programs: np.ndarray | list[bytes]) -> list[str]:
    """SegWit addresses for one witness version over programs of equal length (20 or 32 bytes)."""
    return segwit_arrow(hrp, witver, programs).to_pylist()


def hash160(data: bytes | memoryview) -> bytes:
    """RIPEMD160(SHA256(data)): the key hash of P2PKH and P2WPKH."""
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def place(n: int, pieces: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """A string column of ``n`` rows from (row indices, values) pieces, each encoded for its rows in one call;
    rows no piece names are NULL."""
    order = np.full(n, -1, dtype=np.int64)
    start = 0
    for idx, _values in pieces:
        order[idx] = np.arange(start, start + idx.size)
        start += idx.size
    if not pieces:
        return pa.nulls(n, pa.string())
    return take(pa.concat_arrays([v for _, v in pieces]), order, null=order < 0)
