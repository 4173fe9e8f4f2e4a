"""The main job of `make demo`: build a store from what ships in fixtures/ and summarise it.

Each capability adds its step here as it lands, so a new user's first five minutes exercise all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tracer.ingest.bitcoin import ingest_bitcoin
from tracer.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

Say = Callable[[str], None]


def demo_bitcoin(store: Store, say: Say) -> None:
    blocks = FIXTURES / "bitcoin"
    files = [blocks / "blk-heights-0-438.dat", *sorted(blocks.glob("block-*.raw"))]
    summary = ingest_bitcoin(store, files)
    say(f"bitcoin: {summary.blocks} real mainnet blocks, {summary.transactions:,} transactions "
        f"({summary.blocks_skipped} already stored)")


STEPS: list[tuple[str, Callable[[Store, Say], None]]] = [
    ("bitcoin", demo_bitcoin),
]


def run_demo(store: Store, out_dir: Path, say: Say = print) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for _name, step in STEPS:
        step(store, say)
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
        lines.append("  largest receivers (real blocks):")
        lines += [f"    {a}  {n:>4} outputs  {sat / 1e8:>14,.8f} BTC" for a, n, sat in top]
    return "\n".join(lines)
