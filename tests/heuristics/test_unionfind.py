"""The one-pass multi-input union (``multi_input_union``) against the two steps it replaces
(``multi_input_pairs`` then ``union_pairs``): the same pairs, merges, records and forest on random inputs
(hypothesis; tests/heuristics/test_clustering.py checks a simulated world's); and ``flatten`` against ``roots``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from heuristics.clustering.unionfind import (
    flatten, forest, multi_input_pairs, multi_input_union, roots, union_pairs,
)


def _two_steps(n, tx, addr, skip, weak):
    parent, size = forest(n)
    ptx, a, b = multi_input_pairs(tx, addr, skip)
    merged, survive, absorb, size_a, size_b, gone = union_pairs(parent, size, a, b)
    records = (ptx[merged], a[merged], b[merged], np.isin(ptx[merged], weak), survive[merged], absorb[merged],
               size_a[merged], size_b[merged], gone[merged])
    return a.size, int((addr < 0).sum()), records, parent, size


def _same(n, tx, addr, skip, weak):
    parent, size = forest(n)
    pairs, unresolved, *records = multi_input_union(parent, size, tx, addr, skip, weak)
    want_pairs, want_unresolved, want, want_parent, want_size = _two_steps(n, tx, addr, skip, weak)
    assert (pairs, unresolved) == (want_pairs, want_unresolved)
    for got, expected in zip(records, want, strict=True):
        assert np.array_equal(got, expected)
    assert np.array_equal(roots(parent), roots(want_parent)) and np.array_equal(size, want_size)
    return records


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(-1, 30)), max_size=120),
       st.sets(st.integers(0, 40)), st.sets(st.integers(0, 40)))
def test_one_pass_equals_pairs_then_union(rows, skip, weak):
    rows.sort(key=lambda r: r[0])  # inputs grouped by transaction; addresses in any order, repeated, unknown
    tx = np.array([r[0] for r in rows], np.int64)
    addr = np.array([r[1] for r in rows], np.int64)
    _same(31, tx, addr, np.array(sorted(skip), np.int64), np.array(sorted(weak), np.int64))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 49), st.integers(0, 49)), max_size=80))
def test_flatten_gives_the_roots_of_every_non_root(pairs):
    parent, size = forest(50)
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    union_pairs(parent, size, a, b)
    want = roots(parent.copy())
    ids, root = flatten(parent)
    assert np.array_equal(parent, want)
    moved = np.flatnonzero(want != np.arange(50))
    assert np.array_equal(ids, moved) and np.array_equal(root, want[moved])
