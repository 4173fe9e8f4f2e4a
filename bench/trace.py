"""Multi-hop forward traces on a big store, cold and warm, against networkx in the same run.

    .venv/bin/python bench/trace.py STORE.duckdb [--seeds 20] [--hops 6] [--min-usd 1000] [--out FILE.json]
                                  [--seeds-from EARLIER.json] [--skip-cold] [--skip-networkx]

Seeds: ``--seeds`` random Bitcoin addresses (reservoir sample, seed ``--sample``, default 42; DuckDB draws a
multi-threaded sample differently from run to run whatever the seed: the seeds drawn are in ``--out``,
to trace again with ``--seeds-from``) that paid out at least
``--min-usd`` in one movement. For each seed, a ``--hops``-hop forward trace with ``min_usd`` as the
value threshold (``Workspace.trace``: address → transaction → address is one hop; money only moves forward
in time; the answer is the Trace with its nodes and edges materialised from the store):

- **cold**: a new process per seed: open the store, resolve the seed, build the in-memory adjacency, trace,
  materialise — wall time from before ``tracer.open`` to the answer;
- **warm**: one process, the store open, the adjacency, the address index and the id → text indexes built
  (two untimed warm-up traces), each seed traced once — the answer (its columns), then also with the
  dictionaries of the JSON form built (``as_json()``); also the walk alone (seed ids given, nothing
  materialised);
- **networkx**: one process loads every flow of the store into an ``nx.DiGraph`` (an edge per src → dst
  pair carrying its largest USD value, grouped in DuckDB; UTXO transactions are nodes, as in ``flows``), then per seed
  ``nx.generic_bfs_edges`` to depth 2 × hops over edges of at least ``min_usd`` (no time order: it reaches
  at least as much as the trace).

Peak memory: each process's ``ru_maxrss``. Results: docs/benchmarks.md, "Tracing".
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pick_seeds(db: str, n: int, min_usd: float, sample: int = 42) -> list[str]:
    import tracer

    ws = tracer.open(db, read_only=True)
    try:
        return [r[0] for r in ws.rows(
            f"""SELECT src FROM (SELECT DISTINCT src FROM flows WHERE chain = 'bitcoin' AND src_id > 0 AND usd >= ?)
                USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(sample)}) ORDER BY src""", [min_usd])]
    finally:
        ws.close()


def _parties(result) -> int:
    """Addresses and accounts reached (transaction nodes apart), as networkx's count below."""
    return result.counts()[1]


def cold(db: str, seed: str, hops: int, min_usd: float) -> dict:
    t = time.perf_counter()
    import tracer

    ws = tracer.open(db, read_only=True)
    result = ws.trace([seed], hops=hops, min_usd=min_usd)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "nodes": _parties(result), "edges": result.counts()[2],
            "truncated": result.truncated, "peak_mb": peak_mb()}


def warm(db: str, seeds: list[str], hops: int, min_usd: float) -> dict:
    import tracer
    from tracer.trace.follow import TraceParams, resolve_seeds

    ws = tracer.open(db, read_only=True)
    for _ in range(2):  # builds the adjacency and the address index (from the second lookup on); not timed
        ws.trace(seeds[:1], hops=hops, min_usd=min_usd)
    runs = []
    for seed in seeds:
        t = time.perf_counter()
        result = ws.trace([seed], hops=hops, min_usd=min_usd)
        answer = time.perf_counter() - t
        result.as_json()  # the dictionaries of the JSON form, built from the answer's columns when asked
        with_dicts = time.perf_counter() - t
        runs.append({"seed": seed, "seconds": answer, "json_seconds": with_dicts, "nodes": _parties(result),
                     "edges": result.counts()[2], "truncated": result.truncated})
    from tracer.trace import follow

    p = TraceParams(hops=hops, min_usd=min_usd)
    for run in runs:  # the walk alone: seed ids resolved beforehand, nothing materialised
        start = resolve_seeds(ws, [run["seed"]])
        t = time.perf_counter()
        reached = _walk(ws, follow, start, p)
        run["walk_seconds"] = time.perf_counter() - t
        run["walk_nodes"] = reached  # parties and transaction nodes
    return {"runs": runs, "peak_mb": peak_mb()}


def _walk(ws, follow, start: dict, p) -> int:
    """The trace's hop loop without materialising (forward, address level)."""
    import numpy as np

    frontier = np.asarray(sorted(start), np.int64)
    reached = follow._Times(True)
    reached.add(frontier, np.full(frontier.size, reached.default))
    seen = set(frontier.tolist())
    edges = 0
    for _ in range(p.hops):
        if not frontier.size:
            break
        step = follow._one_hop(ws, frontier, reached, "out", p)
        edges += step.used.size
        nodes, times = follow._first(step.nodes, step.times, True)
        fresh = np.fromiter((n not in seen for n in nodes.tolist()), bool, nodes.size)
        new = nodes[fresh]
        seen.update(new.tolist())
        reached.add(new, times[fresh])
        frontier = new
        if edges > p.max_edges:
            break
    return len(seen)


