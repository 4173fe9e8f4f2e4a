"""The address an input spends from, read from the input's own scriptSig and witness.

An input names the output it spends only by outpoint; its address is known for certain once that output
is in the store. Until then, the standard spending forms carry enough to derive the address: the public
key, redeem script or witness script that the output committed to by hash. :func:`_classify` walks the
scriptSig pushes and witness items of every input of a parsed batch at once, one numpy step per push or
item position (all inputs advance together), and picks the byte range to hash; the address encoders
(:mod:`tracer.codecs.bitcoin_address`) then run over whole columns. The only Python per input is the
hashing (hashlib's SHA-256 and RIPEMD-160, ~2 µs per input), the same way the parser hashes every
transaction: a compiled pass (numba) costs more to load in a fresh process than it saves on a batch
(its first call imports numba's array and linear-algebra registries, scipy included: ~1 s, measured in
docs/benchmarks.md).

Forms recognised (``spend_type``), and the address derived:

- ``p2pkh``: no witness; the scriptSig is exactly two pushes, a DER signature (``30…``, 9–73 bytes) and a
  33-byte (``02``/``03``) or 65-byte (``04``/``06``/``07``) public key → Base58Check P2PKH of HASH160(key).
- ``p2wpkh``: empty scriptSig; the witness is [DER signature, 33-byte key] → Bech32 v0 of HASH160(key).
- ``p2sh-p2wpkh``: the scriptSig is one push of the 22-byte redeem script ``0014{20}``; the witness as for
  P2WPKH → P2SH of HASH160(redeem script).
- ``p2sh-p2wsh``: the scriptSig is one push of the 34-byte redeem script ``0020{32}``; a witness is present
  → P2SH of HASH160(redeem script).
- ``p2sh-multisig``: no witness; the scriptSig is OP_0, m DER signatures and a last push that is
  ``OP_m <n keys> OP_n OP_CHECKMULTISIG`` → P2SH of HASH160(that redeem script).
- ``p2wsh``: empty scriptSig; at least two witness items, the last (the witness script) neither an annex
  (``50…``) nor shaped as a Taproot control block (33 + 32k bytes starting ``c0``/``c1``) → Bech32 v0
  of SHA-256(witness script).

Everything else stays NULL: coinbase inputs; P2PK (the scriptSig holds only a signature; the key is in the
spent output); P2TR (a key-path spend is one Schnorr signature, from which no key can be read); bare
multisig (signatures only); P2SH with any other redeem script and one-item witnesses (a P2WSH witness
script without arguments cannot be told from a Taproot key-path signature). The forms are those of
standard wallets; a non-standard output whose spending script happens to have one of these shapes would
be misread, which is why the address of the spent output, when it is stored or arrives later, takes
precedence and a disagreement is quarantined (tracer/ingest/bitcoin/blocks.py).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from tracer.codecs.bitcoin_address import base58check_arrow, place, segwit_arrow
from tracer.columns import strings, take
from tracer.ingest.bitcoin.network import Network

SPEND_TYPES = [None, "p2pkh", "p2wpkh", "p2sh-p2wpkh", "p2sh-p2wsh", "p2sh-multisig", "p2wsh"]
P2PKH, P2WPKH, P2SH_P2WPKH, P2SH_P2WSH, P2SH_MULTISIG, P2WSH = range(1, 7)
_SPEND_TYPE_NAMES = strings([""] + SPEND_TYPES[1:])
# A push-only scriptSig of a recognised form has at most 18 pushes (OP_0, 16 signatures, the redeem
# script): a walk that is still going after this many pushes cannot match and stops there.
_MAX_PUSHES = 19


def _le(d: np.ndarray, p: np.ndarray, width: int) -> np.ndarray:
    """Little-endian unsigned integers of ``width`` bytes at offsets ``p`` (clipped to the buffer)."""
    v = np.zeros(p.size, np.int64)
    last = d.size - 1
    for k in range(width):
        v |= d[np.minimum(p + k, last)].astype(np.int64) << (8 * k)
    return v


def _varint(d: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, offset after it) of the CompactSize integers at ``p``."""
    b = d[p].astype(np.int64)
    v = np.where(b < 0xFD, b, 0)
    after = p + 1
    for code, width in ((0xFD, 2), (0xFE, 4), (0xFF, 8)):
        sel = b == code
        if sel.any():
            v[sel] = _le(d, p[sel] + 1, width)
            after[sel] = p[sel] + 1 + width
    return v, after


