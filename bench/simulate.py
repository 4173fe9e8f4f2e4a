"""Benchmark: how fast `tracer simulate` builds worlds of 10^5, 10^6 and 10^7 Bitcoin transactions.

Each scale runs in its own child process on a fresh store (so peak memory is that world's alone:
``ru_maxrss`` of the child, DuckDB's buffers included). Reported: wall time, Bitcoin transactions
generated per second (all tables of the world written, ground truth included), peak RSS.

Peer, in the same run: the project's real Bitcoin ingester (``tracer.ingest.bitcoin.blocks``) parsing and
loading the real mainnet blocks in ``fixtures/bitcoin`` into the same tables. The ratio says what a
simulated transaction costs next to an ingested one; both end as the same rows.

    .venv/bin/python bench/simulate.py                 # 1e5 1e6 1e7
    .venv/bin/python bench/simulate.py 1e5 1e6         # chosen scales
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD_SIM = r"""
import json, resource, sys, time, tracer
from pathlib import Path
from tracer.simulate import simulate
work = Path(sys.argv[2])
store = tracer.open_store(work / "w.duckdb")
t0 = time.perf_counter()
s = simulate(store, seed=1, scale=sys.argv[1], truth_path=work / "truth.json")
wall = time.perf_counter() - t0
store.close()
size = (work / "w.duckdb").stat().st_size
print(json.dumps({"wall": wall, "counts": s.counts, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "db_mb": size / 2**20}))
"""
CHILD_INGEST = r"""
import json, resource, sys, time, tracer
from pathlib import Path
from tracer.ingest.bitcoin.blocks import ingest_bitcoin
work = Path(sys.argv[1])
paths = [Path(p) for p in sys.argv[2:]]
best = None
for rep in range(3):
    store = tracer.open_store(work / f"i{rep}.duckdb")
    t0 = time.perf_counter()
    r = ingest_bitcoin(store, paths)
    wall = time.perf_counter() - t0
    store.close()
    best = wall if best is None else min(best, wall)
print(json.dumps({"wall": best, "transactions": r.transactions,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(scales: list[str]) -> None:
    blocks = sorted(str(p) for p in (ROOT / "fixtures" / "bitcoin").glob("block-*.raw"))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        peer = run(CHILD_INGEST, tmp, *blocks)
    peer_rate = peer["transactions"] / peer["wall"]
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"peer: real Bitcoin ingest of {len(blocks)} fixture blocks: {peer['transactions']:,} tx in "
          f"{peer['wall']:.2f} s = {peer_rate:,.0f} tx/s (best of 3), peak {peer['rss_mb']:.0f} MB")
    print("| scale | Bitcoin tx | all rows | wall (s) | tx/s | vs real ingest | peak RSS (MB) | store (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix=f"bench-sim-{scale}-") as tmp:
            r = run(CHILD_SIM, scale, tmp)
        tx = r["counts"]["transactions"]
        rows = sum(v for k, v in r["counts"].items())
        rate = tx / r["wall"]
        print(f"| {scale} | {tx:,} | {rows:,} | {r['wall']:.1f} | {rate:,.0f} | {rate / peer_rate:.2f}× | "
              f"{r['rss_mb']:,.0f} | {r['db_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["1e5", "1e6", "1e7"])
