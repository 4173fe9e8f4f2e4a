"""What deriving input addresses from the spending scripts costs the ingest of the real blocks.

Two source trees are measured in alternation, each in its own subprocess (own imports, own numba cache):
``--before`` (a checkout without tracer/ingest/bitcoin/spending.py, e.g. ``git worktree add /tmp/before
<commit>``) and this tree. Each subprocess warms up once (numba compilation, DuckDB), then times in-process:

- *parse*: ``parse_blocks`` over every real fixture (frame + parse + verify into Arrow, no DuckDB);
- *ingest*: ``ingest_bitcoin`` of every real fixture into a fresh DuckDB file (the store open not counted);
- *derive* (this tree only): ``spending.input_addresses`` alone over the same blocks.

Usage: .venv/bin/python bench/input_addresses.py --before /tmp/before --rounds 3 --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import numpy as np
import tracer
from tracer.ingest.bitcoin.blocks import frame_blk, ingest_bitcoin
from tracer.ingest.bitcoin.network import network
from tracer.ingest.bitcoin.parse import parse_blocks

assert tracer.__file__.startswith(sys.argv[1]), tracer.__file__
reps = int(sys.argv[2])
fixtures = Path(sys.argv[3])
files = [fixtures / "blk-heights-0-438.dat", *sorted(fixtures.glob("block-*.raw"))]
net = network("mainnet")
units = []
for f in files:
    data = f.read_bytes()
    spans = frame_blk(data, net, f.name) if data[:4] == net.magic else [(0, len(data))]
    units.append((data, spans, f.name))

def parse():
    for data, spans, name in units:
        parse_blocks(data, spans, net, name)

def ingest(folder):
    store = tracer.open_store(folder / "s.duckdb")
    t = time.perf_counter()
    ingest_bitcoin(store, files)
    dt = time.perf_counter() - t
    store.close()
    return dt

out = {"parse": [], "ingest": [], "derive": []}
with tempfile.TemporaryDirectory() as tmp:
    (Path(tmp) / "warm").mkdir()
    ingest(Path(tmp) / "warm")
    parse()
    for k in range(reps):
        t = time.perf_counter()
        parse()
        out["parse"].append(time.perf_counter() - t)
        d = Path(tmp) / f"r{k}"
        d.mkdir()
        out["ingest"].append(ingest(d))
try:
    from tracer.ingest.bitcoin import spending
except ImportError:
    spending = None
if spending is not None:
    # the arguments spending.input_addresses gets inside parse_blocks, captured once per unit
    captured = []
    real = spending.input_addresses
    import tracer.ingest.bitcoin.parse as parse_mod
    def capture(*args):
        captured.append(args)
        return real(*args)
    parse_mod.input_addresses = capture
    parse()
    parse_mod.input_addresses = real
    for _ in range(reps):
        t = time.perf_counter()
        for args in captured:
            real(*args)
        out["derive"].append(time.perf_counter() - t)
    out["inputs"] = int(sum(a[2].size for a in captured))
print(json.dumps(out))
"""


def run(tree: Path, reps: int) -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    res = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(reps), str(ROOT / "fixtures" / "bitcoin")],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="source tree without input-address derivation")
    ap.add_argument("--rounds", type=int, default=3, help="alternations before/after")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per subprocess")
    args = ap.parse_args()
    load0 = os.getloadavg()
    got: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    inputs = None
    for _ in range(args.rounds):
        for name, tree in (("before", args.before.resolve()), ("after", ROOT)):
            r = run(tree, args.reps)
            inputs = r.pop("inputs", inputs)
            for k, v in r.items():
                got[name].setdefault(k, []).extend(v)
    load1 = os.getloadavg()
    print(f"load average at start {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f}, "
          f"at end {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}; inputs derived over: {inputs:,}")
    print("| measure | before best s | before median s | after best s | after median s | after − before (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for k in ("parse", "ingest", "derive"):
        b, a = got["before"].get(k, []), got["after"].get(k, [])
        if not a:
            continue
        bb = f"{min(b):.3f}" if b else "—"
        bm = f"{statistics.median(b):.3f}" if b else "—"
        diff = f"{statistics.median(a) - statistics.median(b):+.3f}" if b else "—"
        print(f"| {k} | {bb} | {bm} | {min(a):.3f} | {statistics.median(a):.3f} | {diff} |")


if __name__ == "__main__":
    main()
