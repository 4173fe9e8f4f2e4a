"""Clustering at scale: moneytrail's whole step against networkx and scipy on the same pairs, and one
block at a time.

    .venv/bin/python bench/cluster.py --scale 7e6          # simulate a world (≥ 10^7 inputs; ~50 GB free disk), then measure
    .venv/bin/python bench/cluster.py --db world.duckdb    # measure on an existing store (copied first)

Each contender runs in its own process so its peak memory (ru_maxrss) is its own (the parent stays small:
on Linux a child's ru_maxrss counts from the parent's resident size when it was forked):
- moneytrail as a process: ``tracer cluster --full --json`` (interpreter start, imports, store open included);
- moneytrail in-process: ``Workspace.cluster(full=True)`` — CoinJoin flags, pairs out of the store, numba
  union-find, ``cluster_members`` and ``cluster_evidence`` written and committed — with its phases;
- networkx: the same pairs (read from the store by moneytrail's own pair query, not timed) into a Graph,
  then connected_components;
- scipy: the same pairs into a CSR matrix, then ``scipy.sparse.csgraph.connected_components``;
- the floor: the store's reads and writes of the step alone (:func:`run_floor`), the least a step that
  reads its pairs out of DuckDB and writes its members and evidence back could take on this machine;
- scipy in the step (:func:`run_scipy_step`): the same pairs read out of the store, scipy's components,
  the members written and committed — the like-for-like peer, without the evidence scipy cannot give.
Then one block at a time: the last (reps + 1) × 3,000 transactions are taken out, the rest clustered, and
each 3,000 put back in turn ("the block is ingested") and ``Workspace.cluster()`` timed until its commit —
the first as warm-up (it builds the member lists), the rest measured (wall and CPU time of the process).
Each block's ingest ends with an explicit ``CHECKPOINT`` (untimed), as ``tracer ingest`` is to end with its
own: otherwise DuckDB's automatic checkpoint — the write-ahead log of the ingested rows passing 16 MB —
lands on the next cluster run's commit, a cost of persisting the ingest, not of clustering the block.
``--in-place`` measures on the given file itself (a scratch copy: the one-block runs take rows out and put
them back) instead of copying it first (a 10^7-input world is ~7 GB). ``--networkx-timeout S`` bounds the
networkx run (reported as not finished within S seconds). ``--tile K`` first appends K - 1 copies of the
store's Bitcoin transactions, inputs, outputs and addresses with shifted tx and address ids and renamed txids
and addresses (``sha256(txid || ':k')``, ``address || '~k'``): K disjoint copies of one simulated economy,
for K times the inputs when a simulated world that big cannot be built (it is a scale test of the step's
cost per row, not a new world: its clusters are the original's K times over).
Results: docs/benchmarks.md ("Clustering").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACER = [sys.executable, "-m", "tracer.cli"]


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


def tile(db: str, k: int) -> dict:
    """Append k - 1 disjoint copies of the Bitcoin tables (see the module doc); return the new counts."""
    import tracer
    from tracer.store import graph

    ws = tracer.open(db)
    con = ws.store.con
    txs, addrs = (int(v) for v in con.execute(
        "SELECT (SELECT max(tx_id) FROM transactions), (SELECT max(address_id) FROM addresses)").fetchone())
    with ws.store.transaction():
        for c in range(1, k):
            dt, da, tag = c * txs, c * addrs, f"':{c}'"
            con.execute(f"""INSERT INTO addresses SELECT * REPLACE (address || '~{c}' AS address, address_id + {da} AS address_id,
                                {graph.party_key('chain', f"address || '~{c}'")} AS party_key)
                            FROM addresses WHERE chain = 'bitcoin' AND address_id <= {addrs} ORDER BY address_id""")
            con.execute(f"""INSERT INTO transactions SELECT * REPLACE (sha256(txid || {tag}) AS txid, sha256(wtxid || {tag}) AS wtxid,
                                tx_id + {dt} AS tx_id) FROM transactions WHERE chain = 'bitcoin' AND tx_id <= {txs} ORDER BY tx_id""")
            con.execute(f"""INSERT INTO inputs SELECT * REPLACE (sha256(txid || {tag}) AS txid, sha256(prev_txid || {tag}) AS prev_txid,
                                address || '~{c}' AS address, address_id + {da} AS address_id, tx_id + {dt} AS tx_id,
                                {graph.txid_key(f"sha256(prev_txid || {tag})")} AS prev_txkey)
                            FROM inputs WHERE chain = 'bitcoin' AND tx_id <= {txs} ORDER BY tx_id, n""")
            con.execute(f"""INSERT INTO outputs SELECT * REPLACE (sha256(txid || {tag}) AS txid, address || '~{c}' AS address,
                                sha256(spent_by_txid || {tag}) AS spent_by_txid, address_id + {da} AS address_id,
                                tx_id + {dt} AS tx_id, {graph.txid_key(f"sha256(txid || {tag})")} AS txkey)
                            FROM outputs WHERE chain = 'bitcoin' AND tx_id <= {txs} ORDER BY tx_id, n""")
        con.execute("UPDATE id_counters SET last = ? WHERE name = 'utxo_tx'", [k * txs])
        con.execute("UPDATE id_counters SET last = ? WHERE name = 'party'", [k * addrs])
    con.execute("CHECKPOINT")
    counts = {t: int(ws.store.scalar(f"SELECT count(*) FROM {t} WHERE chain = 'bitcoin'"))
              for t in ("transactions", "inputs", "outputs", "addresses")}
    ws.close()
    return counts


def run_ours(db: str, runs: int = 1) -> dict:
    """The whole step in-process, ``runs`` times after a warm-up run: the median and every run."""
    import tracer

    ws = tracer.open(db)
    inputs = int(ws.store.scalar("SELECT count(*) FROM inputs"))
    ws.cluster(chain="bitcoin", full=True)  # compiles/loads the numba kernels and warms the file cache
    measured = []
    for _ in range(runs):
        t, cpu = time.perf_counter(), time.process_time()
        r = ws.cluster(full=True)
        measured.append({"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - cpu,
                         "phases": r.seconds})
    ws.close()
    mid = sorted(measured, key=lambda m: m["seconds"])[len(measured) // 2]
    return {**mid, "runs": measured, "peak_mb": peak_mb(), "inputs": inputs, "pairs": r.pairs, "merges": r.merges,
            "clusters": r.clusters, "addresses": r.addresses, "transactions": r.transactions}


def run_floor(db: str, runs: int = 3) -> dict:
    """The store's own share of the step, each part timed alone (median of ``runs``), no clustering done:
    - read: the columns any multi-input clustering with a CoinJoin guard must read, into numpy — the inputs'
      tx_id, address id and value, and the outputs' tx_id, value and script type (moneytrail's own scans);
    - write: the rows the evidence contract requires — this world's ``cluster_evidence`` and
      ``cluster_members`` rows (the last full run's, copied to Arrow first, untimed) — inserted into empty
      tables of the same columns in the same store file, and committed.
    Run after ``ours`` (it needs the run's rows). The tables are dropped again."""
    import tracer
    from heuristics.clustering.coinjoin import read_inputs, read_outputs

    ws = tracer.open(db)
    store, con = ws.store, ws.store.con
    tables = {t: store.arrow(f"SELECT * FROM {t} WHERE chain = 'bitcoin'") for t in ("cluster_evidence", "cluster_members")}
    read, write = [], []
    for _ in range(runs):
        t = time.perf_counter()
        read_inputs(store, "bitcoin", 0)
        read_outputs(store, "bitcoin", 0)
        read.append(time.perf_counter() - t)
        for name in tables:
            con.execute(f"CREATE OR REPLACE TABLE _floor_{name} AS SELECT * FROM {name} LIMIT 0")
        con.execute("CHECKPOINT")
        t = time.perf_counter()
        with store.transaction():
            for name, rows in tables.items():
                with store.view("_floor_rows", rows):
                    con.execute(f"INSERT INTO _floor_{name} SELECT * FROM _floor_rows")
        write.append(time.perf_counter() - t)
    for name in tables:
        con.execute(f"DROP TABLE _floor_{name}")
    ws.close()
    read_s, write_s = statistics.median(read), statistics.median(write)
    return {"read_seconds": read_s, "write_seconds": write_s, "seconds": read_s + write_s, "read_runs": read,
            "write_runs": write,
            "rows_written": {name: rows.num_rows for name, rows in tables.items()},
            "values_written": sum(rows.num_rows * rows.num_columns for rows in tables.values())}


def run_process(db: str) -> dict:
    t = time.perf_counter()
    out = subprocess.run([*TRACER, "--db", db, "cluster", "--full", "--json"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "clusters": r["clusters"], "merges": r["merges"]}


def run_networkx(db: str) -> dict:
    import networkx as nx

    a, b, n = pairs_of(db)
    t = time.perf_counter()
    g = nx.Graph()
    g.add_nodes_from(range(1, n))
    g.add_edges_from(zip(a.tolist(), b.tolist(), strict=True))
    comps = sum(1 for _ in nx.connected_components(g))
    return {"seconds": time.perf_counter() - t, "peak_mb": peak_mb(), "components": comps}


def run_scipy(db: str, runs: int = 1) -> dict:
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b, n = pairs_of(db)
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        m = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n)).tocsr()
        comps, _ = connected_components(m, directed=False)
        seconds.append(time.perf_counter() - t)
        del m
    return {"seconds": statistics.median(seconds), "runs": seconds, "peak_mb": peak_mb(), "components": int(comps) - 1}


def run_scipy_step(db: str, runs: int = 1) -> dict:
    """scipy in moneytrail's place in the same store-backed step, as far as it can be: the same pairs out of
    the store (moneytrail's input reader and pair kernel, the CoinJoin flags as the last run stored them:
    scipy has neither a pair finder nor CoinJoin rules), a CSR matrix, ``connected_components``, and the
    members written (each address that is not its component's smallest id, with that id, as
    ``cluster_members`` holds them) into a scratch table of the store, committed. No evidence: scipy's
    components carry no record of which pair joined what. The median of ``runs``."""
    import numpy as np
    import pyarrow as pa
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    import tracer
    from heuristics.clustering.cluster import MultiInput
    from heuristics.clustering.coinjoin import read_inputs

    ws = tracer.open(db)
    store, con = ws.store, ws.store.con
    con.execute("CREATE OR REPLACE TABLE _scipy_members AS SELECT * FROM cluster_members LIMIT 0")
    con.execute("CHECKPOINT")
    seconds, rows = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        with store.transaction():
            con.execute("DELETE FROM _scipy_members")
            n = int(store.scalar("SELECT max(address_id) FROM addresses")) + 1
            inputs = read_inputs(store, "bitcoin", 0)
            flags = store.arrow("SELECT tx_id, flag FROM tx_flags WHERE chain = 'bitcoin'")
            _, a, b, _, _ = MultiInput().pairs(store, "bitcoin", 0, flags, inputs)
            m = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n)).tocsr()
            _, labels = connected_components(m, directed=False)
            first = np.full(int(labels.max()) + 1, n, np.int64)  # a component's id: its smallest address id
            np.minimum.at(first, labels, np.arange(n))
            cluster_of = first[labels]
            moved = np.flatnonzero(cluster_of != np.arange(n))
            rows = int(moved.size)
            with store.view("_rows", pa.table({"id": moved, "cluster_id": cluster_of[moved]})):
                con.execute("INSERT INTO _scipy_members SELECT 'bitcoin', id, cluster_id, 0 FROM _rows")
        seconds.append(time.perf_counter() - t)
        del m, labels, cluster_of, moved
    differ = int(store.scalar("""SELECT count(*) FROM ((SELECT address_id, cluster_id FROM _scipy_members)
                                  EXCEPT (SELECT address_id, cluster_id FROM cluster_members WHERE chain = 'bitcoin'))"""))
    con.execute("DROP TABLE _scipy_members")
    ws.close()
    return {"seconds": statistics.median(seconds), "runs": seconds, "peak_mb": peak_mb(), "members_written": rows,
            "members_not_in_ours": differ}


