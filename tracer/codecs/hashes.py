"""Hash functions compiled with numba, for hashing many byte ranges of one buffer in one call.

- SHA-256 (FIPS 180-4), written for the simulator's block writer and shared here. ``ctx`` is the
  scratch tuple ``sha256_ctx()`` returns (state, message schedule, tail block, K, H0).
- RIPEMD-160 (Dobbertin, Bosselaers & Preneel 1996; the reference description in ISO/IEC 10118-3),
  little-endian words and length, two parallel lines of five rounds.
- HASH160 = RIPEMD-160(SHA-256(x)) over many (offset, length) ranges at once: :func:`hash160_ranges`;
  SHA-256 over many ranges: :func:`sha256_ranges`.

The tests check every function against ``hashlib`` (OpenSSL) on random inputs of every length class.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def _icbrt(n: int) -> int:
    x = 1 << ((n.bit_length() + 2) // 3 + 1)
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            return x
        x = y


def _primes(count: int) -> list[int]:
    out, k = [], 2
    while len(out) < count:
        if all(k % p for p in out if p * p <= k):
            out.append(k)
        k += 1
    return out


# FIPS 180-4 §4.2.2 and §5.3.3: the first 32 bits of the fractional parts of the cube roots of the first
# 64 primes, and of the square roots of the first 8 (computed exactly with integer roots)
SHA256_K = np.array([_icbrt(p << 96) & 0xFFFFFFFF for p in _primes(64)], dtype=np.int64)
SHA256_H0 = np.array([math.isqrt(p << 64) & 0xFFFFFFFF for p in _primes(8)], dtype=np.int64)


@njit(cache=True, inline="always")
def _rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & 0xFFFFFFFF


@njit(cache=True)
def _compress(state, block, off, w, k):
    for t in range(16):
        j = off + 4 * t
        w[t] = (np.int64(block[j]) << 24) | (np.int64(block[j + 1]) << 16) | (np.int64(block[j + 2]) << 8) | np.int64(block[j + 3])
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> 10)
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & 0xFFFFFFFF
    a, b, c, d, e, f, g, h = state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7]
    for t in range(64):
        t1 = (h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ ((~e) & g & 0xFFFFFFFF)) + k[t] + w[t]) & 0xFFFFFFFF
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & 0xFFFFFFFF
        h, g, f, e = g, f, e, (d + t1) & 0xFFFFFFFF
        d, c, b, a = c, b, a, (t1 + t2) & 0xFFFFFFFF
    state[0] = (state[0] + a) & 0xFFFFFFFF
    state[1] = (state[1] + b) & 0xFFFFFFFF
    state[2] = (state[2] + c) & 0xFFFFFFFF
    state[3] = (state[3] + d) & 0xFFFFFFFF
    state[4] = (state[4] + e) & 0xFFFFFFFF
    state[5] = (state[5] + f) & 0xFFFFFFFF
    state[6] = (state[6] + g) & 0xFFFFFFFF
    state[7] = (state[7] + h) & 0xFFFFFFFF


@njit(cache=True, inline="always")
def _pad(data, start, length, tail, big_endian):
    """Merkle-Damgard padding shared by both hashes: the bytes after the last full 64-byte block, 0x80,
    zeros and the bit length (big-endian for SHA-256, little-endian for RIPEMD-160) into ``tail``; returns
    the padded tail's size (64 or 128)."""
    full = length // 64
    rest = length - 64 * full
    tail[:] = 0
    for i in range(rest):
        tail[i] = data[start + 64 * full + i]
    tail[rest] = 0x80
    n_tail = 64 if rest < 56 else 128
    bits = np.int64(length) * 8
    for i in range(8):
        tail[n_tail - 1 - i if big_endian else n_tail - 8 + i] = (bits >> (8 * i)) & 0xFF
    return n_tail


@njit(cache=True)
def sha256(data, start, length, out, out_off, ctx):
    """SHA-256 of data[start:start+length] into out[out_off:out_off+32]; ctx = (state, w, tail, k, h0)."""
    state, w, tail, k, h0 = ctx
    state[:] = h0
    full = length // 64
    for i in range(full):
        _compress(state, data, start + 64 * i, w, k)
    n_tail = _pad(data, start, length, tail, True)
    _compress(state, tail, 0, w, k)
    if n_tail == 128:
        _compress(state, tail, 64, w, k)
    for i in range(8):
        v = state[i]
        out[out_off + 4 * i] = (v >> 24) & 0xFF
        out[out_off + 4 * i + 1] = (v >> 16) & 0xFF
        out[out_off + 4 * i + 2] = (v >> 8) & 0xFF
        out[out_off + 4 * i + 3] = v & 0xFF


@njit(cache=True)
def sha256d(data, start, length, out, out_off, ctx, tmp):
    sha256(data, start, length, tmp, 0, ctx)
    sha256(tmp, 0, 32, out, out_off, ctx)


def sha256_ctx() -> tuple:
    """Scratch arrays for :func:`sha256` (one per thread of work; reused across calls)."""
    return (np.zeros(8, np.int64), np.zeros(64, np.int64), np.zeros(128, np.uint8), SHA256_K, SHA256_H0)


# RIPEMD-160: message word order (R, RP), rotation amounts (S, SP) and constants of the left and right lines
def _nibbles(rows: str) -> np.ndarray:
    return np.array([int(c, 16) for c in rows.replace(" ", "")], dtype=np.int64)


