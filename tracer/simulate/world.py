"""One simulated world: its size, its time line, its actors, and the order in which it is generated.

:func:`simulate` is the entry point (also re-exported as ``tracer.simulate.simulate``). It is seeded
and deterministic: the same seed and scale give the same rows in every table (row order included,
since every load is ordered), whatever the machine. It writes into the store exactly what the real
ingesters write and a ground-truth file beside it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tracer.errors import MoneytrailError
from tracer.store import Store

SCALES = {"test": 3_000, "demo": 10_000, "1e4": 10_000, "1e5": 100_000, "1e6": 1_000_000, "1e7": 10_000_000}
START = dt.datetime(2024, 5, 1)
PERIOD_DAYS = 28
MEMORY_LIMIT = "6GB"


class SimulationError(MoneytrailError):
    """The simulator refused its arguments or the store it was given."""


@dataclass
class SimulationSummary:
    """What :func:`simulate` wrote: the run, row counts per table, the truth files, the planted patterns
    (id -> type; members are in the truth file) and the time taken."""

    run_id: int
    seed: int
    target_transactions: int
    counts: dict[str, int]
    truth_path: Path
    truth_files: list[Path]
    seconds: float
    start: dt.datetime
    end: dt.datetime
    patterns: dict[str, str] = field(default_factory=dict)  # planted pattern id -> its type
    sources: Path | None = None  # the sources manifest when asked for (``sources_dir``)

    @property
    def bitcoin_transactions(self) -> int:
        return self.counts.get("transactions", 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "seed": self.seed, "target_transactions": self.target_transactions,
            "counts": self.counts, "truth_path": str(self.truth_path),
            "truth_files": [str(p) for p in self.truth_files], "seconds": round(self.seconds, 3),
            "start": self.start.isoformat(), "end": self.end.isoformat(), "patterns": self.patterns,
            "sources": None if self.sources is None else str(self.sources),
        }


def resolve_scale(scale: str | int) -> int:
    """A named scale (test, demo, 1e5, 1e6, 1e7) or a number of Bitcoin transactions (>= 1,000)."""
    if isinstance(scale, str):
        key = scale.strip().lower()
        if key in SCALES:
            return SCALES[key]
        try:
            scale = int(float(key))
        except ValueError:
            raise SimulationError(
                f"unknown scale {scale!r}: use one of {', '.join(SCALES)} or a number of transactions"
            ) from None
    if not isinstance(scale, (int, np.integer)) or scale < 1_000 or scale > 100_000_000:
        raise SimulationError(f"scale {scale!r} out of range: between 1,000 and 100,000,000 transactions")
    return int(scale)


def world_config(target: int) -> dict[str, Any]:
    """Parameters of a world with about ``target`` Bitcoin transactions (documented in docs/simulator.md)."""
    n_blocks = int(np.clip(target // 20, 150, 4032))
    tx_per_block = max(1.0, target / n_blocks - 1)
    return {
        "target": target,
        "n_blocks": n_blocks,
        "block_seconds": PERIOD_DAYS * 86400 / n_blocks,
        "tx_per_block": tx_per_block,
        "blocks_per_round": max(1, min(int(round(20_000 / tx_per_block)), n_blocks // 100)),
        "users": max(400, target // 8),
        "exchanges": ["Kestrel Exchange", "Harborview Exchange", "Lumen Markets", "Quarry Trade"],
        "exchange_slugs": ["kestrel", "harborview", "lumen", "quarry"],
        "miners": ["Pool Alpha", "Pool Beta", "Pool Gamma"],
        "miner_share": [0.5, 0.3, 0.2],
        "hot_utxos": 40,
        "user_median_sat": 1_500_000,
        "feerate_median": 12.0,
        "p_change_same_type": 0.85,
        "p_reuse_receive": 0.45,
        "p_one_input": 0.6,
        "p_no_change": 0.12,
        "p_two_payees": 0.08,
        "p_round_payment": 0.5,
        "p_consolidate": 0.05,
        "p_deposit": 0.12,
        "p_tx0": 0.01,
        "p_sweep_per_block": 1 / 6,
        "batch_share": 0.04,
        "batch_payees": 4,
        "wasabi_per_block": tx_per_block * 0.0012,
        "wasabi_min": 10,
        "wasabi_max": 40,
    }


def block_times(cfg: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Strictly increasing block times: exponential gaps (Poisson block arrivals) at the world's rate."""
    gaps = rng.exponential(cfg["block_seconds"], cfg["n_blocks"])
    gaps = np.maximum(gaps, 1.0)
    secs = np.cumsum(gaps) - gaps[0]
    return np.datetime64(START, "s") + (secs * 1e6).astype("timedelta64[us]")