def run_incremental(db: str, block: int, reps: int) -> dict:
    import tracer

    ws = tracer.open(db)
    store = ws.store
    top = int(store.scalar("SELECT max(tx_id) FROM transactions WHERE chain = 'bitcoin'"))
    cuts = [top - block * k for k in range(reps + 1, -1, -1)]  # ascending; the last is top
    tables = ("transactions", "inputs", "outputs")
    with store.transaction():
        for t in tables:
            store.con.execute(f"CREATE OR REPLACE TABLE _held_{t} AS SELECT * FROM {t} WHERE chain = 'bitcoin' AND tx_id > ?",
                              [cuts[0]])
            store.con.execute(f"DELETE FROM {t} WHERE chain = 'bitcoin' AND tx_id > ?", [cuts[0]])
    ws.cluster(full=True)
    store.con.execute("CHECKPOINT")
    runs = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        with store.transaction():  # the block is ingested
            for t in tables:
                store.con.execute(f"INSERT INTO {t} SELECT * FROM _held_{t} WHERE tx_id > ? AND tx_id <= ?", [lo, hi])
        store.con.execute("CHECKPOINT")  # the ingest persists its own rows (untimed)
        t0, c0 = time.perf_counter(), time.process_time()
        r = ws.cluster()
        runs.append({"ms": (time.perf_counter() - t0) * 1000, "cpu_ms": (time.process_time() - c0) * 1000,
                     "transactions": r.transactions, "pairs": r.pairs, "merges": r.merges,
                     "phases_ms": {k: round(v * 1000, 2) for k, v in r.seconds.items()}})
    ws.close()
    measured = runs[1:]
    return {"warmup": runs[0], "median_ms": statistics.median(r["ms"] for r in measured),
            "median_cpu_ms": statistics.median(r["cpu_ms"] for r in measured), "runs": measured}


