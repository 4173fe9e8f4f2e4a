"""Opt-in extra instances of the flow typologies (``tracer simulate --plant N``), with benign look-alikes.

With ``plant`` = 0 (the default) nothing here runs and a world is exactly what it was. With ``N`` > 0 each
world gets, on a random stream of its own (``np.random.default_rng([seed, STREAM])``):

- **Bitcoin** (through :class:`~tracer.simulate.scripted.Scripted`, after the operation): ``N`` peeling
  chains — an exchange withdrawal funds a fresh launderer, who peels 3–10 % of the coin to ordinary
  wallets at each of 6–11 hops a block or two apart, the remainder to a fresh address of his — each
  ending in two deposits of the remainder to one exchange deposit address, which the exchange sweeps
  into its hot wallet (an ``off_ramp``); and ``N`` benign spending chains: an ordinary wallet paying 15–45 % of its coin at each
  of 4–7 hops (the same 1-input/2-output shape, ``benign_spending_chain``).
- **USDT** (sim-evm): ``N`` pass-through chains — an exchange withdrawal to a fresh account that forwards
  96–99.5 % within hours to the next, three accounts deep, three rounds over a week, the last account
  depositing at an exchange deposit address that forwards to the hot wallet (``pass_through``, and the
  deposit an ``off_ramp``).
- **Bank** (fiat): ``N`` structuring instances (3–5 cash deposits of 8,600–9,950 USD within two days by
  a fresh account); ``N`` pass-through chains like the USDT ones; and ``N`` payrolls with bills
  (``benign_payday_bills``): an employer pays 12 employees, who pay 60–95 % of the salary within hours
  to 3–6 of a handful of billers that the whole town pays — quick pass-through that is not laundering.

The truth patterns use the existing format (:mod:`tracer.simulate.truth`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from tracer.simulate.bank import account
from tracer.simulate.ledger import P2WPKH
from tracer.simulate.scripted import Out, Scripted
from tracer.simulate.wallets import ACTOR, TX_SWEEP, USER, Economy

#: the random stream of this module (``[seed, STREAM]``): changing it leaves every other stream alone
STREAM = 0x5F10
EVM_TAG0 = 100  # sim-evm transfer tags from here (the operation uses 1-4)


@dataclass
class FlowPlan:
    """What was planted, before the txids exist: Bitcoin txs, sim-evm tags, bank row groups."""

    bitcoin: list[dict] = field(default_factory=list)  # {"id", "type", "txs", "addrs"}
    evm: list[dict] = field(default_factory=list)  # {"id", "type", "tags", "accounts"}
    bank: list[dict] = field(default_factory=list)  # {"id", "type", "rows", "accounts"}
    next_tag: int = EVM_TAG0

    def tag(self) -> int:
        self.next_tag += 1
        return self.next_tag - 1


def rng_of(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, STREAM])


# -- Bitcoin --------------------------------------------------------------------------------------------
def plant_bitcoin(plan: FlowPlan, scr: Scripted, econ: Economy, n: int, rng: np.random.Generator) -> None:
    o = econ.owners
    last = len(scr.times) - 1
    users = np.flatnonzero(o.kind == USER)
    day_blocks = max(1, last // 28)
    for k in range(n):
        e = int(rng.integers(0, len(econ.exch_hot)))
        b0 = int(rng.integers(day_blocks, max(day_blocks + 1, last - 14 * 3)))
        hot = scr.background_coins(1, b0, 20_000_000, owner=econ.exch_hot[e], distinct=False)
        if not hot:
            continue
        who = o.add(ACTOR, 0, P2WPKH, f"planted launderer {k + 1}")
        amount = int(hot[0].value * rng.uniform(0.3, 0.7))
        fund, outs = scr.tx(b0, hot, [Out(who, amount), Out(econ.exch_hot[e], None, addr=int(econ.hot_addrs[e][0]))],
                            econ.exch_hot[e], f"exchange withdrawal to planted launderer {k + 1}")
        current = outs[0]
        txs, addrs = [], [current.addr]
        for _ in range(int(rng.integers(6, 12))):
            b = min(current.block + int(rng.integers(1, 3)), last)
            payee = int(rng.choice(users))
            tx, outs = scr.tx(b, [current], [Out(payee, int(current.value * rng.uniform(0.03, 0.10))), Out(who)], who,
                              f"planted peel {k + 1}")
            txs.append(tx)
            current = outs[1]
            addrs.append(current.addr)
        plan.bitcoin.append({"id": f"planted/peeling-chain-{k + 1}", "type": "peeling_chain", "txs": txs,
                             "addrs": addrs})
        # the remainder is cashed out at an exchange, which sweeps the deposit into its hot wallet
        # in two deposits to one deposit address, which the exchange then sweeps into its hot wallet
        e2 = (e + 1) % len(econ.exch_dep)
        dep_owner = econ.exch_dep[e2]
        b = min(current.block + 1, last)
        d1, o1 = scr.tx(b, [current], [Out(dep_owner, int(current.value * rng.uniform(0.4, 0.6))), Out(who)], who,
                        f"planted launderer {k + 1} deposit")
        d2, o2 = scr.tx(min(b + 1, last), [o1[1]], [Out(dep_owner, addr=o1[0].addr)], who,
                        f"planted launderer {k + 1} deposit")
        sb = min(b + 2, last)
        other = scr.background_coins(5, sb, 1, owner=dep_owner, distinct=False)
        sweep, _ = scr.tx(sb, [o1[0], o2[0], *other], [Out(econ.exch_hot[e2], None, addr=int(econ.hot_addrs[e2][1]))],
                          dep_owner, "exchange sweeps deposit addresses", kind=TX_SWEEP)
        plan.bitcoin.append({"id": f"planted/off-ramp-{k + 1}", "type": "off_ramp", "txs": [d1, d2, sweep],
                             "addrs": [o1[0].addr]})
    for k in range(n):
        b0 = int(rng.integers(day_blocks, max(day_blocks + 1, last - 7 * 3)))
        coin = scr.background_coins(1, b0, 2_000_000)
        if not coin:
            continue
        who = coin[0].owner
        current, txs = coin[0], []
        for _ in range(int(rng.integers(4, 8))):
            b = min(current.block + int(rng.integers(1, 4)), last)
            pay = int(current.value * rng.uniform(0.15, 0.45))
            if current.value - pay < 100_000:
                break
            tx, outs = scr.tx(b, [current], [Out(int(rng.choice(users)), pay), Out(who)], who, "benign spending")
            txs.append(tx)
            current = outs[1]
        plan.bitcoin.append({"id": f"planted/benign-spending-{k + 1}", "type": "benign_spending_chain", "txs": txs,
                             "addrs": []})


# -- USDT -------------------------------------------------------------------------------------------------
def plant_evm(plan: FlowPlan, ew, n: int, rng: np.random.Generator, start: dt.datetime, days: int) -> None:
    unit = 10**6
    t_start = np.datetime64(start, "s")
    for k in range(n):
        e = int(rng.integers(0, len(ew.hot)))
        mules = [ew.new_account(f"planted pass-through {k + 1} mule {m + 1}", "actor") for m in range(3)]
        dep = ew.new_account(f"planted pass-through {k + 1} exchange deposit", "exchange_deposit")
        ew.deposit_owner[dep] = (e + 1) % len(ew.hot)
        tag, off = plan.tag(), plan.tag()
        t = t_start + np.timedelta64(int(rng.uniform(1, days - 9) * 86400), "s")
        for _ in range(3):
            value = int(rng.uniform(5_000, 60_000)) * unit
            ew.add(ew.hot[e], mules[0], value, t, tag=tag)
            when = t
            for m in range(2):
                when = when + np.timedelta64(int(rng.uniform(0.3, 5) * 3600), "s")
                value = int(value * rng.uniform(0.96, 0.995)) // unit * unit
                ew.add(mules[m], mules[m + 1], value, when, tag=tag)
            when = when + np.timedelta64(int(rng.uniform(0.3, 5) * 3600), "s")
            value = int(value * rng.uniform(0.96, 0.995)) // unit * unit
            ew.add(mules[2], dep, value, when, tag=off)
            ew.add(dep, ew.hot[(e + 1) % len(ew.hot)], value, when + np.timedelta64(600, "s"), tag=off)
            t = t + np.timedelta64(int(rng.uniform(1.5, 3) * 86400), "s")
        plan.evm.append({"id": f"planted/usdt-pass-through-{k + 1}", "type": "pass_through", "tags": [tag],
                         "accounts": mules})
        plan.evm.append({"id": f"planted/usdt-off-ramp-{k + 1}", "type": "off_ramp", "tags": [off],
                         "accounts": [dep]})


# -- bank -------------------------------------------------------------------------------------------------
def plant_bank(plan: FlowPlan, bank, n: int, rng: np.random.Generator, seed: int, start: dt.datetime,
               days: int) -> None:
    t_start = np.datetime64(start, "s")

    def at(day: float) -> np.datetime64:
        return t_start + np.timedelta64(int(day * 86400), "s")

    def row(frm: str, to: str, usd: float, when: np.datetime64, fmt: str, laundering: bool) -> int:
        bank.add(frm, to, round(usd * 100), when, fmt, laundering)
        return len(bank.rows) - 1

    banks = ["harborbank", "meridian", "pioneer", "lakeside", "summitcu", "coastal"]
    for k in range(n):
        acct = account(seed, banks[k % len(banks)], f"planted-structurer-{k + 1}")
        day = float(rng.uniform(1, days - 3))
        rows = [row(acct, acct, float(rng.uniform(8_600, 9_950)), at(day + float(rng.uniform(0, 2))), "Cash", True)
                for _ in range(int(rng.integers(3, 6)))]
        rows.append(row(acct, account(seed, "coastal", f"planted-structurer-{k + 1}-payee"),
                        float(rng.uniform(25_000, 40_000)), at(day + 2.5), "Wire", True))
        plan.bank.append({"id": f"planted/structuring-{k + 1}", "type": "structuring", "rows": rows,
                          "accounts": [acct]})
    for k in range(n):
        src = account(seed, "pioneer", f"planted-pass-source-{k + 1}")
        mules = [account(seed, banks[(k + m) % len(banks)], f"planted-pass-{k + 1}-{m + 1}") for m in range(3)]
        dest = account(seed, "lakeside", f"planted-pass-dest-{k + 1}")
        day = float(rng.uniform(1, days - 9))
        rows = []
        for _ in range(3):
            value = float(rng.uniform(12_000, 60_000))
            rows.append(row(src, mules[0], value, at(day), "Wire", True))
            when = day
            for m in range(3):
                when += float(rng.uniform(0.3, 5)) / 24
                value *= float(rng.uniform(0.96, 0.995))
                rows.append(row(mules[m], mules[m + 1] if m < 2 else dest, value, at(when), "Wire", True))
            day += float(rng.uniform(1.5, 3))
        plan.bank.append({"id": f"planted/fiat-pass-through-{k + 1}", "type": "pass_through", "rows": rows,
                          "accounts": mules})
    billers = [account(seed, banks[b % len(banks)], f"planted-biller-{b + 1}") for b in range(6)]
    for k in range(n):
        employer = account(seed, "summitcu", f"planted-employer-{k + 1}")
        staff = [account(seed, banks[(k + s) % len(banks)], f"planted-employee-{k + 1}-{s + 1}") for s in range(12)]
        rows = []
        for payday in (float(rng.uniform(1, 4)), float(rng.uniform(15, 18))):
            for s in staff:
                salary = float(rng.uniform(2_000, 6_000))
                rows.append(row(employer, s, salary, at(payday), "ACH", False))
                bills = int(rng.integers(3, 7))
                split = rng.dirichlet(np.ones(bills)) * salary * float(rng.uniform(0.6, 0.95))
                for b, usd in zip(rng.choice(len(billers), bills, replace=False), split, strict=True):
                    rows.append(row(s, billers[int(b)], float(usd), at(payday + float(rng.uniform(1, 10)) / 24), "ACH",
                                    False))
        plan.bank.append({"id": f"planted/payday-bills-{k + 1}", "type": "benign_payday_bills", "rows": rows,
                          "accounts": staff})


def truth_patterns(plan: FlowPlan, btc_txid, btc_addr, evm_txids, evm_addr, fiat_txid) -> list[dict]:
    """The plan's patterns in the truth's format, given resolvers of Bitcoin txs and addresses, sim-evm tags
    (-> txids) and accounts (-> addresses), bank row groups (-> transfer ids)."""
    out = []
    for p in plan.bitcoin:
        out.append({"id": p["id"], "type": p["type"], "chain": "bitcoin", "actor": "planted",
                    "txids": [btc_txid(t) for t in p["txs"]], "addresses": [btc_addr(a) for a in p["addrs"]]})
    for p in plan.evm:
        out.append({"id": p["id"], "type": p["type"], "chain": "sim-evm", "actor": "planted",
                    "txids": [t for tag in p["tags"] for t in evm_txids(tag)],
                    "addresses": [evm_addr(a) for a in p["accounts"]]})
    for p in plan.bank:
        out.append({"id": p["id"], "type": p["type"], "chain": "fiat", "actor": "planted",
                    "transfer_ids": [fiat_txid(g) for g in p["rows"]], "accounts": p["accounts"]})
    return out
