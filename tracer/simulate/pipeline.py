"""The order of generation: background Bitcoin economy, the trafficking operation, then the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tracer.simulate.ledger import Ledger
from tracer.simulate.wallets import Economy
from tracer.store import Store


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """Independent, reproducible random streams per component (so adding one leaves the others alone)."""
    return np.random.Generator(np.random.Philox(key=[seed, stream]))


def run_world(store: Store, run_id: int, seed: int, cfg: dict[str, Any], truth_path: Path,
              progress: Callable[[str, float], None] | None) -> tuple[dict[str, int], list[Path], dict[str, int], dt.datetime]:
    from tracer.simulate import world

    def tell(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    store.claim_chain("bitcoin", "utxo", "mainnet", None, run_id)
    times = world.block_times(cfg, rng_for(seed, 1))
    ledger = Ledger(store, seed)
    econ = Economy(ledger, cfg, rng_for(seed, 2))
    first = econ.genesis(max(1, int(np.ceil((cfg["users"] * 1.8) / 20_000))))
    econ.run(cfg["n_blocks"], cfg["blocks_per_round"], first,
             progress=lambda b, n: tell("bitcoin", b / n))
    counts = ledger.materialise(run_id, times)
    ledger.drop_staging()
    end = times[-1].astype("datetime64[us]").astype(dt.datetime)
    return counts, [], {}, end
