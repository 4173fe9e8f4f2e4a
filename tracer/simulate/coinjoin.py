"""CoinJoin-shaped transactions: Wasabi 1.x rounds and Samourai Whirlpool Tx0 + mixes.

Shapes follow the protocol descriptions used by detectors (Stockinger et al., "Pinpointing and Measuring
Wasabi and Samourai CoinJoins in the Bitcoin Ecosystem", 2021/2022; graphsense-lib and BlockSci rules in
docs/heuristics.md):

- **Wasabi 1.x**: many participants (here 10..60 inputs), one equal-valued output per participant at a
  denomination near 0.1 BTC (varied ±2 % per round, within the ±5 % band detectors allow), a change
  output per participant, and one coordinator-fee output (0.003 % of the denomination per anonymity-set
  member) to a reused coordinator address. All outputs are P2WPKH, as Wasabi 1.x produced.
- **Whirlpool**: a *Tx0* (one input; an OP_RETURN, a coordinator-fee output, k premix outputs of
  denomination + miner-fee margin, change) and later *mixes* of exactly 5 inputs from 5 different
  wallets and 5 outputs of exactly the pool denomination (100,000 / 1,000,000 / 5,000,000 / 50,000,000
  sat); every input lies within [d, d + 110,000] sat. Remixes (0-fee re-entries) are not modelled.
  Pool fees (5 % of the denomination for the two small pools, 3.5 % for the two large ones) are from
  Samourai's published pool list as remembered, not verified here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tracer.simulate.ledger import DUST, NULLDATA, P2WPKH
from tracer.simulate.wallets import (
    ROLE_NORMAL,
    ROLE_NULL,
    ROLE_PREMIX,
    TX_TX0,
    TX_WASABI,
    TX_WHIRLPOOL,
    Draft,
    group_sum,
    tx_sizes,
)

if TYPE_CHECKING:
    from tracer.simulate.wallets import Economy

WASABI_DENOMINATION = 10_000_000
WASABI_COORD_FEE = 0.00003  # per anonymity-set member, of the denomination
WHIRLPOOL_POOLS = np.array([100_000, 1_000_000, 5_000_000, 50_000_000], dtype=np.int64)
WHIRLPOOL_FEES = np.array([5_000, 50_000, 175_000, 1_750_000], dtype=np.int64)
WHIRLPOOL_MAX_MARGIN = 110_000


def wasabi_shape(rng: np.random.Generator, in_val: np.ndarray, sizes: np.ndarray, feerate: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """Values of Wasabi rounds: for participant inputs grouped by round, the mixed value, change and fees.

    Returns per-participant ``mixed`` and ``change`` (0 = no change output: folded into the fee), and
    per-round ``denomination``, ``coord_fee`` and ``fee``.
    """
    T = sizes.size
    tx_of_in = np.repeat(np.arange(T), sizes)
    d = (WASABI_DENOMINATION * rng.uniform(0.98, 1.02, T)).astype(np.int64)
    coord_i = np.ceil(d * WASABI_COORD_FEE * sizes).astype(np.int64)[tx_of_in]
    # every output P2WPKH: 2 per participant + coordinator
    _, _, vsize = tx_sizes(sizes, np.full(in_val.size, P2WPKH, np.int64), 2 * sizes + 1,
                           np.full(int((2 * sizes + 1).sum()), P2WPKH, np.int64))
    fee_i = np.ceil(np.ceil(feerate * vsize) / sizes).astype(np.int64)[tx_of_in]
    change = in_val - d[tx_of_in] - coord_i - fee_i
    change = np.where(change >= DUST, change, 0)
    coord = group_sum(coord_i, sizes)
    fee = group_sum(in_val, sizes) - sizes * d - coord - group_sum(change, sizes)
    return {"denomination": d, "mixed": d[tx_of_in], "change": change, "coord_fee": coord, "fee": fee}


def wasabi_rounds(econ: Economy, n_rounds: int, users: np.ndarray, starts: np.ndarray) -> Draft | None:
    """Up to ``n_rounds`` Wasabi rounds from idle users whose first coin covers 0.1 BTC plus fees."""
    cfg, rng, pool = econ.cfg, econ.rng, econ.view
    v = pool.value[starts]
    elig = np.flatnonzero(v >= int(WASABI_DENOMINATION * 1.03) + 200_000)
    if elig.size < cfg["wasabi_min"]:
        return None
    elig = elig[rng.permutation(elig.size)]
    sizes = rng.integers(cfg["wasabi_min"], cfg["wasabi_max"] + 1, n_rounds)
    sizes = sizes[np.cumsum(sizes) <= elig.size]
    if sizes.size == 0:
        sizes = np.array([elig.size])
    parts = elig[: sizes.sum()]
    owner = users[parts].astype(np.int32)
    in_idx = starts[parts]
    shape = wasabi_shape(rng, v[parts], sizes, econ.feerates(sizes.size))
    return _wasabi_draft(econ, owner, in_idx, sizes, shape, pool.script[in_idx])


def _wasabi_draft(econ: Economy, owner, in_idx, sizes, shape, in_script) -> Draft:
    rng = econ.rng
    T = sizes.size
    has_change = shape["change"] > 0
    per_part = 1 + has_change
    part_rows = np.repeat(np.arange(owner.size), per_part)
    is_mix = np.r_[True, part_rows[1:] != part_rows[:-1]] if part_rows.size else part_rows.astype(bool)
    p_owner = owner[part_rows]
    p_value = np.where(is_mix, shape["mixed"][part_rows], shape["change"][part_rows])
    p_addr = econ.ledger.new_addresses(p_owner, np.full(p_owner.size, P2WPKH))
    tx_of_part = np.repeat(np.arange(T), sizes)[part_rows]
    coord_addr = econ.wasabi_addrs[rng.integers(0, len(econ.wasabi_addrs), T)]
    tx_rows = np.r_[tx_of_part, np.arange(T)]
    order = np.argsort(tx_rows, kind="stable")
    o_owner = np.r_[p_owner, np.full(T, econ.wasabi)][order]
    o_value = np.r_[p_value, shape["coord_fee"]][order]
    o_addr = np.r_[p_addr, coord_addr][order]
    nout = np.bincount(tx_rows, minlength=T)
    return econ._finish(np.full(T, TX_WASABI), np.full(T, econ.wasabi), sizes, in_idx, nout, o_owner,
                        np.full(o_owner.size, P2WPKH), o_addr, o_value, fee=shape["fee"], in_script=in_script)


def whirlpool_tx0(econ: Economy, owners: np.ndarray, starts: np.ndarray) -> Draft | None:
    """Tx0s: each wallet splits its first coin into premix outputs of the largest pool it can afford."""
    rng, pool = econ.rng, econ.view
    v = pool.value[starts]
    rate = econ.feerates(owners.size)
    margin = np.minimum(np.ceil(rate * 110).astype(np.int64), WHIRLPOOL_MAX_MARGIN)
    budget = v[:, None] - WHIRLPOOL_FEES[None, :] - 40_000
    k_all = budget // (WHIRLPOOL_POOLS[None, :] + margin[:, None])
    ok_pool = k_all >= 1
    if not ok_pool.any():
        return None
    j = np.where(ok_pool.any(axis=1), ok_pool.shape[1] - 1 - np.argmax(ok_pool[:, ::-1], axis=1), -1)
    sel = j >= 0
    owners, starts, v, rate, margin, j = owners[sel], starts[sel], v[sel], rate[sel], margin[sel], j[sel]
    k = np.minimum(k_all[sel][np.arange(j.size), j], 20)
    T = owners.size
    premix = WHIRLPOOL_POOLS[j] + margin
    nout = k + 3
    o_script = np.full(int(nout.sum()), P2WPKH, np.int8)
    first = np.cumsum(nout) - nout
    o_script[first] = NULLDATA
    _, _, vsize = tx_sizes(np.ones(T, np.int64), pool.script[starts].astype(np.int64), nout,
                           o_script.astype(np.int64))
    fee = np.ceil(rate * vsize).astype(np.int64)
    change = v - WHIRLPOOL_FEES[j] - k * premix - fee
    ok = change >= 0
    has_change = change >= DUST
    fee = np.where(has_change, fee, fee + change)
    nout = k + 2 + has_change
    owners, starts, j, k, premix, fee, change, has_change, nout = (
        a[ok] for a in (owners, starts, j, k, premix, fee, change, has_change, nout))
    T = owners.size
    if T == 0:
        return None
    tx_of_out = np.repeat(np.arange(T), nout)
    pos = np.arange(tx_of_out.size) - np.repeat(np.cumsum(nout) - nout, nout)
    role = np.full(tx_of_out.size, ROLE_PREMIX, np.int8)
    role[pos == 0] = ROLE_NULL
    role[pos == 1] = ROLE_NORMAL  # coordinator fee
    is_change = pos == (k + 2)[tx_of_out]
    role[is_change] = ROLE_NORMAL
    o_owner = owners[tx_of_out].copy()
    o_owner[pos == 1] = econ.whirlpool
    o_value = premix[tx_of_out].copy()
    o_value[pos == 0] = 0
    o_value[pos == 1] = WHIRLPOOL_FEES[j]
    o_value[is_change] = change[has_change]
    o_script = np.full(tx_of_out.size, P2WPKH, np.int8)
    o_script[pos == 0] = NULLDATA
    o_addr = np.full(tx_of_out.size, -1, np.int64)
    fee_rows = pos == 1
    o_addr[fee_rows] = econ.whirlpool_addrs[rng.integers(0, len(econ.whirlpool_addrs), T)]
    fresh = pos >= 2
    o_addr[fresh] = econ.ledger.new_addresses(o_owner[fresh], o_script[fresh])
    o_aux = np.where(role == ROLE_PREMIX, j[tx_of_out], 0)
    return econ._finish(np.full(T, TX_TX0), owners, np.ones(T, np.int64), starts, nout, o_owner, o_script,
                        o_addr, o_value, o_role=role, o_aux=o_aux, fee=fee)


def whirlpool_mixes(econ: Economy) -> Draft | None:
    """Mixes of 5 premix coins from 5 different wallets into 5 outputs of exactly the pool denomination."""
    rng, pm = econ.rng, econ.premix
    if len(pm) < 5:
        return None
    groups = []
    for j in range(WHIRLPOOL_POOLS.size):
        idx = np.flatnonzero(pm.aux == j)
        if idx.size < 5:
            continue
        idx = idx[rng.permutation(idx.size)]
        _, first = np.unique(pm.owner[idx], return_index=True)
        idx = idx[np.sort(first)]
        g = idx.size // 5
        if g:
            groups.append((j, idx[: 5 * g]))
    if not groups:
        return None
    j = np.concatenate([np.full(ix.size // 5, jj) for jj, ix in groups])
    in_idx = np.concatenate([ix for _, ix in groups])
    T = j.size
    owner = pm.owner[in_idx]
    value = np.repeat(WHIRLPOOL_POOLS[j], 5)
    addr = econ.ledger.new_addresses(owner, np.full(owner.size, P2WPKH))
    fee = group_sum(pm.value[in_idx], np.full(T, 5)) - 5 * WHIRLPOOL_POOLS[j]
    return econ._finish(np.full(T, TX_WHIRLPOOL), np.full(T, econ.whirlpool), np.full(T, 5), in_idx,
                        np.full(T, 5), owner, np.full(owner.size, P2WPKH), addr, value, fee=fee,
                        in_script=pm.script[in_idx])
