"""Benchmark: what `tracer simulate --sources` costs when it writes the Bitcoin chain as blk files.

Per scale, each in its own child process on fresh stores (seed 1):

1. ``simulate`` without sources (a mainnet world), wall time and the "writing Bitcoin tables" stage;
2. ``simulate --sources`` (a regtest world serialised into blk files), the same, plus the blk bytes;
3. ``tracer ingest bitcoin blocks --network regtest`` on those files as a whole process (start-up
   included), into an empty store;
4. the Bitcoin tables of 2 and 3 compared row for row (``EXCEPT ALL`` both ways, provenance columns left
   out): the count of rows that differ must be 0 — at 10⁶ the chain spans several blk files, so this is
   the multi-file check the test suite's small world cannot make.

    .venv/bin/python bench/simulate_sources.py 1e5 [1e6]
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = r"""
import json, resource, sys, time, tracer
from pathlib import Path
from tracer.simulate import simulate
scale, work, sources = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
stages = []
store = tracer.open_store(work / ("s.duckdb" if sources else "m.duckdb"))
t0 = time.perf_counter()
s = simulate(store, seed=1, scale=scale, truth_path=work / ("s" if sources else "m") / "truth.json",
             sources_dir=work / "src" if sources else None,
             progress=lambda stage, frac: stages.append((stage, time.perf_counter() - t0)))
wall = time.perf_counter() - t0
store.close()
seen = {}
for (stage, t), (_, t_next) in zip(stages, stages[1:]):
    seen[stage] = seen.get(stage, 0.0) + t_next - t
print(json.dumps({"wall": wall, "tx": s.counts["transactions"], "stages": seen,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
TABLES = {
    "blocks": "chain, height, hash, prev_hash, time, tx_count, size, version, merkle_root, bits, nonce, in_best_chain, "
              "chainwork, work_root, arrival",
    "transactions": "chain, txid, wtxid, block_hash, block_height, block_time, position, version, locktime, size, "
                    "weight, fee, is_coinbase, input_count, output_count, tx_id",
    "outputs": "chain, txid, n, address, script_type, value, spent_by_txid, spent_by_n, block_height, tx_id, txkey, "
               "address_id",
    "inputs": "chain, txid, n, prev_txid, prev_n, address, value, sequence, block_height, tx_id, prev_txkey, address_id",
    "addresses": "chain, address, address_id, first_seen, script_type, party_key",
    "flows": "* EXCLUDE (run_id, usd)",  # usd: filled when the prices step runs
}


def child(scale: str, work: Path, sources: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, scale, str(work), "1" if sources else "0"],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(a: Path, b: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    diff = {}
    for table, cols in TABLES.items():
        where = "WHERE chain = 'bitcoin'"
        q = f"SELECT {cols} FROM {{db}}.{table} {where}"
        diff[table] = sum(con.execute(f"SELECT count(*) FROM ({q.format(db=x)} EXCEPT ALL {q.format(db=y)})").fetchone()[0]
                          for x, y in (("a", "b"), ("b", "a")))
    return diff


def main(scales: list[str]) -> None:
    print(f"machine: {platform.processor() or platform.machine()}, CPython {platform.python_version()}, "
          f"load {open('/proc/loadavg').read().split()[:3]}")
    print("| scale | Bitcoin tx | simulate s | simulate --sources s | Bitcoin tables stage s (plain → sources + serialising) "
          "| blk files | blk MB | ingest blk s (process) | ingest tx/s | rows differing | peak RSS MB (sources) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix="simsrc-") as tmp:
            work = Path(tmp)
            plain = child(scale, work, False)
            src = child(scale, work, True)
            blks = sorted((work / "src" / "blocks").glob("blk*.dat"))
            mb = sum(p.stat().st_size for p in blks) / 2**20
            t0 = time.perf_counter()
            out = subprocess.run([str(ROOT / ".venv" / "bin" / "tracer"), "--db", str(work / "b.duckdb"), "ingest",
                                  "bitcoin", str(work / "src" / "blocks"), "--network", "regtest"],
                                 capture_output=True, text=True, cwd=ROOT)
            ingest = time.perf_counter() - t0
            if out.returncode != 0:
                raise SystemExit(out.stdout + out.stderr)
            diff = compare(work / "s.duckdb", work / "b.duckdb")
            stage = "writing Bitcoin tables"
            print(f"| {scale} | {src['tx']:,} | {plain['wall']:.1f} | {src['wall']:.1f} | "
                  f"{plain['stages'][stage]:.1f} → {src['stages'][stage]:.1f} + "
                  f"{src['stages']['serialising blk files']:.1f} | {len(blks)} | {mb:.0f} | {ingest:.1f} | "
                  f"{src['tx'] / ingest:,.0f} | {sum(diff.values())} | {src['rss_mb']:,.0f} |", flush=True)
            print(f"  stages (sources): {json.dumps({k: round(v, 1) for k, v in src['stages'].items()})}")
            print(f"  rows differing per table: {diff}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["1e5"])
