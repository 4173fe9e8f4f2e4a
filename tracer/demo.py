"""The main job of `make demo`: build a store from what ships in fixtures/ and summarise it.

Each capability adds its step here as it lands, so a new user's first five minutes exercise all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

Say = Callable[[str], None]


def demo_bitcoin(store: Store, say: Say) -> None:
    blocks = FIXTURES / "bitcoin"
    files = [blocks / "blk-heights-0-438.dat", *sorted(blocks.glob("block-*.raw"))]
    summary = ingest_bitcoin(store, files)
    say(f"bitcoin: {summary.blocks} real mainnet blocks, {summary.transactions:,} transactions "
        f"({summary.blocks_skipped} blocks already stored, {summary.units_skipped} files already done)")


def demo_simulate(store: Store, say: Say, out_dir: Path) -> None:
    from tracer.simulate import simulate

    if store.scalar("SELECT count(*) FROM ingest_runs WHERE source = 'simulate' AND status = 'ok'"):
        say("simulate: the store already holds the demo world")
        return
    summary = simulate(store, seed=DEMO_SEED, scale="demo", truth_path=out_dir / "ground_truth.json")
    c = summary.counts
    say(f"simulate: demo world (seed {DEMO_SEED}) — {summary.bitcoin_transactions:,} Bitcoin transactions, "
        f"{c.get('sim-evm transfers', 0):,} USDT transfers, {c.get('fiat transfers', 0):,} bank transfers, "
        f"{c.get('ads', 0):,} ads, {c.get('reports', 0):,} reports; ground truth in {summary.truth_path}")


def demo_labels(store: Store, say: Say, out_dir: Path) -> None:
    from tracer.ingest.labels.sources import ingest_labels

    for path in (FIXTURES / "labels" / "ofac-sdn", FIXTURES / "labels" / "tagpacks"):
        result = ingest_labels(store, path)
        say(f"labels: {path.relative_to(FIXTURES.parent)} — {result['loaded']:,} labels loaded, "
            f"{result['already_stored']:,} already stored, {result['quarantined']:,} quarantined")


def demo_human(store: Store, say: Say, out_dir: Path) -> None:
    from tracer.ingest.human.bank import ingest_bank
    from tracer.ingest.prices import ingest_prices

    prices = ingest_prices(store, FIXTURES / "human" / "prices.csv")
    bank = ingest_bank(store, FIXTURES / "aml" / "amlworld-small.csv")
    say(f"prices: {prices['loaded']:,} rows; bank (AMLworld format): {bank['loaded']:,} transfers "
        f"({bank['already_stored']:,} already stored)")


DEMO_SEED = 7

STEPS: list[tuple[str, Callable[[Store, Say, Path], None]]] = [
    ("simulate", demo_simulate),
    ("bitcoin", lambda store, say, out: demo_bitcoin(store, say)),
    ("labels", demo_labels),
    ("human", demo_human),
]


def run_demo(store: Store, out_dir: Path, say: Say = print) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for _name, step in STEPS:
        step(store, say, out_dir)
    say("")
    say(store_summary(store))


def store_summary(store: Store) -> str:
    lines = [f"store {store.path} (schema version {store.schema_version})"]
    for table in ("blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "labels",
                  "ads", "reports", "prices", "quarantine"):
        lines.append(f"  {table:<13} {store.count(table):>10,}")
    top = store.query(
        "SELECT address, count(*) AS n, sum(value) AS sat FROM outputs WHERE chain = 'bitcoin' AND address IS NOT NULL "
        "GROUP BY address ORDER BY sat DESC LIMIT 3"
    )
    if top:
        lines.append("  largest receivers on bitcoin (real and simulated blocks):")
        lines += [f"    {a}  {n:>4} outputs  {sat / 1e8:>14,.8f} BTC" for a, n, sat in top]
    return "\n".join(lines)