def with_networkx(db: str, seeds: list[str], hops: int, min_usd: float) -> dict:
    import duckdb
    import networkx as nx

    t = time.perf_counter()
    con = duckdb.connect(db, read_only=True)
    g = nx.DiGraph()
    cur = con.execute("""SELECT coalesce(src_id, 0), coalesce(dst_id, 0), max(coalesce(usd, -1.0)) FROM flows
                         GROUP BY ALL""")
    while True:
        batch = cur.fetchmany(1_000_000)
        if not batch:
            break
        g.add_edges_from((s, d, {"usd": usd}) for s, d, usd in batch)
    ids = dict(con.execute("SELECT address, address_id FROM addresses WHERE address IN (SELECT unnest(?))",
                           [seeds]).fetchall())
    con.close()
    load = time.perf_counter() - t
    runs = []
    for seed in seeds:
        t = time.perf_counter()
        reached = {ids[seed]}
        for _, node in nx.generic_bfs_edges(
                g, ids[seed], neighbors=lambda n: (m for m, d in g.succ[n].items() if d["usd"] >= min_usd),
                depth_limit=2 * hops):
            reached.add(node)
        runs.append({"seed": seed, "seconds": time.perf_counter() - t,
                     "nodes": sum(1 for n in reached if n > 0)})
    return {"load_seconds": load, "graph_nodes": g.number_of_nodes(), "graph_edges": g.number_of_edges(),
            "runs": runs, "peak_mb": peak_mb()}


def child(mode: str, args: argparse.Namespace, seeds: list[str]) -> dict:
    cmd = [sys.executable, __file__, args.db, "--hops", str(args.hops), "--min-usd", str(args.min_usd),
           "--mode", mode, "--seed-list", json.dumps(seeds)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--sample", type=int, default=42, help="the reservoir sample's seed (42: the recorded runs)")
    ap.add_argument("--hops", type=int, default=6)
    ap.add_argument("--min-usd", type=float, default=1000.0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--seeds-from", type=Path, default=None,
                    help="trace the seeds of an earlier --out file instead of sampling (a before/after comparison)")
    ap.add_argument("--skip-cold", action="store_true", help="no cold runs (a process per seed)")
    ap.add_argument("--skip-networkx", action="store_true", help="no networkx comparison")
    ap.add_argument("--mode", choices=("cold", "warm", "networkx"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seed-list", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        seeds = json.loads(args.seed_list)
        if args.mode == "cold":
            print(json.dumps(cold(args.db, seeds[0], args.hops, args.min_usd)))
        elif args.mode == "warm":
            print(json.dumps(warm(args.db, seeds, args.hops, args.min_usd)))
        else:
            print(json.dumps(with_networkx(args.db, seeds, args.hops, args.min_usd)))
        return
    seeds = json.loads(args.seeds_from.read_text())["seeds"] if args.seeds_from else \
        pick_seeds(args.db, args.seeds, args.min_usd, args.sample)
    colds = [] if args.skip_cold else [child("cold", args, [s]) for s in seeds]
    hot = child("warm", args, seeds)
    nx_ = None if args.skip_networkx else child("networkx", args, seeds)
    med = statistics.median
    report = {
        "store": args.db, "seeds": seeds, "hops": args.hops, "min_usd": args.min_usd,
        "warm_median_s": med(r["seconds"] for r in hot["runs"]),
        "warm_walk_median_s": med(r["walk_seconds"] for r in hot["runs"]),
        "warm_json_median_s": med(r["json_seconds"] for r in hot["runs"]), "warm_peak_mb": hot["peak_mb"],
        "trace_nodes_median": med(r["nodes"] for r in hot["runs"]),
        "truncated": sum(r["truncated"] for r in hot["runs"]), "warm": hot["runs"],
    }
    if colds:
        report.update({"cold_median_s": med(r["seconds"] for r in colds),
                       "cold_peak_mb": max(r["peak_mb"] for r in colds), "cold": colds})
    if nx_ is not None:
        report.update({
            "networkx_load_s": nx_["load_seconds"], "networkx_bfs_median_s": med(r["seconds"] for r in nx_["runs"]),
            "networkx_nodes_median": med(r["nodes"] for r in nx_["runs"]), "networkx_peak_mb": nx_["peak_mb"],
            "networkx_graph": [nx_["graph_nodes"], nx_["graph_edges"]], "networkx": nx_["runs"]})
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("cold", "warm", "networkx", "seeds")}, indent=1))


if __name__ == "__main__":
    main()
