"""Background Bitcoin economy: wallets that behave like real ones, generated round by round with numpy.

Who is modelled (an *owner* is one wallet; ground truth maps every address to its owner):

- **users**: each spends with inputs of one wallet only (so common-input clustering is right about them),
  sends to a fresh receive address of the payee or, sometimes, to the payee's last one (address reuse;
  BitMEX Research 2020 measured ~50 % of outputs paying a previously used address), returns change to a
  *fresh* address, mostly of the wallet's own script type and sometimes of another (mixed script types,
  the signal behind the address-type change heuristic), consolidates many small coins now and then, and
  deposits to its exchange through one deposit address that it reuses;
- **exchanges**: deposit addresses (one per customer) swept in batches of up to 100 inputs into a few
  reused hot-wallet addresses; hot wallets pay withdrawals in batches with change back to a hot address;
- **miners**: one coinbase per block (subsidy + fees; a second, OP_RETURN output stands for the witness
  commitment); payouts spend matured coinbases only (100-block maturity, consensus rule);
- **CoinJoins** (:mod:`tracer.simulate.coinjoin`): Wasabi-1.x- and Whirlpool-shaped transactions.

How it scales: the UTXO set lives in numpy columns. Each *round* covers a few blocks; the pool is sorted
by (owner, random key) once, every acting owner takes its inputs from its own contiguous segment, and a
round's transactions only spend outputs created before the round, so nothing is spent twice and every
input resolves. A round is built with whole-array operations, never a Python loop over transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from tracer.simulate.ledger import (
    COMMITMENT_OUT,
    DUST,
    FIRST_HEIGHT,
    IN_BASE,
    IN_WIT,
    NULLDATA,
    OUT_SIZE,
    P2PKH,
    P2SH,
    P2WPKH,
    P2WSH,
    TX_OVERHEAD,
    Grow,
    Ledger,
    subsidy,
)

# owner kinds
USER, EXCH_HOT, EXCH_DEPOSIT, MINER, COORDINATOR, SERVICE, ACTOR = range(7)
OWNER_KIND_NAMES = ["user", "exchange_hot", "exchange_deposit", "miner", "coinjoin_coordinator",
                    "service", "actor"]

# transaction kinds (ground truth; never written into the chain tables)
TX_COINBASE, TX_PAYMENT, TX_CONSOLIDATION, TX_DEPOSIT, TX_SWEEP, TX_BATCH = 0, 1, 2, 3, 4, 5
TX_WASABI, TX_TX0, TX_WHIRLPOOL, TX_SCRIPTED = 6, 7, 8, 9
TX_KIND_NAMES = ["coinbase", "payment", "consolidation", "exchange_deposit", "exchange_sweep",
                 "batch_payout", "coinjoin_wasabi", "whirlpool_tx0", "coinjoin_whirlpool", "scripted"]

# output roles
ROLE_NORMAL, ROLE_PREMIX, ROLE_NULL = 0, 1, 2

# receive script types of user wallets (share of outputs by type in 2023-24 is roughly: P2WPKH the
# majority, then P2PKH, P2SH, P2TR, P2WSH — order of magnitude only, see docs/simulator.md)
USER_SCRIPT_P = np.array([0.16, 0.14, 0.55, 0.03, 0.12])
COINBASE_SEQ = 0xFFFFFFFF
# wallet software fingerprints: (tx version, locktime = height?, input sequence)
SOFTWARE = [(2, True, 0xFFFFFFFD), (1, False, 0xFFFFFFFF), (2, False, 0xFFFFFFFE)]
SOFTWARE_P = np.array([0.55, 0.2, 0.25])


def segments(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, start, count) of each run of equal values in a sorted array."""
    if sorted_keys.size == 0:
        e = np.zeros(0, np.int64)
        return e, e, e
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    counts = np.diff(np.r_[starts, sorted_keys.size])
    return sorted_keys[starts], starts, counts


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for every (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offs = np.cumsum(counts) - counts
    return np.repeat(starts - offs, counts) + np.arange(total)


def group_sum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums over consecutive groups of the given sizes (every size >= 1), exact in int64."""
    if counts.size == 0:
        return np.zeros(0, np.int64)
    return np.add.reduceat(values.astype(np.int64), np.cumsum(counts) - counts)


def round_payment(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Round a share of payment values to two significant digits: people pay round amounts, so the
    round-value change heuristic (Meiklejohn et al. 2013; BlockSci) has something to find."""
    v = values.copy()
    pick = (rng.random(v.size) < share) & (v > 1000)
    if pick.any():
        mag = 10 ** np.maximum(np.floor(np.log10(v[pick])).astype(np.int64) - 1, 0)
        v[pick] = np.maximum(np.round(v[pick] / mag).astype(np.int64) * mag, mag)
    return v


@dataclass
class Owners:
    kind: np.ndarray
    entity: np.ndarray
    script: np.ndarray
    software: np.ndarray
    last_addr: np.ndarray
    deposit_addr: np.ndarray
    home: np.ndarray
    names: dict[int, str] = field(default_factory=dict)

    def add(self, kind: int, entity: int, script: int, name: str, software: int = 0) -> int:
        i = len(self.kind)
        self.kind = np.append(self.kind, np.int8(kind))
        self.entity = np.append(self.entity, np.int32(entity))
        self.script = np.append(self.script, np.int8(script))
        self.software = np.append(self.software, np.int8(software))
        self.last_addr = np.append(self.last_addr, np.int64(-1))
        self.deposit_addr = np.append(self.deposit_addr, np.int64(-1))
        self.home = np.append(self.home, np.int32(-1))
        self.names[i] = name
        return i


class SmallPool:
    """A few UTXOs as numpy columns (pending coinbases, premix coins, a round's sorted view)."""

    COLS: ClassVar[dict[str, type]] = {
        "tx": np.int64, "n": np.int32, "owner": np.int32, "addr": np.int64, "value": np.int64,
        "script": np.int8, "block": np.int32, "aux": np.int8}

    def __init__(self, **cols: np.ndarray) -> None:
        for k, t in self.COLS.items():
            setattr(self, k, np.asarray(cols[k]).astype(t) if k in cols else np.zeros(0, t))

    def __len__(self) -> int:
        return len(self.tx)

    def add(self, **cols: np.ndarray) -> None:
        for k, t in self.COLS.items():
            setattr(self, k, np.concatenate([getattr(self, k), np.asarray(cols[k]).astype(t)]))

    def keep(self, mask_or_index: np.ndarray) -> None:
        for k in self.COLS:
            setattr(self, k, getattr(self, k)[mask_or_index])

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {k: getattr(self, k)[index] for k in self.COLS}


class Pool:
    """The UTXO set: append-only numpy columns with a liveness flag, compacted when half is dead.

    Appends are amortised O(1) and spending only flips flags, so a round costs what it touches plus one
    pass over the flags — the set can hold tens of millions of coins.
    """

    COLS: ClassVar[dict[str, type]] = SmallPool.COLS

    def __init__(self) -> None:
        self.cols = {k: Grow(t) for k, t in self.COLS.items()}
        self.alive = Grow(np.bool_)
        self.dead = 0

    def __len__(self) -> int:
        return self.alive.n

    def col(self, name: str) -> np.ndarray:
        return self.cols[name].view

    def add(self, **cols: np.ndarray) -> None:
        for k, t in self.COLS.items():
            self.cols[k].extend(np.asarray(cols[k]).astype(t))
        self.alive.extend(np.ones(len(cols["tx"]), bool))

    def kill(self, index: np.ndarray) -> None:
        self.alive.a[index] = False
        self.dead += len(index)

    def compact(self) -> None:
        if self.dead * 2 <= self.alive.n:
            return
        live = self.alive.view.copy()
        for k, t in self.COLS.items():
            g = Grow(t)
            g.extend(self.cols[k].view[live])
            self.cols[k] = g
        self.alive = Grow(np.bool_)
        self.alive.extend(np.ones(int(live.sum()), bool))
        self.dead = 0

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {k: self.cols[k].a[index] for k in self.COLS}

    def live(self) -> SmallPool:
        idx = np.flatnonzero(self.alive.view)
        return SmallPool(**self.take(idx))


@dataclass
class Draft:
    """A batch of transactions built together: per-tx, per-input and per-output columns."""

    kind: np.ndarray
    owner: np.ndarray
    nin: np.ndarray
    in_idx: np.ndarray  # pool indices (or -1 when in_ext is used)
    nout: np.ndarray
    o_owner: np.ndarray
    o_script: np.ndarray
    o_addr: np.ndarray
    o_value: np.ndarray
    o_role: np.ndarray
    o_aux: np.ndarray
    fee: np.ndarray
    size: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)


