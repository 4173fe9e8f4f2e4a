"""USDT (ERC-20) on a simulated EVM chain: ``sim-evm``, chain id 1337, network ``simulated``.

Rows are those the EVM ingester writes for ERC-20 transfers (migration 003: ethereum-etl's columns):
one ``transactions`` row per ``transfer(to, amount)`` call to the token contract, its ``Transfer`` event
in ``logs`` (topic0 ``ddf252ad…``, from and to as 32-byte topics, the amount as data), the decoded
``transfers`` row (asset = token contract, lowercase; kind ``erc20``; symbol USDT; 6 decimals) and an
``evm_tokens`` row for the contract. Blocks are written only where they hold a simulated transaction
(12-second slots; ``prev_hash`` is the hash of the slot before, stored or not).

Who moves USDT: an issuer treasury seeds exchanges and users; users pay each other; exchanges give each
customer a *deposit address* that forwards what it receives to the exchange's hot wallet (the
deposit-address pattern of Victor, FC 2020), and hot wallets pay withdrawals. Generated in rounds with
numpy: a sender spends at most what it held at the round's start, so no balance goes negative.
ETH for gas is not tracked.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa

CHAIN = "sim-evm"
CHAIN_ID = 1337
# the address USDT has on Ethereum mainnet: the simulated chain behaves like a fork of it
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
USDT_UNIT = 10**6
SLOT_SECONDS = 12
FIRST_EVM_BLOCK = 20_000_000


def evm_address(seed: int, label: str) -> str:
    return "0x" + hashlib.sha256(f"{seed}:evm-address:{label}".encode()).hexdigest()[:40]


class EvmWorld:
    """Accounts and transfers of the simulated chain, accumulated as numpy columns."""

    def __init__(self, seed: int, start: dt.datetime, days: int, n_users: int, exchanges: list[str],
                 rng: np.random.Generator):
        self.seed, self.rng = seed, rng
        self.start = np.datetime64(start, "s")
        self.days = days
        self.labels: list[str] = []
        self.kind: list[str] = []
        self.treasury = self._new("tether-treasury", "issuer")
        self.hot = [self._new(f"{name} hot wallet", "exchange_hot") for name in exchanges]
        self.users = np.array([self._new(f"user-{i}", "user") for i in range(n_users)], np.int64)
        self.home = rng.integers(0, len(exchanges), n_users)
        self.deposit = np.full(n_users, -1, np.int64)
        self.deposit_owner: dict[int, int] = {}
        self.exchanges = exchanges
        self.frm: list[np.ndarray] = []
        self.to: list[np.ndarray] = []
        self.amount: list[np.ndarray] = []
        self.when: list[np.ndarray] = []
        self.tag: list[np.ndarray] = []  # 0 background, 1+ planted pattern id
        self.balance = np.zeros(len(self.labels), np.int64)
        self.balance[self.treasury] = 10**17  # the issuer: what it sends is newly issued USDT

    def _new(self, label: str, kind: str) -> int:
        self.labels.append(label)
        self.kind.append(kind)
        if hasattr(self, "balance"):
            self.balance = np.append(self.balance, np.int64(0))
        return len(self.labels) - 1

    def new_account(self, label: str, kind: str) -> int:
        return self._new(label, kind)

    def deposit_address(self, user_idx: int, exchange: int) -> int:
        acct = self._new(f"{self.exchanges[exchange]} deposit for {self.labels[user_idx]}", "exchange_deposit")
        self.deposit_owner[acct] = exchange
        return acct

    def add(self, frm, to, amount, when, tag: int = 0) -> None:
        frm = np.atleast_1d(np.asarray(frm, np.int64))
        to = np.atleast_1d(np.asarray(to, np.int64))
        amount = np.atleast_1d(np.asarray(amount, np.int64))
        when = np.atleast_1d(np.asarray(when, "datetime64[s]"))
        if (amount <= 0).any():
            raise ValueError("a transfer moves a positive amount")
        np.subtract.at(self.balance, frm, amount)
        np.add.at(self.balance, to, amount)
        if (self.balance[frm] < 0).any():
            raise ValueError("a simulated USDT balance went negative")
        self.frm.append(frm)
        self.to.append(to)
        self.amount.append(amount)
        self.when.append(when)
        self.tag.append(np.full(frm.size, tag, np.int16))

    # -- background ---------------------------------------------------------------------------------
    def background(self, n_transfers: int, rounds: int) -> None:
        rng = self.rng
        users = self.users
        t0 = self.start
        span = self.days * 86400
        # the issuer seeds exchanges (large) and users (lognormal, median ~2,000 USDT)
        self.add(np.full(len(self.hot), self.treasury), np.asarray(self.hot), np.full(len(self.hot), 50_000_000 * USDT_UNIT),
                 np.full(len(self.hot), t0))
        seed_amt = (np.clip(rng.lognormal(np.log(2_000), 1.3, users.size), 20, 2_000_000) * USDT_UNIT).astype(np.int64)
        self.add(np.full(users.size, self.treasury), users, seed_amt, np.full(users.size, t0 + 60))
        per_round = max(1, n_transfers // rounds)
        for r in range(rounds):
            lo = 300 + int(span * r / rounds)
            hi = 300 + int(span * (r + 1) / rounds)
            # deposit addresses forward what they hold to their exchange's hot wallet (Victor, FC 2020)
            deps = np.fromiter(self.deposit_owner.keys(), np.int64, len(self.deposit_owner))
            if deps.size:
                held = self.balance[deps]
                go = deps[held > 0]
                if go.size:
                    hot = np.asarray(self.hot)[[self.deposit_owner[int(d)] for d in go]]
                    self.add(go, hot, self.balance[go], t0 + rng.integers(lo, lo + 1800, go.size))
            n = int(rng.poisson(per_round))
            senders = rng.choice(users, size=min(n, users.size), replace=False)
            senders = senders[self.balance[senders] > USDT_UNIT]
            if senders.size == 0:
                continue
            frac = rng.uniform(0.05, 0.6, senders.size)
            amt = np.maximum((self.balance[senders] * frac).astype(np.int64) // 10_000 * 10_000, 10_000)
            kind = rng.random(senders.size)
            to = rng.choice(users, size=senders.size)
            to = np.where(to == senders, users[(np.searchsorted(users, to) + 1) % users.size], to)
            dep = kind < 0.25
            for s in np.flatnonzero(dep):
                u = int(senders[s] - users[0])
                if self.deposit[u] < 0:
                    self.deposit[u] = self.deposit_address(int(senders[s]), int(self.home[u]))
                to[s] = self.deposit[u]
            when = t0 + rng.integers(lo, hi, senders.size)
            self.add(senders, to, amt, when)
            # withdrawals from hot wallets to users
            w = max(1, senders.size // 6)
            ex = rng.integers(0, len(self.hot), w)
            wto = rng.choice(users, size=w)
            wamt = (np.clip(rng.lognormal(np.log(500), 1.2, w), 10, 200_000) * USDT_UNIT).astype(np.int64)
            self.add(np.asarray(self.hot)[ex], wto, wamt, t0 + rng.integers(lo, hi, w))

    # -- rows ---------------------------------------------------------------------------------------
    def address_strings(self) -> list[str]:
        return [evm_address(self.seed, f"{i}:{lab}") for i, lab in enumerate(self.labels)]

    def tables(self, run_id: int) -> dict[str, pa.Table]:
        rng = self.rng
        frm = np.concatenate(self.frm)
        to = np.concatenate(self.to)
        amount = np.concatenate(self.amount)
        when = np.concatenate(self.when)
        order = np.lexsort((np.arange(frm.size), when))
        frm, to, amount, when = frm[order], to[order], amount[order], when[order]
        self.order = order
        n = frm.size
        addr = np.array(self.address_strings(), dtype=object)
        secs = (when - self.start).astype(np.int64)
        height = FIRST_EVM_BLOCK + secs // SLOT_SECONDS
        block_time = (self.start + (height - FIRST_EVM_BLOCK) * SLOT_SECONDS).astype("datetime64[us]")
        first = np.r_[True, height[1:] != height[:-1]]
        starts = np.flatnonzero(first)
        position = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        seed = self.seed
        txid = np.array(["0x" + hashlib.sha256(f"{seed}:evm-tx:{i}".encode()).hexdigest() for i in range(n)], dtype=object)
        bh = {int(h): "0x" + hashlib.sha256(f"{seed}:evm-block:{int(h)}".encode()).hexdigest()
              for h in np.unique(np.r_[height, height - 1])}
        block_hash = np.array([bh[int(h)] for h in height], dtype=object)
        # nonce: how many transactions the sender sent before
        o2 = np.lexsort((np.arange(n), frm))
        sf = frm[o2]
        run_start = np.flatnonzero(np.r_[True, sf[1:] != sf[:-1]])
        nonce = np.empty(n, np.int64)
        nonce[o2] = np.arange(n) - np.repeat(run_start, np.diff(np.r_[run_start, n]))
        gas_price = (rng.uniform(6, 40, n) * 1e9).astype(np.int64)
        gas_used = np.where(rng.random(n) < 0.7, 41_309, 63_209).astype(np.int64)
        from_s, to_s = addr[frm], addr[to]
        amount_s = [str(int(a)) for a in amount]
        data = ["0x" + format(int(a), "064x") for a in amount]
        pad = lambda a: "0x" + "0" * 24 + a[2:]  # noqa: E731
        dec = pa.decimal128(38, 0)
        transactions = pa.table({
            "chain": [CHAIN] * n, "txid": txid, "block_hash": block_hash, "block_height": height,
            "block_time": block_time, "position": position.astype(np.int32), "nonce": nonce,
            "from_address": from_s, "to_address": [USDT] * n, "value": pa.array([0] * n, dec),
            "value_raw": ["0"] * n, "gas": np.full(n, 90_000), "gas_price": pa.array(gas_price.tolist(), dec),
            "input": ["0xa9059cbb" + "0" * 24 + t[2:] + d[2:] for t, d in zip(to_s, data)],
            "max_fee_per_gas": pa.array((gas_price * 2).tolist(), dec),
            "max_priority_fee_per_gas": pa.array([10**9] * n, dec), "transaction_type": np.full(n, 2, np.int32),
            "is_coinbase": [False] * n, "has_receipt": [True] * n, "status": np.ones(n, np.int32),
            "gas_used": gas_used, "cumulative_gas_used": gas_used * (position + 1),
            "effective_gas_price": pa.array(gas_price.tolist(), dec),
            "fee": pa.array((gas_used * gas_price).tolist(), dec), "run_id": np.full(n, run_id),
        })
        logs = pa.table({
            "chain": [CHAIN] * n, "block_height": height, "block_hash": block_hash, "block_time": block_time,
            "txid": txid, "transaction_index": position.astype(np.int32), "log_index": position,
            "address": [USDT] * n, "data": data,
            "topics": [[TRANSFER_TOPIC, pad(f), pad(t)] for f, t in zip(from_s, to_s)],
            "run_id": np.full(n, run_id),
        })
        transfers = pa.table({
            "chain": [CHAIN] * n, "asset": [USDT] * n, "txid": txid, "idx": position, "from_address": from_s,
            "to_address": to_s, "amount": pa.array([int(a) for a in amount], dec), "amount_raw": amount_s,
            "time": block_time, "block_height": height, "block_hash": block_hash, "kind": ["erc20"] * n,
            "symbol": ["USDT"] * n, "decimals": np.full(n, 6, np.int32), "run_id": np.full(n, run_id),
        })
        uh, counts = np.unique(height, return_counts=True)
        blocks = pa.table({
            "chain": [CHAIN] * uh.size, "height": uh, "hash": [bh[int(h)] for h in uh],
            "prev_hash": [bh[int(h) - 1] for h in uh],
            "time": (self.start + (uh - FIRST_EVM_BLOCK) * SLOT_SECONDS).astype("datetime64[us]"),
            "tx_count": counts.astype(np.int32), "gas_used": np.bincount(np.searchsorted(uh, height), weights=gas_used).astype(np.int64),
            "gas_limit": np.full(uh.size, 30_000_000), "height_source": ["simulate"] * uh.size,
            "source": ["simulate"] * uh.size, "run_id": np.full(uh.size, run_id),
        })
        tokens = pa.table({"chain": [CHAIN], "address": [USDT], "symbol": ["USDT"], "name": ["Tether USD"],
                           "decimals": pa.array([6], pa.int32()), "status": ["ok"],
                           "fetched_at": pa.array([block_time.max() if n else self.start], pa.timestamp("us")),
                           "run_id": [run_id]})
        self.txid_sorted = txid
        return {"transactions": transactions, "logs": logs, "transfers": transfers, "blocks": blocks,
                "evm_tokens": tokens}
