"""AMLSim-format data from AMLSim's own parameter files (IBM AMLSim, Apache-2.0; github.com/IBM/AMLSim).

:func:`write_amlsim` reads a parameter folder as AMLSim lays it out (``conf.json``, ``accounts.csv``,
``alertPatterns.csv``, ``normalModels.csv``; a copy of its 1K set is in fixtures/aml/amlsim/params/) and
writes the output files AMLSim writes, with the columns of its ``schema.json``:

* ``accounts.csv`` (schema "account"): one row per account, ``acct_id`` 0..N-1, the bank and balance the
  parameter rows give;
* ``transactions.csv`` (schema "transaction"): ``tran_id, orig_acct, bene_acct, tx_type, base_amt,
  tran_timestamp, is_sar, alert_id`` (``alert_id`` -1 for normal transactions);
* ``alert_accounts.csv`` (schema "alert_member") and ``alert_transactions.csv`` (schema "alert_tx").

This is moneytrail's own generator of data in that format, not AMLSim (no code of it is used): a step is
a day from ``base_date``; the background is the normal models ``single`` (a -> b), ``fan_out``,
``fan_in`` and ``forward`` (a -> b -> c the next step), each instance repeating every ``period`` steps
(drawn from its ``min_period..max_period``) from a random first step over the whole simulation, as
normal accounts keep their counterparties; amounts from ``default.min_amount..max_amount``. Alerts
(``alertPatterns.csv``: fan_in, fan_out, cycle and scatter_gather) happen once, within ``period`` steps
from a random start, among ``min_accounts..max_accounts`` accounts drawn from everyone (alert members
also take part in normal models, as in AMLSim), with amounts from the row's ``min_amount..max_amount``;
along a cycle or through an intermediary each hop keeps ``1 - U(0, margin_ratio)`` of the amount
(``conf.json`` ``default.margin_ratio``), one hop per step or later. Other model types are not written
(mutual, periodical; bipartite, stack, gather_scatter, random alerts): docs/formats.md.

Everything is drawn from ``np.random.default_rng([seed, STREAM])``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from tracer.errors import MoneytrailError

STREAM = 0x616D6C73  # "amls"
NORMAL = ("single", "fan_out", "fan_in", "forward")
ALERTS = ("fan_in", "fan_out", "cycle", "scatter_gather")
ACCOUNT_COLUMNS = ["acct_id", "dsply_nm", "type", "acct_stat", "acct_rptng_crncy", "prior_sar_count", "branch_id",
                   "open_dt", "close_dt", "initial_deposit", "tx_behavior_id", "bank_id", "first_name", "last_name",
                   "street_addr", "city", "state", "country", "zip", "gender", "birth_date", "ssn", "lon", "lat"]
TX_COLUMNS = ["tran_id", "orig_acct", "bene_acct", "tx_type", "base_amt", "tran_timestamp", "is_sar", "alert_id"]
ALERT_TX_COLUMNS = ["alert_id", "alert_type", "is_sar", "tran_id", "orig_acct", "bene_acct", "tx_type", "base_amt",
                    "tran_timestamp"]
ALERT_MEMBER_COLUMNS = ["alert_id", "alert_type", "acct_id", "acct_name", "is_sar", "model_id", "start", "end",
                        "schedule_id", "bank_id"]


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [{k.strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]
    except OSError as exc:
        raise MoneytrailError(f"{path}: cannot read AMLSim parameter file: {exc}") from None


def _int(row: dict[str, str], key: str, path: Path, line: int) -> int:
    try:
        return int(float(row[key]))
    except (KeyError, ValueError):
        raise MoneytrailError(f"{path} line {line}: {key} must be a number, got {row.get(key)!r}") from None


class _Tx:
    def __init__(self):
        self.orig: list[np.ndarray] = []
        self.bene: list[np.ndarray] = []
        self.amt: list[np.ndarray] = []
        self.step: list[np.ndarray] = []
        self.alert: list[np.ndarray] = []

    def add(self, orig, bene, amt, step, alert: int = -1) -> None:
        orig, bene = np.atleast_1d(orig), np.atleast_1d(bene)
        amt, step = np.atleast_1d(np.asarray(amt, np.float64)), np.atleast_1d(np.asarray(step, np.int64))
        n = max(orig.size, bene.size, amt.size, step.size)
        self.orig.append(np.broadcast_to(orig, n))
        self.bene.append(np.broadcast_to(bene, n))
        self.amt.append(np.broadcast_to(np.round(amt, 2), n))
        self.step.append(np.broadcast_to(step, n))
        self.alert.append(np.full(n, alert))


def write_amlsim(params_dir: str | Path, out_dir: str | Path, *, seed: int = 0, steps: int | None = None,
                 normal_share: float = 1.0) -> dict[str, Any]:
    """Write AMLSim output files into ``out_dir`` from the parameter files in ``params_dir``; ``steps``
    overrides ``conf.json``'s ``general.total_steps`` and ``normal_share`` scales the count of each normal
    model (a smaller background for tests). Returns the files, counts and the alerts
    (``alert_id -> {"type", "accounts"}``)."""
    params_dir, out_dir = Path(params_dir), Path(out_dir)
    try:
        conf = json.loads((params_dir / "conf.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MoneytrailError(f"{params_dir / 'conf.json'}: cannot read AMLSim settings: {exc}") from None
    rng = np.random.default_rng([seed, STREAM])
    total = int(steps or conf["general"]["total_steps"])
    base = dt.datetime.fromisoformat(conf["general"]["base_date"])
    dflt = conf["default"]
    margin = float(dflt.get("margin_ratio", 0.1))

    # accounts
    path = params_dir / "accounts.csv"
    banks, balances = [], []
    for line, r in enumerate(_rows(path), start=2):
        n = _int(r, "count", path, line)
        banks += [r.get("bank_id") or "bank"] * n
        balances.append(rng.uniform(float(r["min_balance"]), float(r["max_balance"]), n))
    n_acct = len(banks)
    if n_acct < 20:
        raise MoneytrailError(f"{path}: AMLSim needs at least 20 accounts, the file gives {n_acct}")
    balance = np.concatenate(balances)
    tx = _Tx()

    def period_of(r: dict, p: Path, line: int) -> int:
        lo, hi = _int(r, "min_period", p, line), _int(r, "max_period", p, line)
        return int(rng.integers(max(1, lo), max(lo, hi) + 1))

    def members(r: dict, p: Path, line: int) -> np.ndarray:
        lo, hi = _int(r, "min_accounts", p, line), _int(r, "max_accounts", p, line)
        return rng.choice(n_acct, size=int(rng.integers(lo, hi + 1)), replace=False)

    # background: normal models recurring over the whole simulation
    path = params_dir / "normalModels.csv"
    lo_amt, hi_amt = float(dflt["min_amount"]), float(dflt["max_amount"])
    for line, r in enumerate(_rows(path), start=2):
        if r["type"] not in NORMAL:
            continue
        for _ in range(int(round(_int(r, "count", path, line) * normal_share))):
            period = period_of(r, path, line)
            when = np.arange(int(rng.integers(0, period)), total, period)
            if r["type"] == "single":
                a, b = rng.choice(n_acct, 2, replace=False)
                tx.add(a, b, rng.uniform(lo_amt, hi_amt, when.size), when)
            elif r["type"] == "forward":
                a, b, c = rng.choice(n_acct, 3, replace=False)
                amt = rng.uniform(lo_amt, hi_amt, when.size)
                tx.add(a, b, amt, when)
                tx.add(b, c, amt * (1 - rng.uniform(0, margin, when.size)), np.minimum(when + 1, total - 1))
            else:
                m = members(r, path, line)
                hub, others = m[0], m[1:]
                for s in when:
                    amt = rng.uniform(lo_amt, hi_amt, others.size)
                    tx.add(others if r["type"] == "fan_in" else hub, hub if r["type"] == "fan_in" else others, amt, s)

    # alerts: once each, within their period
    path = params_dir / "alertPatterns.csv"
    alerts: dict[int, dict[str, Any]] = {}
    member_rows = []
    for line, r in enumerate(_rows(path), start=2):
        if r["type"] not in ALERTS:
            continue
        for _ in range(_int(r, "count", path, line)):
            aid = len(alerts)
            period = period_of(r, path, line)
            start = int(rng.integers(0, max(1, total - period)))
            m = members(r, path, line)
            lo, hi = float(r["min_amount"]), float(r["max_amount"])
            if r["type"] in ("fan_in", "fan_out"):
                hub, others = m[0], m[1:]
                when = start + rng.integers(0, period + 1, others.size)
                amt = rng.uniform(lo, hi, others.size)
                tx.add(others if r["type"] == "fan_in" else hub, hub if r["type"] == "fan_in" else others, amt, when, aid)
            elif r["type"] == "cycle":
                when = start + np.sort(rng.integers(0, period + 1, m.size))
                amt = rng.uniform(lo, hi)
                for k in range(m.size):
                    tx.add(m[k], m[(k + 1) % m.size], amt, when[k], aid)
                    amt *= 1 - rng.uniform(0, margin)
            else:  # scatter_gather: m[0] -> m[1:-1] -> m[-1]
                mids = m[1:-1]
                amt = rng.uniform(lo, hi, mids.size)
                t1 = start + rng.integers(0, period // 2 + 1, mids.size)
                t2 = np.minimum(t1 + rng.integers(0, period // 2 + 1, mids.size), start + period)
                tx.add(m[0], mids, amt, t1, aid)
                tx.add(mids, m[-1], amt * (1 - rng.uniform(0, margin, mids.size)), t2, aid)
            alerts[aid] = {"type": r["type"], "accounts": sorted(int(a) for a in m)}
            for a in m:
                member_rows.append([aid, r["type"], int(a), f"C_{a}", True, 0, start, start + period,
                                    r.get("schedule_id", ""), banks[a]])

    # write, in time order (ties in order of generation)
    orig, bene = np.concatenate(tx.orig), np.concatenate(tx.bene)
    amt, step, alert = np.concatenate(tx.amt), np.concatenate(tx.step), np.concatenate(tx.alert)
    order = np.argsort(step, kind="stable")
    orig, bene, amt, step, alert = orig[order], bene[order], amt[order], step[order], alert[order]
    stamps = [(base + dt.timedelta(days=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ") for s in range(total)]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / f"{name}.csv" for name in ("accounts", "transactions", "alert_accounts",
                                                         "alert_transactions")}
    with files["accounts"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ACCOUNT_COLUMNS)
        sar = set(int(a) for v in alerts.values() for a in v["accounts"])
        for a in range(n_acct):
            w.writerow([a, f"C_{a}", "SAV", "A", "USD", a in sar, 1, 0, total, f"{balance[a]:.2f}", 1, banks[a],
                        "", "", "", "", "", "US", "", "", "", "", "", ""])
    with files["transactions"].open("w", newline="", encoding="utf-8") as f, \
            files["alert_transactions"].open("w", newline="", encoding="utf-8") as g:
        w, wa = csv.writer(f), csv.writer(g)
        w.writerow(TX_COLUMNS)
        wa.writerow(ALERT_TX_COLUMNS)
        for k in range(orig.size):
            sar = bool(alert[k] >= 0)
            row = [k + 1, int(orig[k]), int(bene[k]), "TRANSFER", f"{amt[k]:.2f}", stamps[int(step[k])]]
            w.writerow([*row, sar, int(alert[k])])
            if sar:
                wa.writerow([int(alert[k]), alerts[int(alert[k])]["type"], True, *row])
    with files["alert_accounts"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ALERT_MEMBER_COLUMNS)
        w.writerows(member_rows)
    return {"files": {k: str(v) for k, v in files.items()}, "accounts": n_acct, "transactions": int(orig.size),
            "alert_transactions": int((alert >= 0).sum()), "alerts": alerts}
