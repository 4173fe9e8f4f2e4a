"""Union-find over integer address ids, compiled with numba: the hot loops of clustering.

Union by the smaller root: the root of every cluster is its smallest address_id, which is therefore the
cluster's id. That id depends only on which addresses a cluster holds — not on the order pairs arrive —
so a full run and any sequence of incremental runs give the same ids, on any machine. Path halving keeps
finds short. The loop also reports, for every pair, whether it joined two clusters and their sizes just
before, which is the evidence ``cluster_links`` keeps (BlockSci's cluster_manager is the model: one tight
pass that emits unions).

A full run and an incremental run both use :func:`union_pairs` on the parent array; a workspace keeps the
array between runs, so a block's pairs cost a few finds each. The forest is int32 while address ids fit
(below 2^31; :func:`forest`), which halves its memory (8 instead of 16 bytes per address id for parent and
size); the kernels take either width and the ids they give are the same.
"""

from __future__ import annotations

import numpy as np
from numba import njit


INT32_IDS = 2**31 - 1  # address ids below this fit the int32 forest


def id_dtype(n: int) -> type:
    """The integer type of a forest over ``n`` address ids (and of its cluster sizes, which are at most ``n``)."""
    return np.int32 if n <= INT32_IDS else np.int64


def forest(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(parent, size) of ``n`` singletons: every id its own root, of size 1."""
    dtype = id_dtype(n)
    return np.arange(n, dtype=dtype), np.ones(n, dtype)


@njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True)
def _merge_record(n: int):
    """Per pair: joined two clusters?, the surviving and absorbed roots, both sizes just before."""
    return (np.zeros(n, np.bool_), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
            np.zeros(n, np.int64))


@njit(cache=True)
def _record(i, ra, rb, size, merged, survive, absorb, size_a, size_b):
    """Record that pair i joins roots ra and rb (the smaller survives) and add the sizes; (lo, hi)."""
    merged[i] = True
    size_a[i] = size[ra]
    size_b[i] = size[rb]
    lo, hi = (ra, rb) if ra < rb else (rb, ra)
    size[lo] += size[hi]
    survive[i] = lo
    absorb[i] = hi
    return lo, hi


@njit(cache=True)
def union_pairs(parent: np.ndarray, size: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Union each pair (a[i], b[i]); return (merged mask, surviving root, absorbed root, size_a, size_b, size of
    the absorbed cluster)."""
    n = a.shape[0]
    merged, survive, absorb, size_a, size_b = _merge_record(n)
    gone = np.zeros(n, np.int64)
    for i in range(n):
        ra = _find(parent, a[i])
        rb = _find(parent, b[i])
        if ra == rb:
            continue
        lo, hi = _record(i, ra, rb, size, merged, survive, absorb, size_a, size_b)
        gone[i] = size_a[i] if hi == ra else size_b[i]
        parent[hi] = lo
    return merged, survive, absorb, size_a, size_b, gone


@njit(cache=True)
def roots(parent: np.ndarray) -> np.ndarray:
    """The root (cluster id) of every element, compressing every path (same dtype as ``parent``)."""
    out = np.empty_like(parent)
    for x in range(parent.shape[0]):
        out[x] = _find(parent, x)
    return out


@njit(cache=True)
def forest_sizes(parent: np.ndarray) -> np.ndarray:
    """``sizes(roots(parent))`` without the array of roots (4–8 bytes per id fewer at a chain's scale):
    each element's root found (compressing its path) and counted in ``parent``'s dtype."""
    out = np.zeros_like(parent)
    for x in range(parent.shape[0]):
        out[_find(parent, x)] += 1
    return out


@njit(cache=True, inline="always")
def sort_head(vals: np.ndarray, m: int) -> None:
    """Sort ``vals[:m]`` in place: insertion sort for the few values most transactions have, numpy's sort
    beyond 24."""
    if m > 24:
        vals[:m].sort()
        return
    for i in range(1, m):
        v = vals[i]
        p = i - 1
        while p >= 0 and vals[p] > v:
            vals[p + 1] = vals[p]
            p -= 1
        vals[p + 1] = v


@njit(cache=True, inline="always")
def _known_sorted(addr: np.ndarray, s: int, e: int, buf: np.ndarray) -> int:
    """The known addresses (≥ 0) of inputs ``s`` to ``e`` into ``buf``, ascending; how many."""
    m = 0
    for i in range(s, e):
        if addr[i] >= 0:
            buf[m] = addr[i]
            m += 1
    sort_head(buf, m)
    return m


@njit(cache=True)
def multi_input_pairs(tx: np.ndarray, addr: np.ndarray, skip: np.ndarray):
    """Common-input pairs from inputs grouped by transaction (``tx`` non-decreasing): for each transaction
    not in ``skip`` (sorted tx ids, e.g. CoinJoins) with two or more distinct known addresses (``addr`` ≥
    0), the pairs (smallest address, other address), others ascending. Returns (tx_id, a, b)."""
    bound, _, longest = _pair_bound(tx, addr, skip)  # the arrays sized once: no reallocation in the loop
    n = tx.shape[0]
    out_tx = np.empty(bound, np.int64)
    out_a = np.empty(bound, np.int64)
    out_b = np.empty(bound, np.int64)
    buf = np.empty(longest, np.int64)
    k = 0
    s = 0
    j = 0  # position in skip
    while s < n:
        t = tx[s]
        e = s
        while e < n and tx[e] == t:
            e += 1
        while j < skip.shape[0] and skip[j] < t:
            j += 1
        if (j >= skip.shape[0] or skip[j] != t) and e - s > 1:
            m = _known_sorted(addr, s, e, buf)
            if m > 1:
                for i in range(1, m):
                    if buf[i] != buf[i - 1]:
                        out_tx[k] = t
                        out_a[k] = buf[0]
                        out_b[k] = buf[i]
                        k += 1
        s = e
    return out_tx[:k], out_a[:k], out_b[:k]


@njit(cache=True)
def find_all(parent: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The roots of ``xs``."""
    out = np.empty(xs.shape[0], np.int64)
    for i in range(xs.shape[0]):
        out[i] = _find(parent, xs[i])
    return out


@njit(cache=True, nogil=True)
def _pair_bound(tx: np.ndarray, addr: np.ndarray, skip: np.ndarray):
    """For :func:`multi_input_union`: at most how many pairs the transactions give (known inputs − 1 per
    transaction not skipped), how many inputs have no known address, and the most inputs of a transaction."""
    n = tx.shape[0]
    bound = 0
    unresolved = 0
    longest = 1
    s = 0
    j = 0
    while s < n:
        t = tx[s]
        e = s
        known = 0
        while e < n and tx[e] == t:
            if addr[e] >= 0:
                known += 1
            e += 1
        unresolved += e - s - known
        longest = max(longest, e - s)
        while j < skip.shape[0] and skip[j] < t:
            j += 1
        if known > 1 and (j >= skip.shape[0] or skip[j] != t):
            bound += known - 1
        s = e
    return bound, unresolved, longest


@njit(cache=True, nogil=True)
def multi_input_union(parent: np.ndarray, size: np.ndarray, tx: np.ndarray, addr: np.ndarray, skip: np.ndarray,
                      weak: np.ndarray):
    """:func:`multi_input_pairs` then :func:`union_pairs` in one pass, for multi-input alone: each pair is
    unioned as it is found and only the pairs that joined two clusters are kept (the evidence), so neither
    the pairs nor a record per pair is materialised — the same pairs in the same order, the same forest and
    the same merges as the two steps. Every array is allocated once at its final size (a bound counted
    first): on a 2-core VM fresh memory costs ~0.1 s per 300 MB touched, as much as the loop. ``weak``:
    sorted tx ids whose links are weak (Stonewall). Returns (pairs, inputs without a known address, then per
    merge: tx_id, a, b, weak?, surviving root, absorbed root, size_a, size_b, the absorbed cluster's size);
    ids and sizes in the forest's dtype."""
    bound, unresolved, longest = _pair_bound(tx, addr, skip)
    ids = parent.dtype
    m_tx = np.empty(bound, np.int64)
    m_a = np.empty(bound, ids)
    m_b = np.empty(bound, ids)
    m_weak = np.empty(bound, np.bool_)
    m_survive = np.empty(bound, ids)
    m_absorb = np.empty(bound, ids)
    m_size_a = np.empty(bound, size.dtype)
    m_size_b = np.empty(bound, size.dtype)
    m_gone = np.empty(bound, size.dtype)
    buf = np.empty(longest, np.int64)
    n = tx.shape[0]
    k = 0
    pairs = 0
    s = 0
    j = 0  # position in skip
    w = 0  # position in weak
    while s < n:
        t = tx[s]
        e = s + 1
        while e < n and tx[e] == t:
            e += 1
        if e - s > 1:
            while j < skip.shape[0] and skip[j] < t:
                j += 1
            if j >= skip.shape[0] or skip[j] != t:
                m = _known_sorted(addr, s, e, buf)
                if m > 1:
                    while w < weak.shape[0] and weak[w] < t:
                        w += 1
                    is_weak = w < weak.shape[0] and weak[w] == t
                    first = buf[0]
                    for i in range(1, m):
                        if buf[i] == buf[i - 1]:
                            continue
                        pairs += 1
                        ra = _find(parent, first)
                        rb = _find(parent, buf[i])
                        if ra == rb:
                            continue
                        sa = size[ra]
                        sb = size[rb]
                        lo, hi = (ra, rb) if ra < rb else (rb, ra)
                        size[lo] += size[hi]
                        parent[hi] = lo
                        m_tx[k] = t
                        m_a[k] = first
                        m_b[k] = buf[i]
                        m_weak[k] = is_weak
                        m_survive[k] = lo
                        m_absorb[k] = hi
                        m_size_a[k] = sa
                        m_size_b[k] = sb
                        m_gone[k] = sa if hi == ra else sb
                        k += 1
        s = e
    return (pairs, unresolved, m_tx[:k], m_a[:k], m_b[:k], m_weak[:k], m_survive[:k], m_absorb[:k],
            m_size_a[:k], m_size_b[:k], m_gone[:k])


@njit(cache=True, nogil=True)
def flatten(parent: np.ndarray):
    """Point every element straight at its root (in place), and return (ids, root) of the elements that are
    not roots, ids ascending: a full run's ``cluster_members`` rows, without an array per element."""
    n = parent.shape[0]
    k = 0
    for x in range(n):
        r = _find(parent, x)
        parent[x] = r
        if r != x:
            k += 1
    ids = np.empty(k, parent.dtype)
    root = np.empty(k, parent.dtype)
    j = 0
    for x in range(n):
        if parent[x] != x:
            ids[j] = x
            root[j] = parent[x]
            j += 1
    return ids, root