def tx_sizes(nin_groups: np.ndarray, in_script: np.ndarray, nout: np.ndarray, out_script: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size, weight, vsize) of each transaction from its inputs' and outputs' script types (BIP141)."""
    base_in = group_sum(IN_BASE[in_script], nin_groups)
    wit_in = group_sum(IN_WIT[in_script], nin_groups)
    base_out = group_sum(OUT_SIZE[out_script], nout)
    varints = 2 * ((nin_groups > 252).astype(np.int64) + (nout > 252).astype(np.int64))
    base = TX_OVERHEAD + base_in + base_out + varints
    # BIP144: marker and flag, and every input has a witness, a legacy input's an empty one (one byte)
    legacy = group_sum((IN_WIT[in_script] == 0).astype(np.int64), nin_groups)
    wit = np.where(wit_in > 0, wit_in + 2 + legacy, 0)
    size = base + wit
    weight = 4 * base + wit
    return size, weight, (weight + 3) // 4


class Economy:
    """The background economy; :meth:`run` generates every round and stages it in the ledger."""

    def __init__(self, ledger: Ledger, cfg: dict, rng: np.random.Generator):
        self.ledger, self.cfg, self.rng = ledger, cfg, rng
        self.pool = Pool()
        self.pending = SmallPool()  # coinbase outputs waiting for maturity
        self.premix = SmallPool()  # Whirlpool premix outputs waiting for a mix
        self.reserved = SmallPool()  # coins set aside for the scripted story
        self.view = SmallPool()  # this round's coins of the owners that act, sorted by owner
        self.view_gidx = np.zeros(0, np.int64)
        self.seq = 0
        self.genesis_blocks = 0  # blocks 0 .. genesis_blocks - 1 hold only the opening coinbases
        self._build_owners()

    # -- owners -----------------------------------------------------------------------------------
    def _build_owners(self) -> None:
        cfg, rng = self.cfg, self.rng
        nu = cfg["users"]
        self.owners = Owners(
            kind=np.full(nu, USER, np.int8),
            entity=np.full(nu, -1, np.int32),
            script=rng.choice(5, size=nu, p=USER_SCRIPT_P).astype(np.int8),
            software=rng.choice(3, size=nu, p=SOFTWARE_P).astype(np.int8),
            last_addr=np.full(nu, -1, np.int64),
            deposit_addr=np.full(nu, -1, np.int64),
            home=rng.integers(0, len(cfg["exchanges"]), nu).astype(np.int32),
        )
        o = self.owners
        self.exch_hot, self.exch_dep, self.hot_addrs = [], [], []
        for e, name in enumerate(cfg["exchanges"]):
            script = P2WSH if e % 2 == 0 else P2SH
            hot = o.add(EXCH_HOT, e, script, f"{name} hot wallet")
            dep = o.add(EXCH_DEPOSIT, e, P2WPKH if e % 3 else P2SH, f"{name} deposit addresses")
            self.exch_hot.append(hot)
            self.exch_dep.append(dep)
            self.hot_addrs.append(self.ledger.new_addresses(np.full(3, hot), np.full(3, script)))
        self.miners, self.miner_addrs = [], []
        for m, name in enumerate(cfg["miners"]):
            mid = o.add(MINER, m, P2WPKH if m % 2 else P2PKH, name)
            self.miners.append(mid)
            self.miner_addrs.append(self.ledger.new_addresses([mid], [o.script[mid]])[0])
        self.wasabi = o.add(COORDINATOR, 0, P2WPKH, "Wasabi-style coordinator")
        self.wasabi_addrs = self.ledger.new_addresses(np.full(2, self.wasabi), np.full(2, P2WPKH))
        self.whirlpool = o.add(COORDINATOR, 1, P2WPKH, "Whirlpool-style coordinator")
        self.whirlpool_addrs = self.ledger.new_addresses(np.full(4, self.whirlpool), np.full(4, P2WPKH))
        # payee popularity: a few users (merchants) receive a lot, most receive rarely
        w = rng.lognormal(0.0, 1.4, nu)
        self.payee_cdf = np.cumsum(w) / w.sum()

    def pick_payees(self, count: int) -> np.ndarray:
        idx = np.searchsorted(self.payee_cdf, self.rng.random(count), side="right")
        return np.minimum(idx, len(self.payee_cdf) - 1).astype(np.int32)

    # -- addresses --------------------------------------------------------------------------------
    def receive_addresses(self, payees: np.ndarray, p_reuse: float) -> np.ndarray:
        """Each payee's last receive address (reuse) or a fresh one of its script type."""
        o = self.owners
        last = o.last_addr[payees]
        reuse = (last >= 0) & (self.rng.random(payees.size) < p_reuse)
        out = last.copy()
        fresh = ~reuse
        if fresh.any():
            ids = self.ledger.new_addresses(payees[fresh], o.script[payees[fresh]])
            out[fresh] = ids
            o.last_addr[payees[fresh]] = ids
        return out

    def change_scripts(self, owners: np.ndarray) -> np.ndarray:
        same = self.rng.random(owners.size) < self.cfg["p_change_same_type"]
        other = self.rng.choice(5, size=owners.size, p=USER_SCRIPT_P).astype(np.int8)
        return np.where(same, self.owners.script[owners], other).astype(np.int8)

    def deposit_addresses(self, users: np.ndarray) -> np.ndarray:
        o = self.owners
        need = users[o.deposit_addr[users] < 0]
        if need.size:
            dep_owner = np.asarray(self.exch_dep)[o.home[need]]
            o.deposit_addr[need] = self.ledger.new_addresses(dep_owner, o.script[dep_owner])
        return o.deposit_addr[users]

    def feerates(self, count: int) -> np.ndarray:
        return np.maximum(1.0, self.rng.lognormal(np.log(self.cfg["feerate_median"]), 0.7, count))

    # -- genesis ----------------------------------------------------------------------------------
    def genesis(self, first_blocks: int) -> int:
        """Opening balances, minted by the coinbases of the first blocks (a documented shortcut)."""
        cfg, rng, o = self.cfg, self.rng, self.owners
        nu = cfg["users"]
        per_user = 1 + rng.poisson(0.8, nu)
        users = np.repeat(np.arange(nu, dtype=np.int32), per_user)
        uval = np.clip(rng.lognormal(np.log(cfg["user_median_sat"]), 1.5, users.size), 20_000, 2e10)
        hot_owner = np.repeat(np.asarray(self.exch_hot, np.int32), cfg["hot_utxos"])
        hval = np.clip(rng.lognormal(np.log(5e8), 0.8, hot_owner.size), 1e7, 5e10)
        # exchanges first: their opening coins sit in the first block, before anything needs them
        owner = np.concatenate([hot_owner, users])
        value = np.concatenate([hval, uval]).astype(np.int64)
        addr = np.empty(owner.size, np.int64)
        is_user = o.kind[owner] == USER
        addr[is_user] = self.receive_addresses(owner[is_user], 0.0)
        ex = np.asarray([o.entity[h] for h in hot_owner], np.int64)
        addr[~is_user] = np.asarray(self.hot_addrs)[ex, rng.integers(0, 3, ex.size)]
        script = self.ledger.addr_script.a[addr]
        per_block = int(np.ceil(owner.size / first_blocks))
        self.genesis_blocks = first_blocks
        for b in range(first_blocks):
            sl = slice(b * per_block, min(owner.size, (b + 1) * per_block))
            self._coinbase_tx(b, owner[sl], addr[sl], script[sl], value[sl], mature_now=True)
        return first_blocks

    def _coinbase_tx(self, block: int, owner, addr, script, value, mature_now: bool) -> None:
        """One coinbase transaction: the given outputs plus the OP_RETURN witness commitment."""
        led = self.ledger
        tx = led.new_txs(1)[0]
        n_out = len(owner) + 1
        o_script = np.r_[script, NULLDATA].astype(np.int16)
        # version, input count, coinbase input (36 + 1 + ~30-byte script + 4), output count, outputs, locktime
        base = 4 + 1 + 71 + (3 if n_out > 252 else 1) + int(OUT_SIZE[script.astype(np.int64)].sum()) + COMMITMENT_OUT + 4
        witness = 36  # marker, flag and the one 32-byte witness reserved value (BIP141)
        led.add(
            tx={"tx": [tx], "block": np.int32([block]), "seq": [-1], "fee": [0], "nin": np.int32([1]),
                "nout": np.int32([n_out]), "size": np.int32([base + witness]),
                "weight": np.int32([4 * base + witness]),
                "version": np.int32([2]), "locktime": [0], "kind": np.int16([TX_COINBASE]),
                "owner": np.int32([owner[0] if len(owner) == 1 else -1])},
            out={"tx": np.full(n_out, tx), "n": np.arange(n_out, dtype=np.int32),
                 "addr": np.r_[addr, -1].astype(np.int64), "script": o_script,
                 "value": np.r_[value, 0].astype(np.int64), "owner": np.r_[owner, -1].astype(np.int32)},
            inp={"tx": [tx], "n": np.int32([0]), "prev_tx": [-1], "prev_n": np.int32([-1]),
                 "sequence": [COINBASE_SEQ]},
        )
        k = len(owner)
        (self.pool if mature_now else self.pending).add(tx=np.full(k, tx), n=np.arange(k), owner=owner, addr=addr, value=value, script=script,
                   block=np.full(k, block), aux=np.zeros(k))

    # -- one round --------------------------------------------------------------------------------
    def run_round(self, b0: int, nb: int) -> None:
        cfg, rng, o = self.cfg, self.rng, self.owners
        # coinbases become spendable 100 blocks after they were mined
        if len(self.pending):
            ripe = self.pending.block <= b0 - 100
            if ripe.any():
                self.pool.add(**self.pending.take(ripe))
                self.pending.keep(~ripe)
        pool = self.pool
        pool.compact()
        target = cfg["tx_per_block"] * nb
        nu = cfg["users"]
        # who acts this round: users at random, some idle users as CoinJoin candidates, every service
        p_act = min(1.0, 1.15 * target / nu)
        acting_user = rng.random(nu) < p_act
        n_wasabi = rng.poisson(cfg["wasabi_per_block"] * nb)
        flag = np.zeros(len(o.kind), bool)
        flag[:nu] = acting_user
        if n_wasabi:
            cand = rng.integers(0, nu, min(nu, 40 * cfg["wasabi_max"] * n_wasabi))
            flag[cand] = True
        flag[nu:] = np.isin(o.kind[nu:], (EXCH_HOT, EXCH_DEPOSIT, MINER))
        owner_col = pool.col("owner")
        sub = np.flatnonzero(pool.alive.view & flag[owner_col])
        order = sub[np.lexsort((rng.random(sub.size), owner_col[sub]))]
        self.view = view = SmallPool(**pool.take(order))
        self.view_gidx = order
        owners, starts, counts = segments(view.owner)
        kinds = o.kind[owners]
        drafts: list[Draft] = []

        # users
        um = kinds == USER
        u_own, u_start, u_cnt = owners[um], starts[um], counts[um]
        acting = acting_user[u_own]
        kind_r = rng.random(u_own.size)
        first_val = view.value[u_start]
        cons = acting & (u_cnt >= 4) & (kind_r < cfg["p_consolidate"])
        tx0 = acting & ~cons & (kind_r > 1 - cfg["p_tx0"]) & (first_val >= 250_000)
        dep = acting & ~cons & ~tx0 & (kind_r < cfg["p_consolidate"] + cfg["p_deposit"])
        pay = acting & ~cons & ~tx0 & ~dep
        if pay.any() or dep.any():
            drafts.append(self._payments(pay | dep, dep, u_own, u_start, u_cnt))
        if cons.any():
            drafts.append(self._consolidations(u_own[cons], u_start[cons], u_cnt[cons]))
        if tx0.any():
            from tracer.simulate.coinjoin import whirlpool_tx0

            drafts.append(whirlpool_tx0(self, u_own[tx0], u_start[tx0]))
        # Wasabi rounds from users that do nothing else this round
        from tracer.simulate.coinjoin import wasabi_rounds, whirlpool_mixes

        idle = ~acting
        if n_wasabi:
            drafts.append(wasabi_rounds(self, n_wasabi, u_own[idle], u_start[idle]))
        mix = whirlpool_mixes(self)
        # exchange sweeps (deposit wallets) and batch payouts (hot wallets, miners)
        p_sweep = 1 - (1 - cfg["p_sweep_per_block"]) ** nb
        dm = (kinds == EXCH_DEPOSIT) & (rng.random(owners.size) < p_sweep)
        if dm.any():
            drafts.append(self._sweeps(owners[dm], starts[dm], counts[dm]))
        bm = (kinds == EXCH_HOT) | (kinds == MINER)
        if bm.any():
            # a pool pays out about once per block it mines; a hot wallet in proportion to the traffic
            want = np.where(kinds[bm] == MINER, rng.poisson(nb / len(self.miners), bm.sum()),
                            rng.poisson(cfg["batch_share"] * target / len(self.exch_hot), bm.sum()))
            drafts.append(self._batches(owners[bm], starts[bm], np.minimum(counts[bm], want)))
        drafts = [d for d in drafts if d is not None and len(d)]
        self._commit(drafts, b0, nb, mix)

    # -- builders ---------------------------------------------------------------------------------
    def _finish(self, kind, owner, nin, in_idx, nout, o_owner, o_script, o_addr, o_value, o_role=None,
                o_aux=None, fee=None, in_script=None) -> Draft:
        if in_script is None:
            in_script = self.view.script[in_idx]
        size, weight, _ = tx_sizes(nin, in_script.astype(np.int64), nout, o_script.astype(np.int64))
        n = o_owner.size
        return Draft(kind=np.asarray(kind, np.int16), owner=np.asarray(owner, np.int32), nin=nin,
                     in_idx=in_idx, nout=nout, o_owner=o_owner.astype(np.int32),
                     o_script=o_script.astype(np.int8), o_addr=o_addr.astype(np.int64),
                     o_value=o_value.astype(np.int64),
                     o_role=np.zeros(n, np.int8) if o_role is None else o_role.astype(np.int8),
                     o_aux=np.zeros(n, np.int8) if o_aux is None else o_aux.astype(np.int8),
                     fee=fee, size=size, weight=weight)

    def _payments(self, sel, is_dep, u_own, u_start, u_cnt) -> Draft | None:
        """Ordinary spends: 1..n inputs of one wallet, one or two payees, change to a fresh address."""
        cfg, rng, pool = self.cfg, self.rng, self.view
        own, start, cnt, dep = u_own[sel], u_start[sel], u_cnt[sel], is_dep[sel]
        k = np.minimum(cnt, np.minimum(rng.geometric(cfg["p_one_input"], own.size), 8))
        in_idx = ranges(start, k)
        in_sum = group_sum(pool.value[in_idx], k)
        has_change = rng.random(own.size) >= cfg["p_no_change"]
        two_payees = (~dep) & (rng.random(own.size) < cfg["p_two_payees"])
        npay = 1 + two_payees
        nout = npay + has_change
        payee = self.pick_payees(int(npay.sum()))
        # never pay yourself by accident
        payer_rep = np.repeat(own, npay)
        payee = np.where(payee == payer_rep, (payee + 1) % cfg["users"], payee).astype(np.int32)
        dep_rep = np.repeat(dep, npay)
        pay_script = self.owners.script[payee].copy()
        dep_users = payer_rep[dep_rep]
        if dep_users.size:
            dep_owner = np.asarray(self.exch_dep)[self.owners.home[dep_users]]
            pay_script[dep_rep] = self.owners.script[dep_owner]
        chg_script = self.change_scripts(own)
        # lay outputs out per tx: payees first, then change (shuffled later)
        tx_of_out = np.repeat(np.arange(own.size), nout)
        pos = np.arange(tx_of_out.size) - np.repeat(np.cumsum(nout) - nout, nout)
        is_change = pos >= np.repeat(npay, nout)
        o_script = np.empty(tx_of_out.size, np.int8)
        o_script[~is_change] = pay_script
        o_script[is_change] = chg_script[has_change]
        _, _, vsize = tx_sizes(k, pool.script[in_idx].astype(np.int64), nout, o_script.astype(np.int64))
        fee = np.ceil(self.feerates(own.size) * vsize).astype(np.int64)
        avail = in_sum - fee
        ok = avail >= 20_000 * nout
        if not ok.any():
            return None
        # payment share of what is available; the rest is change
        frac = np.where(has_change, 0.05 + 0.9 * rng.beta(1.3, 2.0, own.size), 1.0)
        pay_total = (avail * frac).astype(np.int64)
        split = np.where(two_payees, rng.uniform(0.2, 0.8, own.size), 1.0)
        first = (pay_total * split).astype(np.int64)
        o_value = np.empty(tx_of_out.size, np.int64)
        pay_pos = np.flatnonzero(~is_change)
        tx_pay = tx_of_out[pay_pos]
        is_first = pos[pay_pos] == 0
        vals = np.where(is_first, first[tx_pay], pay_total[tx_pay] - first[tx_pay])
        vals = np.where(np.repeat(has_change, npay), round_payment(vals, rng, cfg["p_round_payment"]), vals)
        o_value[pay_pos] = vals
        paid = np.bincount(tx_pay, weights=vals, minlength=own.size).astype(np.int64)
        chg = avail - paid
        o_value[is_change] = chg[has_change]
        ok &= (chg >= np.where(has_change, DUST, 0)) & (np.minimum.reduceat(o_value, np.cumsum(nout) - nout) >= DUST)
        ok &= np.where(has_change, True, chg == 0)
        keep_tx = np.flatnonzero(ok)
        okout = ok[tx_of_out]
        # addresses only for kept transactions
        o_owner = np.empty(tx_of_out.size, np.int32)
        o_owner[~is_change] = payee
        o_owner[is_change] = own[has_change]
        o_addr = np.full(tx_of_out.size, -1, np.int64)
        dep_out = np.zeros(tx_of_out.size, bool)
        dep_out[pay_pos] = dep_rep
        m = okout & dep_out
        if m.any():
            users = own[tx_of_out[m]]
            o_addr[m] = self.deposit_addresses(users)
            o_owner[m] = np.asarray(self.exch_dep)[self.owners.home[users]]
        m = okout & ~is_change & ~dep_out
        if m.any():
            o_addr[m] = self.receive_addresses(o_owner[m], cfg["p_reuse_receive"])
        m = okout & is_change
        if m.any():
            o_addr[m] = self.ledger.new_addresses(o_owner[m], o_script[m])
        kind = np.where(dep, 3, 1)[keep_tx]
        in_keep = np.repeat(ok, k)
        return self._finish(kind, own[keep_tx], k[keep_tx], in_idx[in_keep], nout[keep_tx], o_owner[okout],
                            o_script[okout], o_addr[okout], o_value[okout], fee=fee[keep_tx])

    def _consolidations(self, own, start, cnt) -> Draft | None:
        """Many small coins of one wallet into one output (fresh, or the wallet's last address)."""
        rng = self.rng
        k = np.minimum(cnt, np.minimum(3 + rng.geometric(0.12, own.size), 60))
        in_idx = ranges(start, k)
        in_sum = group_sum(self.view.value[in_idx], k)
        nout = np.ones(own.size, np.int64)
        o_script = self.owners.script[own].astype(np.int8)
        _, _, vsize = tx_sizes(k, self.view.script[in_idx].astype(np.int64), nout, o_script.astype(np.int64))
        fee = np.ceil(self.feerates(own.size) * 0.6 * vsize).astype(np.int64)  # done when fees are low
        ok = in_sum - fee >= 10_000
        if not ok.any():
            return None
        own, k, fee, in_sum = own[ok], k[ok], fee[ok], in_sum[ok]
        in_idx = ranges(start[ok], k)
        addr = self.receive_addresses(own, 0.3)
        return self._finish(np.full(own.size, TX_CONSOLIDATION), own, k, in_idx, np.ones(own.size, np.int64),
                            own, o_script[ok], addr, in_sum - fee, fee=fee)

    def _sweeps(self, own, start, cnt) -> Draft | None:
        """Exchange deposit addresses swept into a hot-wallet address, up to 100 inputs a transaction."""
        rng = self.rng
        chunks = (cnt + 99) // 100
        tx_owner = np.repeat(own, chunks)
        chunk_i = np.arange(tx_owner.size) - np.repeat(np.cumsum(chunks) - chunks, chunks)
        tx_start = np.repeat(start, chunks) + 100 * chunk_i
        k = np.minimum(100, np.repeat(cnt, chunks) - 100 * chunk_i)
        in_idx = ranges(tx_start, k)
        in_sum = group_sum(self.view.value[in_idx], k)
        ex = self.owners.entity[tx_owner]
        hot = np.asarray(self.exch_hot, np.int32)[ex]
        addr = np.asarray(self.hot_addrs)[ex, rng.integers(0, 3, ex.size)]
        o_script = self.ledger.addr_script.a[addr]
        _, _, vsize = tx_sizes(k, self.view.script[in_idx].astype(np.int64), np.ones(k.size, np.int64),
                               o_script.astype(np.int64))
        fee = np.ceil(self.feerates(k.size) * vsize).astype(np.int64)
        ok = in_sum - fee >= 10_000
        if not ok.any():
            return None
        in_idx = ranges(tx_start[ok], k[ok])
        return self._finish(np.full(ok.sum(), TX_SWEEP), tx_owner[ok], k[ok], in_idx, np.ones(ok.sum(), np.int64),
                            hot[ok], o_script[ok], addr[ok], (in_sum - fee)[ok], fee=fee[ok])

    def _batches(self, own, start, want) -> Draft | None:
        """Hot wallets and mining pools paying many users in one transaction, change to a reused address."""
        cfg, rng, o = self.cfg, self.rng, self.owners
        sel = want > 0
        own, start, want = own[sel], start[sel], want[sel]
        if own.size == 0:
            return None
        tx_owner = np.repeat(own, want)
        in_idx = ranges(start, want)  # one input each
        in_val = self.view.value[in_idx]
        is_miner = o.kind[tx_owner] == MINER
        m = np.where(is_miner, 2 + rng.poisson(6, tx_owner.size), 1 + rng.poisson(cfg["batch_payees"], tx_owner.size))
        m = np.minimum(m, 200)
        nout = m + 1
        payee = self.pick_payees(int(m.sum()))
        amount = np.clip(rng.lognormal(np.log(cfg["user_median_sat"]), 1.2, payee.size), 5_000, None).astype(np.int64)
        amount = round_payment(amount, rng, 0.7)
        tx_of_pay = np.repeat(np.arange(tx_owner.size), m)
        # miners sell to exchanges: their first payee is an exchange hot wallet
        first = np.cumsum(m) - m
        pay_owner = payee.astype(np.int32)
        miner_first = first[is_miner]
        ex_pick = rng.integers(0, len(self.exch_hot), miner_first.size)
        pay_owner[miner_first] = np.asarray(self.exch_hot, np.int32)[ex_pick]
        total = np.bincount(tx_of_pay, weights=amount, minlength=tx_owner.size)
        # scale payouts down where they would exceed 90 % of the input
        cap = 0.9 * in_val
        factor = np.where(total > cap, cap / np.maximum(total, 1), 1.0)
        amount = np.maximum((amount * factor[tx_of_pay]).astype(np.int64), 0)
        pay_script = o.script[pay_owner].copy()
        ex_out = np.zeros(pay_owner.size, bool)
        ex_out[miner_first] = True
        hot_addr_for_miner = np.asarray(self.hot_addrs)[ex_pick, rng.integers(0, 3, ex_pick.size)]
        pay_script[miner_first] = self.ledger.addr_script.a[hot_addr_for_miner]
        # change: hot wallets back to one of their reused hot addresses; miners to their payout address
        ent = o.entity[tx_owner]
        miner_addr = np.asarray(self.miner_addrs, np.int64)[np.where(is_miner, ent, 0)]
        hot_addr = np.asarray(self.hot_addrs)[np.where(is_miner, 0, ent), rng.integers(0, 3, tx_owner.size)]
        ch_addr = np.where(is_miner, miner_addr, hot_addr)
        ch_script = self.ledger.addr_script.a[ch_addr]
        tx_of_out = np.repeat(np.arange(tx_owner.size), nout)
        pos = np.arange(tx_of_out.size) - np.repeat(np.cumsum(nout) - nout, nout)
        is_change = pos == np.repeat(m, nout)
        o_script = np.empty(tx_of_out.size, np.int8)
        o_script[~is_change] = pay_script
        o_script[is_change] = ch_script
        _, _, vsize = tx_sizes(np.ones(tx_owner.size, np.int64), self.view.script[in_idx].astype(np.int64), nout,
                               o_script.astype(np.int64))
        fee = np.ceil(self.feerates(tx_owner.size) * vsize).astype(np.int64)
        paid = np.bincount(tx_of_pay, weights=amount, minlength=tx_owner.size).astype(np.int64)
        chg = in_val - fee - paid
        min_pay = np.minimum.reduceat(amount, first) if amount.size else amount
        ok = (chg >= DUST) & (min_pay >= DUST)
        if not ok.any():
            return None
        okout = ok[tx_of_out]
        okpay = ok[tx_of_pay]
        o_owner = np.empty(tx_of_out.size, np.int32)
        o_owner[~is_change] = pay_owner
        o_owner[is_change] = tx_owner
        o_value = np.empty(tx_of_out.size, np.int64)
        o_value[~is_change] = amount
        o_value[is_change] = chg
        o_addr = np.empty(tx_of_out.size, np.int64)
        pay_addr = np.full(pay_owner.size, -1, np.int64)
        pay_addr[ex_out] = hot_addr_for_miner
        pay_owner_fix = pay_owner.copy()
        user_pay = okpay & ~ex_out
        if user_pay.any():
            pay_addr[user_pay] = self.receive_addresses(pay_owner_fix[user_pay], cfg["p_reuse_receive"])
        o_addr[~is_change] = pay_addr
        o_addr[is_change] = ch_addr
        return self._finish(np.full(ok.sum(), TX_BATCH), tx_owner[ok], np.ones(ok.sum(), np.int64),
                            in_idx[ok], nout[ok], o_owner[okout], o_script[okout], o_addr[okout],
                            o_value[okout], fee=fee[ok])

    # -- commit a round ---------------------------------------------------------------------------
    def _commit(self, drafts: list[Draft], b0: int, nb: int, mix: Draft | None) -> None:
        rng, led, pool = self.rng, self.ledger, self.pool
        block_fees = np.zeros(nb, np.int64)
        spent = []
        for d, src_pool in ((self._concat(drafts), self.view), (mix, self.premix)):
            if d is None or not len(d):
                continue
            T = len(d)
            tx = led.new_txs(T)
            blk = rng.integers(0, nb, T).astype(np.int32)
            seq = np.arange(self.seq, self.seq + T)
            self.seq += T
            self._stage(d, tx, blk + b0, seq, src_pool.take(d.in_idx))
            block_fees += np.bincount(blk, weights=d.fee, minlength=nb).astype(np.int64)
            if src_pool is self.view:
                spent.append(self.view_gidx[d.in_idx])
            else:
                keep = np.ones(len(self.premix), bool)
                keep[d.in_idx] = False
                self.premix.keep(keep)
        if spent:
            pool.kill(np.concatenate(spent))
        self._coinbases(np.arange(b0, b0 + nb), block_fees)

    @staticmethod
    def _concat(drafts: list[Draft]) -> Draft | None:
        if not drafts:
            return None
        return Draft(**{f: np.concatenate([getattr(p, f) for p in drafts]) for f in Draft.__dataclass_fields__})

    def _coinbases(self, heights: np.ndarray, fees: np.ndarray) -> None:
        """One coinbase per block: subsidy + fees to a pool chosen by hash-rate share, plus the OP_RETURN
        witness commitment (BIP141). They mature 100 blocks later (consensus rule)."""
        T = heights.size
        mi = self.rng.choice(len(self.miners), size=T, p=self.cfg["miner_share"])
        owner = np.asarray(self.miners, np.int32)[mi]
        addr = np.asarray(self.miner_addrs, np.int64)[mi]
        script = self.owners.script[owner]
        value = np.array([subsidy(FIRST_HEIGHT + int(h)) for h in heights], np.int64) + fees
        tx = self.ledger.new_txs(T)
        base = 4 + 1 + 71 + 1 + OUT_SIZE[script.astype(np.int64)] + COMMITMENT_OUT + 4
        witness = 36
        two = np.repeat(tx, 2)
        self.ledger.add(
            tx={"tx": tx, "block": heights.astype(np.int32), "seq": np.full(T, -1), "fee": np.zeros(T, np.int64),
                "nin": np.ones(T, np.int32), "nout": np.full(T, 2, np.int32),
                "size": (base + witness).astype(np.int32), "weight": (4 * base + witness).astype(np.int32),
                "version": np.full(T, 2, np.int32), "locktime": np.zeros(T, np.int64),
                "kind": np.full(T, TX_COINBASE, np.int16), "owner": owner},
            out={"tx": two, "n": np.tile(np.int32([0, 1]), T),
                 "addr": np.stack([addr, np.full(T, -1)], axis=1).ravel(),
                 "script": np.stack([script.astype(np.int16), np.full(T, NULLDATA, np.int16)], axis=1).ravel(),
                 "value": np.stack([value, np.zeros(T, np.int64)], axis=1).ravel(),
                 "owner": np.stack([owner, np.full(T, -1, np.int32)], axis=1).ravel()},
            inp={"tx": tx, "n": np.zeros(T, np.int32), "prev_tx": np.full(T, -1), "prev_n": np.full(T, -1, np.int32),
                 "sequence": np.full(T, COINBASE_SEQ)},
        )
        self.pending.add(tx=tx, n=np.zeros(T), owner=owner, addr=addr, value=value, script=script,
                         block=heights, aux=np.zeros(T))

    def _stage(self, d: Draft, tx: np.ndarray, blk: np.ndarray, seq: np.ndarray, src: dict) -> None:
        """Write a draft's rows to the ledger and put its new outputs in the pool."""
        rng, o = self.rng, self.owners
        T = len(d)
        tx_of_out = np.repeat(np.arange(T), d.nout)
        # wallets (BIP69 or random) do not put change at a fixed position: shuffle outputs in each tx
        order = np.lexsort((rng.random(tx_of_out.size), tx_of_out))
        n = (np.arange(tx_of_out.size) - np.repeat(np.cumsum(d.nout) - d.nout, d.nout)).astype(np.int32)
        cols = {k: getattr(d, k)[order] for k in ("o_owner", "o_script", "o_addr", "o_value", "o_role", "o_aux")}
        tx_of_in = np.repeat(np.arange(T), d.nin)
        in_n = (np.arange(tx_of_in.size) - np.repeat(np.cumsum(d.nin) - d.nin, d.nin)).astype(np.int32)
        sw = o.software[np.maximum(d.owner, 0)]
        sw = np.where(d.owner < 0, 0, sw)
        version = np.array([s[0] for s in SOFTWARE], np.int32)[sw]
        lock_h = np.array([s[1] for s in SOFTWARE])[sw]
        locktime = np.where(lock_h, FIRST_HEIGHT + blk.astype(np.int64) - 1, 0)
        sequence = np.array([s[2] for s in SOFTWARE], np.int64)[sw][tx_of_in]
        self.ledger.add(
            tx={"tx": tx, "block": blk, "seq": seq, "fee": d.fee, "nin": d.nin.astype(np.int32),
                "nout": d.nout.astype(np.int32), "size": d.size.astype(np.int32),
                "weight": d.weight.astype(np.int32), "version": version, "locktime": locktime,
                "kind": d.kind.astype(np.int16), "owner": d.owner},
            out={"tx": tx[tx_of_out], "n": n, "addr": np.where(cols["o_script"] == NULLDATA, -1, cols["o_addr"]),
                 "script": cols["o_script"].astype(np.int16), "value": cols["o_value"],
                 "owner": cols["o_owner"]},
            inp={"tx": tx[tx_of_in], "n": in_n, "prev_tx": src["tx"], "prev_n": src["n"], "sequence": sequence},
        )
        keep = cols["o_role"] == ROLE_NORMAL
        keep &= cols["o_script"] != NULLDATA
        self.pool.add(tx=tx[tx_of_out][keep], n=n[keep], owner=cols["o_owner"][keep], addr=cols["o_addr"][keep],
                      value=cols["o_value"][keep], script=cols["o_script"][keep], block=blk[tx_of_out][keep],
                      aux=np.zeros(keep.sum()))
        pm = cols["o_role"] == ROLE_PREMIX
        if pm.any():
            self.premix.add(tx=tx[tx_of_out][pm], n=n[pm], owner=cols["o_owner"][pm], addr=cols["o_addr"][pm],
                            value=cols["o_value"][pm], script=cols["o_script"][pm], block=blk[tx_of_out][pm],
                            aux=cols["o_aux"][pm])

    def release(self) -> None:
        """Drop the coin sets once no transaction will be built any more (owners and addresses stay)."""
        self.pool = Pool()
        self.pending = self.premix = self.reserved = self.view = SmallPool()
        self.view_gidx = np.zeros(0, np.int64)

    def reserve(self, owner: int, count: int) -> None:
        """Set aside ``owner``'s largest coins for the scripted story (the background never spends them)."""
        idx = np.flatnonzero(self.pool.alive.view & (self.pool.col("owner") == owner))
        idx = idx[np.argsort(-self.pool.col("value")[idx], kind="stable")][:count]
        self.reserved.add(**self.pool.take(idx))
        self.pool.kill(idx)

    # -- whole run --------------------------------------------------------------------------------
    def run(self, n_blocks: int, blocks_per_round: int, first_block: int, progress=None) -> None:
        b = first_block
        while b < n_blocks:
            nb = min(blocks_per_round, n_blocks - b)
            self.run_round(b, nb)
            b += nb
            if progress is not None:
                progress(b, n_blocks)
