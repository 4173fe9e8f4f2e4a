"""Score typology alerts on simulated worlds with planted instances, against their truth files.

For each seed: simulate a small world with ``--plant N`` (N instances of each graph typology and of each
benign look-alike: payroll, merchant, bills), run every registered typology (or ``--typologies``), score
with :func:`heuristics.typologies.scoring.score_alerts`. Per typology and per seed group: planted patterns,
alerts, precision over all alerts, precision at k (k = planted), recall, alerts on benign look-alikes.
Seeds 1-6 are the ones the parameters were tuned on; 7-12 are held out and reported apart.

    .venv/bin/python bench/score_alerts.py --seeds 1-6 --held-out 7-12 --plant 5 --scale test [--json]
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

GRAPH = ["fan_in", "fan_out", "cycle", "scatter_gather", "gather_scatter"]


def total(results: list[dict]) -> dict[str, dict]:
    """Sums over seeds: precision and recall of the pooled counts; precision@k as the mean over seeds."""
    out: dict[str, dict] = {}
    for r in results:
        for name, s in r["scores"].items():
            t = out.setdefault(name, {"planted": 0, "alerts": 0, "true_alerts": 0, "found": 0, "on_benign": 0,
                                      "on_other": 0, "p_at_k": [], "lp_at_k": [], "missed": []})
            for k in ("planted", "alerts", "true_alerts", "found", "on_benign", "on_other"):
                t[k] += s[k]
            if s["precision_at_k"] is not None:
                t["p_at_k"].append(s["precision_at_k"])
                t["lp_at_k"].append(s["laundering_precision_at_k"])
            t["missed"] += [f"seed {r['seed']}: {m}" for m in s["missed"]]
    for t in out.values():
        t["precision"] = t["true_alerts"] / t["alerts"] if t["alerts"] else None
        t["precision_at_k"] = sum(t["p_at_k"]) / len(t["p_at_k"]) if t["p_at_k"] else None
        t["laundering_precision"] = (t["true_alerts"] + t["on_other"]) / t["alerts"] if t["alerts"] else None
        t["laundering_precision_at_k"] = sum(t["lp_at_k"]) / len(t["lp_at_k"]) if t["lp_at_k"] else None
        t["recall"] = t["found"] / t["planted"] if t["planted"] else None
        del t["p_at_k"], t["lp_at_k"]
    return out


def show(title: str, tot: dict[str, dict]) -> None:
    print(title)
    print(f"  {'typology':16} {'planted':>7} {'alerts':>6} {'true':>5} {'benign':>6} {'other':>5} {'prec':>6} {'p@k':>6} "
          f"{'l.prec':>6} {'l.p@k':>6} {'recall':>6}")
    fmt = lambda v: "   -  " if v is None else f"{v:6.3f}"  # noqa: E731
    for name, t in sorted(tot.items()):
        print(f"  {name:16} {t['planted']:7d} {t['alerts']:6d} {t['true_alerts']:5d} {t['on_benign']:6d} "
              f"{t['on_other']:5d} {fmt(t['precision'])} {fmt(t['precision_at_k'])} {fmt(t['laundering_precision'])} "
              f"{fmt(t['laundering_precision_at_k'])} {fmt(t['recall'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-6", help="Tuning seeds (e.g. 1-6).")
    ap.add_argument("--held-out", default="7-12", help="Held-out seeds, reported apart ('' for none).")
    ap.add_argument("--plant", type=int, default=5, help="Planted instances of each typology per world.")
    ap.add_argument("--scale", default="test", help="World scale (test ~3k Bitcoin transactions).")
    ap.add_argument("--typologies", default=",".join(GRAPH),
                    help="Comma list of typologies to run and score (default: the graph typologies).")
    ap.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = ap.parse_args()
    names = [t for t in args.typologies.split(",") if t] or None
    groups = {"tuned": seed_list(args.seeds), "held_out": seed_list(args.held_out) if args.held_out else []}
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for group, ss in groups.items():
            results[group] = [score_world(s, args.scale, args.plant, Path(tmp), names) for s in ss]
    if args.json:
        print(json.dumps({g: {"seeds": groups[g], "total": total(r), "per_seed": r} for g, r in results.items()},
                         default=str))
        return
    for group, r in results.items():
        if r:
            show(f"{group} seeds {groups[group]} (scale {args.scale}, --plant {args.plant}):", total(r))
            for t in total(r).values():
                for m in t["missed"]:
                    print(f"    missed {m}")


if __name__ == "__main__":
    main()
