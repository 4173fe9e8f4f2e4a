"""Planted graph typologies in the bank (``tracer simulate --plant N``): N instances each of fan_in,
fan_out, cycle, scatter_gather and gather_scatter (IBM AMLSim's alert shapes; the funnel of FinCEN
FIN-2014-A005), plus N each of three benign look-alikes that share their shapes: a payroll run (one
employer pays many employees, the same salary every two weeks), a merchant taking card payments (many
small card payments in, a balance kept), a utility taking bill payments (many ACH payments in over a
billing window, a balance kept).

Opt-in: with ``plant = 0`` nothing here runs and a world is row for row what it was. The random stream
is separate (``np.random.default_rng([seed, STREAM])``), so planting changes no other row. Sizes,
amounts, formats and timings are drawn from ranges per instance (docs/simulator.md), and a laundering
hub may carry a few ordinary payments of its own, so that detectors are tested on a method, not a fit.
Rows go through :class:`~tracer.simulate.bank.Bank` (``is_laundering`` true when planted, false for the
look-alikes); :func:`plant` returns the truth patterns with their rows as indexes into ``bank.rows``,
which the pipeline turns into transfer ids once the table is built.
"""

from __future__ import annotations

import numpy as np

from tracer.simulate.bank import BANKS, Bank, account

STREAM = 0x67726170  # "grap": the planted graph typologies' own random stream
LAUNDERING = ("fan_in", "fan_out", "cycle", "scatter_gather", "gather_scatter")
BENIGN = ("benign_payroll", "benign_merchant", "benign_bills")
HOUR, DAY = 3600, 86400


