"""Score clustering, CoinJoin detection, change heuristics and EVM deposit addresses on simulated worlds.

    .venv/bin/python bench/score_clustering.py --seeds 1 2 3 4 --scale demo \\
        --change consensus "one_time.unique()" "type.unique()" peeling "round.unique()" "optimal & type"

For each seed: simulate a world into a fresh store (the truth stays in files the heuristics never read),
run `tracer cluster` (multi-input alone), then once per change expression (multi-input plus change, from
scratch), then the EVM deposit-address heuristic on sim-evm. Prints one Markdown table for multi-input
with the CoinJoin detectors, one per change expression and one for sim-evm. Results go to
docs/heuristics.md.

Change tables: pairwise precision/recall of the clusters (multi-input + change), the change links the rule
proposed (every (first input address, change address) pair, before union-find drops the redundant ones),
and their link precision — the share whose two addresses have one owner in the truth.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import tracer
from heuristics.clustering import ChangeLinks, MultiInput
from heuristics.clustering.scoring import coinjoin_detection, pairwise
from tracer.simulate import simulate

DEFAULT_CHANGE = ["consensus", "one_time.unique()", "type.unique()", "peeling", "round.unique()", "locktime.unique()",
                  "fee_rate", "optimal & type"]


def link_precision(ws: tracer.Workspace, links: ChangeLinks, truth_json: Path) -> tuple[int, int]:
    """(links proposed, links whose two addresses share an entity in the truth)."""
    key = pq.read_table(truth_json.parent / f"{truth_json.stem}.addresses.parquet", columns=["chain", "address", "entity"])
    sql, params = links.pairs_sql("bitcoin", 0)
    with ws.store.view("_truth_addr", key):
        total, good = ws.store.one(
            f"""SELECT count(*), count(*) FILTER (WHERE ea.entity = eb.entity) FROM ({sql}) p
                JOIN addresses aa ON aa.address_id = p.a JOIN addresses ab ON ab.address_id = p.b
                LEFT JOIN _truth_addr ea ON ea.chain = 'bitcoin' AND ea.address = aa.address
                LEFT JOIN _truth_addr eb ON eb.chain = 'bitcoin' AND eb.address = ab.address""", params)
    return int(total), int(good or 0)


def evm_user_pairs(ws: tracer.Workspace, truth_json: Path) -> tuple[int, int, int]:
    """Pairwise counts on sim-evm over the addresses the truth does not give to an exchange or the issuer
    (users and the operation): (predicted pairs, true pairs, correct pairs)."""
    key = pq.read_table(truth_json.parent / f"{truth_json.stem}.addresses.parquet",
                        columns=["chain", "address", "entity", "owner_kind"])
    with ws.store.view("_truth_addr", key):
        row = ws.store.one(
            """WITH j AS (SELECT c.cluster_id, t.entity FROM clusters c JOIN _truth_addr t
                          ON t.chain = c.chain AND t.address = c.address
                          WHERE c.chain = 'sim-evm' AND t.owner_kind IN ('user', 'actor')),
               cells AS (SELECT count(*) AS n FROM j GROUP BY cluster_id, entity),
               pred AS (SELECT count(*) AS n FROM j GROUP BY cluster_id),
               tru AS (SELECT count(*) AS n FROM j GROUP BY entity)
               SELECT (SELECT sum(n * (n - 1) / 2) FROM pred), (SELECT sum(n * (n - 1) / 2) FROM tru),
                      (SELECT sum(n * (n - 1) / 2) FROM cells)""")
    return tuple(int(x or 0) for x in row)  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--scale", default="demo")
    ap.add_argument("--change", nargs="*", default=DEFAULT_CHANGE, metavar="EXPR",
                    help="change expressions to score beside multi-input (none: multi-input only)")
    args = ap.parse_args()
    multi_rows, change_rows, evm_rows = [], {e: [] for e in args.change}, []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            ws = tracer.open(Path(tmp) / "w.duckdb")
            summary = simulate(ws.store, seed=seed, scale=args.scale, truth_path=Path(tmp) / "truth.json")
            truth = summary.truth_path
            t = time.perf_counter()
            result = ws.cluster()
            seconds = time.perf_counter() - t
            p = pairwise(ws.store, truth)
            d = {s.kind: s for s in coinjoin_detection(ws.store, truth)}

            def cell(k: str, d: dict = d) -> str:
                return f"{d[k].precision:.3f} / {d[k].recall:.3f} ({d[k].truth})"

            multi_rows.append(
                f"| {seed} | {result.addresses:,} | {result.clusters:,} | {p.precision:.4f} | {p.recall:.4f} | "
                f"{cell('coinjoin_whirlpool')} | {cell('coinjoin_wasabi')} | {cell('whirlpool_tx0')} | "
                f"{cell('any coinjoin')} | {seconds:.2f} |")
            for expr in args.change:
                links = ChangeLinks.of(expr)
                t = time.perf_counter()
                r = ws.cluster(full=True, links=[MultiInput(), links])
                seconds = time.perf_counter() - t
                s = pairwise(ws.store, truth)
                proposed, good = link_precision(ws, links, truth)
                change_merges = ws.store.scalar("SELECT count(*) FROM cluster_links WHERE heuristic LIKE 'change:%'")
                lp = f"{good / proposed:.4f}" if proposed else "—"
                change_rows[expr].append(
                    f"| {seed} | {r.clusters:,} | {r.largest:,} | {s.precision:.4f} | {s.recall:.4f} | "
                    f"{proposed:,} | {lp} | {change_merges:,} | {seconds:.2f} |")
            r = ws.cluster(chain="sim-evm", full=True)
            e = pairwise(ws.store, truth, chain="sim-evm")
            pred, true, correct = evm_user_pairs(ws, truth)
            up = f"{correct / pred:.4f}" if pred else "—"
            ur = f"{correct / true:.4f}" if true else "—"
            evm_rows.append(f"| {seed} | {r.addresses:,} | {r.merges:,} | {e.precision:.4f} | {e.recall:.4f} | "
                            f"{up} | {ur} ({true}) |")
            ws.close()
    print("Multi-input alone, with the CoinJoin detectors (P/R = precision / recall, truth count in brackets):\n")
    print("| seed | addresses | clusters | pairwise precision | pairwise recall | whirlpool P/R | wasabi P/R | "
          "tx0 P/R | any CoinJoin P/R | seconds |")
    print("|---|---:|---:|---:|---:|---|---|---|---|---:|")
    print("\n".join(multi_rows))
    for expr, rows in change_rows.items():
        print(f"\nMulti-input + `--change \"{expr}\"`:\n")
        print("| seed | clusters | largest | pairwise precision | pairwise recall | change links | link precision | "
              "change merges | seconds |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
    print("\nsim-evm, deposit addresses (`tracer cluster --chain sim-evm`); users = addresses the truth gives to "
          "users and the operation:\n")
    print("| seed | addresses | merges | pairwise precision | pairwise recall | users' precision | users' recall "
          "(true pairs) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(evm_rows))


if __name__ == "__main__":
    main()
