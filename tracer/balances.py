"""Read-side money questions over the store: net balances per address, and movements with their USD value.

They read the canonical tables and ``flows``; nothing here writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from tracer.store import Store


def balances(store: Store, chain: str, asset: str, upto_height: int | None = None,
             from_height: int = 0) -> dict[str, int]:
    """Net change of every address's balance of ``asset`` over blocks [from_height, upto_height].

    Exact for any uint256: amounts are summed in three 26-digit limbs (each sum fits HUGEINT) and
    recombined in Python per address, not per transfer. For the native asset, fees paid by senders
    (``transactions.fee``, also for reverted transactions) are subtracted and the priority tips
    credited to the block's miner (gas_used × (effective_gas_price − base fee), EIP-1559; the
    base fee is burned). Block rewards and withdrawals are not transfers and are not counted.
    """
    hi = 2**62 if upto_height is None else upto_height
    native = asset.upper() == asset and not asset.startswith("0x")
    limbs = """
        CAST(CASE WHEN length(a) > 52 THEN substr(a, 1, length(a) - 52) ELSE '0' END AS HUGEINT) AS h,
        CAST(CASE WHEN length(a) > 26 THEN substr(a, greatest(1, length(a) - 51),
             least(26, length(a) - 26)) ELSE '0' END AS HUGEINT) AS m,
        CAST(substr(a, greatest(1, length(a) - 25)) AS HUGEINT) AS l"""
    sql = f"""
        WITH moves AS (
            SELECT to_address AS addr, amount_raw AS a, 1 AS sign FROM transfers
             WHERE chain = $1 AND asset = $2 AND block_height BETWEEN $3 AND $4
            UNION ALL
            SELECT from_address, amount_raw, -1 FROM transfers
             WHERE chain = $1 AND asset = $2 AND block_height BETWEEN $3 AND $4
            {'''UNION ALL
            SELECT from_address, CAST(fee AS VARCHAR), -1 FROM transactions
             WHERE chain = $1 AND block_height BETWEEN $3 AND $4 AND fee > 0
            UNION ALL
            SELECT b.miner, CAST(t.gas_used * (t.effective_gas_price - coalesce(b.base_fee_per_gas, 0))
                   AS VARCHAR), 1
              FROM transactions t JOIN blocks b ON b.chain = t.chain AND b.height = t.block_height
             WHERE t.chain = $1 AND t.block_height BETWEEN $3 AND $4 AND t.effective_gas_price IS NOT NULL'''
              if native else ''}
        ), split AS (SELECT addr, sign, {limbs} FROM (SELECT addr, sign, a FROM moves))
        SELECT addr, sum(sign * h), sum(sign * m), sum(sign * l) FROM split GROUP BY addr
    """
    out: dict[str, int] = {}
    for addr, h, m, lo in store.query(sql, [chain, asset, from_height, hi]):
        out[addr] = int(h) * 10**52 + int(m) * 10**26 + int(lo)
    return out


def transfers_usd(store: Store, chain: str | None = None) -> pa.Table:
    """Account-model and fiat movements with their USD value at the movement's time, from ``flows``.

    The price is the latest one at or before the movement (no look-ahead) of the series that values the
    asset: the native coin's or the currency's symbol, and for tokens only a ``price_assets`` entry for
    the contract (a token that calls itself "USDT" is not priced as Tether). Amounts stay exact.
    """
    where = "AND f.chain = ?" if chain else ""
    sql = f"""
        SELECT f.chain, f.asset, f.txid, f.kind, f.idx, f.src AS from_address, f.dst AS to_address, f.amount_raw,
               f.symbol, f.decimals, f.time, f.price_asset,
               CASE WHEN f.price_asset = 'USD' THEN 1.0 ELSE p.usd END AS usd_price, f.usd
        FROM flows f
        LEFT JOIN price_intervals p ON p.asset = f.price_asset AND f.time >= p.valid_from
             AND (p.valid_to IS NULL OR f.time < p.valid_to)
        WHERE f.kind <> 'utxo' {where}
        ORDER BY f.time, f.txid, f.kind, f.idx
    """
    return store.arrow(sql, [chain] if chain else None)