class _Planter:
    def __init__(self, bank: Bank, seed: int, background: np.ndarray):
        self.bank, self.seed, self.bg = bank, seed, background
        self.rng = np.random.default_rng([seed, STREAM])
        self.n_accounts = 0

    def new(self, label: str) -> str:
        self.n_accounts += 1
        return account(self.seed, BANKS[int(self.rng.integers(0, len(BANKS)))], f"plant-{label}-{self.n_accounts}")

    def time(self, lo_day: float, hi_day: float) -> np.datetime64:
        return self.bank.start + np.int64(self.rng.uniform(lo_day, hi_day) * DAY)

    def add(self, rows: list | None, frm, to, usd, when, fmt, laundering: bool) -> None:
        """One row group (recorded in ``rows`` unless None); scalars are repeated to the group's length."""
        cols = [np.atleast_1d(np.asarray(c, dtype=object)) for c in (frm, to, fmt)]
        usd, when = np.atleast_1d(np.asarray(usd, np.float64)), np.atleast_1d(np.asarray(when, "datetime64[s]"))
        n = max(c.size for c in [*cols, usd, when])
        frm, to, fmt = (np.broadcast_to(c, n).copy() for c in cols)
        self.bank.add(frm, to, np.round(np.broadcast_to(usd, n) * 100).astype(np.int64), np.broadcast_to(when, n),
                      fmt, laundering)
        if rows is not None:
            rows.append(len(self.bank.rows) - 1)

    def fmt(self, n: int, choices=("Wire", "ACH", "Cheque"), p=(0.5, 0.35, 0.15)) -> np.ndarray:
        return np.asarray(choices, dtype=object)[self.rng.choice(len(choices), size=n, p=p)]

    def ordinary(self, hub: str) -> None:
        """A few ordinary payments of the hub over the month (not part of the pattern's truth)."""
        k = int(self.rng.integers(0, 5))
        if k == 0:
            return
        peers = self.bg[self.rng.integers(0, self.bg.size, k)]
        out = self.rng.random(k) < 0.5
        when = self.bank.start + (self.rng.uniform(0, self.bank.days, k) * DAY).astype(np.int64)
        usd = self.rng.lognormal(np.log(300), 0.8, k)
        self.add(None, np.where(out, hub, peers), np.where(out, peers, hub), usd, when,
                 self.fmt(k, ("ACH", "Credit Card"), (0.6, 0.4)), False)

    # -- laundering ---------------------------------------------------------------------------------------
    def fan_in(self, i: int) -> dict:
        r, rows = self.rng, []
        hub = self.new("funnel")
        k = int(r.integers(5, 13))
        senders = [self.new("mule") for _ in range(k)]
        t0 = self.time(1, self.bank.days - 9)
        when = t0 + np.sort((r.uniform(0, r.uniform(0.5, 5), k) * DAY).astype(np.int64))
        usd = r.uniform(800, 9_800, k)
        cash = r.random(k) < 0.3  # some of it deposited as cash by the mules themselves
        frm = np.where(cash, hub, np.asarray(senders, dtype=object))
        self.add(rows, frm, hub, usd, when, np.where(cash, "Cash", self.fmt(k, ("ACH", "Wire"), (0.6, 0.4))), True)
        outs = [self.new("funnel-out") for _ in range(int(r.integers(1, 3)))]
        share = r.dirichlet(np.ones(len(outs))) * usd.sum() * r.uniform(0.85, 0.98)
        t_out = when.max() + (r.uniform(2, 60, len(outs)) * HOUR).astype(np.int64)
        self.add(rows, [hub] * len(outs), outs, share, t_out, self.fmt(len(outs), ("Wire", "Cheque"), (0.8, 0.2)), True)
        self.ordinary(hub)
        return self.pattern("fan_in", i, rows, [hub, *[s for s, c in zip(senders, cash) if not c], *outs])

    def fan_out(self, i: int) -> dict:
        r, rows = self.rng, []
        hub, source = self.new("fan-out"), self.new("fan-out-source")
        total = r.uniform(15_000, 120_000)
        n_in = int(r.integers(1, 3))
        t0 = self.time(1, self.bank.days - 9)
        t_in = t0 + (np.arange(n_in) * r.uniform(1, 12) * HOUR).astype(np.int64)
        self.add(rows, [source] * n_in, hub, np.full(n_in, total / n_in), t_in, self.fmt(n_in, ("Wire",), (1.0,)), True)
        k = int(r.integers(5, 13))
        recipients = [self.new("fan-out-mule") for _ in range(k)]
        share = r.dirichlet(np.full(k, 3.0)) * total * r.uniform(0.85, 0.98)
        when = t_in.max() + np.sort((r.uniform(0.5, r.uniform(6, 60), k) * HOUR).astype(np.int64))
        self.add(rows, [hub] * k, recipients, share, when, self.fmt(k), True)
        self.ordinary(hub)
        return self.pattern("fan_out", i, rows, [hub, source, *recipients])

    def cycle(self, i: int) -> dict:
        r, rows = self.rng, []
        k = int(r.integers(2, 7))
        members = [self.new("cycle") for _ in range(k)]
        amount = r.uniform(5_000, 150_000)
        t = self.time(1, self.bank.days - 8)
        for j in range(k):
            t = t + np.int64(r.uniform(1, 36) * HOUR)
            self.add(rows, members[j], members[(j + 1) % k], amount, t, self.fmt(1, ("Wire", "ACH"), (0.8, 0.2)), True)
            amount *= r.uniform(0.85, 0.99)
        return self.pattern("cycle", i, rows, members)

    def scatter_gather(self, i: int) -> dict:
        r, rows = self.rng, []
        src, dst = self.new("sg-source"), self.new("sg-dest")
        k = int(r.integers(3, 9))
        mids = [self.new("sg-mid") for _ in range(k)]
        t0 = self.time(1, self.bank.days - 8)
        usd = r.uniform(2_000, 9_500, k)
        t1 = t0 + np.sort((r.uniform(0, 24, k) * HOUR).astype(np.int64))
        self.add(rows, [src] * k, mids, usd, t1, self.fmt(k), True)
        t2 = t1 + (r.uniform(1, 60, k) * HOUR).astype(np.int64)
        self.add(rows, mids, [dst] * k, usd * r.uniform(0.85, 0.99, k), t2, self.fmt(k), True)
        return self.pattern("scatter_gather", i, rows, [src, *mids, dst])

    def gather_scatter(self, i: int) -> dict:
        r, rows = self.rng, []
        hub = self.new("gs-hub")
        k_in, k_out = int(r.integers(5, 11)), int(r.integers(5, 11))
        senders = [self.new("gs-in") for _ in range(k_in)]
        recipients = [self.new("gs-out") for _ in range(k_out)]
        t0 = self.time(1, self.bank.days - 9)
        usd = r.uniform(1_000, 9_500, k_in)
        t_in = t0 + np.sort((r.uniform(0, r.uniform(0.5, 4), k_in) * DAY).astype(np.int64))
        self.add(rows, senders, [hub] * k_in, usd, t_in, self.fmt(k_in), True)
        share = r.dirichlet(np.full(k_out, 3.0)) * usd.sum() * r.uniform(0.85, 0.98)
        t_out = t_in.max() + np.sort((r.uniform(1, 60, k_out) * HOUR).astype(np.int64))
        self.add(rows, [hub] * k_out, recipients, share, t_out, self.fmt(k_out), True)
        self.ordinary(hub)
        return self.pattern("gather_scatter", i, rows, [hub, *senders, *recipients])

    # -- benign look-alikes ---------------------------------------------------------------------------------
    def payroll(self, i: int) -> dict:
        """An employer pays 8-40 employees the same salary every 14 days, out of revenue received all month."""
        r, rows = self.rng, []
        employer = self.new("employer")
        k = int(r.integers(8, 41))
        employees = self.bg[r.choice(self.bg.size, size=min(k, self.bg.size), replace=False)]
        salary = r.uniform(1_500, 6_000, employees.size)
        first = self.time(1, self.bank.days - 15)
        n_rev = int(r.integers(10, 40))
        revenue = r.dirichlet(np.ones(n_rev)) * salary.sum() * 2 * r.uniform(1.1, 1.6)
        t_rev = self.bank.start + (r.uniform(0, self.bank.days, n_rev) * DAY).astype(np.int64)
        self.add(None, self.bg[r.integers(0, self.bg.size, n_rev)], employer, revenue, t_rev,
                 self.fmt(n_rev, ("Wire", "ACH", "Cheque"), (0.4, 0.4, 0.2)), False)
        for run in range(2):
            when = first + np.int64(run * 14 * DAY) + (r.uniform(0, 2, employees.size) * HOUR).astype(np.int64)
            self.add(rows, [employer] * employees.size, employees, salary, when, "ACH", False)
        return self.pattern("benign_payroll", i, rows, [employer, *employees])

    def merchant(self, i: int) -> dict:
        """A merchant takes 30-120 small card payments over the month and pays a supplier once."""
        r, rows = self.rng, []
        shop = self.new("merchant")
        k = int(r.integers(30, 121))
        usd = r.lognormal(np.log(45), 0.8, k).clip(3, 900)
        when = self.bank.start + np.sort((r.uniform(0, self.bank.days, k) * DAY).astype(np.int64))
        self.add(rows, self.bg[r.integers(0, self.bg.size, k)], [shop] * k, usd, when, "Credit Card", False)
        self.add(rows, shop, self.new("supplier"), usd.sum() * r.uniform(0.2, 0.5),
                 self.bank.start + np.int64((self.bank.days - r.uniform(0.5, 3)) * DAY), "Wire", False)
        return self.pattern("benign_merchant", i, rows, [shop])

    def bills(self, i: int) -> dict:
        """A utility takes 20-80 bill payments by ACH within a 5-12 day billing window; it keeps the balance."""
        r, rows = self.rng, []
        utility = self.new("utility")
        k = int(r.integers(20, 81))
        usd = r.uniform(40, 400, k)
        t0 = self.time(0, self.bank.days - 12)
        when = t0 + np.sort((r.uniform(0, r.uniform(5, 12), k) * DAY).astype(np.int64))
        payers = self.bg[r.choice(self.bg.size, size=min(k, self.bg.size), replace=False)]
        self.add(rows, payers, [utility] * payers.size, usd[:payers.size], when[:payers.size], "ACH", False)
        return self.pattern("benign_bills", i, rows, [utility])

    def pattern(self, typ: str, i: int, rows: list, accounts: list) -> dict:
        return {"id": f"plant/{typ}-{i + 1}", "type": typ, "chain": "fiat", "actor": f"plant/{typ}-{i + 1}",
                "rows": rows, "accounts": sorted({str(a) for a in accounts})}


