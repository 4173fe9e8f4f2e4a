"""CoinJoin detection, so that the multi-input heuristic does not merge the participants of a mix.

Each rule is a named detector with its source, its confidence and its known failure mode. One scan reads
the integer columns of the new transactions' outputs and inputs, a numba pass (:func:`_features`) computes
each transaction's shape (outputs, inputs, the most common output value and how often it occurs, …), and
the rules are vectorised conditions on those columns (:func:`_classify`): the first rule that matches, in
the order of :data:`RULES`, names the transaction's kind. (It was one SQL statement; planning that
statement alone took ~40 ms of CPU, too slow for a block at a time.) Thresholds are
the parameters of :class:`CoinJoinRules` (defaults documented in docs/heuristics.md).

- ``whirlpool`` — Samourai Whirlpool mix (Stütz et al. 2022; Schnoering & Vazirgiannis 2023): 5–8 inputs
  and as many outputs, every output exactly a pool denomination (100 k, 1 M, 5 M, 50 M sat), every input
  within [d, d + 110,000]. Very specific; a false positive needs a payer to copy the exact shape.
- ``whirlpool-tx0`` — Whirlpool's pre-mix (Tx0): one OP_RETURN output and pre-mix outputs of a pool
  denomination plus a miner-fee margin (d, d + 110,000] — at least two equal ones, or one beside an output
  paying a pool's coordinator fee (5,000 / 50,000 / 175,000 / 1,750,000 sat). A single wallet's
  transaction: it is flagged, and multi-input still applies to it. Misses Tx0s with discounted fees and a
  single pre-mix output; a transaction with an OP_RETURN and such values by chance is a false positive.
- ``wasabi2`` — Wasabi 2.0 (WabiSabi): ≥ 20 inputs, every output ≥ 5,000 sat, ≥ 3 distinct output values
  taken by several outputs each, and no input address holding more than 10 % of the inputs.
- ``wasabi11`` / ``wasabi1`` — Wasabi 1.x: ≥ 10 inputs and a most common output value within ±5 % of
  0.1 BTC taken by ≥ 3 outputs; 1.1 also mixes at levels 2ⁱ × the base denomination (a repeated value
  near twice the base).
- ``joinmarket`` — JoinMarket (Möser & Böhme 2017; BlockSci): the most common non-dust output value is
  taken by n outputs, 3 ≤ n ≤ distinct input addresses, and the other outputs are at most n changes.
- ``stonewall`` — Samourai Stonewall: 4 outputs of which exactly 2 share a value. It mimics a 2-party
  mix but is usually one wallet, so it *vetoes* the generic rule (it is not treated as a CoinJoin);
  STONEWALLx2, the 2-party variant, has the same shape and is then merged wrongly — the known failure.
- ``generic`` — BlockSci ``isCoinjoin``: ≥ 2 inputs, ≥ 3 outputs, p = ⌈outputs/2⌉ ≤ inputs and ≤ distinct
  input addresses, and the most common output value (not dust: 546, 2,730) taken by exactly p outputs.
  Noisy (batch payouts of equal amounts match it), hence the lowest confidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
from numba import njit

from heuristics.clustering.unionfind import sort_head
from tracer.store import Store


@dataclass(frozen=True)
class CoinJoinRules:
    whirlpool_pools: tuple[int, ...] = (100_000, 1_000_000, 5_000_000, 50_000_000)
    whirlpool_margin: int = 110_000
    whirlpool_fees: tuple[int, ...] = (5_000, 50_000, 175_000, 1_750_000)  # coordinator fee per pool
    wasabi1_denomination: int = 10_000_000
    wasabi1_tolerance: float = 0.05
    wasabi1_min_inputs: int = 10
    wasabi1_min_equal: int = 3
    wasabi2_min_inputs: int = 20
    wasabi2_min_output: int = 5_000
    wasabi2_min_denominations: int = 3
    wasabi2_max_address_share: float = 0.10
    joinmarket_min_equal: int = 3
    dust: tuple[int, ...] = (546, 2_730)

    def as_dict(self) -> dict:
        return asdict(self)


# (flag, confidence, is a CoinJoin: multi-input skips it)
RULES: list[tuple[str, float, bool]] = [
    ("coinjoin:whirlpool", 0.99, True),
    ("whirlpool-tx0", 0.95, False),
    ("coinjoin:wasabi2", 0.9, True),
    ("coinjoin:wasabi11", 0.95, True),
    ("coinjoin:wasabi1", 0.95, True),
    ("coinjoin:joinmarket", 0.8, True),
    ("stonewall", 0.6, False),
    ("coinjoin:generic", 0.6, True),
]
COINJOIN_FLAGS = tuple(f for f, _, cj in RULES if cj)



@njit(cache=True)
def _rows_of(keys, start, tx):
    """[first, end) of the rows of ``tx`` in ``keys`` (non-decreasing), searching from ``start``."""
    while start < keys.shape[0] and keys[start] < tx:
        start += 1
    end = start
    while end < keys.shape[0] and keys[end] == tx:
        end += 1
    return start, end


@njit(cache=True)
def _longest_run(keys):
    """The most rows one key has in ``keys`` (grouped)."""
    best, run = 0, 0
    for i in range(keys.shape[0]):
        run = run + 1 if i > 0 and keys[i] == keys[i - 1] else 1
        if run > best:
            best = run
    return best


@njit(cache=True)
def _features(out_tx, out_value, out_null, in_tx, in_addr, in_value, txs, dust, premix_lo, premix_hi, fees):
    """Per transaction of ``txs`` (sorted tx ids): the shape the rules read. Outputs and inputs are grouped by
    tx_id (non-decreasing); ``in_addr`` −1 and ``in_value`` −1 mean unknown. Rows of the result (int64, one
    per feature, a column per transaction):
    0 n_out (non-null outputs), 1 n_null, 2 min_out, 3 premix_n, 4 top_count (most common non-dust value's
    count, 0 if none), 5 top_value (the largest such value), 6 repeated_values, 7 premix_equal,
    8 pool_fee_outputs (distinct fee values), 9 second_level (repeated values within 1.9–2.1 × top_value),
    10 has_inputs, 11 known_addr, 12 known_in, 13 min_in, 14 max_in (−1: unknown), 15 max_addr_inputs,
    16 has_outputs. One scratch buffer, sized once (a buffer re-allocated inside the loop made numba count
    references on every pass: 2× slower)."""
    n = txs.shape[0]
    f = np.zeros((17, n), np.int64)  # a row per feature: the rules read whole rows
    vals = np.empty(max(_longest_run(out_tx), _longest_run(in_tx), 1), np.int64)
    o = 0
    q = 0
    for t in range(n):
        tx = txs[t]
        o, e = _rows_of(out_tx, o, tx)
        if e > o:
            f[16, t] = 1
        m = 0
        min_out = -1
        for i in range(o, e):
            v = out_value[i]
            for d in range(premix_lo.shape[0]):
                if v > premix_lo[d] and v <= premix_hi[d]:
                    f[3, t] += 1
                    break
            if out_null[i]:
                f[1, t] += 1
                continue
            vals[m] = v
            m += 1
            if min_out < 0 or v < min_out:
                min_out = v
        f[0, t] = m
        f[2, t] = min_out
        sort_head(vals, m)
        # runs of equal values: (value, k)
        top_count, top_value = 0, 0
        i = 0
        while i < m:
            j = i
            while j < m and vals[j] == vals[i]:
                j += 1
            v, k = vals[i], j - i
            is_dust = False
            for d in range(dust.shape[0]):
                if v == dust[d]:
                    is_dust = True
            if not is_dust and (k > top_count or (k == top_count and v > top_value)):
                top_count, top_value = k, v
            if k >= 2:
                f[6, t] += 1
            for d in range(premix_lo.shape[0]):
                if v > premix_lo[d] and v <= premix_hi[d]:
                    if k > f[7, t]:
                        f[7, t] = k
                    break
            for d in range(fees.shape[0]):
                if v == fees[d]:
                    f[8, t] += 1
            i = j
        f[4, t] = top_count
        f[5, t] = top_value
        if top_count > 0:
            i = 0
            while i < m:
                j = i
                while j < m and vals[j] == vals[i]:
                    j += 1
                if j - i >= 2 and 19 * top_value <= 10 * vals[i] <= 21 * top_value:
                    f[9, t] += 1
                i = j
        o = e
        # inputs
        q, e = _rows_of(in_tx, q, tx)
        if e > q:
            f[10, t] = 1
            m = 0
            unknown = 0
            min_in, max_in = -1, -1
            for i in range(q, e):
                if in_addr[i] >= 0:
                    vals[m] = in_addr[i]
                    m += 1
                else:
                    unknown += 1
                v = in_value[i]
                if v >= 0:
                    if min_in < 0 or v < min_in:
                        min_in = v
                    if v > max_in:
                        max_in = v
            f[12, t] = m
            f[13, t] = min_in
            f[14, t] = max_in
            sort_head(vals, m)
            most = unknown  # inputs of unknown address count as one group, as SQL's GROUP BY groups NULLs
            distinct = 0
            i = 0
            while i < m:
                j = i
                while j < m and vals[j] == vals[i]:
                    j += 1
                distinct += 1
                if j - i > most:
                    most = j - i
                i = j
            f[11, t] = distinct
            f[15, t] = most
            q = e
    return f


def _classify(n_in: np.ndarray, f: np.ndarray, r: CoinJoinRules) -> np.ndarray:
    """The rule each transaction matches first (index into :data:`RULES`), or −1. Stonewall is tried before
    JoinMarket and the generic rule: its shape vetoes them."""
    n_out, n_null, min_out, premix_n = f[0], f[1], f[2], f[3]
    top_count, top_value, repeated, premix_equal = f[4], f[5], f[6], f[7]
    pool_fees, second_level = f[8], f[9]
    known_addr, known_in, min_in, max_in, max_addr_inputs = f[11], f[12], f[13], f[14], f[15]
    has_top = top_count > 0
    n_addr = known_addr + (n_in - known_in)  # inputs whose spent output is not stored count as distinct
    lo1 = int(r.wasabi1_denomination * (1 - r.wasabi1_tolerance))
    hi1 = int(r.wasabi1_denomination * (1 + r.wasabi1_tolerance))
    wasabi1_value = has_top & (top_value >= lo1) & (top_value <= hi1)
    wasabi1 = (n_in >= r.wasabi1_min_inputs) & wasabi1_value & (top_count >= r.wasabi1_min_equal)
    rules = {
        "coinjoin:whirlpool": (n_in >= 5) & (n_in <= 8) & (n_out == n_in) & (n_null == 0) & has_top
        & (top_count == n_out) & np.isin(top_value, r.whirlpool_pools)
        & ((min_in < 0) | (min_in >= top_value)) & ((max_in < 0) | (max_in <= top_value + r.whirlpool_margin)),
        "whirlpool-tx0": (n_null == 1) & (n_out > 0) & ((premix_equal >= 2) | ((premix_n >= 1) & (pool_fees >= 1))),
        "coinjoin:wasabi2": (n_in >= r.wasabi2_min_inputs) & (n_out > 0) & (min_out >= r.wasabi2_min_output)
        & (repeated >= r.wasabi2_min_denominations) & (max_addr_inputs <= r.wasabi2_max_address_share * n_in)
        & has_top & ~wasabi1_value,
        "coinjoin:wasabi11": wasabi1 & (second_level > 0),
        "coinjoin:wasabi1": wasabi1,
        "stonewall": (n_out == 4) & (top_count == 2) & (n_in >= 2),
        "coinjoin:joinmarket": has_top & (top_count >= r.joinmarket_min_equal) & (top_count <= n_addr)
        & (2 * top_count >= n_out) & (n_out > top_count),
        "coinjoin:generic": has_top & (n_in >= 2) & (n_out >= 3) & (top_count == (n_out + 1) // 2)
        & (top_count <= n_in) & (top_count <= n_addr),
    }
    index = {flag: k for k, (flag, _, _) in enumerate(RULES)}
    return np.select(list(rules.values()), [index[flag] for flag in rules], -1)


Columns = dict[str, np.ndarray]


def read_inputs(store: Store, chain: str, after_tx_id: int) -> Columns:
    """The non-coinbase inputs above ``after_tx_id`` by transaction: tx_id, address_id and value (−1: unknown),
    as numpy arrays. Read once per run; the CoinJoin rules and the multi-input pairs both use it. A coinbase
    input is told by ``prev_txkey IS NULL`` — every writer sets it NULL exactly when ``prev_txid`` is — an
    integer test that spares reading the txid text of every input (0.15 s instead of 0.56 s for 13.6 M inputs)."""
    return _by_tx(store.arrow(
        """SELECT tx_id, coalesce(address_id, -1) AS address_id, coalesce(value, -1) AS value FROM inputs
           WHERE chain = ? AND tx_id > ? AND prev_txkey IS NOT NULL""", [chain, after_tx_id]))


def read_outputs(store: Store, chain: str, after_tx_id: int) -> Columns:
    """The outputs above ``after_tx_id`` by transaction: tx_id, value and is_null (an OP_RETURN), as numpy
    arrays; a plain scan keeps the stored order, which is by transaction."""
    return _by_tx(store.arrow(
        "SELECT tx_id, value, script_type = 'nulldata' AS is_null FROM outputs WHERE chain = ? AND tx_id > ?",
        [chain, after_tx_id]))


def verdicts(store: Store, chain: str, after_tx_id: int, rules: CoinJoinRules, inputs: Columns | None = None) -> pa.Table:
    """(tx_id, flag, confidence) for the transactions of ``chain`` above ``after_tx_id`` that a rule flags;
    ``inputs``: :func:`read_inputs` if the caller has it."""
    r = rules
    # every rule needs 3 outputs
    txs = _by_tx(store.arrow(
        """SELECT tx_id, input_count FROM transactions
           WHERE chain = ? AND tx_id > ? AND NOT is_coinbase AND output_count >= 3""", [chain, after_tx_id]))
    if not txs["tx_id"].size:
        return pa.table({"tx_id": pa.array([], pa.int64()), "flag": pa.array([], pa.string()),
                         "confidence": pa.array([], pa.float64())})
    ids = txs["tx_id"]
    outs = read_outputs(store, chain, after_tx_id)  # _features skips the rows of other transactions
    ins = read_inputs(store, chain, after_tx_id) if inputs is None else inputs
    pools = np.array(r.whirlpool_pools, np.int64)
    f = _features(outs["tx_id"], outs["value"], outs["is_null"], ins["tx_id"], ins["address_id"], ins["value"], ids,
                  np.array(r.dust, np.int64), pools, pools + r.whirlpool_margin, np.array(r.whirlpool_fees, np.int64))
    rule = _classify(txs["input_count"].astype(np.int64), f, r)
    hit = (rule >= 0) & (f[10] == 1) & (f[16] == 1)  # a transaction without stored inputs or outputs: no verdict
    flags = np.array([flag for flag, _, _ in RULES], dtype=object)
    confidence = np.array([c for _, c, _ in RULES])
    return pa.table({"tx_id": ids[hit].astype(np.int64, copy=False), "flag": pa.array(flags[rule[hit]], pa.string()),
                     "confidence": confidence[rule[hit]]})


@njit(cache=True)
def _ascending(x: np.ndarray) -> bool:
    for i in range(1, x.shape[0]):
        if x[i] < x[i - 1]:
            return False
    return True


def _by_tx(t: pa.Table) -> Columns:
    """The columns of ``t`` as numpy arrays (one copy each, none for a single-chunk column), ordered by tx_id
    (they usually are already: rows are appended by transaction)."""
    cols = {name: t[name].to_numpy(zero_copy_only=False) for name in t.column_names}
    tx = cols["tx_id"]
    if not _ascending(tx):
        order = np.argsort(tx, kind="stable")
        cols = {name: v[order] for name, v in cols.items()}
    return cols


def write_flags(store: Store, chain: str, after_tx_id: int, run_id: int | None, found: pa.Table,
                replace: bool = True) -> None:
    """Write the :func:`verdicts` ``found`` for the transactions above ``after_tx_id`` to ``tx_flags`` (with
    their txids, joined in the store) and ``transactions.flags``. ``replace`` False: the caller knows no flags
    exist above ``after_tx_id`` (an incremental run), so none are deleted or cleared first."""
    con = store.con
    if replace:
        con.execute("DELETE FROM tx_flags WHERE chain = ? AND tx_id > ?", [chain, after_tx_id])
    with store.view("_cj", found):
        if replace:  # verdicts of earlier rules that these do not repeat (the rules changed): cleared
            con.execute(
                """UPDATE transactions SET flags = NULL WHERE chain = ? AND tx_id > ? AND flags IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM _cj c WHERE c.tx_id = transactions.tx_id AND c.flag = transactions.flags)""",
                [chain, after_tx_id])
        if len(found):
            written = con.execute(
                """INSERT INTO tx_flags SELECT ?, c.tx_id, t.txid, c.flag, c.confidence, ? FROM _cj c
                   JOIN transactions t ON t.chain = ? AND t.tx_id = c.tx_id ORDER BY c.tx_id""",
                [chain, run_id, chain]).fetchall()[0][0]
            if written != len(found):
                raise RuntimeError(f"coinjoin.write_flags: {len(found)} flagged transactions, {written} found by tx_id")
            con.execute(
                """UPDATE transactions SET flags = c.flag FROM _cj c
                   WHERE transactions.chain = ? AND transactions.tx_id > ? AND transactions.tx_id = c.tx_id
                   AND transactions.flags IS DISTINCT FROM c.flag""",
                [chain, after_tx_id])

