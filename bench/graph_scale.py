"""Benchmark: the money graph at scale (issue #8, "Must show") — ingest into a big store, one-hop frontier
lookups on >= 10^7 flows, and `tracer ingest bitcoin` as a whole process against bitcoinlib.

    .venv/bin/python bench/graph_scale.py [--parts a b c] [--small 1e6] [--big 2.5e6] [--reps 3]
        [--process-reps 5] [--frontiers 20] [--frontier-size 1000] [--baseline CHECKOUT] [--markdown]

Worlds are built once with ``tracer --db W simulate --seed 1 --scale S --truth W.json`` into ``--cache``
(default ``.cache/bench/graph/``) and reused while their ``.done`` marker is there; every measured run
works on a fresh copy of the built file (copied and ``sync``ed before the clock starts), so every
repetition starts from the same state. Data: the real mainnet blocks that ``tracer demo`` ingests
(``fixtures/bitcoin``: blk-heights-0-438.dat and block-*.raw; 445 blocks, 6,975 transactions).

(a) Ingest into an EMPTY store (migrated, nothing else) and into the ``--small`` world, alternating,
    ``--reps`` times each: ``ingest_bitcoin`` timed in its own child process (store open timed apart),
    and the whole ``tracer --db COPY ingest bitcoin FILES --json`` process (``subprocess`` wall).
    Reported: medians, the ratio big/empty (target <= 1.3), peak RSS (``ru_maxrss`` of the child).
(b) On the ``--big`` world (>= 10^7 rows in ``flows``): ``--frontiers`` frontiers of ``--frontier-size``
    distinct random ``src_id``s (seeded; ids that have out-edges, address and transaction nodes alike),
    each timed once after two warm-up frontiers, returning flow_id, src_id, dst_id, amount, time, txid:
    ``IN (SELECT unnest(?))`` with a bound list, a join with a registered Arrow table, an inlined
    literal ``IN (1, 2, …)`` list and one bound parameter per id ``IN (?, ?, …)`` (target: median < 50 ms). The same frontiers on the schema-4 view
    ``flows_v4`` (``src IN (texts)``), a few repetitions, each capped at ``--v4-cap`` seconds. Then the
    remedies: an ART index on flows(src_id) (build time, lookups with default and raised
    ``index_scan_max_count`` / ``index_scan_percentage``), a copy of flows sorted by src_id (build time
    and lookups), and the index's cost on ingest (the real blocks into copies of the big world with and
    without the index, ``--reps`` each). EXPLAIN ANALYZE of each form goes to ``--cache``.
(c) ``tracer ingest bitcoin`` on the real blocks as a whole process into a fresh (non-existent) store,
    start-up and migrations included, against ``python -c`` bitcoinlib (``Block.parse_bytes`` per block,
    txid and the address of every output and input, as bench/bitcoin_parse.py does), ``--process-reps``
    each, alternating; bitcoinlib's in-process parse time comes from the same runs. Then where our
    process spends its time: ``python -X importtime`` (largest imports) and cProfile of the whole CLI run.
    By default every contender runs with compiled modules cached (``PYTHONPYCACHEPREFIX`` in ``--cache``, one
    untimed run each first), as an installed package has them; ``--no-bytecode-cache`` keeps the shell's
    ``PYTHONDONTWRITEBYTECODE``. ``--baseline DIR`` adds another source tree (a worktree of main) as a third
    contender, run with ``PYTHONPATH=DIR``.

Peak memory is each child's ``ru_maxrss`` (``os.wait4``). ``BCL_DATA_DIR`` points into a temporary
folder so bitcoinlib writes nothing in the home directory.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "bitcoin"
FILES = [FIXTURES / "blk-heights-0-438.dat", *sorted(FIXTURES.glob("block-*.raw"))]  # what `tracer demo` ingests
TRACER = Path(sys.executable).with_name("tracer")
NO_ADDRESS_TYPES = ["nonstandard", "multisig"]  # ids, not addresses: left out so the count compares with bitcoinlib
COLUMNS = "flow_id, src_id, dst_id, amount, time, txid"
WARMUP = 2

BITCOINLIB = r"""
import json, sys, time
t0 = time.perf_counter()
from bitcoinlib.blocks import Block
t1 = time.perf_counter()
blocks = []
for name in sys.argv[1:]:
    data = open(name, "rb").read()
    if data[:4] == bytes.fromhex("f9beb4d9"):
        pos = 0
        while pos < len(data):
            size = int.from_bytes(data[pos + 4:pos + 8], "little")
            blocks.append(data[pos + 8:pos + 8 + size])
            pos += 8 + size
    else:
        blocks.append(data)
t2 = time.perf_counter()
txs = addresses = 0
for raw in blocks:
    block = Block.parse_bytes(raw, parse_transactions=True)
    for tx in block.transactions:
        txs += 1
        _ = tx.txid
        for out in tx.outputs:
            addresses += bool(out.address)
        for inp in tx.inputs:
            _ = inp.address
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "read_s": t2 - t1, "parse_s": t3 - t2, "txs": txs, "addresses": addresses}))
"""


# -- helpers -----------------------------------------------------------------------------------------
def run_process(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> dict:
    """Run a whole process; its wall time, CPU time and peak RSS (from wait4), and its stdout."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{stderr[-4000:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024, "stdout": stdout,
            "stderr": stderr}