def plant(bank: Bank, seed: int, n: int, background: np.ndarray) -> list[dict]:
    """Plant ``n`` instances of each laundering shape and of each benign look-alike; the patterns' ``rows``
    are indexes into ``bank.rows`` (see :func:`transfer_ids`)."""
    if n <= 0:
        return []
    p = _Planter(bank, seed, np.asarray(background, dtype=object))
    makers = [p.fan_in, p.fan_out, p.cycle, p.scatter_gather, p.gather_scatter, p.payroll, p.merchant, p.bills]
    return [make(i) for make in makers for i in range(n)]


def route_pattern(bank: Bank, fiat: dict, exchange: str) -> dict:
    """The operation's cash-out route (:func:`tracer.simulate.bank.cash_out`) from the exchange through the
    mules into the funnel: one source, three intermediaries, one destination within hours, value kept —
    AMLSim's scatter-gather. Its rows are also the truth's structuring and funnel_account patterns."""
    mules = set(fiat["accounts"]["mules"])
    rows = [g for g in fiat["structuring"] if bank.rows[g]["from"][0] == exchange]
    rows += [g for g in fiat["funnel"] if bank.rows[g]["from"][0] in mules]
    return {"id": "operation-1/scatter-gather", "type": "scatter_gather", "chain": "fiat", "actor": "operation-1",
            "rows": rows, "accounts": sorted({exchange, *mules, fiat["accounts"]["funnel"]})}


def transfer_ids(patterns: list[dict], bank: Bank, txids: list[str], order: np.ndarray) -> list[dict]:
    """The patterns in the truth format: each row group's transfer ids (``txids`` of the table built from
    ``bank.rows`` in ``order``)."""
    sizes = np.array([len(r["from"]) for r in bank.rows])
    offsets = np.cumsum(sizes) - sizes
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    out = []
    for p in patterns:
        ids = [txids[int(inv[offsets[g] + j])] for g in p["rows"] for j in range(int(sizes[g]))]
        out.append({k: v for k, v in p.items() if k != "rows"} | {"transfer_ids": ids})
    return out
