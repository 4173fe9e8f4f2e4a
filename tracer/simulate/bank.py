"""Bank transfers (chain ``fiat``): background payments and the operation's cash-out.

Rows are those the bank ingester writes for an AMLworld file (Altman et al., NeurIPS 2023): parties
``"<bank>:<account>"``, asset and symbol the currency code, amounts in cents (``amount``, ``amount_raw``,
and ``amount_received`` for the credited side), ``payment_format`` as AMLworld writes it (ACH, Cash,
Cheque, Credit Card, Reinvestment, Wire), ``kind`` its lower case, ``is_laundering`` the ground truth,
``idx`` and ``source_line`` the row's line in the AMLworld file the world writes with ``--sources`` (rows in
time order after the header, so the first is line 2). Times have AMLworld's resolution, the minute. A cash
deposit is a row from the account to itself with format Cash, as AMLworld records cash.

Planted (all ``is_laundering = true``), after the operation's USDT reaches the Lumen exchange:
- **structured cash-out**: Lumen wires the operation's balance to three mule accounts in amounts just
  under 10,000 USD (the Currency Transaction Report threshold, 31 CFR 1010.311; FATF red flag);
- **funnel account**: the mules and cash deposits made in several cities, each under 10,000, feed one
  account, which is emptied quickly (FinCEN FIN-2014-A005 on funnel accounts);
- **cycle**: the funnel pays a shell company, and money goes round three shell companies back to the
  first (AMLSim's *cycle* typology) before a final purchase.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa

BANKS = ["harborbank", "meridian", "pioneer", "lakeside", "summitcu", "coastal"]
FORMATS = np.array(["ACH", "Credit Card", "Wire", "Cheque", "Cash", "Reinvestment"])
FORMAT_P = np.array([0.36, 0.26, 0.1, 0.1, 0.13, 0.05])
FORMAT_MEDIAN_USD = np.array([450.0, 60.0, 4_000.0, 800.0, 1_500.0, 2_000.0])


def account(seed: int, bank: str, label: str) -> str:
    """``<bank>:<account>`` with a 9-character hex account id, the form AMLworld's accounts take."""
    return f"{bank}:" + hashlib.sha256(f"{seed}:account:{bank}:{label}".encode()).hexdigest()[:9].upper()


class Bank:
    def __init__(self, seed: int, start: dt.datetime, days: int, rng: np.random.Generator):
        self.seed, self.rng = seed, rng
        self.start = np.datetime64(start, "s")
        self.days = days
        self.rows: list[dict[str, np.ndarray]] = []

    def add(self, frm, to, cents, when, fmt, laundering: bool) -> None:
        frm = np.atleast_1d(np.asarray(frm, dtype=object))
        self.rows.append({"from": frm, "to": np.atleast_1d(np.asarray(to, dtype=object)),
                          "cents": np.atleast_1d(np.asarray(cents, np.int64)),
                          "when": np.atleast_1d(np.asarray(when, "datetime64[s]")),
                          "fmt": np.atleast_1d(np.asarray(fmt, dtype=object)),
                          "laundering": np.full(frm.size, laundering)})

    def background(self, n_accounts: int, n_rows: int) -> np.ndarray:
        rng = self.rng
        banks = rng.integers(0, len(BANKS), n_accounts)
        accounts = np.array([account(self.seed, BANKS[b], f"bg-{i}") for i, b in enumerate(banks)], dtype=object)
        w = rng.lognormal(0, 1.2, n_accounts)
        cdf = np.cumsum(w) / w.sum()
        frm = accounts[rng.integers(0, n_accounts, n_rows)]
        to = accounts[np.minimum(np.searchsorted(cdf, rng.random(n_rows)), n_accounts - 1)]
        f = rng.choice(FORMATS.size, size=n_rows, p=FORMAT_P)
        usd = np.clip(rng.lognormal(np.log(FORMAT_MEDIAN_USD[f]), 1.0), 1, 500_000)
        cash = FORMATS[f] == "Cash"
        to = np.where(cash, frm, to)
        # legitimate businesses deposit cash too, sometimes just under 10,000: false positives for
        # structuring rules
        near = cash & (rng.random(n_rows) < 0.05)
        usd = np.where(near, rng.uniform(8_000, 9_999, n_rows), usd)
        when = self.start + rng.integers(0, self.days * 86400, n_rows)
        self.add(frm, to, np.round(usd * 100).astype(np.int64), when, FORMATS[f], False)
        return accounts

    def table(self, run_id: int) -> tuple[pa.Table, np.ndarray]:
        cols = {k: np.concatenate([r[k] for r in self.rows]) for k in self.rows[0]}
        # AMLworld writes times to the minute (``YYYY/MM/DD HH:MM``): the rows are what its file holds
        cols["when"] = cols["when"].astype("datetime64[m]").astype("datetime64[s]")
        order = np.lexsort((np.arange(cols["when"].size), cols["when"]))
        cols = {k: v[order] for k, v in cols.items()}
        n = order.size
        line = np.arange(2, n + 2)  # the header is line 1 of the file
        cents = cols["cents"]
        dec = pa.decimal128(38, 0)
        amount = pa.array([int(c) for c in cents], dec)
        # the identity the bank ingester gives a transfer without an id of its own (docs/formats.md,
        # "Reruns and collisions"): md5 of its normalised content, and its occurrence among identical rows
        stamps = np.datetime_as_string(cols["when"], unit="s")
        txids, seen, idx = [], {}, []
        for t, a, b, c, fmt in zip(stamps, cols["from"], cols["to"], cents, cols["fmt"], strict=True):
            key = content_key(t.replace("T", " "), a, b, str(int(c)), "USD", str(int(c)), "USD", str(fmt))
            txids.append(key)
            idx.append(seen.get(key, 0))
            seen[key] = idx[-1] + 1
        table = pa.table({
            "chain": ["fiat"] * n, "asset": ["USD"] * n,
            "txid": txids, "idx": pa.array(idx, pa.int64()),
            "from_address": cols["from"], "to_address": cols["to"], "amount": amount,
            "amount_raw": [str(int(c)) for c in cents], "time": cols["when"].astype("datetime64[us]"),
            "kind": [str(f).lower() for f in cols["fmt"]], "symbol": ["USD"] * n, "decimals": np.full(n, 2, np.int32),
            "payment_format": cols["fmt"], "is_laundering": cols["laundering"], "source_line": line,
            "run_id": np.full(n, run_id), "amount_received": amount, "received_asset": ["USD"] * n,
            "received_symbol": ["USD"] * n, "received_decimals": np.full(n, 2, np.int32),
        })
        return table, order


