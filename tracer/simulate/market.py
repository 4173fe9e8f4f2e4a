"""Prices of BTC, ETH and USDT over the simulated period, hourly.

Geometric Brownian motion from levels close to the real ones in May 2024 (BTC ~60,000 USD, ETH ~3,000 USD)
with daily volatilities of ~3 % and ~4 %; USDT wanders within a few basis points of 1. The series is
synthetic: it only has to be plausible and to be the one the simulated ad fees were priced with.
Rows go to ``prices`` as the prices ingester writes them (asset upper case, UTC time, usd, source).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

START_USD = {"BTC": 60_000.0, "ETH": 3_000.0, "USDT": 1.0}
DAILY_VOL = {"BTC": 0.03, "ETH": 0.04, "USDT": 0.0}


class Prices:
    """Hourly USD prices; :meth:`usd` gives the latest price at or before a time (the flows-view rule)."""

    def __init__(self, start: dt.datetime, days: int, rng: np.random.Generator):
        hours = days * 24 + 48
        self.start = np.datetime64(start, "s")
        self.times = self.start + np.arange(hours).astype("timedelta64[h]")
        self.series: dict[str, np.ndarray] = {}
        for asset, s0 in START_USD.items():
            if asset == "USDT":
                self.series[asset] = np.round(1.0 + rng.normal(0, 0.0003, hours), 4)
            else:
                steps = rng.normal(0, DAILY_VOL[asset] / np.sqrt(24), hours)
                self.series[asset] = np.round(s0 * np.exp(np.cumsum(steps) - steps[0]), 2)

    def usd(self, asset: str, when: np.datetime64 | np.ndarray) -> np.ndarray | float:
        i = np.clip(np.searchsorted(self.times, np.asarray(when, "datetime64[s]"), side="right") - 1,
                    0, len(self.times) - 1)
        return self.series[asset][i]

    def table(self, run_id: int) -> pa.Table:
        assets = list(self.series)
        n = len(self.times)
        return pa.table({
            "asset": pa.array(np.repeat(assets, n)),
            "time": pa.array(np.tile(self.times.astype("datetime64[us]"), len(assets))),
            "usd": pa.array(np.concatenate([self.series[a] for a in assets]), pa.float64()),
            "source": pa.array(["simulate"] * (n * len(assets))),
            "run_id": pa.array(np.full(n * len(assets), run_id), pa.int64()),
        })