def child(kind: str, db: str, *extra: str, timeout: float | None = None) -> dict:
    try:
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--db", db, *extra],
                             capture_output=True, text=True, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"finished": False, "timeout_seconds": timeout}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db")
    ap.add_argument("--scale", default="7e6")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip-networkx", action="store_true")
    ap.add_argument("--networkx-timeout", type=float)
    ap.add_argument("--in-place", action="store_true")
    ap.add_argument("--tile", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="measured runs of ours, floor and scipy (medians reported)")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        result = {"ours": lambda: run_ours(args.db, args.runs), "process": lambda: run_process(args.db),
                  "networkx": lambda: run_networkx(args.db), "scipy": lambda: run_scipy(args.db, args.runs),
                  "floor": lambda: run_floor(args.db, args.runs),
                  "scipy_step": lambda: run_scipy_step(args.db, args.runs),
                  "incremental": lambda: run_incremental(args.db, args.block, args.reps),
                  "tile": lambda: tile(args.db, args.tile)}[args.child]()
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache" if (ROOT / ".cache").exists() else None) as tmp:
        db = str(Path(tmp) / "world.duckdb")
        if args.db and args.in_place:
            db = args.db
        elif args.db:
            shutil.copyfile(args.db, db)
        else:
            t = time.perf_counter()
            subprocess.run([*TRACER, "--db", db, "simulate", "--seed", str(args.seed), "--scale", args.scale,
                            "--truth", str(Path(tmp) / "truth.json")], check=True)
            print(f"simulated --scale {args.scale} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        subprocess.run([*TRACER, "--db", db, "info"], check=True, capture_output=True, cwd=ROOT)  # migrate first
        results = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}}
        if args.tile > 1:
            # in a child too: on Linux a child's ru_maxrss starts from its parent's resident size at the fork
            t = time.perf_counter()
            results["tiled"] = {"copies": args.tile, **child("tile", db, "--tile", str(args.tile)),
                                "seconds": time.perf_counter() - t}
            print("tiled", results["tiled"], file=sys.stderr, flush=True)
        # networkx last: it is the long one, and the one-block runs leave the store's rows (and so its pairs)
        # as they were
        one_block = ("--block", str(args.block), "--reps", str(args.reps))
        for kind in ("process", "ours", "floor", "scipy", "scipy_step", "incremental", *(() if args.skip_networkx else ("networkx",))):
            results[kind] = child(kind, db, *(one_block if kind == "incremental" else ("--runs", str(args.runs))),
                                  timeout=args.networkx_timeout if kind == "networkx" else None)
            print(kind, results[kind], os.getloadavg(), file=sys.stderr, flush=True)
        results["machine"]["load_after"] = os.getloadavg()
        results["vs_scipy"] = results["ours"]["seconds"] / results["scipy"]["seconds"]
        # the store's own reads and writes alone, against scipy: the least any store-backed step could take
        results["floor_vs_scipy"] = results["floor"]["seconds"] / results["scipy"]["seconds"]
        # like for like: scipy in the same store-backed step (without the evidence it cannot produce)
        results["vs_scipy_step"] = results["ours"]["seconds"] / results["scipy_step"]["seconds"]
        if results.get("networkx", {}).get("finished", True) is False:
            results["vs_networkx_at_least"] = args.networkx_timeout / results["ours"]["seconds"]
        elif "networkx" in results:
            results["vs_networkx"] = results["networkx"]["seconds"] / results["ours"]["seconds"]
        print(json.dumps(results))


if __name__ == "__main__":
    main()
