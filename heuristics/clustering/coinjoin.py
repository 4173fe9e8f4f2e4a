"""CoinJoin detection, so that the multi-input heuristic does not merge the participants of a mix.

Each rule is a named detector with its source, its confidence and its known failure mode; they run as one
set-based SQL pass over the transactions of a tx_id range (portable SQL: CTEs, GROUP BY, FILTER, CASE), and
the first rule that matches, in the order of :data:`RULES`, names the transaction's kind. Thresholds are
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


def detect_sql(chain: str, after_tx_id: int, rules: CoinJoinRules) -> tuple[str, list]:
    """SQL giving (tx_id, txid, flag, confidence) for the transactions of ``chain`` above ``after_tx_id``."""
    r = rules
    pools = ", ".join(str(d) for d in r.whirlpool_pools)
    dust = ", ".join(str(d) for d in r.dust)
    fees = ", ".join(str(d) for d in r.whirlpool_fees)
    premix = " OR ".join(f"(value > {d} AND value <= {d + r.whirlpool_margin})" for d in r.whirlpool_pools)
    lo1 = int(r.wasabi1_denomination * (1 - r.wasabi1_tolerance))
    hi1 = int(r.wasabi1_denomination * (1 + r.wasabi1_tolerance))
    conf = {f: c for f, c, _ in RULES}
    sql = f"""
    WITH txs AS (
        SELECT tx_id, txid, input_count FROM transactions
        WHERE chain = ? AND tx_id > ? AND NOT is_coinbase AND output_count >= 3  -- every rule needs 3 outputs
    ),
    outs AS (
        SELECT o.tx_id, o.value, o.script_type = 'nulldata' AS is_null FROM outputs o
        WHERE o.chain = ? AND o.tx_id > ? AND o.tx_id IN (SELECT tx_id FROM txs)
    ),
    vals AS (
        SELECT tx_id, value, count(*) AS k FROM outs WHERE NOT is_null GROUP BY tx_id, value
    ),
    topk AS (SELECT tx_id, max(k) AS top_count FROM vals WHERE value NOT IN ({dust}) GROUP BY tx_id),
    top AS (
        SELECT v.tx_id, t.top_count, max(v.value) AS top_value FROM vals v JOIN topk t
          ON t.tx_id = v.tx_id AND v.k = t.top_count AND v.value NOT IN ({dust})
        GROUP BY v.tx_id, t.top_count
    ),
    levels AS (SELECT tx_id, count(*) FILTER (WHERE k >= 2) AS repeated_values,
                      coalesce(max(k) FILTER (WHERE {premix}), 0) AS premix_equal,
                      count(*) FILTER (WHERE value IN ({fees})) AS pool_fee_outputs
               FROM vals GROUP BY tx_id),
    oagg AS (
        SELECT tx_id, count(*) FILTER (WHERE NOT is_null) AS n_out, count(*) FILTER (WHERE is_null) AS n_null,
               min(value) FILTER (WHERE NOT is_null) AS min_out, count(*) FILTER (WHERE {premix}) AS premix_n
        FROM outs GROUP BY tx_id
    ),
    ins AS (
        SELECT i.tx_id, i.address_id, i.value FROM inputs i
        WHERE i.chain = ? AND i.tx_id > ? AND i.tx_id IN (SELECT tx_id FROM txs)
    ),
    per_addr AS (SELECT tx_id, address_id, count(*) AS k FROM ins GROUP BY tx_id, address_id),
    iagg AS (
        SELECT i.tx_id, count(DISTINCT i.address_id) AS known_addr, count(i.address_id) AS known_in, min(i.value) AS min_in,
               max(i.value) AS max_in, (SELECT max(p.k) FROM per_addr p WHERE p.tx_id = i.tx_id) AS max_addr_inputs
        FROM ins i GROUP BY i.tx_id
    ),
    f AS (
        SELECT x.tx_id, x.txid, x.input_count AS n_in,
               -- inputs whose spent output is not stored have no known address: count each as distinct
               ia.known_addr + (x.input_count - ia.known_in) AS n_addr, ia.min_in, ia.max_in, ia.max_addr_inputs,
               oa.n_out, oa.n_null, oa.min_out, oa.premix_n, l.premix_equal, l.pool_fee_outputs,
               t.top_count, t.top_value, l.repeated_values,
               (SELECT count(*) FROM vals v WHERE v.tx_id = x.tx_id AND v.k >= 2
                  AND v.value BETWEEN 1.9 * t.top_value AND 2.1 * t.top_value) AS second_level
        FROM txs x JOIN iagg ia USING (tx_id) JOIN oagg oa USING (tx_id)
        LEFT JOIN top t USING (tx_id) LEFT JOIN levels l USING (tx_id)
    )
    SELECT tx_id, txid, flag, CASE flag {" ".join(f"WHEN '{k}' THEN {v}" for k, v in conf.items())} END AS confidence
    FROM (
        SELECT tx_id, txid, CASE
            WHEN n_in BETWEEN 5 AND 8 AND n_out = n_in AND n_null = 0 AND top_count = n_out
                 AND top_value IN ({pools}) AND coalesce(min_in >= top_value, true)
                 AND coalesce(max_in <= top_value + {r.whirlpool_margin}, true)
                 THEN 'coinjoin:whirlpool'
            WHEN n_null = 1 AND (premix_equal >= 2 OR (premix_n >= 1 AND pool_fee_outputs >= 1)) THEN 'whirlpool-tx0'
            WHEN n_in >= {r.wasabi2_min_inputs} AND min_out >= {r.wasabi2_min_output}
                 AND repeated_values >= {r.wasabi2_min_denominations}
                 AND coalesce(max_addr_inputs, 1) <= {r.wasabi2_max_address_share} * n_in
                 AND NOT (top_value BETWEEN {lo1} AND {hi1}) THEN 'coinjoin:wasabi2'
            WHEN n_in >= {r.wasabi1_min_inputs} AND top_value BETWEEN {lo1} AND {hi1}
                 AND top_count >= {r.wasabi1_min_equal} AND second_level > 0 THEN 'coinjoin:wasabi11'
            WHEN n_in >= {r.wasabi1_min_inputs} AND top_value BETWEEN {lo1} AND {hi1}
                 AND top_count >= {r.wasabi1_min_equal} THEN 'coinjoin:wasabi1'
            WHEN n_out = 4 AND top_count = 2 AND n_in >= 2 THEN 'stonewall'
            WHEN top_count >= {r.joinmarket_min_equal} AND top_count <= n_addr AND 2 * top_count >= n_out
                 AND n_out > top_count THEN 'coinjoin:joinmarket'
            WHEN n_in >= 2 AND n_out >= 3 AND top_count = CAST(ceil(n_out / 2.0) AS BIGINT)
                 AND top_count <= n_in AND top_count <= n_addr THEN 'coinjoin:generic'
        END AS flag
        FROM f
    ) WHERE flag IS NOT NULL
    ORDER BY tx_id
    """
    return sql, [chain, after_tx_id, chain, after_tx_id, chain, after_tx_id]


def flag_coinjoins(store: Store, chain: str, after_tx_id: int, run_id: int | None,
                   rules: CoinJoinRules | None = None) -> int:
    """Write tx_flags (and transactions.flags) for the transactions above ``after_tx_id``; return how many."""
    sql, params = detect_sql(chain, after_tx_id, rules or CoinJoinRules())
    con = store.con
    con.execute("DELETE FROM tx_flags WHERE chain = ? AND tx_id > ?", [chain, after_tx_id])
    con.execute(f"CREATE OR REPLACE TEMP TABLE _cj AS {sql}", params)
    n = int(con.execute("SELECT count(*) FROM _cj").fetchall()[0][0])
    con.execute("INSERT INTO tx_flags SELECT ?, tx_id, txid, flag, confidence, ? FROM _cj", [chain, run_id])
    if n:
        con.execute(
            """UPDATE transactions SET flags = c.flag FROM _cj c
               WHERE transactions.chain = ? AND transactions.tx_id > ? AND transactions.tx_id = c.tx_id""",
            [chain, after_tx_id])
    con.execute("DROP TABLE IF EXISTS _cj")
    return n
