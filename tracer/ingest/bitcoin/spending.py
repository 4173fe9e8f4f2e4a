"""The address an input spends from, read from the input's own scriptSig and witness.

An input names the output it spends only by outpoint; its address is known for certain once that output
is in the store. Until then, the standard spending forms carry enough to derive the address: the public
key, redeem script or witness script that the output committed to by hash. One compiled pass
(:func:`_classify`) walks every input's scriptSig pushes and witness items of a parsed batch and picks
the byte range to hash; the hashes (:mod:`tracer.codecs.hashes`) and the address encoders
(:mod:`tracer.codecs.bitcoin_address`) then run over whole columns. No Python runs per input.

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

import numpy as np
import pyarrow as pa
from numba import njit

from tracer.codecs.bitcoin_address import base58check_arrow, place, segwit_arrow
from tracer.codecs.hashes import hash160_ranges, sha256_ranges
from tracer.columns import strings, take
from tracer.ingest.bitcoin.network import Network

SPEND_TYPES = [None, "p2pkh", "p2wpkh", "p2sh-p2wpkh", "p2sh-p2wsh", "p2sh-multisig", "p2wsh"]
P2PKH, P2WPKH, P2SH_P2WPKH, P2SH_P2WSH, P2SH_MULTISIG, P2WSH = range(1, 7)
_SPEND_TYPE_NAMES = strings([""] + SPEND_TYPES[1:])


@njit(cache=True, inline="always")
def _varint(d, p):
    b = d[p]
    if b < 0xFD:
        return np.int64(b), p + 1
    if b == 0xFD:
        return np.int64(d[p + 1]) | (np.int64(d[p + 2]) << 8), p + 3
    if b == 0xFE:
        return (np.int64(d[p + 1]) | (np.int64(d[p + 2]) << 8) | (np.int64(d[p + 3]) << 16)
                | (np.int64(d[p + 4]) << 24)), p + 5
    v = np.int64(0)
    for k in range(8):
        v |= np.int64(d[p + 1 + k]) << (8 * k)
    return v, p + 9


@njit(cache=True, inline="always")
def _is_sig(d, o, n):
    return 9 <= n <= 73 and d[o] == 0x30


@njit(cache=True, inline="always")
def _is_ckey(d, o, n):
    return n == 33 and (d[o] == 2 or d[o] == 3)


@njit(cache=True, inline="always")
def _is_key(d, o, n):
    return _is_ckey(d, o, n) or (n == 65 and (d[o] == 4 or d[o] == 6 or d[o] == 7))


@njit(cache=True)
def _multisig_m(d, o, n):
    """m when d[o:o+n] is OP_m <n keys of 33/65 bytes> OP_n OP_CHECKMULTISIG, else 0."""
    if n < 37 or d[o + n - 1] != 0xAE:
        return 0
    m, k = np.int64(d[o]) - 0x50, np.int64(d[o + n - 2]) - 0x50
    if m < 1 or m > 16 or k < 1 or k > 16 or m > k:
        return 0
    q, keys = o + 1, 0
    while q < o + n - 2:
        size = d[q]
        if size != 33 and size != 65:
            return 0
        q += 1 + size
        keys += 1
    if q != o + n - 2 or keys != k:
        return 0
    return m


@njit(cache=True)
def _classify(d, in_prev, in_seq, tx_nin, tx_wit, kind, start, length):
    """Per input: the spending form (index into SPEND_TYPES) and the byte range to hash.
    ``tx_wit``: per transaction, the offset of its witness section (-1 without one)."""
    i = 0
    for t in range(tx_nin.size):
        wp = tx_wit[t]
        for _ in range(tx_nin[t]):
            # scriptSig: the pushes (a non-push opcode or a push past the end ends the walk, not push-only)
            ss_len, ss = _varint(d, in_prev[i] + 36)
            se = in_seq[i]
            push_only, npush, sigs_mid = True, 0, 0
            o0 = n0 = o1 = n1 = ol = nl = np.int64(0)
            q = ss
            while q < se:
                op = d[q]
                q += 1
                if op <= 0x4B:
                    n = np.int64(op)
                elif op == 0x4C and q + 1 <= se:
                    n = np.int64(d[q])
                    q += 1
                elif op == 0x4D and q + 2 <= se:
                    n = np.int64(d[q]) | (np.int64(d[q + 1]) << 8)
                    q += 2
                elif op == 0x4E and q + 4 <= se:
                    n = np.int64(d[q]) | (np.int64(d[q + 1]) << 8) | (np.int64(d[q + 2]) << 16) | (np.int64(d[q + 3]) << 24)
                    q += 4
                else:
                    push_only = False
                    break
                if q + n > se:
                    push_only = False
                    break
                if npush == 0:
                    o0, n0 = q, n
                elif npush == 1:
                    o1, n1 = q, n
                if npush >= 2 and _is_sig(d, ol, nl):
                    sigs_mid += 1  # the previous push, neither the first nor the last, is a signature
                ol, nl = q, n
                npush += 1
                q += n
            # witness: item count, first two items and the last
            witems = 0
            w0 = wn0 = w1 = wn1 = wl = wnl = np.int64(0)
            if wp >= 0:
                witems, wp = _varint(d, wp)
                for k in range(witems):
                    n, wp = _varint(d, wp)
                    if k == 0:
                        w0, wn0 = wp, n
                    elif k == 1:
                        w1, wn1 = wp, n
                    wl, wnl = wp, n
                    wp += n
            segwit_key = witems == 2 and _is_sig(d, w0, wn0) and _is_ckey(d, w1, wn1)
            k_ = 0
            if witems == 0 and push_only and npush == 2 and _is_sig(d, o0, n0) and _is_key(d, o1, n1):
                k_, a, b = P2PKH, o1, n1
            elif ss_len == 0 and segwit_key:
                k_, a, b = P2WPKH, w1, wn1
            elif push_only and npush == 1 and n0 == 22 and d[o0] == 0 and d[o0 + 1] == 0x14 and segwit_key:
                k_, a, b = P2SH_P2WPKH, o0, n0
            elif push_only and npush == 1 and n0 == 34 and d[o0] == 0 and d[o0 + 1] == 0x20 and witems >= 1:
                k_, a, b = P2SH_P2WSH, o0, n0
            elif (witems == 0 and push_only and npush >= 3 and n0 == 0 and sigs_mid == npush - 2
                  and _multisig_m(d, ol, nl) == npush - 2):
                k_, a, b = P2SH_MULTISIG, ol, nl
            elif (ss_len == 0 and witems >= 2 and wnl > 0 and d[wl] != 0x50
                  and not (wnl >= 33 and (wnl - 33) % 32 == 0 and (d[wl] & 0xFE) == 0xC0)):
                k_, a, b = P2WSH, wl, wnl
            else:
                a = b = np.int64(0)
            kind[i], start[i], length[i] = k_, a, b
            i += 1


def input_addresses(arr: np.ndarray, net: Network, in_prev: np.ndarray, in_seq: np.ndarray, tx_nin: np.ndarray,
                    tx_end: np.ndarray, tx_wsize: np.ndarray, coinbase_in: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(spend_type, script_address) string columns for the inputs of a parsed batch (NULL where no form
    applies). ``in_prev``/``in_seq``: each input's outpoint and sequence offsets; per transaction its
    input count, end offset and witness size (0 without witness; as the parser records them)."""
    n = in_prev.size
    kind = np.zeros(n, np.int8)
    start = np.zeros(n, np.int64)
    length = np.zeros(n, np.int64)
    if n:
        tx_wit = np.where(tx_wsize > 0, tx_end - 4 - tx_wsize + 2, -1).astype(np.int64)
        _classify(arr, in_prev.astype(np.int64), in_seq.astype(np.int64), tx_nin.astype(np.int64), tx_wit,
                  kind, start, length)
        kind[coinbase_in] = 0
    pieces: list[tuple[np.ndarray, pa.Array]] = []
    keyed = np.flatnonzero((kind >= P2PKH) & (kind <= P2SH_MULTISIG))
    if keyed.size:
        h160 = hash160_ranges(arr, start[keyed], length[keyed])
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
        pieces.append((scripts, segwit_arrow(net.hrp, 0, sha256_ranges(arr, start[scripts], length[scripts]))))
    address = place(n, pieces)
    spend_type = take(_SPEND_TYPE_NAMES, kind, null=kind == 0)
    return spend_type, address
