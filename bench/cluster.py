"""Clustering at scale: moneytrail's whole step against networkx and scipy on the same pairs, and one
incremental block.

    .venv/bin/python bench/cluster.py --scale 4e6          # simulate a world (≥ 10^7 inputs), then measure
    .venv/bin/python bench/cluster.py --db world.duckdb    # measure on an existing store (copied first)

Each contender runs in its own process so its peak memory (ru_maxrss) is its own:
- moneytrail: ``tracer cluster --full`` as the library runs it — CoinJoin flags, pairs out of the store,
  numba union-find, ``clusters`` and ``cluster_links`` written;
- networkx: the same pairs (read from the store by moneytrail's own pair query, not timed) into a Graph,
  then connected_components;
- scipy: the same pairs into a CSR matrix, then ``scipy.sparse.csgraph.connected_components``.
Then the last 3,000 transactions are taken out, the rest clustered, the 3,000 put back, and the
incremental run over them timed (warm, in-process, without the summary scan), median of 5.
Results: docs/benchmarks.md ("Clustering").
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pairs_of(db: str):
    """The multi-input pairs moneytrail clusters on (after its CoinJoin flags), as numpy arrays."""
    import numpy as np

    import tracer
    from heuristics.clustering.cluster import MultiInput

    ws = tracer.open(db, read_only=True)
    sql, params = MultiInput().pairs_sql("bitcoin", 0)
    t = ws.store.arrow(f"SELECT a, b FROM ({sql})", params)
    n = int(ws.store.scalar("SELECT max(address_id) FROM addresses")) + 1
    ws.close()
    return t["a"].to_numpy().astype(np.int64), t["b"].to_numpy().astype(np.int64), n


def run_ours(db: str) -> dict:
    import tracer

    ws = tracer.open(db)
    inputs = int(ws.store.scalar("SELECT count(*) FROM inputs"))
    t = time.perf_counter()
    r = ws.cluster(full=True)
    seconds = time.perf_counter() - t
    ws.close()
    return {"seconds": seconds, "peak_mb": peak_mb(), "inputs": inputs, "pairs": r.pairs, "merges": r.merges,
            "clusters": r.clusters, "addresses": r.addresses, "transactions": r.transactions}


def run_networkx(db: str) -> dict:
    import networkx as nx

    a, b, n = pairs_of(db)
    t = time.perf_counter()
    g = nx.Graph()
    g.add_nodes_from(range(1, n))
    g.add_edges_from(zip(a.tolist(), b.tolist(), strict=True))
    comps = sum(1 for _ in nx.connected_components(g))
    return {"seconds": time.perf_counter() - t, "peak_mb": peak_mb(), "components": comps}


def run_scipy(db: str) -> dict:
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b, n = pairs_of(db)
    t = time.perf_counter()
    m = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n)).tocsr()
    comps, _ = connected_components(m, directed=False)
    return {"seconds": time.perf_counter() - t, "peak_mb": peak_mb(), "components": int(comps) - 1}


def run_incremental(db: str, block: int, reps: int) -> dict:
    import tracer

    times = []
    for _ in range(reps):
        ws = tracer.open(db)
        top = int(ws.store.scalar("SELECT max(tx_id) FROM transactions"))
        cut = top - block
        with ws.store.transaction():
            for t in ("transactions", "inputs", "outputs"):
                ws.store.con.execute(f"CREATE OR REPLACE TABLE _held_{t} AS SELECT * FROM {t} WHERE tx_id > ?", [cut])
                ws.store.con.execute(f"DELETE FROM {t} WHERE tx_id > ?", [cut])
        ws.cluster(full=True, summary=False)
        with ws.store.transaction():
            for t in ("transactions", "inputs", "outputs"):
                ws.store.con.execute(f"INSERT INTO {t} SELECT * FROM _held_{t}")
                ws.store.con.execute(f"DROP TABLE _held_{t}")
        t0 = time.perf_counter()
        r = ws.cluster(summary=False)
        times.append(time.perf_counter() - t0)
        ws.close()
    return {"median_ms": statistics.median(times) * 1000, "runs_ms": [round(x * 1000, 1) for x in times],
            "transactions": r.transactions, "pairs": r.pairs, "merges": r.merges}


def child(kind: str, db: str, *extra: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--db", db, *extra],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db")
    ap.add_argument("--scale", default="4e6")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        result = {"ours": lambda: run_ours(args.db), "networkx": lambda: run_networkx(args.db),
                  "scipy": lambda: run_scipy(args.db),
                  "incremental": lambda: run_incremental(args.db, args.block, args.reps)}[args.child]()
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache" if (ROOT / ".cache").exists() else None) as tmp:
        db = str(Path(tmp) / "world.duckdb")
        if args.db:
            shutil.copyfile(args.db, db)
        else:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tracer.cli", "--db", db, "simulate", "--seed", str(args.seed),
                            "--scale", args.scale, "--truth", str(Path(tmp) / "truth.json")], check=True)
            print(f"simulated --scale {args.scale} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        ours = child("ours", db)
        print("moneytrail", ours, file=sys.stderr)
        sp = child("scipy", db)
        print("scipy", sp, file=sys.stderr)
        nxr = child("networkx", db)
        print("networkx", nxr, file=sys.stderr)
        inc = child("incremental", db, "--block", str(args.block), "--reps", str(args.reps))
        print("incremental", inc, file=sys.stderr)
        print(json.dumps({"moneytrail": ours, "scipy": sp, "networkx": nxr, "incremental": inc,
                          "vs_networkx": nxr["seconds"] / ours["seconds"], "vs_scipy": ours["seconds"] / sp["seconds"]}))


if __name__ == "__main__":
    main()