def child(name: str, args: dict, env: dict, root: Path = ROOT) -> dict:
    """Run one of this script's children (``root``'s copy of the script and its tracer); its JSON result
    plus the process's own figures."""
    if root != ROOT:
        env = dict(env, PYTHONPATH=str(root))  # ahead of the editable install of this checkout
    script = root / "bench" / Path(__file__).name
    r = run_process([sys.executable, str(script), "--child", name, "--child-args", json.dumps(args)], env=env)
    res = json.loads(r["stdout"].strip().splitlines()[-1])
    res.update(process_wall=r["wall"], process_cpu=r["cpu"], rss_mb=r["rss_mb"])
    return res


def copy_store(src: Path, dst: Path) -> None:
    """A fresh copy of a built store (and its WAL, if any), written out before the clock starts."""
    for suffix in ("", ".wal"):
        target = Path(str(dst) + suffix)
        target.unlink(missing_ok=True)
        if Path(str(src) + suffix).exists():
            shutil.copyfile(str(src) + suffix, target)
    os.sync()


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def machine() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = {}
    for dist in ("duckdb", "pyarrow", "numpy", "bitcoinlib"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "tracer"], capture_output=True, text=True).stdout
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem": mem.split(":")[1].strip(), "python": platform.python_version(),
            "versions": versions, "commit": commit, "tracer_dirty": bool(dirty.strip()),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def world(cache: Path, scale: str, env: dict) -> tuple[Path, dict]:
    """The simulated world of ``scale`` (seed 1), built once; its path and build figures."""
    db = cache / f"world-{scale}.duckdb"
    done = cache / f"world-{scale}.done"
    if done.exists() and db.exists():
        return db, json.loads(done.read_text())
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    print(f"building world {scale} …", flush=True)
    r = run_process([str(TRACER), "--db", str(db), "simulate", "--seed", "1", "--scale", scale, "--truth",
                     str(cache / f"world-{scale}.json"), "--json"], env=env)
    info = {"scale": scale, "wall": r["wall"], "rss_mb": r["rss_mb"], "db_mb": db.stat().st_size / 2**20}
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    for table in ("transactions", "flows", "addresses"):
        info[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    con.close()
    done.write_text(json.dumps(info))
    return db, info


def empty_store(cache: Path) -> Path:
    """A migrated store holding nothing (the template of the 'empty' runs)."""
    db = cache / "empty.duckdb"
    if not db.exists():
        from tracer.store import Store

        Store(db).close()
    return db


# -- children ----------------------------------------------------------------------------------------
def child_ingest(args: dict) -> dict:
    """ingest_bitcoin of the real blocks into the store at args['db'] (opened first, timed apart)."""
    from tracer.ingest.bitcoin.blocks import ingest_bitcoin
    from tracer.store import Store

    t0 = time.perf_counter()
    store = Store(args["db"])
    w0, c0 = time.perf_counter(), time.process_time()
    if args.get("profile"):
        prof = cProfile.Profile()
        summary = prof.runcall(ingest_bitcoin, store, FILES)
        prof.dump_stats(args["profile"])
    else:
        summary = ingest_bitcoin(store, FILES)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    flows = store.scalar("SELECT count(*) FROM flows")
    c1 = time.perf_counter()
    store.close()
    return {"open_s": w0 - t0, "ingest_s": wall, "ingest_cpu_s": cpu, "close_s": time.perf_counter() - c1,
            "txs": summary.transactions, "flows_after": flows}


def _timed(con, run, frontiers: list) -> tuple[list[float], list[int]]:
    times, rows = [], []
    for fr in frontiers:
        t0 = time.perf_counter()
        n = run(con, fr)
        times.append(time.perf_counter() - t0)
        rows.append(n)
    return times, rows


def q_list(con, fr, table="flows") -> int:
    return con.execute(f"SELECT {COLUMNS} FROM {table} WHERE src_id IN (SELECT unnest(?))",
                       [fr.tolist()]).to_arrow_table().num_rows


def q_arrow(con, fr, table="flows") -> int:
    import pyarrow as pa

    con.register("_frontier", pa.table({"id": fr}))
    try:
        return con.execute(f"SELECT f.flow_id, f.src_id, f.dst_id, f.amount, f.time, f.txid FROM {table} f "
                           "JOIN _frontier r ON f.src_id = r.id").to_arrow_table().num_rows
    finally:
        con.unregister("_frontier")


def q_literal(con, fr, table="flows") -> int:
    ids = ", ".join(str(int(x)) for x in fr)  # integers from the store: safe to inline
    return con.execute(f"SELECT {COLUMNS} FROM {table} WHERE src_id IN ({ids})").to_arrow_table().num_rows


def q_params(con, fr, table="flows") -> int:
    """One bound parameter per id: ``IN (?, ?, …)``."""
    marks = ", ".join("?" * len(fr))
    return con.execute(f"SELECT {COLUMNS} FROM {table} WHERE src_id IN ({marks})", fr.tolist()).to_arrow_table().num_rows


def q_list_ints(con, fr, table="flows") -> int:
    """Diagnostic: the bound-list lookup returning only the integer columns (no txid, amount, time)."""
    return con.execute(f"SELECT flow_id, src_id, dst_id FROM {table} WHERE src_id IN (SELECT unnest(?))",
                       [fr.tolist()]).to_arrow_table().num_rows


FORMS = {"list": q_list, "arrow": q_arrow, "literal": q_literal, "params": q_params, "list-ints": q_list_ints}
PLANNED = {  # EXPLAIN (no ANALYZE) of each form: parse, bind and optimise only
    "list": lambda con, fr, table: con.execute(f"EXPLAIN SELECT {COLUMNS} FROM {table} WHERE src_id IN "
                                                "(SELECT unnest(?))", [fr.tolist()]).fetchall(),
    "literal": lambda con, fr, table: con.execute(f"EXPLAIN SELECT {COLUMNS} FROM {table} WHERE src_id IN "
                                                   f"({', '.join(str(int(x)) for x in fr)})").fetchall(),
}


def _explain(con, sql_run, path: Path) -> float:
    """EXPLAIN ANALYZE of one form; the plan goes to ``path``; returns the total time it reports."""
    text = sql_run()
    path.write_text(text)
    m = re.search(r"Total Time:\s*([0-9.]+)s", text)
    return float(m.group(1)) if m else float("nan")


def child_lookup(args: dict) -> dict:
    """Part (b) on a private copy of the big world: frontiers, the three forms, flows_v4, the remedies."""
    import duckdb
    import numpy as np

    con = duckdb.connect(args["db"])
    out: dict = {"flows": con.execute("SELECT count(*) FROM flows").fetchone()[0]}
    t0 = time.perf_counter()
    ids = con.execute("SELECT DISTINCT src_id FROM flows WHERE src_id IS NOT NULL ORDER BY src_id").fetchnumpy()["src_id"]
    out["distinct_src"] = len(ids)
    out["pick_s"] = time.perf_counter() - t0
    rng = np.random.default_rng(args["seed"])
    size, count = args["size"], args["frontiers"]
    pick = ids[rng.choice(len(ids), size=(count + WARMUP) * size, replace=False)].astype(np.int64)
    frontiers = [np.sort(pick[i * size:(i + 1) * size]) for i in range(count + WARMUP)]
    warm, timed = frontiers[:WARMUP], frontiers[WARMUP:]
    out["address_nodes_share"] = float((pick > 0).mean())
    explain_dir = Path(args["explain_dir"])

    def measure(label: str, table: str = "flows", forms=FORMS) -> None:
        res = {}
        for form, fn in forms.items():
            def run(c, f, fn=fn):
                return fn(c, f, table)

            _timed(con, run, warm)
            times, rows = _timed(con, run, timed)
            res[form] = {"times": times, "median_ms": 1000 * med(times), "rows": rows}
        for form, plan in PLANNED.items():
            times, _ = _timed(con, lambda c, f, plan=plan: plan(c, f, table) and 0, timed)
            res[form]["plan_median_ms"] = 1000 * med(times)
        rows0 = next(iter(res.values()))["rows"]
        assert all(r["rows"] == rows0 for r in res.values()), f"{label}: the forms returned different rows"
        fr = timed[0]
        lit = ", ".join(str(int(x)) for x in fr)
        plans = {
            "list": lambda: con.execute(f"EXPLAIN ANALYZE SELECT {COLUMNS} FROM {table} WHERE src_id IN "
                                        "(SELECT unnest(?))", [fr.tolist()]).fetchall()[0][1],
            "literal": lambda: con.execute(f"EXPLAIN ANALYZE SELECT {COLUMNS} FROM {table} WHERE src_id IN "
                                           f"({lit})").fetchall()[0][1],
        }
        for form, plan in plans.items():
            if form in forms:
                res[form]["explain_total_s"] = _explain(con, plan, explain_dir / f"explain-{label}-{form}.txt")
        out.setdefault("lookups", {})[label] = res
        print(label, {f: round(r["median_ms"], 1) for f, r in res.items()}, file=sys.stderr, flush=True)

    measure("table")
    out["rows_per_frontier"] = {"median": med(out["lookups"]["table"]["list"]["rows"]),
                                "min": min(out["lookups"]["table"]["list"]["rows"]),
                                "max": max(out["lookups"]["table"]["list"]["rows"])}

    # the schema-4 view: the same frontiers by text, a few repetitions, each capped
    v4 = {"times": [], "rows": [], "table_rows": [], "capped": 0}
    for fr in timed[: args["v4_reps"]]:
        texts = [r[0] for r in con.execute("SELECT DISTINCT src FROM flows WHERE src_id IN (SELECT unnest(?))",
                                           [fr.tolist()]).fetchall()]
        timer = threading.Timer(args["v4_cap"], con.interrupt)
        timer.start()
        t0 = time.perf_counter()
        try:
            n = con.execute("SELECT src, dst, amount, time, txid FROM flows_v4 WHERE src IN (SELECT unnest(?))",
                            [texts]).to_arrow_table().num_rows
        except duckdb.InterruptException:
            n = None
            v4["capped"] += 1
        finally:
            timer.cancel()
        v4["times"].append(time.perf_counter() - t0)
        v4["rows"].append(n)
        v4["table_rows"].append(q_list(con, fr))
    v4["median_ms"] = 1000 * med(v4["times"])
    out["v4"] = v4
    print("flows_v4", round(v4["median_ms"]), "ms", file=sys.stderr, flush=True)

    # remedy 1: an ART index on flows(src_id), used or not by each form, then with raised index thresholds
    t0 = time.perf_counter()
    con.execute("CREATE INDEX flows_src_idx ON flows (src_id)")
    con.execute("CHECKPOINT")
    out["index_build_s"] = time.perf_counter() - t0
    out["db_mb_with_index"] = Path(args["db"]).stat().st_size / 2**20
    measure("index-default")
    con.execute("SET index_scan_max_count = 100000")
    con.execute("SET index_scan_percentage = 0.01")
    measure("index-raised")
    con.execute("RESET index_scan_max_count")
    con.execute("RESET index_scan_percentage")
    con.execute("DROP INDEX flows_src_idx")

    # remedy 2: a copy of the lookup columns sorted by src_id (rebuilt periodically; new rows scanned apart)
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE flows_by_src AS SELECT {COLUMNS} FROM flows ORDER BY src_id")
    con.execute("CHECKPOINT")
    out["sorted_build_s"] = time.perf_counter() - t0
    measure("sorted-copy", "flows_by_src")
    t0 = time.perf_counter()
    con.execute("CREATE INDEX flows_by_src_idx ON flows_by_src (src_id)")
    out["sorted_index_build_s"] = time.perf_counter() - t0
    con.execute("SET index_scan_max_count = 100000")
    con.execute("SET index_scan_percentage = 0.01")
    measure("sorted-copy-index-raised", "flows_by_src")
    con.close()
    return out


def child_make_index(args: dict) -> dict:
    """Add the ART index on flows(src_id) to the store at args['db'] (the template of the index runs)."""
    import duckdb

    con = duckdb.connect(args["db"])
    t0 = time.perf_counter()
    con.execute("CREATE INDEX flows_src_idx ON flows (src_id)")
    con.execute("CHECKPOINT")
    con.close()
    return {"index_build_s": time.perf_counter() - t0}


CHILDREN = {"ingest": child_ingest, "lookup": child_lookup, "make-index": child_make_index}


# -- parts -------------------------------------------------------------------------------------------
def ingest_cli(db: Path, env: dict) -> dict:
    r = run_process([str(TRACER), "--db", str(db), "ingest", "bitcoin", *map(str, FILES), "--json", "--no-progress"],
                    env=env)
    summary = json.loads(r["stdout"].strip().splitlines()[-1])
    assert summary["transactions"] == 6975, summary
    return {"wall": r["wall"], "cpu": r["cpu"], "rss_mb": r["rss_mb"], "reported_s": summary.get("seconds")}


def part_a(args, cache: Path, work: Path, env: dict) -> dict:
    small, info = world(cache, args.small, env)
    templates = {"empty": empty_store(cache), "big": small}
    res: dict = {"world": info, "runs": {k: {"inproc": [], "process": []} for k in templates}}
    db = work / "a.duckdb"
    for rep in range(args.reps):
        for label, template in templates.items():
            copy_store(template, db)
            r = child("ingest", {"db": str(db)}, env)
            assert r["txs"] == 6975, r
            res["runs"][label]["inproc"].append(r)
            copy_store(template, db)
            res["runs"][label]["process"].append(ingest_cli(db, env))
            print(f"(a) rep {rep} {label}: ingest_bitcoin {r['ingest_s']:.3f} s, "
                  f"process {res['runs'][label]['process'][-1]['wall']:.3f} s", flush=True)
            if args.baseline:  # the same in-process ingest with the other checkout's tracer, alternating
                copy_store(template, db)
                b = child("ingest", {"db": str(db)}, env, root=args.baseline)
                assert b["txs"] == 6975, b
                res.setdefault("baseline", {"root": str(args.baseline), "runs": {k: [] for k in templates}})
                res["baseline"]["runs"][label].append(b)
                print(f"(a) rep {rep} {label}: baseline ingest_bitcoin {b['ingest_s']:.3f} s", flush=True)
    res["profiles"] = {}
    for label, template in templates.items():  # where the extra time of the big store goes
        copy_store(template, db)
        prof = work / f"a-{label}.prof"
        r = child("ingest", {"db": str(db), "profile": str(prof)}, env)
        res["profiles"][label] = {"ingest_s": r["ingest_s"], **summarize_profile(prof)}
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    return res


def part_b(args, cache: Path, work: Path, env: dict) -> dict:
    big, info = world(cache, args.big, env)
    res: dict = {"world": info}
    db = work / "b.duckdb"
    copy_store(big, db)
    res["lookup"] = child("lookup", {"db": str(db), "seed": args.seed, "size": args.frontier_size,
                                     "frontiers": args.frontiers, "v4_reps": args.v4_reps, "v4_cap": args.v4_cap,
                                     "explain_dir": str(cache)}, env)
    # the index's cost on ingest: the real blocks into copies of the big world with and without it
    indexed = work / "b-indexed.duckdb"
    copy_store(big, indexed)
    res["index_template"] = child("make-index", {"db": str(indexed)}, env)
    res["ingest"] = {"no-index": [], "index": []}
    for rep in range(args.reps):
        for label, template in (("no-index", big), ("index", indexed)):
            copy_store(template, db)
            r = child("ingest", {"db": str(db)}, env)
            res["ingest"][label].append(r)
            print(f"(b) ingest rep {rep} {label}: {r['ingest_s']:.3f} s", flush=True)
    for p in (db, indexed, Path(f"{db}.wal"), Path(f"{indexed}.wal")):
        p.unlink(missing_ok=True)
    return res


def part_c(args, cache: Path, work: Path, env: dict) -> dict:
    res: dict = {"ours": [], "bitcoinlib": [], "baseline": [], "baseline_src": str(args.baseline or "")}
    # --baseline: another source tree of moneytrail (a worktree of main, say), run by the same interpreter
    # with PYTHONPATH pointing at it, as a third contender in the same alternation
    if args.bytecode_cache:
        # as installed: compiled modules cached (pip writes them at install). A shell with
        # PYTHONDONTWRITEBYTECODE=1 would otherwise have every run compile tracer's modules from source, while
        # bitcoinlib's come precompiled from site-packages. One untimed run of each contender fills the cache.
        env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")
    res["bytecode_cache"] = bool(args.bytecode_cache)
    contenders = [("ours", env)] + ([("baseline", dict(env, PYTHONPATH=str(args.baseline)))] if args.baseline else [])
    if args.bytecode_cache:
        for label, cenv in contenders:
            ingest_cli(work / f"warm-{label}.duckdb", cenv)
        run_process([sys.executable, "-c", BITCOINLIB, *map(str, FILES)], env=env)
    for rep in range(args.process_reps):
        for label, cenv in contenders:
            db = work / f"c{rep}-{label}.duckdb"
            os.sync()
            res[label].append(ingest_cli(db, cenv))
            for p in (db, Path(f"{db}.wal")):
                p.unlink(missing_ok=True)
        r = run_process([sys.executable, "-c", BITCOINLIB, *map(str, FILES)], env=env)
        bl = json.loads(r["stdout"].strip().splitlines()[-1])
        assert bl["txs"] == 6975 and bl["addresses"] == 16030, bl
        res["bitcoinlib"].append({**bl, "wall": r["wall"], "cpu": r["cpu"], "rss_mb": r["rss_mb"]})
        base = f", baseline {res['baseline'][-1]['wall']:.3f} s" if args.baseline else ""
        print(f"(c) rep {rep}: ours {res['ours'][-1]['wall']:.3f} s{base}, bitcoinlib {r['wall']:.3f} s", flush=True)
    # the address count of our store, to compare with bitcoinlib's 16,030
    db = work / "c-check.duckdb"
    ingest_cli(db, env)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    res["our_addresses"] = con.execute(
        "SELECT count(*) FROM outputs WHERE address IS NOT NULL AND script_type NOT IN (SELECT unnest(?))",
        [NO_ADDRESS_TYPES]).fetchone()[0]
    con.close()
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    res["profile"] = profile(work, env)
    return res


def summarize_profile(path: Path) -> dict:
    """The project's functions by cumulative time and every function by own time."""
    stats = pstats.Stats(str(path), stream=io.StringIO())
    rows = []
    for func, (_cc, _nc, tt, ct, _callers) in stats.stats.items():
        rows.append({"func": f"{Path(func[0]).name}:{func[1]}({func[2]})", "file": func[0], "tottime": tt,
                     "cumtime": ct})
    ours = [r for r in rows if str(ROOT / "tracer") in r["file"] and "<module>" not in r["func"]]
    return {"total_s": stats.total_tt, "tracer_by_cumtime": sorted(ours, key=lambda r: -r["cumtime"])[:25],
            "by_tottime": sorted(rows, key=lambda r: -r["tottime"])[:20]}


def profile(work: Path, env: dict) -> dict:
    """Where `tracer ingest bitcoin` spends its time: imports (-X importtime) and cProfile of the run."""
    db = work / "p.duckdb"
    cli = ["-m", "tracer.cli", "--db", str(db), "ingest", "bitcoin", *map(str, FILES), "--json", "--no-progress"]
    r = run_process([sys.executable, "-X", "importtime", *cli], env=env)
    imports = []
    for line in r["stderr"].splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            imports.append((int(m.group(2)) / 1e6, int(m.group(1)) / 1e6, len(m.group(3)) // 2, m.group(4)))
    top_level = sorted((i for i in imports if i[2] == 0), reverse=True)[:12]
    heavy = sorted(imports, key=lambda i: -i[1])[:12]
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    prof_path = work / "ingest.prof"
    r2 = run_process([sys.executable, "-m", "cProfile", "-o", str(prof_path), *cli], env=env)
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    return {"import_wall": r["wall"], "imports_top_level": top_level, "imports_self": heavy,
            "import_total_s": sum(i[0] for i in imports if i[2] == 0), "profiled_wall": r2["wall"],
            **summarize_profile(prof_path)}


# -- report ------------------------------------------------------------------------------------------
def report(res: dict, info: dict, loads: tuple) -> list[str]:
    md = [f"Machine: {info['nproc']} cores, {info['cpu']}, {info['mem']} RAM, CPython {info['python']}, "
          f"duckdb {info['versions']['duckdb']}, pyarrow {info['versions']['pyarrow']}, bitcoinlib "
          f"{info['versions']['bitcoinlib']}; commit {info['commit']}"
          f"{' (uncommitted changes under tracer/)' if info['tracer_dirty'] else ''}; {info['date']}; load average "
          f"(1/5/15 min) {loads[0][0]:.2f} / {loads[0][1]:.2f} / {loads[0][2]:.2f} at the start, "
          f"{loads[1][0]:.2f} / {loads[1][1]:.2f} / {loads[1][2]:.2f} at the end."]
    if "a" in res:
        a = res["a"]
        w = a["world"]
        md += ["", f"**(a) ingest of the real blocks** (445 blocks, 6,975 tx) into an empty store and into the "
               f"{w['scale']} world ({w['transactions']:,} transactions, {w['flows']:,} flows, {w['db_mb']:.0f} MB; "
               f"built in {w['wall']:.0f} s, peak {w['rss_mb']:.0f} MB), {len(a['runs']['empty']['inproc'])} runs each:",
               "",
               "| store | ingest_bitcoin median s | runs s | CPU s | store open s | whole process median s | runs s | "
               "CPU s | peak RSS MB (in-process / process) |",
               "|---|---:|---|---:|---:|---:|---|---:|---|"]
        meds = {}
        for label, r in a["runs"].items():
            inproc = [x["ingest_s"] for x in r["inproc"]]
            proc = [x["wall"] for x in r["process"]]
            cpu_in, cpu_proc = med([x["ingest_cpu_s"] for x in r["inproc"]]), med([x["cpu"] for x in r["process"]])
            meds[label] = (med(inproc), med(proc), cpu_in, cpu_proc)
            md.append(f"| {label} | {med(inproc):.3f} | {', '.join(f'{x:.3f}' for x in inproc)} | {cpu_in:.2f} | "
                      f"{med([x['open_s'] for x in r['inproc']]):.3f} | {med(proc):.3f} | "
                      f"{', '.join(f'{x:.3f}' for x in proc)} | {cpu_proc:.2f} | "
                      f"{max(x['rss_mb'] for x in r['inproc']):.0f} / "
                      f"{max(x['rss_mb'] for x in r['process']):.0f} |")
        md += ["", f"Ratio big / empty (target ≤ 1.3): ingest_bitcoin **{meds['big'][0] / meds['empty'][0]:.2f}**, "
               f"whole process **{meds['big'][1] / meds['empty'][1]:.2f}**; by CPU time "
               f"{meds['big'][2] / meds['empty'][2]:.2f} and {meds['big'][3] / meds['empty'][3]:.2f}."]
        if "baseline" in a:
            base = a["baseline"]
            commit = subprocess.run(["git", "-C", base["root"], "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
            bm = {k: (med([x["ingest_s"] for x in v]), med([x["ingest_cpu_s"] for x in v])) for k, v in base["runs"].items()}
            md += ["", f"Baseline `--baseline {base['root']}` (commit {commit}), in-process ingest_bitcoin in the same "
                   "runs, alternating: " + "; ".join(
                       f"{k} median {bm[k][0]:.3f} s (runs {', '.join(f'{t:.3f}' for t in (x['ingest_s'] for x in v))}), CPU "
                       f"{bm[k][1]:.2f} s" for k, v in base["runs"].items())
                   + f"; ratio big / empty **{bm['big'][0] / bm['empty'][0]:.2f}** (CPU {bm['big'][1] / bm['empty'][1]:.2f})."]
        for label, p in a.get("profiles", {}).items():
            md.append(f"cProfile of one ingest_bitcoin into the {label} store ({p['ingest_s']:.2f} s under the "
                      "profiler), tracer functions by cumulative s: "
                      + "; ".join(f"{r['func']} {r['cumtime']:.3f}" for r in p["tracer_by_cumtime"][:14])
                      + "; by own s: " + "; ".join(f"{r['func']} {r['tottime']:.3f}" for r in p["by_tottime"][:8]) + ".")
    if "b" in res:
        b = res["b"]
        lk, w = b["lookup"], b["world"]
        md += ["", f"**(b) one-hop frontier lookup** on the {w['scale']} world: {lk['flows']:,} rows in flows, "
               f"{lk['distinct_src']:,} distinct src_id, store {w['db_mb']:.0f} MB (built in {w['wall']:.0f} s, "
               f"peak {w['rss_mb']:.0f} MB). {len(lk['lookups']['table']['list']['times'])} frontiers (after "
               f"{WARMUP} warm-up ones) of {res['args']['frontier_size']:,} random src ids ({lk['address_nodes_share']:.0%} address nodes, the "
               f"rest transaction nodes), {lk['rows_per_frontier']['median']:,.0f} rows returned per frontier "
               f"(min {lk['rows_per_frontier']['min']:,}, max {lk['rows_per_frontier']['max']:,}); lookup child "
               f"peak RSS {lk['rss_mb']:.0f} MB.",
               "",
               "| layout | bound list `IN (SELECT unnest(?))` ms | Arrow table join ms | literal `IN (1, 2, …)` ms | "
               "`IN (?, ?, …)` ms | bound list, integer columns only ms | planning ms (list / literal) | EXPLAIN ANALYZE s (list / literal) |",
               "|---|---:|---:|---:|---:|---:|---|---|"]
        names = {"table": "flows table (as ingested)", "index-default": "+ ART index on src_id (default thresholds)",
                 "index-raised": "+ ART index, index_scan_max_count 100000, index_scan_percentage 0.01",
                 "sorted-copy": "sorted copy (6 columns, ORDER BY src_id)",
                 "sorted-copy-index-raised": "sorted copy + ART index, raised thresholds"}
        for label, r in lk["lookups"].items():
            cells = " | ".join(f"{r[f]['median_ms']:.1f}" for f in FORMS)
            plan = " / ".join(f"{r[f]['plan_median_ms']:.1f}" for f in PLANNED)
            ex = " / ".join(f"{r[f].get('explain_total_s', float('nan')):.3f}" for f in ("list", "literal"))
            md.append(f"| {names.get(label, label)} | {cells} | {plan} | {ex} |")
        v4 = lk["v4"]
        md += ["", f"flows_v4 (`src IN (texts)`), {len(v4['times'])} frontiers, cap {res['args']['v4_cap']} s: "
               f"median **{v4['median_ms'] / 1000:.2f} s** (runs {', '.join(f'{t:.2f}' for t in v4['times'])} s; "
               f"capped {v4['capped']}; rows {v4['rows']} vs table {v4['table_rows']}) — "
               f"{v4['median_ms'] / lk['lookups']['table']['list']['median_ms']:.0f}× the table's bound-list lookup.",
               f"Index build {lk['index_build_s']:.1f} s (store {w['db_mb']:.0f} → {lk['db_mb_with_index']:.0f} MB); "
               f"sorted copy build {lk['sorted_build_s']:.1f} s, its index {lk['sorted_index_build_s']:.1f} s."]
        ing = b["ingest"]
        n0 = [x["ingest_s"] for x in ing["no-index"]]
        n1 = [x["ingest_s"] for x in ing["index"]]
        md.append(f"Ingest of the real blocks into the {w['scale']} world: without the index median {med(n0):.3f} s "
                  f"({', '.join(f'{x:.3f}' for x in n0)}), with it {med(n1):.3f} s ({', '.join(f'{x:.3f}' for x in n1)})"
                  f": ×{med(n1) / med(n0):.2f}; peak RSS {max(x['rss_mb'] for x in ing['no-index']):.0f} / "
                  f"{max(x['rss_mb'] for x in ing['index']):.0f} MB; store open {med([x['open_s'] for x in ing['no-index']]):.2f}"
                  f" / {med([x['open_s'] for x in ing['index']]):.2f} s.")
    if "c" in res:
        c = res["c"]
        ours = [x["wall"] for x in c["ours"]]
        bl = [x["wall"] for x in c["bitcoinlib"]]
        bl_in = [x["parse_s"] for x in c["bitcoinlib"]]
        cached = ("compiled modules cached (PYTHONPYCACHEPREFIX), one untimed run of each first" if c.get("bytecode_cache")
                  else f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} as in the shell")
        md += ["", f"**(c) whole process** on the real blocks, {len(ours)} runs each, alternating; {cached}:", "",
               "| contender | median s | runs s | CPU s (median) | peak RSS MB |", "|---|---:|---|---:|---:|",
               f"| `tracer ingest bitcoin` (fresh store, start-up included) | {med(ours):.3f} | "
               f"{', '.join(f'{x:.3f}' for x in ours)} | {med([x['cpu'] for x in c['ours']]):.2f} | "
               f"{max(x['rss_mb'] for x in c['ours']):.0f} |",
               *([f"| baseline `tracer ingest bitcoin` ({c['baseline_src']}) | {med([x['wall'] for x in c['baseline']]):.3f}"
                  f" | {', '.join(f'{x:.3f}' for x in [y['wall'] for y in c['baseline']])} | "
                  f"{med([x['cpu'] for x in c['baseline']]):.2f} | {max(x['rss_mb'] for x in c['baseline']):.0f} |"]
                 if c.get("baseline") else []),
               f"| bitcoinlib, `python -c` (imports included) | {med(bl):.3f} | {', '.join(f'{x:.3f}' for x in bl)} | "
               f"{med([x['cpu'] for x in c['bitcoinlib']]):.2f} | {max(x['rss_mb'] for x in c['bitcoinlib']):.0f} |",
               f"| bitcoinlib in-process (parse only, same runs) | {med(bl_in):.3f} | "
               f"{', '.join(f'{x:.3f}' for x in bl_in)} | | |",
               "", f"Ratio (target ≥ 10×): whole process **{med(bl) / med(ours):.1f}×** by wall time, "
               f"{med([x['cpu'] for x in c['bitcoinlib']]) / med([x['cpu'] for x in c['ours']]):.1f}× by CPU time; ours as a whole process vs "
               f"bitcoinlib in-process {med(bl_in) / med(ours):.1f}×. bitcoinlib import median "
               f"{med([x['import_s'] for x in c['bitcoinlib']]):.2f} s; addresses: ours {c['our_addresses']:,}, "
               f"bitcoinlib {c['bitcoinlib'][0]['addresses']:,}."]
        if c.get("baseline"):
            base = [x["wall"] for x in c["baseline"]]
            md += ["", f"Baseline: bitcoinlib / baseline {med(bl) / med(base):.1f}× by wall time; ours is "
                   f"{med(base) / med(ours):.2f}× faster than the baseline by wall time, "
                   f"{med([x['cpu'] for x in c['baseline']]) / med([x['cpu'] for x in c['ours']]):.2f}× by CPU time."]
        p = c["profile"]
        md += ["", f"Profile of one `tracer ingest bitcoin` process: -X importtime run {p['import_wall']:.2f} s wall, "
               f"top-level imports {p['import_total_s']:.2f} s; largest imports (cumulative s): "
               + ", ".join(f"{n} {cum:.2f}" for cum, _s, _d, n in p["imports_top_level"][:8]) + ".",
               "cProfile of the whole CLI run (" + f"{p['profiled_wall']:.2f} s wall under the profiler, "
               f"{p['total_s']:.2f} s profiled), tracer functions by cumulative time: "
               + "; ".join(f"{r['func']} {r['cumtime']:.3f}" for r in p["tracer_by_cumtime"][:16]) + ".",
               "By own time: " + "; ".join(f"{r['func']} {r['tottime']:.3f}" for r in p["by_tottime"][:12]) + "."]
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", nargs="+", choices=["a", "b", "c"], default=["a", "b", "c"])
    ap.add_argument("--small", default="1e6", help="scale of the world for (a)")
    ap.add_argument("--big", default="2.5e6", help="scale of the world for (b): >= 10^7 flows")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each ingest in (a) and (b)")
    ap.add_argument("--process-reps", type=int, default=5, help="repetitions of each whole process in (c)")
    ap.add_argument("--bytecode-cache", action=argparse.BooleanOptionalAction, default=True,
                    help="(c): run every contender with compiled modules cached in --cache/pycache, as an "
                    "installed package has them, after one untimed run each (default; --no-bytecode-cache: "
                    "leave PYTHONDONTWRITEBYTECODE as the shell has it)")
    ap.add_argument("--baseline", type=Path, help="another moneytrail source tree (e.g. a git worktree of the previous "
                    "commit): (a) also times the in-process ingest with its tracer/, alternating with this one; (c) runs "
                    "it as a third contender, same interpreter, PYTHONPATH=BASELINE")
    ap.add_argument("--frontiers", type=int, default=20)
    ap.add_argument("--frontier-size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--v4-reps", type=int, default=3, help="frontiers run on the slow flows_v4 view")
    ap.add_argument("--v4-cap", type=float, default=120.0, help="seconds after which a flows_v4 lookup is stopped")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench" / "graph")
    ap.add_argument("--markdown", action="store_true", help="print the results as Markdown")
    ap.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--child-args", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        # DuckDB 2 warns that Arrow output of an execute() result copies the rows; the copy is part of the lookup
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result")
        result = CHILDREN[args.child](json.loads(args.child_args))
        result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    args.cache.mkdir(parents=True, exist_ok=True)
    bcl = tempfile.mkdtemp(prefix="bench-bitcoinlib-")
    env = dict(os.environ, BCL_DATA_DIR=bcl)
    work = Path(tempfile.mkdtemp(prefix="bench-graph-", dir=args.cache))
    info = machine()
    load0 = os.getloadavg()
    res: dict = {"args": vars(args) | {"cache": str(args.cache)}, "machine": info}
    try:
        for part, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
            if part in args.parts:
                res[part] = fn(args, args.cache, work, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(bcl, ignore_errors=True)
    load1 = os.getloadavg()
    res["loads"] = [load0, load1]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    (args.cache / f"results-{'-'.join(args.parts)}-{stamp}.json").write_text(json.dumps(res, indent=1, default=str))
    md = report(res, info, (load0, load1))
    print("\n".join(md) if args.markdown else json.dumps({k: v for k, v in res.items() if k != "c"}, default=str)[:4000])


if __name__ == "__main__":
    main()
