"""The store's account-model rows in ethereum-etl's export shape (blocks, transactions, logs, token
transfers): the round trip of ``tracer ingest etl``, field by field, and what other tools read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracer.store import Store

EXPORT_SQL = {
    "blocks": """SELECT height AS number, hash, prev_hash AS parent_hash, nonce_hex AS nonce, sha3_uncles,
        logs_bloom, transactions_root, state_root, receipts_root, miner, difficulty, total_difficulty, size,
        extra_data, gas_limit, gas_used, epoch(time)::BIGINT AS timestamp, tx_count AS transaction_count,
        base_fee_per_gas, withdrawals_root, withdrawals
        FROM blocks WHERE chain = ? ORDER BY height""",
    "transactions": """SELECT txid AS hash, nonce, block_hash, block_height AS block_number,
        position AS transaction_index, from_address, to_address, value_raw AS value, gas, gas_price, input,
        epoch(block_time)::BIGINT AS block_timestamp, max_fee_per_gas, max_priority_fee_per_gas,
        transaction_type, cumulative_gas_used AS receipt_cumulative_gas_used, gas_used AS receipt_gas_used,
        contract_address AS receipt_contract_address, receipt_root, status AS receipt_status,
        effective_gas_price AS receipt_effective_gas_price, l1_fee AS receipt_l1_fee,
        l1_gas_used AS receipt_l1_gas_used, l1_gas_price AS receipt_l1_gas_price,
        l1_fee_scalar AS receipt_l1_fee_scalar
        FROM transactions WHERE chain = ? ORDER BY block_height, position""",
    "logs": """SELECT log_index, txid AS transaction_hash, transaction_index, block_hash,
        block_height AS block_number, address, data, topics, epoch(block_time)::BIGINT AS block_timestamp
        FROM logs WHERE chain = ? ORDER BY block_height, log_index""",
    "token_transfers": """SELECT asset AS token_address, from_address, to_address, amount_raw AS value,
        txid AS transaction_hash, idx AS log_index, block_height AS block_number,
        epoch(time)::BIGINT AS block_timestamp, block_hash
        FROM transfers WHERE chain = ? AND kind = 'erc20' ORDER BY block_height, idx""",
}


def export_rows(store: Store, chain: str, kind: str) -> list[dict[str, Any]]:
    """The store's rows for ``chain`` in ethereum-etl's shape (JSON export types: ints, lists)."""
    cur = store.con.execute(EXPORT_SQL[kind], [chain])
    cols = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        d = dict(zip(cols, row, strict=True))
        for k, v in d.items():
            if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float)):
                d[k] = int(v)  # Decimal → int
        if kind == "token_transfers" or kind == "transactions":
            d["value"] = int(d["value"])
        if kind == "blocks" and d["withdrawals"] is not None:
            d["withdrawals"] = json.loads(d["withdrawals"])
        out.append(d)
    return out


def as_csv_text(rows: Iterable[dict[str, Any]], kind: str) -> list[dict[str, str]]:
    """Rows as ethereum-etl writes them to CSV (empty for NULL, topics and withdrawals joined)."""
    out = []
    for r in rows:
        d = {}
        for k, v in r.items():
            if v is None:
                d[k] = ""
            elif k == "topics":
                d[k] = ",".join(v)
            elif k == "withdrawals":
                d[k] = ",".join(json.dumps(w, separators=(",", ":")) for w in v)
            else:
                d[k] = str(v)
        out.append(d)
    return out
