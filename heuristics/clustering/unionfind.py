"""Union-find over integer address ids, compiled with numba: the hot loop of clustering.

Union by the smaller root: the root of every cluster is its smallest address_id, which is therefore the
cluster's id. That id depends only on which addresses a cluster holds — not on the order pairs arrive —
so a full run and any sequence of incremental runs give the same ids, on any machine. Path halving keeps
finds short. The loop also reports, for every pair, whether it joined two clusters and their sizes just
before, which is the evidence ``cluster_links`` keeps (BlockSci's cluster_manager is the model: one tight
pass that emits unions).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True)
def union_pairs(parent: np.ndarray, size: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Union each pair (a[i], b[i]); return (merged mask, surviving root, absorbed root, size_a, size_b)."""
    n = a.shape[0]
    merged = np.zeros(n, np.bool_)
    survive = np.zeros(n, np.int64)
    absorb = np.zeros(n, np.int64)
    size_a = np.zeros(n, np.int64)
    size_b = np.zeros(n, np.int64)
    for i in range(n):
        ra = _find(parent, a[i])
        rb = _find(parent, b[i])
        if ra == rb:
            continue
        merged[i] = True
        size_a[i] = size[ra]
        size_b[i] = size[rb]
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        parent[hi] = lo
        size[lo] += size[hi]
        survive[i] = lo
        absorb[i] = hi
    return merged, survive, absorb, size_a, size_b


@njit(cache=True)
def roots(parent: np.ndarray) -> np.ndarray:
    """The root (cluster id) of every element, compressing every path."""
    out = np.empty(parent.shape[0], np.int64)
    for x in range(parent.shape[0]):
        out[x] = _find(parent, x)
    return out
