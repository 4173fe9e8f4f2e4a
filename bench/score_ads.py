"""Score ad ↔ payment linking and ad author grouping on simulated worlds, against their truth files.

The worlds store ads as a scrape sees them (fee payments unknown to the store); the sites' fee schedule is
the truth's companion ``<truth>.fees.csv``. For each seed: simulate, cluster (multi-input), group ads,
link ads, then compare ``ad_payments`` with the ``ad_payment_linking`` pattern (ad -> fee txid) and
``ad_groups`` with the authors (the operation's two writers count as one operation).

    .venv/bin/python bench/score_ads.py --seeds 1 2 3 4 5 6 --held-out 7 8 9 10 11 12 13 14 --scale test \
        [--scan margin=0,0.05,0.1 order_weight=0,0.1] [--json]

Seeds given with ``--held-out`` are scored the same way and reported in a table of their own: the
linker's parameters are chosen on ``--seeds`` only, the held-out worlds stand for unseen ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tracer  # noqa: E402
from heuristics.ads import LinkParams  # noqa: E402
from tracer.simulate import simulate  # noqa: E402


def score_links(ws: tracer.Workspace, truth: dict) -> dict:
    pattern = next(p for p in truth["patterns"] if p["type"] == "ad_payment_linking")
    links = {ad: v["txid"] for ad, v in pattern["links"].items()}
    got = dict(ws.rows("SELECT ad_id, txid FROM ad_payments WHERE method = 'fee_match'"))
    right = sum(1 for ad, tx in got.items() if links.get(ad) == tx)
    site = pattern.get("sweeping_site")
    on_site = dict(ws.rows("SELECT ad_id, txid FROM ad_payments WHERE method = 'fee_match' AND site = ?", [site]))
    abstained = ws.rows("SELECT count(*) FROM ad_payment_candidates WHERE regret < ?", [LinkParams().margin])[0][0]
    return {"truth": len(links), "linked": len(got), "right": right, "abstained": abstained,
            "paid_otherwise": len(pattern["paid_otherwise"]), "unscraped_paid": len(pattern["unscraped_paid_ads"]),
            "paid_otherwise_linked": sum(1 for ad in pattern["paid_otherwise"] if ad in got),
            "sweeping_site": site, "sweeping_site_truth": sum(1 for ad in links if ad.startswith(site.split(".")[0] + "-"))
            if site else 0, "sweeping_site_linked": len(on_site),
            "sweeping_site_right": sum(1 for ad, tx in on_site.items() if links.get(ad) == tx),
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


def run(seed: int, scale: str, folder: Path, scans: list[tuple[str, float]] = ()) -> dict:
    truth_path = folder / f"truth-{seed}.json"
    with tracer.open(folder / f"w{seed}.duckdb") as ws:
        simulate(ws.store, seed=seed, scale=scale, truth_path=truth_path)
        ws.cluster()
        ws.group_ads()
        truth = json.loads(truth_path.read_text())
        scan = {}
        for name, value in scans:  # the same world linked again with one parameter changed
            ws.link_ads(truth_path.with_suffix(".fees.csv"), **{name: value})
            scan[f"{name}={value:g}"] = score_links(ws, truth)
        started = time.perf_counter()
        ws.link_ads(truth_path.with_suffix(".fees.csv"))
        seconds = time.perf_counter() - started
        return {"seed": seed, "scale": scale, "link_seconds": seconds, "links": score_links(ws, truth),
                "groups": score_groups(ws, truth),
                "scan": scan}


def table(title: str, results: list[dict]) -> None:
    print(f"\n{title}\n")
    print("| seed | ads with a Bitcoin fee | linked | right | not separable | link precision | link recall "
          "| sweeping site: right / linked / fees | group precision | group recall | link s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in results:
        li, g = r["links"], r["groups"]
        print(f"| {r['seed']} | {li['truth']} | {li['linked']} | {li['right']} | {li['abstained']} | {li['precision']:.3f} "
              f"| {li['recall']:.3f} | {li['sweeping_site_right']} / {li['sweeping_site_linked']} / "
              f"{li['sweeping_site_truth']} | {g['precision']:.3f} | {g['recall']:.3f} | {r['link_seconds']:.1f} |")
    n = len(results)
    mean = lambda f: sum(f(r) for r in results) / n  # noqa: E731
    total = lambda k: sum(r["links"][k] for r in results)  # noqa: E731
    print(f"| mean | | | | | {mean(lambda r: r['links']['precision']):.3f} | {mean(lambda r: r['links']['recall']):.3f} "
          f"| | {mean(lambda r: r['groups']['precision']):.3f} | {mean(lambda r: r['groups']['recall']):.3f} | |")
    print(f"| pooled | {total('truth')} | {total('linked')} | {total('right')} | {total('abstained')} "
          f"| {total('right') / max(total('linked'), 1):.3f} | {total('right') / max(total('truth'), 1):.3f} "
          f"| {total('sweeping_site_right')} / {total('sweeping_site_linked')} / {total('sweeping_site_truth')} | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--held-out", type=int, nargs="*", default=[])
    parser.add_argument("--scale", default="test")
    parser.add_argument("--scan", nargs="*", default=[], metavar="PARAM=V,V,…",
                        help="also link the --seeds worlds with each of these values of a LinkParams field, e.g. "
                             "margin=0,0.05,0.1 (pooled scores)")
    parser.add_argument("--world", nargs="*", default=[], metavar="NAME=V",
                        help="change one of the simulator's ad-world shares for a failure-mode run: posting_in_order, "
                             "change_reuse, decoy_share (tracer/simulate/operation.py; the worlds differ from the "
                             "seeds' usual ones)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from tracer.simulate import operation

    for item in args.world:
        name, _, value = item.partition("=")
        if name not in ("posting_in_order", "change_reuse", "decoy_share") or not value:
            parser.error(f"--world {item}: expected posting_in_order=, change_reuse= or decoy_share= a share")
        setattr(operation, name.upper(), float(value))
    scans = []
    for item in args.scan:
        name, _, values = item.partition("=")
        if name not in LinkParams.__dataclass_fields__ or not values:
            parser.error(f"--scan {item}: expected PARAM=V,V,… with PARAM a field of LinkParams")
        scans += [(name, float(v)) for v in values.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tuned = [run(seed, args.scale, Path(tmp), scans) for seed in args.seeds]
        held = [run(seed, args.scale, Path(tmp)) for seed in args.held_out]
    if args.json:
        print(json.dumps({"seeds": tuned, "held_out": held}, indent=1))
        return
    if args.world:
        print(f"World changed: {' '.join(args.world)}")
    table(f"Seeds the parameters were chosen on (scale {args.scale})", tuned)
    if held:
        table(f"Held-out seeds (scale {args.scale})", held)
    if scans:
        print(f"\nOne parameter changed, the others at their defaults, on the seeds {' '.join(map(str, args.seeds))} "
              "(pooled)\n")
        print("| parameter | linked | right | precision | recall |")
        print("|---|---:|---:|---:|---:|")
        for key in tuned[0]["scan"]:
            linked = sum(r["scan"][key]["linked"] for r in tuned)
            right = sum(r["scan"][key]["right"] for r in tuned)
            truth = sum(r["scan"][key]["truth"] for r in tuned)
            print(f"| {key} | {linked} | {right} | {right / max(linked, 1):.3f} | {right / max(truth, 1):.3f} |")


if __name__ == "__main__":
    main()