# one hex digit per step, 16 steps per round
_RMD_R = _nibbles("0123456789abcdef 74d1a6f3c0952eb8 3ae49f812706db5c 19ba08c4d37fe562 40597c2ae138b6fd")
_RMD_RP = _nibbles("5e7092b4d6f81a3c 6b370d5aef8c4912 f5137e69b8c2a04d 86413bf05c2d97ae cfa4158762de039b")
_RMD_S = _nibbles("befc5879bdef6798 768db97f7cf9b7dc bd67e9dfe8d65c75 bcefef989e56865c 9f5b68dc5cdeb856")
_RMD_SP = _nibbles("899bdff5778beec6 9df7c89b77c76fdb 97fb866ecd5edd75 f58bee6e69c9c5f8 85c9c5e68d65fdbb")
# floor(2^30 * sqrt(2, 3, 5, 7)) for the left line, floor(2^30 * cbrt(2, 3, 5, 7)) for the right one
_RMD_K = np.array([0, math.isqrt(2 << 60), math.isqrt(3 << 60), math.isqrt(5 << 60), math.isqrt(7 << 60)], dtype=np.int64)
_RMD_KP = np.array([_icbrt(2 << 90), _icbrt(3 << 90), _icbrt(5 << 90), _icbrt(7 << 90), 0], dtype=np.int64)
_RMD_H0 = np.array([0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0], dtype=np.int64)


@njit(cache=True, inline="always")
def _rol(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


@njit(cache=True, inline="always")
def _rmd_f(j, x, y, z):
    if j < 16:
        return x ^ y ^ z
    if j < 32:
        return (x & y) | ((~x & 0xFFFFFFFF) & z)
    if j < 48:
        return (x | (~y & 0xFFFFFFFF)) ^ z
    if j < 64:
        return (x & z) | (y & (~z & 0xFFFFFFFF))
    return x ^ (y | (~z & 0xFFFFFFFF))


@njit(cache=True)
def _rmd_compress(h, block, off, x):
    for i in range(16):
        j = off + 4 * i
        x[i] = np.int64(block[j]) | (np.int64(block[j + 1]) << 8) | (np.int64(block[j + 2]) << 16) | (np.int64(block[j + 3]) << 24)
    al, bl, cl, dl, el = h[0], h[1], h[2], h[3], h[4]
    ar, br, cr, dr, er = h[0], h[1], h[2], h[3], h[4]
    for j in range(80):
        t = (_rol((al + _rmd_f(j, bl, cl, dl) + x[_RMD_R[j]] + _RMD_K[j >> 4]) & 0xFFFFFFFF, _RMD_S[j]) + el) & 0xFFFFFFFF
        al, el, dl, cl, bl = el, dl, _rol(cl, 10), bl, t
        t = (_rol((ar + _rmd_f(79 - j, br, cr, dr) + x[_RMD_RP[j]] + _RMD_KP[j >> 4]) & 0xFFFFFFFF, _RMD_SP[j]) + er) & 0xFFFFFFFF
        ar, er, dr, cr, br = er, dr, _rol(cr, 10), br, t
    t = (h[1] + cl + dr) & 0xFFFFFFFF
    h[1] = (h[2] + dl + er) & 0xFFFFFFFF
    h[2] = (h[3] + el + ar) & 0xFFFFFFFF
    h[3] = (h[4] + al + br) & 0xFFFFFFFF
    h[4] = (h[0] + bl + cr) & 0xFFFFFFFF
    h[0] = t


@njit(cache=True)
def ripemd160(data, start, length, out, out_off, h, x, tail):
    """RIPEMD-160 of data[start:start+length] into out[out_off:out_off+20]; scratch h (5), x (16), tail (128)."""
    h[:] = _RMD_H0
    full = length // 64
    for i in range(full):
        _rmd_compress(h, data, start + 64 * i, x)
    n_tail = _pad(data, start, length, tail, False)
    _rmd_compress(h, tail, 0, x)
    if n_tail == 128:
        _rmd_compress(h, tail, 64, x)
    for i in range(5):
        v = h[i]
        out[out_off + 4 * i] = v & 0xFF
        out[out_off + 4 * i + 1] = (v >> 8) & 0xFF
        out[out_off + 4 * i + 2] = (v >> 16) & 0xFF
        out[out_off + 4 * i + 3] = (v >> 24) & 0xFF


@njit(cache=True)
def _hash160_ranges(data, starts, lengths, out, ctx, h, x, tail, tmp):
    for i in range(starts.size):
        sha256(data, starts[i], lengths[i], tmp, 0, ctx)
        ripemd160(tmp, 0, 32, out[i], 0, h, x, tail)


@njit(cache=True)
def _sha256_ranges(data, starts, lengths, out, ctx):
    for i in range(starts.size):
        sha256(data, starts[i], lengths[i], out[i], 0, ctx)


def hash160_ranges(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(N, 20) uint8: RIPEMD-160(SHA-256(data[s:s+l])) for every (s, l) of ``starts``/``lengths``."""
    out = np.zeros((starts.size, 20), np.uint8)
    if starts.size:
        _hash160_ranges(data, starts.astype(np.int64), lengths.astype(np.int64), out, sha256_ctx(),
                        np.zeros(5, np.int64), np.zeros(16, np.int64), np.zeros(128, np.uint8), np.zeros(32, np.uint8))
    return out


def sha256_ranges(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(N, 32) uint8: SHA-256(data[s:s+l]) for every (s, l) of ``starts``/``lengths``."""
    out = np.zeros((starts.size, 32), np.uint8)
    if starts.size:
        _sha256_ranges(data, starts.astype(np.int64), lengths.astype(np.int64), out, sha256_ctx())
    return out
