"""Score ad ↔ payment linking and ad author grouping on simulated worlds, against their truth files.

The worlds store ads as a scrape sees them (fee payments unknown to the store); the sites' fee schedule is
the truth's companion ``<truth>.fees.csv``. For each seed: simulate, cluster (multi-input), group ads,
link ads, then compare ``ad_payments`` with the ``ad_payment_linking`` pattern (ad -> fee txid) and
``ad_groups`` with the authors (the operation's two writers count as one operation).

    .venv/bin/python bench/score_ads.py --seeds 1 2 3 4 5 --scale test [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tracer  # noqa: E402
from tracer.simulate import simulate  # noqa: E402


def score_links(ws: tracer.Workspace, truth: dict) -> dict:
    pattern = next(p for p in truth["patterns"] if p["type"] == "ad_payment_linking")
    links = {ad: v["txid"] for ad, v in pattern["links"].items()}
    got = dict(ws.rows("SELECT ad_id, txid FROM ad_payments WHERE method = 'fee_match'"))
    right = sum(1 for ad, tx in got.items() if links.get(ad) == tx)
    return {"truth": len(links), "linked": len(got), "right": right,
            "paid_otherwise": len(pattern["paid_otherwise"]), "unscraped_paid": len(pattern["unscraped_paid_ads"]),
            "precision": right / len(got) if got else 0.0, "recall": right / len(links) if links else 0.0}


def score_groups(ws: tracer.Workspace, truth: dict) -> dict:
    entity = {}
    for a in truth["actors"]:
        if a.get("kind") == "ad_author":
            for ad in a["ads"]:
                entity[ad] = a["operation"] or a["id"]
    group = dict(ws.rows("SELECT ad_id, group_id FROM ad_groups"))
    ads = sorted(entity)
    same_truth = same_found = both = 0
    for x, y in combinations(ads, 2):
        t = entity[x] == entity[y]
        f = x in group and group.get(x) == group.get(y)
        same_truth += t
        same_found += f
        both += t and f
    return {"true_pairs": same_truth, "found_pairs": same_found, "right_pairs": both,
            "precision": both / same_found if same_found else 0.0, "recall": both / same_truth if same_truth else 0.0}


def run(seed: int, scale: str, folder: Path) -> dict:
    truth_path = folder / f"truth-{seed}.json"
    with tracer.open(folder / f"w{seed}.duckdb") as ws:
        simulate(ws.store, seed=seed, scale=scale, truth_path=truth_path)
        ws.cluster()
        ws.group_ads()
        ws.link_ads(truth_path.with_suffix(".fees.csv"))
        truth = json.loads(truth_path.read_text())
        return {"seed": seed, "scale": scale, "links": score_links(ws, truth), "groups": score_groups(ws, truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--scale", default="test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(seed, args.scale, Path(tmp)) for seed in args.seeds]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print("| seed | scale | ads with a Bitcoin fee | linked | link precision | link recall | group precision | group recall |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        li, g = r["links"], r["groups"]
        print(f"| {r['seed']} | {r['scale']} | {li['truth']} | {li['linked']} | {li['precision']:.3f} | {li['recall']:.3f} "
              f"| {g['precision']:.3f} | {g['recall']:.3f} |")
    n = len(results)
    mean = lambda f: sum(f(r) for r in results) / n  # noqa: E731
    print(f"| mean | | | | {mean(lambda r: r['links']['precision']):.3f} | {mean(lambda r: r['links']['recall']):.3f} "
          f"| {mean(lambda r: r['groups']['precision']):.3f} | {mean(lambda r: r['groups']['recall']):.3f} |")


if __name__ == "__main__":
    main()
