"""One-hop lookups through the workspace's in-memory adjacency (Workspace.hop) on a big store.

    .venv/bin/python bench/graph_hop.py STORE.duckdb [--frontiers 20] [--size 1000]

Opens the store read-only, builds the sorted arrays once (cold, timed), then times ``ws.hop`` on
``--frontiers`` random frontiers of ``--size`` source ids drawn (seed 8) from the flows' src_id — the
same question bench/graph_scale.py (b) asks of SQL. Results: docs/benchmarks.md, "Money graph at scale".
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import tracer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--frontiers", type=int, default=20)
    ap.add_argument("--size", type=int, default=1000)
    args = ap.parse_args()
    ws = tracer.open(args.db, read_only=True)
    n = ws.store.scalar("SELECT count(*) FROM flows")
    t = time.perf_counter()
    ws.hop([1], "out")
    build = time.perf_counter() - t
    ids = np.array([r[0] for r in ws.rows(
        "SELECT DISTINCT src_id FROM flows WHERE src_id IS NOT NULL USING SAMPLE 200000 ROWS")])
    rng = np.random.default_rng(8)
    times, rows = [], []
    for _ in range(args.frontiers):
        frontier = rng.choice(ids, args.size, replace=False)
        t = time.perf_counter()
        rows.append(len(ws.hop(frontier, "out")))
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"flows={n:,} cold build={build:.2f} s, warm hop of {args.size:,} nodes: median {np.median(times) * 1000:.2f} ms "
          f"(min {min(times) * 1000:.2f}, max {max(times) * 1000:.2f}), rows median {int(np.median(rows)):,}, "
          f"peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
