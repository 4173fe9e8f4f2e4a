"""Every registered typology over a large store: seconds and peak memory, per typology and as one process.

Generic over ``heuristics.typologies.REGISTRY``: typologies merged later are included. The store is a copy
(the original given with ``--copy-from`` is never written: alerts are stored into the copy). Two
measures:

* **in-process, per typology**: a fresh Python process per typology calls the API — ``Context.flows``
  (the load), the detector, and the idempotent write — and reports each part's seconds and the process's
  peak resident memory (``ru_maxrss``);
* **as a process**: ``tracer --db STORE alerts --json`` (every typology in one run, sharing one load of
  the flows), wall seconds and peak resident memory of the child (``os.wait4``).

    .venv/bin/python bench/alerts.py --db .cache/bench/world-3e6.duckdb \
        --copy-from /work/hD/.cache/bench/graph/world-3e6.duckdb [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import tracer
from heuristics.typologies import REGISTRY, make_params, typology
from heuristics.typologies.base import Context, _write, _jsonable
import dataclasses
name = {name!r}
store = tracer.open_store({db!r})
t = typology(name)
p = make_params(name)
ctx = Context(store)
t0 = time.perf_counter()
# the load a detector asks for: run it once to know its chains/kinds (cached), then time the detector alone
found = t.detect(ctx, p)
t1 = time.perf_counter()
ctx2 = Context(store)
keys = list(ctx._flows)
for chains, kinds in keys:
    ctx2.flows(chains, kinds)
t2 = time.perf_counter()
for attr in ("_graph_typologies",):
    ctx2.__dict__.pop(attr, None)
found = t.detect(ctx2, p)
t3 = time.perf_counter()
run = store.begin_run("alerts", name, {{"typologies": {{name: _jsonable(dataclasses.asdict(p))}}, "bench": True}})
with store.transaction():
    new, updated = _write(store, name, found, json.dumps(_jsonable(dataclasses.asdict(p)), sort_keys=True), run.run_id)
run.finish()
t4 = time.perf_counter()
rows = sum(len(v["flow_id"]) for v in ctx._flows.values())
print(json.dumps({{"typology": name, "first_run_s": t1 - t0, "load_s": t2 - t1, "detect_s": t3 - t2,
                  "write_s": t4 - t3, "alerts": found.num_rows, "new": new, "flows_loaded": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def child(db: Path, name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), db=str(db), name=name)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def as_process(db: Path) -> dict:
    tracer_bin = Path(sys.executable).parent / "tracer"
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(tracer_bin), "--db", str(db), "alerts", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tracer alerts failed: {err.strip()}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "result": json.loads(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=ROOT / ".cache" / "bench" / "world-3e6.duckdb")
    ap.add_argument("--copy-from", type=Path, default=None, help="Copy this store to --db first if --db is missing.")
    ap.add_argument("--typologies", default="", help="Comma list (default: every registered typology).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.db.exists():
        if args.copy_from is None:
            raise SystemExit(f"{args.db} does not exist: simulate it (tracer simulate --seed 1 --scale 3e6) or "
                             "give --copy-from")
        shutil.copyfile(args.copy_from, args.db)
    import tracer
    from heuristics.typologies import REGISTRY
    from heuristics.typologies.base import _load

    _load()
    names = [n for n in args.typologies.split(",") if n] or sorted(REGISTRY)
    store = tracer.open_store(args.db)
    flows = dict(store.query("SELECT kind, count(*) FROM flows GROUP BY kind"))
    store.close()
    per = [child(args.db, n) for n in names]
    whole = as_process(args.db)
    report = {"db": str(args.db), "flows": flows, "machine": f"{platform.machine()} {os.cpu_count()} cores, "
              f"{platform.python_version()}", "per_typology": per,
              "process": {k: v for k, v in whole.items() if k != "result"},
              "process_found": whole["result"].get("found")}
    if args.json:
        print(json.dumps(report))
        return
    print(f"store {args.db}: flows {flows} ({sum(flows.values()):,} in all)")
    print(f"  {'typology':16} {'flows read':>11} {'load s':>7} {'detect s':>9} {'write s':>8} {'alerts':>7} {'peak MB':>8}")
    for r in per:
        print(f"  {r['typology']:16} {r['flows_loaded']:11,d} {r['load_s']:7.2f} {r['detect_s']:9.2f} {r['write_s']:8.2f} "
              f"{r['alerts']:7d} {r['peak_rss_mb']:8.0f}")
    print(f"  tracer alerts (all, one process): {whole['seconds']:.1f} s, peak {whole['peak_rss_mb']:.0f} MB, "
          f"found {whole['result'].get('found')}")


if __name__ == "__main__":
    main()
