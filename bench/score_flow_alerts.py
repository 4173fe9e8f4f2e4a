"""Score the flow typologies (structuring, peeling_chain, pass_through, off_ramp, ad_fee_payer) on simulated
worlds with extra planted instances, against their truth files (heuristics.typologies.scoring).

Each seed: ``simulate --scale SCALE --plant N`` into a fresh store, ``tracer cluster``, run the flow
typologies, score. Seeds 1-6 are the ones the method was built on; 7-12 are held out and reported apart.

    .venv/bin/python bench/score_flow_alerts.py --seeds 1-6 --plant 3 [--held-out 7-12] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heuristics.typologies.scoring import score_world, seed_list  # noqa: E402

TYPOLOGIES = ["structuring", "peeling_chain", "pass_through", "off_ramp", "ad_fee_payer"]


def table(results: list[dict], typologies: list[str], title: str) -> list[str]:
    lines = [f"### {title}", "", "| typology | planted | found | alerts | true alerts | on benign | on other laundering "
             "| precision | precision@k | laundering precision | laundering precision@k | recall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in typologies:
        s = [r["scores"][name] for r in results if name in r["scores"]]
        planted, found_ = sum(x["planted"] for x in s), sum(x["found"] for x in s)
        alerts, true_ = sum(x["alerts"] for x in s), sum(x["true_alerts"] for x in s)
        benign = sum(x["on_benign"] for x in s)
        other = sum(x["on_other"] for x in s)
        # precision@k over the seeds: the top-k of each seed pooled
        top = sum(round((x["precision_at_k"] or 0) * min(x["planted"], x["alerts"])) for x in s)
        k = sum(min(x["planted"], x["alerts"]) for x in s)
        ltop = sum(round((x["laundering_precision_at_k"] or 0) * min(x["planted"], x["alerts"])) for x in s)
        f = lambda a, b: f"{a / b:.3f}" if b else "–"  # noqa: E731
        lines.append(f"| {name} | {planted} | {found_} | {alerts} | {true_} | {benign} | {other} | {f(true_, alerts)} | "
                     f"{f(top, k)} | {f(true_ + other, alerts)} | {f(ltop, k)} | {f(found_, planted)} |")
    missed = [f"{r['seed']}:{m}" for r in results for n in typologies for m in r["scores"].get(n, {}).get("missed", [])]
    lines += ["", f"missed: {', '.join(missed) or 'none'}", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-6")
    parser.add_argument("--held-out", default="")
    parser.add_argument("--plant", type=int, default=3)
    parser.add_argument("--scale", default="test")
    parser.add_argument("--typology", default=",".join(TYPOLOGIES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = [t for t in args.typology.split(",") if t]
    groups = [("seeds " + args.seeds, seed_list(args.seeds))]
    if args.held_out:
        groups.append(("held-out seeds " + args.held_out, seed_list(args.held_out)))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for title, group in groups:
            out[title] = [score_world(s, args.scale, args.plant, Path(tmp), names, cluster=True) for s in group]
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for title, results in out.items():
        print("\n".join(table(results, names, f"{title} (scale {args.scale}, --plant {args.plant})")))


if __name__ == "__main__":
    main()
