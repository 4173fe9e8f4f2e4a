"""Score clustering and CoinJoin detection on simulated worlds against their truth files.

    .venv/bin/python bench/score_clustering.py --seeds 1 2 3 --scale demo

For each seed: simulate a world into a fresh store (the truth stays in files the heuristics never read),
run `tracer cluster`, and print pairwise precision/recall of the clusters and the precision/recall of
each CoinJoin detector family. Results go to docs/heuristics.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import tracer
from heuristics.clustering.scoring import coinjoin_detection, pairwise
from tracer.simulate import simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--scale", default="demo")
    args = ap.parse_args()
    print("| seed | addresses | clusters | pairwise precision | pairwise recall | whirlpool P/R | wasabi P/R | "
          "tx0 P/R | any CoinJoin P/R | seconds |")
    print("|---|---:|---:|---:|---:|---|---|---|---|---:|")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            ws = tracer.open(Path(tmp) / "w.duckdb")
            summary = simulate(ws.store, seed=seed, scale=args.scale, truth_path=Path(tmp) / "truth.json")
            t = time.perf_counter()
            result = ws.cluster()
            seconds = time.perf_counter() - t
            p = pairwise(ws.store, summary.truth_path)
            d = {s.kind: s for s in coinjoin_detection(ws.store, summary.truth_path)}

            def cell(k: str, d: dict = d) -> str:
                return f"{d[k].precision:.3f} / {d[k].recall:.3f} ({d[k].truth})"

            print(f"| {seed} | {result.addresses:,} | {result.clusters:,} | {p.precision:.4f} | {p.recall:.4f} | "
                  f"{cell('coinjoin_whirlpool')} | {cell('coinjoin_wasabi')} | {cell('whirlpool_tx0')} | "
                  f"{cell('any coinjoin')} | {seconds:.2f} |")
            ws.close()


if __name__ == "__main__":
    main()
