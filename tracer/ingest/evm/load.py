"""Load mapped EVM batches into the store: atomic per block range, idempotent, reorg-aware.

Knows DuckDB and the canonical tables, nothing of JSON-RPC. A batch *replaces* whatever the store
held for its block range (delete + bulk append in one transaction), so re-running a range, resuming
after a crash, or re-reading blocks after a reorg all end with the same rows as one clean run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from tracer.ingest.evm.mapper import EvmBatch
from tracer.ingest.evm.rpc import TRANSFER_TOPIC
from tracer.store import Store, graph
from tracer.store.store import utcnow

CHECKPOINT_SOURCE = "evm"


@dataclass(frozen=True)
class Scope:
    """Which rows of a block range a load owns (and so replaces).

    ``tokens`` None means every token; ``all_logs`` False means only Transfer logs were fetched
    (eth_getLogs mode), so other logs already in the store are left alone.
    """

    tokens: frozenset[str] | None = None
    all_logs: bool = True
    traces: bool = False


def _in_list(values: Iterable[str]) -> str:
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def delete_range(store: Store, chain: str, lo: int, hi: int | None, scope: Scope | None = None) -> None:
    """Remove what an ingest of [lo, hi] (hi None: everything above lo) owns; run inside a transaction."""
    scope = scope or Scope()
    rng = "height >= ?" if hi is None else "height BETWEEN ? AND ?"
    args = [chain, lo] if hi is None else [chain, lo, hi]
    brng = rng.replace("height", "block_height")
    con = store.con
    con.execute(f"DELETE FROM blocks WHERE chain = ? AND {rng}", args)
    con.execute(f"DELETE FROM transactions WHERE chain = ? AND {brng}", args)
    kinds = "'native','internal'" if (scope.traces or hi is None) else "'native'"
    graph.delete_transfers(store, f"chain = ? AND {brng} AND kind IN ({kinds})", args)
    if scope.tokens is None or hi is None:
        graph.delete_transfers(store, f"chain = ? AND {brng} AND kind = 'erc20'", args)
    elif scope.tokens:
        graph.delete_transfers(
            store, f"chain = ? AND {brng} AND kind = 'erc20' AND asset IN ({_in_list(scope.tokens)})", args)
    if scope.all_logs or hi is None:
        con.execute(f"DELETE FROM logs WHERE chain = ? AND {brng}", args)
    else:
        extra = "" if scope.tokens is None else f" AND address IN ({_in_list(scope.tokens)})"
        con.execute(
            f"DELETE FROM logs WHERE chain = ? AND {brng} AND topics[1] = '{TRANSFER_TOPIC}'{extra}", args)


def load_batch(store: Store, chain: str, batch: EvmBatch, scope: Scope, tokens: pa.Table | None,
               checkpoint: tuple[str, int] | None, run_id: int, above: int | None = None) -> dict[str, int]:
    """Replace the batch's block range with its rows, in one transaction; return row counts.

    ``above``: the highest block height the store holds anything for on this chain; a batch wholly
    above it has nothing to replace, and skips the deletes (the common case: appending new blocks).
    """
    lo, hi = batch.heights
    transfers = _with_token_metadata(batch.transfers, tokens)
    with store.transaction():
        if above is None or lo <= above:
            delete_range(store, chain, lo, hi, scope)
        counts = {
            "blocks": store.append("blocks", batch.blocks),
            "transactions": store.append("transactions", batch.transactions),
            "logs": store.append("logs", batch.logs),
            "transfers": store.append("transfers", transfers),
        }
        if checkpoint is not None:
            save_checkpoint(store, checkpoint[0], checkpoint[1], done=False, run_id=run_id)
    return counts


def _with_token_metadata(transfers: pa.Table, tokens: pa.Table | None) -> pa.Table:
    """Fill symbol and decimals of ERC-20 rows from the token cache (vectorised lookup)."""
    if tokens is None or len(tokens) == 0 or len(transfers) == 0:
        return transfers
    idx = pc.index_in(transfers["asset"], value_set=tokens["address"])
    is_token = pc.equal(transfers["kind"], "erc20")
    sym = pc.if_else(is_token, pc.take(tokens["symbol"], idx), transfers["symbol"])
    decs = pc.if_else(is_token, pc.take(tokens["decimals"], idx).cast(pa.int32()), transfers["decimals"])
    t = transfers.set_column(transfers.schema.get_field_index("symbol"), "symbol", sym)
    return t.set_column(t.schema.get_field_index("decimals"), "decimals", decs)


def highest_height(store: Store, chain: str) -> int:
    """Highest block height with any EVM row for ``chain`` (-1 if none)."""
    v = one(store, """SELECT max(h) FROM (
        SELECT max(height) AS h FROM blocks WHERE chain = $1
        UNION ALL SELECT max(block_height) FROM transactions WHERE chain = $1
        UNION ALL SELECT max(block_height) FROM transfers WHERE chain = $1
        UNION ALL SELECT max(block_height) FROM logs WHERE chain = $1)""", [chain])
    return -1 if v is None else int(v)


def one(store: Store, sql: str, params: list) -> object:
    """First column of the first row, reading the whole result (a half-read DuckDB result blocks
    Arrow registration on the connection)."""
    rows = store.con.execute(sql, params).fetchall()
    return rows[0][0] if rows else None


def stored_hashes(store: Store, chain: str, lo: int, hi: int) -> dict[int, str]:
    rows = store.query(
        "SELECT height, hash FROM blocks WHERE chain = ? AND height BETWEEN ? AND ?", [chain, lo, hi])
    return {int(h): s for h, s in rows}


def rollback_above(store: Store, chain: str, fork_height: int) -> int:
    """Delete every block (and what hangs off it) above ``fork_height``; return blocks removed."""
    n = int(one(store, "SELECT count(*) FROM blocks WHERE chain = ? AND height > ?", [chain, fork_height]))
    with store.transaction():
        delete_range(store, chain, fork_height + 1, None)
        store.con.execute(
            "UPDATE checkpoints SET position = ?, done = false, updated = ? "
            "WHERE source = ? AND unit LIKE ? AND CAST(position AS BIGINT) > ?",
            [str(fork_height), utcnow(), CHECKPOINT_SOURCE, f"{chain} %", fork_height])
    return n


def load_checkpoint(store: Store, unit: str) -> tuple[int | None, bool]:
    row = store.con.execute(
        "SELECT position, done FROM checkpoints WHERE source = ? AND unit = ? ORDER BY updated DESC LIMIT 1",
        [CHECKPOINT_SOURCE, unit]).fetchall()
    row = row[0] if row else None
    if row is None or row[0] is None:
        return None, False
    return int(row[0]), bool(row[1])


def save_checkpoint(store: Store, unit: str, position: int, done: bool, run_id: int) -> None:
    store.con.execute("DELETE FROM checkpoints WHERE source = ? AND unit = ?", [CHECKPOINT_SOURCE, unit])
    store.con.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
        [CHECKPOINT_SOURCE, unit, str(position), done, run_id, utcnow()])


def cached_tokens(store: Store, chain: str) -> pa.Table:
    return store.con.sql(
        "SELECT address, symbol, decimals FROM evm_tokens WHERE chain = ?", params=[chain]).to_arrow_table()


def save_tokens(store: Store, rows: list[dict], run_id: int) -> None:
    if not rows:
        return
    t = pa.table({
        "chain": [r["chain"] for r in rows], "address": [r["address"] for r in rows],
        "symbol": pa.array([r["symbol"] for r in rows], pa.string()),
        "name": pa.array([r["name"] for r in rows], pa.string()),
        "decimals": pa.array([r["decimals"] for r in rows], pa.int32()),
        "status": [r["status"] for r in rows],
        "fetched_at": pa.array([utcnow()] * len(rows), pa.timestamp("us")),
        "run_id": pa.array([run_id] * len(rows), pa.int64()),
    })
    with store.transaction():
        store.con.execute(
            f"DELETE FROM evm_tokens WHERE chain = ? AND address IN ({_in_list(r['address'] for r in rows)})",
            [rows[0]["chain"]])
        store.append("evm_tokens", t)