def content_key(*fields: str) -> str:
    """The bank ingester's content key (CONTENT_FIELDS of tracer.ingest.human.bank, joined by U+001F)."""
    return hashlib.md5(chr(31).join(fields).encode(), usedforsecurity=False).hexdigest()


def cash_out(bank: Bank, rng: np.random.Generator, exchange_account: str, usd_total: float,
             after: np.datetime64, seed: int) -> dict[str, list]:
    """The operation's fiat leg; returns its accounts and the row groups (as indexes into ``bank.rows``)."""
    mules = [account(seed, BANKS[b], f"mule-{k}") for k, b in enumerate((1, 2, 1))]
    funnel = account(seed, "meridian", "funnel")
    shells = [account(seed, BANKS[b], f"shell-{k}") for k, b in enumerate((3, 4, 5))]
    dealer = account(seed, "coastal", "auto-dealer")
    t = after
    groups: dict[str, list] = {"accounts": {"mules": mules, "funnel": funnel, "shells": shells, "dealer": dealer,
                                            "exchange": exchange_account}}
    structuring_rows = []
    # 1. structured wires from the exchange to the mules, each under 10,000 USD
    n_wires = max(3, int(np.ceil(usd_total / 9_000)))
    shares = rng.uniform(0.9, 1.1, n_wires)
    amounts = np.minimum(usd_total * shares / shares.sum(), 9_990.0)
    received = [0.0, 0.0, 0.0]
    for k, amt in enumerate(amounts):
        t = t + np.int64(rng.integers(1800, 4 * 3600))
        cents = round(float(amt) * 100)
        bank.add(exchange_account, mules[k % 3], cents, t, "Wire", True)
        structuring_rows.append(len(bank.rows) - 1)
        received[k % 3] += cents / 100
    # 2. funnel: mules pass most on; cash deposits in several cities, each under 10,000
    funnel_rows = []
    for m, got in zip(mules, received):
        t = t + np.int64(rng.integers(600, 3 * 3600))
        bank.add(m, funnel, round(got * 0.97 * 100), t, "ACH", True)
        funnel_rows.append(len(bank.rows) - 1)
    mule_total = sum(received)
    cash_total = 0.0
    for _ in range(8):
        amt = float(rng.uniform(7_500, 9_950))
        t = t + np.int64(rng.integers(1800, 6 * 3600))
        bank.add(funnel, funnel, round(amt * 100), t, "Cash", True)
        structuring_rows.append(len(bank.rows) - 1)
        funnel_rows.append(len(bank.rows) - 1)
        cash_total += amt
    into_funnel = mule_total * 0.97 + cash_total
    # 3. out to a shell company quickly, round a cycle of shells, then a purchase
    t = t + np.int64(rng.integers(3600, 8 * 3600))
    out = into_funnel * 0.95
    bank.add(funnel, shells[0], round(out * 100), t, "Wire", True)
    funnel_rows.append(len(bank.rows) - 1)
    cycle_rows = []
    amt = out * 0.9
    for a, b in ((0, 1), (1, 2), (2, 0)):
        t = t + np.int64(rng.integers(3600, 12 * 3600))
        bank.add(shells[a], shells[b], round(amt * 100), t, "Wire", True)
        cycle_rows.append(len(bank.rows) - 1)
        amt *= 0.97
    t = t + np.int64(rng.integers(3600, 12 * 3600))
    bank.add(shells[0], dealer, round(amt * 0.9 * 100), t, "Cheque", True)
    cycle_rows.append(len(bank.rows) - 1)
    groups.update({"structuring": structuring_rows, "funnel": funnel_rows, "cycle": cycle_rows})
    return groups
