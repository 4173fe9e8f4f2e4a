"""Hand-built Bitcoin transactions laid on top of the finished background economy.

The planted patterns (ad-fee payments, victims' earnings, collection, a peeling chain, a CoinJoin,
exchange deposits) are a few hundred transactions, built one by one here — never a loop over the chain.
They spend coins the background economy left unspent (created in an earlier block, or in the same block
earlier in the order) and coins created by earlier scripted transactions, so every input still
resolves and nothing is spent twice. Scripted transactions sit after the background ones of their
block. Their fees are not added to the block's coinbase: a miner may claim less than subsidy + fees
(consensus only caps the coinbase), so the chain stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracer.simulate.ledger import DUST, NULLDATA, P2WPKH
from tracer.simulate.wallets import SOFTWARE, TX_SCRIPTED, USER, Economy, tx_sizes


@dataclass
class Coin:
    tx: int
    n: int
    owner: int
    addr: int
    value: int
    script: int
    block: int


@dataclass
class Out:
    """An output to build: ``addr`` None = a fresh address of ``owner``; ``value`` None = the change."""

    owner: int
    value: int | None = None
    addr: int | None = None
    script: int | None = None


class Scripted:
    def __init__(self, econ: Economy, block_times: np.ndarray, rng: np.random.Generator):
        self.econ, self.led, self.rng = econ, econ.ledger, rng
        self.times = block_times
        self.free = econ.pool.live()
        self.free.add(**econ.reserved.take(np.arange(len(econ.reserved))))
        self.used = np.zeros(len(self.free), bool)
        self.by_owner = np.argsort(self.free.owner, kind="stable")
        self.owner_sorted = self.free.owner[self.by_owner]
        self.user_kind = econ.owners.kind[self.free.owner] == USER
        # ordinary wallets' coins by the block they were created in: "coins older than block b" is a prefix
        users = np.flatnonzero(self.user_kind)
        self.user_by_block = users[np.argsort(self.free.block[users], kind="stable")]
        self.user_blocks = self.free.block[self.user_by_block]
        self.seq = 10**12
        self.txs: list[dict] = []  # ground truth of every scripted transaction

    def release(self) -> None:
        """Drop the coin index (keeps ``txs``, the ground truth of what was built)."""
        self.free = self.used = self.by_owner = self.owner_sorted = None
        self.user_kind = self.user_by_block = self.user_blocks = None

    # -- time -------------------------------------------------------------------------------------
    def block_at(self, when: np.datetime64) -> int:
        b = int(np.searchsorted(self.times, np.datetime64(when, "us"), side="left"))
        return min(max(b, 0), len(self.times) - 1)

    def time_of(self, block: int) -> np.datetime64:
        return self.times[block]

    # -- coins ------------------------------------------------------------------------------------
    def background_coins(self, count: int, before_block: int, min_value: int, kind: int = USER,
                         owner: int | None = None, max_value: int | None = None, distinct: bool = True
                         ) -> list[Coin]:
        """Unspent background coins created at or before ``before_block``, taken out of the free set."""
        f = self.free
        if owner is not None:
            # keys of the array's own dtype: a mismatch would make numpy cast the whole array per call
            lo, hi = np.searchsorted(self.owner_sorted, np.array([owner, owner + 1], self.owner_sorted.dtype))
            cand = self.by_owner[lo:hi]
        elif kind == USER:
            # rejection sampling among the coins old enough: a few hundred random ones almost always hold
            # enough candidates, so a call costs the same however large the coin set is; the whole prefix
            # is the fallback
            older = int(np.searchsorted(self.user_blocks, self.user_blocks.dtype.type(before_block), side="right"))
            if older == 0:
                return []
            cand = np.unique(self.user_by_block[self.rng.integers(0, older, 512)])
        else:
            cand = np.flatnonzero(self.econ.owners.kind[f.owner] == kind)
        idx = self._eligible(cand, before_block, min_value, max_value, kind if owner is None else None)
        if idx.size < count and owner is None and kind == USER:
            idx = self._eligible(self.user_by_block[:older], before_block, min_value, max_value, None)
        if idx.size == 0:
            return []
        idx = idx[self.rng.permutation(idx.size)]
        if distinct:
            _, first = np.unique(f.owner[idx], return_index=True)
            idx = idx[np.sort(first)]
        idx = idx[:count]
        self.used[idx] = True
        return [Coin(int(f.tx[i]), int(f.n[i]), int(f.owner[i]), int(f.addr[i]), int(f.value[i]),
                     int(f.script[i]), int(f.block[i])) for i in idx]

    def _eligible(self, cand: np.ndarray, before_block: int, min_value: int, max_value: int | None,
                  kind: int | None) -> np.ndarray:
        f = self.free
        ok = ~self.used[cand] & (f.block[cand] <= before_block) & (f.value[cand] >= min_value)
        if max_value is not None:
            ok &= f.value[cand] <= max_value
        if kind == USER:
            ok &= self.user_kind[cand]
        elif kind is not None:
            ok &= self.econ.owners.kind[f.owner[cand]] == kind
        return cand[ok]

    # -- transactions -----------------------------------------------------------------------------
    def tx(self, block: int, inputs: list[Coin], outputs: list[Out], owner: int, role: str,
           feerate: float | None = None, kind: int = TX_SCRIPTED, fee: int | None = None) -> tuple[int, list[Coin]]:
        """Build one transaction; return its index and its outputs as coins (in output order)."""
        if not inputs:
            raise ValueError(f"scripted transaction {role} has no inputs")
        # not before its coins; an opening coin (a genesis coinbase output) not in its own block: a block's
        # coinbase commits to the wtxids of the block's other transactions, so none of them can spend it
        block = max(block, max(c.block + (c.block < self.econ.genesis_blocks) for c in inputs))
        o = self.econ.owners
        scripts = []
        for out in outputs:
            if out.addr is not None:
                scripts.append(int(self.led.addr_script.a[out.addr]))
            elif out.script is not None:
                scripts.append(out.script)
            elif out.owner >= 0:
                scripts.append(int(o.script[out.owner]))
            else:
                scripts.append(P2WPKH)
        in_script = np.array([c.script for c in inputs], np.int64)
        size, weight, vsize = tx_sizes(np.array([len(inputs)]), in_script, np.array([len(outputs)]),
                                       np.array(scripts, np.int64))
        if fee is None:
            rate = feerate if feerate is not None else float(self.econ.feerates(1)[0])
            fee = int(np.ceil(rate * vsize[0]))
        total_in = sum(c.value for c in inputs)
        fixed = sum(x.value for x in outputs if x.value is not None)
        rest = total_in - fixed - fee
        change = [x for x in outputs if x.value is None]
        if len(change) > 1:
            raise ValueError("at most one change output")
        if rest < 0 or (change and rest < DUST) or (not change and rest != 0 and rest < 0):
            raise ValueError(f"scripted transaction {role}: inputs {total_in} do not cover outputs {fixed} + fee {fee}")
        if not change:
            fee += rest  # no change output: the remainder is fee
        values = [x.value if x.value is not None else rest for x in outputs]
        addrs = []
        for x, s in zip(outputs, scripts):
            if s == NULLDATA:
                addrs.append(-1)
            elif x.addr is not None:
                addrs.append(x.addr)
            else:
                addrs.append(int(self.led.new_addresses(np.int32([x.owner]), np.int8([s]))[0]))
        tx = int(self.led.new_txs(1)[0])
        sw = SOFTWARE[int(o.software[owner])] if owner >= 0 else SOFTWARE[0]
        from tracer.simulate.ledger import FIRST_HEIGHT

        self.led.add(
            tx={"tx": np.int64([tx]), "block": np.int32([block]), "seq": np.int64([self.seq]),
                "fee": np.int64([fee]), "nin": np.int32([len(inputs)]), "nout": np.int32([len(outputs)]),
                "size": size.astype(np.int32), "weight": weight.astype(np.int32), "version": np.int32([sw[0]]),
                "locktime": np.int64([FIRST_HEIGHT + block - 1 if sw[1] else 0]), "kind": np.int16([kind]),
                "owner": np.int32([owner])},
            out={"tx": np.full(len(outputs), tx, np.int64), "n": np.arange(len(outputs), dtype=np.int32),
                 "addr": np.int64(addrs), "script": np.int16(scripts), "value": np.int64(values),
                 "owner": np.int32([x.owner for x in outputs])},
            inp={"tx": np.full(len(inputs), tx, np.int64), "n": np.arange(len(inputs), dtype=np.int32),
                 "prev_tx": np.int64([c.tx for c in inputs]), "prev_n": np.int32([c.n for c in inputs]),
                 "sequence": np.full(len(inputs), sw[2], np.int64)},
        )
        self.seq += 1
        self.txs.append({"tx": tx, "role": role, "block": block, "fee": fee})
        coins = [Coin(tx, i, x.owner, a, v, s, block) for i, (x, a, v, s) in
                 enumerate(zip(outputs, addrs, values, scripts))]
        return tx, coins

    def txid(self, tx: int) -> str:
        return self.led.txids([tx])[tx]

    def address_owner(self, addr: int) -> int:
        return int(self.led.addr_owner.a[addr])