def simulate(
    store: Store,
    *,
    seed: int,
    scale: str | int,
    truth_path: Path,
    progress: Callable[[str, float], None] | None = None,
    sources_dir: Path | None = None,
    ad_fees_known: bool = False,
    plant: int = 0,
) -> SimulationSummary:
    """Generate a seeded trafficking-finance world into ``store`` and its ground truth at ``truth_path``.

    ``scale`` is a named size (``"test"`` ~3,000, ``"demo"`` ~10,000, ``"1e5"``, ``"1e6"``, ``"1e7"``
    Bitcoin transactions) or a number. Everything is written in one store transaction under one
    ``ingest_runs`` row (source ``simulate``): on failure nothing is left but that row, marked failed.
    A store that already holds a simulated world is refused (heights and txids would collide).
    ``progress(stage, fraction)`` is called as stages advance. With ``sources_dir`` the world is also
    written as the source files the ingesters read, with a manifest of the ingest steps in order
    (:mod:`tracer.simulate.sources`); ingesting them into an empty store gives the same tables. Such a
    world is a regtest world: its Bitcoin chain is serialised into blk files with real txids and headers
    (:mod:`tracer.simulate.serialise`) and its addresses carry regtest prefixes.
    ``plant`` > 0 adds that many instances of each planted typology with benign look-alikes
    (:mod:`tracer.simulate.plant_flow`: Bitcoin, USDT and bank; :mod:`tracer.simulate.plant_graph`: the
    graph typologies in the bank); 0 leaves the world as it was.
    Ads are stored as a scrape sees them: their fee payment (``fee_txid``, ``fee_amount``) is unknown
    to the store and only in the truth, unless ``ad_fees_known``.
    """
    from tracer.simulate.pipeline import run_world

    target = resolve_scale(scale)
    if not isinstance(seed, (int, np.integer)) or seed < 0 or seed >= 2**63:
        raise SimulationError(f"seed must be a non-negative 64-bit integer, got {seed!r}")
    if not isinstance(plant, (int, np.integer)) or plant < 0 or plant > 1_000:
        raise SimulationError(f"plant must be an integer from 0 to 1000, got {plant!r}")
    truth_path = Path(truth_path)
    if truth_path.suffix.lower() != ".json":
        raise SimulationError(f"truth file {truth_path} must end in .json (Parquet companions go beside it)")
    if sources_dir is not None:
        sources_dir = Path(sources_dir)
        if sources_dir.exists() and (not sources_dir.is_dir() or any(sources_dir.iterdir())):
            raise SimulationError(f"sources folder {sources_dir} must be new or empty")
    prior = store.scalar(
        "SELECT min(run_id) FROM ingest_runs WHERE source = 'simulate' AND status = 'ok'"
    )
    if prior is not None:
        raise SimulationError(
            f"{store.path} already holds a simulated world (run {prior}); simulate into a fresh store"
        )
    t0 = time.perf_counter()
    # big worlds join tens of millions of staged rows: let DuckDB spill to disk rather than take the
    # machine's memory (the previous limit comes back afterwards)
    old_limit = store.scalar("SELECT current_setting('memory_limit')")
    old_bar = bool(store.scalar("SELECT current_setting('enable_progress_bar')"))
    store.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    store.con.execute("SET enable_progress_bar = false")  # our own progress callback reports the stages
    params = {"seed": int(seed), "scale": str(scale), "target": target} | ({"plant": int(plant)} if plant else {})
    run = store.begin_run("simulate", str(truth_path), params)
    try:
        with store.transaction():
            cfg = world_config(target) | {"plant": int(plant)}
            counts, files, patterns, end, manifest = run_world(store, run.run_id, int(seed), cfg,
                                                               truth_path, progress, sources_dir,
                                                               ad_fees_known)
            run.add(**counts)
    except BaseException as exc:
        run.fail(exc)
        raise
    finally:
        # RESET gives the default back exactly; a limit someone had set comes back as DuckDB printed it
        store.con.execute("RESET memory_limit")
        if store.scalar("SELECT current_setting('memory_limit')") != old_limit:
            store.con.execute(f"SET memory_limit = '{old_limit}'")
        store.con.execute(f"SET enable_progress_bar = {str(old_bar).lower()}")
    run.finish()
    return SimulationSummary(
        run_id=run.run_id, seed=int(seed), target_transactions=target, counts=counts, truth_path=truth_path,
        truth_files=files, seconds=time.perf_counter() - t0, start=START, end=end, patterns=patterns,
        sources=manifest,
    )