def _byte(d: np.ndarray, o: np.ndarray) -> np.ndarray:
    return d[np.clip(o, 0, d.size - 1)]


def _is_sig(d, o, n):
    return (n >= 9) & (n <= 73) & (_byte(d, o) == 0x30)


def _is_ckey(d, o, n):
    return (n == 33) & np.isin(_byte(d, o), (2, 3))


def _is_key(d, o, n):
    return _is_ckey(d, o, n) | ((n == 65) & np.isin(_byte(d, o), (4, 6, 7)))


def _multisig_m(d: np.ndarray, o: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per range: m when d[o:o+n] is OP_m <k keys of 33/65 bytes> OP_k OP_CHECKMULTISIG, else 0."""
    m = _byte(d, o).astype(np.int64) - 0x50
    k = _byte(d, o + n - 2).astype(np.int64) - 0x50
    ok = (n >= 37) & (_byte(d, o + n - 1) == 0xAE) & (m >= 1) & (m <= 16) & (k >= 1) & (k <= 16) & (m <= k)
    q = o + 1
    keys = np.zeros(o.size, np.int64)
    walking = ok.copy()
    for _ in range(16):  # at most 16 keys: one step per key, every candidate at once
        w = np.flatnonzero(walking & (q < o + n - 2))
        if not w.size:
            break
        size = _byte(d, q[w]).astype(np.int64)
        bad = (size != 33) & (size != 65)
        ok[w[bad]] = False
        walking[w[bad]] = False
        good = w[~bad]
        q[good] += 1 + size[~bad]
        keys[good] += 1
    ok &= (q == o + n - 2) & (keys == k)
    return np.where(ok, m, 0)


def _classify(d: np.ndarray, in_prev: np.ndarray, in_seq: np.ndarray, in_wit: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per input: the spending form (index into SPEND_TYPES) and the byte range (start, length) to hash.
    ``in_wit``: per input, the offset of its witness (-1 without one)."""
    n = in_prev.size
    z = np.zeros(n, np.int64)
    # scriptSig: the pushes (a non-push opcode or a push past the end ends the walk: not push-only)
    ss_len, q = _varint(d, in_prev + 36)
    se = in_seq
    push_only = np.ones(n, bool)
    npush, sigs_mid = z.copy(), z.copy()
    o0, n0, o1, n1, ol, nl = z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
    active = q < se
    for _ in range(_MAX_PUSHES):
        a = np.flatnonzero(active)
        if not a.size:
            break
        qa, sa = q[a], se[a]
        op = d[qa].astype(np.int64)
        qa = qa + 1
        size = np.where(op <= 0x4B, op, -1)
        for code, width in ((0x4C, 1), (0x4D, 2), (0x4E, 4)):
            sel = (op == code) & (qa + width <= sa)
            if sel.any():
                size[sel] = _le(d, qa[sel], width)
                qa[sel] += width
        bad = (size < 0) | (qa + size > sa)
        push_only[a[bad]] = False
        active[a[bad]] = False
        a, qa, size, sa = a[~bad], qa[~bad], size[~bad], sa[~bad]
        first, second = npush[a] == 0, npush[a] == 1
        o0[a[first]], n0[a[first]] = qa[first], size[first]
        o1[a[second]], n1[a[second]] = qa[second], size[second]
        mid = (npush[a] >= 2) & _is_sig(d, ol[a], nl[a])  # the previous push, neither first nor last
        sigs_mid[a[mid]] += 1
        ol[a], nl[a] = qa, size
        npush[a] += 1
        q[a] = qa + size
        active[a] = q[a] < sa
    push_only[active] = False  # more pushes than any recognised form has
    # witness: item count, the first two items and the last
    witems = z.copy()
    w0, wn0, w1, wn1, wl, wnl = z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
    has = np.flatnonzero(in_wit >= 0)
    if has.size:
        count, wp = _varint(d, in_wit[has])
        witems[has] = count
        k = 0
        left = np.flatnonzero(count > 0)
        while left.size:
            rows = has[left]
            size, start = _varint(d, wp[left])
            if k == 0:
                w0[rows], wn0[rows] = start, size
            elif k == 1:
                w1[rows], wn1[rows] = start, size
            wl[rows], wnl[rows] = start, size
            wp[left] = start + size
            k += 1
            left = left[count[left] > k]
    segwit_key = (witems == 2) & _is_sig(d, w0, wn0) & _is_ckey(d, w1, wn1)
    b0, b1 = _byte(d, o0), _byte(d, o0 + 1)
    forms = [
        (P2PKH, (witems == 0) & push_only & (npush == 2) & _is_sig(d, o0, n0) & _is_key(d, o1, n1), o1, n1),
        (P2WPKH, (ss_len == 0) & segwit_key, w1, wn1),
        (P2SH_P2WPKH, push_only & (npush == 1) & (n0 == 22) & (b0 == 0) & (b1 == 0x14) & segwit_key, o0, n0),
        (P2SH_P2WSH, push_only & (npush == 1) & (n0 == 34) & (b0 == 0) & (b1 == 0x20) & (witems >= 1), o0, n0),
        (P2SH_MULTISIG, (witems == 0) & push_only & (npush >= 3) & (n0 == 0) & (sigs_mid == npush - 2)
         & (_multisig_m(d, ol, nl) == npush - 2), ol, nl),
        (P2WSH, (ss_len == 0) & (witems >= 2) & (wnl > 0) & (_byte(d, wl) != 0x50)
         & ~((wnl >= 33) & ((wnl - 33) % 32 == 0) & ((_byte(d, wl) & 0xFE) == 0xC0)), wl, wnl),
    ]
    kind = np.zeros(n, np.int8)
    start, length = z.copy(), z.copy()
    for code, mask, a, b in reversed(forms):  # the first form that applies wins
        kind[mask], start[mask], length[mask] = code, a[mask], b[mask]
    return kind, start, length


def _hashes(buf: memoryview, start: np.ndarray, length: np.ndarray, ripemd: bool) -> np.ndarray:
    """(n, 20) HASH160 or (n, 32) SHA-256 rows of the byte ranges."""
    sha = hashlib.sha256
    if ripemd:
        new = hashlib.new
        out = b"".join([new("ripemd160", sha(buf[a : a + b]).digest()).digest()
                        for a, b in zip(start.tolist(), length.tolist())])
        return np.frombuffer(out, np.uint8).reshape(-1, 20)
    out = b"".join([sha(buf[a : a + b]).digest() for a, b in zip(start.tolist(), length.tolist())])
    return np.frombuffer(out, np.uint8).reshape(-1, 32)


def input_addresses(buf: memoryview, arr: np.ndarray, net: Network, in_prev: np.ndarray, in_seq: np.ndarray,
                    in_wit: np.ndarray, coinbase_in: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(spend_type, script_address) string columns for the inputs of a parsed batch (NULL where no form
    applies). ``in_prev``/``in_seq``/``in_wit``: each input's outpoint, sequence and witness offsets (-1
    without a witness), as the parser records them."""
    n = in_prev.size
    kind = np.zeros(n, np.int8)
    if n:
        kind, start, length = _classify(arr, in_prev, in_seq, in_wit)
        kind[coinbase_in] = 0
    pieces: list[tuple[np.ndarray, pa.Array]] = []
    keyed = np.flatnonzero((kind >= P2PKH) & (kind <= P2SH_MULTISIG))
    if keyed.size:
        h160 = _hashes(buf, start[keyed], length[keyed], ripemd=True)
        for code, encode in ((P2PKH, lambda h: base58check_arrow(net.p2pkh_version, h)),
                             (P2WPKH, lambda h: segwit_arrow(net.hrp, 0, h))):
            sel = kind[keyed] == code
            if sel.any():
                pieces.append((keyed[sel], encode(h160[sel])))
        sel = kind[keyed] >= P2SH_P2WPKH
        if sel.any():
            pieces.append((keyed[sel], base58check_arrow(net.p2sh_version, h160[sel])))
    scripts = np.flatnonzero(kind == P2WSH)
    if scripts.size:
        pieces.append((scripts, segwit_arrow(net.hrp, 0, _hashes(buf, start[scripts], length[scripts], ripemd=False))))
    address = place(n, pieces)
    spend_type = take(_SPEND_TYPE_NAMES, kind, null=kind == 0)
    return spend_type, address
