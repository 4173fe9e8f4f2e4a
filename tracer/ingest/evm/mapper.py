"""Map Ethereum JSON-RPC objects (blocks, receipts, call traces, logs) to the store's columns.

Pure functions: JSON-RPC dicts in, Arrow tables out. They know neither HTTP nor DuckDB, so the same
mapper serves a live node (``tracer ingest evm``) and saved JSON-RPC responses (the ethereum-etl test
fixtures). Field meanings follow the Ethereum JSON-RPC spec (ethereum/execution-apis) and the column
names follow ethereum-etl's export schema, so both sources produce identical rows.

Rules worth knowing (each cited where it is applied):

* A reverted transaction (receipt ``status`` 0x0) moves no ether and has no logs, but its sender
  still pays the fee (EIP-658 status; yellow paper §6.2). Pre-Byzantium receipts have no status
  (``root`` instead): those transactions are kept as successful, as ethereum-etl does.
* An ERC-20 ``Transfer(address,address,uint256)`` log (EIP-20) has topic0 ``0xddf252ad…``. Like
  ethereum-etl's extractor, topics and data are read as one list of 32-byte words that must be
  exactly four long (sig, from, to, value); this also accepts early tokens that did not index
  ``from``/``to``. ERC-721 transfers (four topics, empty data: the value is a token id, not an
  amount) are left out of ``transfers``; their logs stay in ``logs``.
* Internal ether transfers come from ``callTracer`` frames of type CALL, CREATE, CREATE2 and
  SELFDESTRUCT with a non-zero value, depth ≥ 1, in no failed subtree. DELEGATECALL and
  STATICCALL move no ether (their ``value`` is inherited context, EIP-7 / EIP-214).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tracer.errors import IngestError
from tracer.ingest.evm.rpc import TRANSFER_TOPIC

DEC = pa.decimal128(38, 0)
TS = pa.timestamp("s")
MAX_DEC = 10**38
VALUE_FRAMES = {"CALL", "CREATE", "CREATE2", "SELFDESTRUCT"}

BLOCK_SCHEMA = pa.schema([
    ("chain", pa.string()), ("height", pa.int64()), ("hash", pa.string()), ("prev_hash", pa.string()),
    ("time", TS), ("tx_count", pa.int32()), ("size", pa.int32()), ("nonce_hex", pa.string()),
    ("sha3_uncles", pa.string()), ("logs_bloom", pa.string()), ("transactions_root", pa.string()),
    ("state_root", pa.string()), ("receipts_root", pa.string()), ("miner", pa.string()),
    ("difficulty", DEC), ("total_difficulty", DEC), ("extra_data", pa.string()),
    ("gas_limit", pa.int64()), ("gas_used", pa.int64()), ("base_fee_per_gas", DEC),
    ("withdrawals_root", pa.string()), ("withdrawals", pa.string()), ("blob_gas_used", pa.int64()),
    ("excess_blob_gas", pa.int64()), ("height_source", pa.string()), ("source", pa.string()),
    ("run_id", pa.int64()),
])

TX_SCHEMA = pa.schema([
    ("chain", pa.string()), ("txid", pa.string()), ("block_hash", pa.string()), ("block_height", pa.int64()),
    ("block_time", TS), ("position", pa.int32()), ("nonce", pa.int64()), ("from_address", pa.string()),
    ("to_address", pa.string()), ("value", DEC), ("value_raw", pa.string()), ("gas", pa.int64()),
    ("gas_price", DEC), ("input", pa.string()), ("max_fee_per_gas", DEC), ("max_priority_fee_per_gas", DEC),
    ("transaction_type", pa.int32()), ("is_coinbase", pa.bool_()),
    ("has_receipt", pa.bool_()), ("status", pa.int32()), ("gas_used", pa.int64()),
    ("cumulative_gas_used", pa.int64()), ("contract_address", pa.string()), ("receipt_root", pa.string()),
    ("effective_gas_price", DEC), ("blob_gas_used", pa.int64()), ("blob_gas_price", DEC),
    ("l1_fee", DEC), ("l1_gas_used", pa.int64()), ("l1_gas_price", DEC), ("l1_fee_scalar", pa.string()),
    ("fee", DEC), ("run_id", pa.int64()),
])

LOG_SCHEMA = pa.schema([
    ("chain", pa.string()), ("block_height", pa.int64()), ("block_hash", pa.string()), ("block_time", TS),
    ("txid", pa.string()), ("transaction_index", pa.int32()), ("log_index", pa.int64()),
    ("address", pa.string()), ("data", pa.string()), ("topics", pa.list_(pa.string())), ("run_id", pa.int64()),
])

TRANSFER_SCHEMA = pa.schema([
    ("chain", pa.string()), ("asset", pa.string()), ("txid", pa.string()), ("idx", pa.int64()),
    ("from_address", pa.string()), ("to_address", pa.string()), ("amount", DEC), ("amount_raw", pa.string()),
    ("time", TS), ("block_height", pa.int64()), ("block_hash", pa.string()), ("kind", pa.string()),
    ("symbol", pa.string()), ("decimals", pa.int32()), ("trace_address", pa.string()), ("run_id", pa.int64()),
])


@dataclass
class EvmBatch:
    """Columns for one range of blocks, ready for the loader."""

    blocks: pa.Table
    transactions: pa.Table
    logs: pa.Table
    transfers: pa.Table
    heights: tuple[int, int] = (0, -1)
    tokens_seen: set[str] = field(default_factory=set)


def q(x: Any) -> int | None:
    """A JSON-RPC quantity (hex string) as int; None stays None."""
    if x is None:
        return None
    if isinstance(x, int):
        return x
    return int(x, 16)


def dec(v: int | None) -> int | None:
    """An exact integer for a DECIMAL(38,0) column, or None when it does not fit (kept as text)."""
    return v if v is not None and -MAX_DEC < v < MAX_DEC else None


def _table(cols: dict[str, list], schema: pa.Schema) -> pa.Table:
    n = len(next(iter(cols.values()))) if cols else 0
    arrays = []
    for f in schema:
        data = cols.get(f.name)
        if data is None:
            arrays.append(pa.nulls(n, f.type))
        elif f.type == TS:
            arrays.append(pa.array(data, pa.int64()).cast(TS))
        else:
            arrays.append(pa.array(data, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _fill(cols: dict[str, list], n: int, **const: Any) -> None:
    for k, v in const.items():
        cols[k] = [v] * n


def _err(source: str, where: str, reason: str) -> IngestError:
    return IngestError(source, where, reason)


def map_blocks(
    blocks: Sequence[dict],
    chain: str,
    source: str,
    run_id: int | None = None,
    receipts: Sequence[Sequence[dict]] | None = None,
    traces: Sequence[Sequence[dict]] | None = None,
    logs: Sequence[dict] | None = None,
    tokens: set[str] | None = None,
    native_asset: str = "ETH",
    trace_kind: str = "call",
) -> EvmBatch:
    """Blocks with full transactions (+ receipts per block, + callTracer traces per block) → batch.

    ``receipts`` aligned with ``blocks`` (one list per block, in transaction order) gives status,
    gas used and fees, and the logs. Without receipts, ``logs`` (from eth_getLogs) gives the token
    transfers and the receipt columns stay NULL. ``tokens`` limits token transfers to those
    contracts (lowercase); None keeps every token.
    """
    heights: list[int] = []
    for b in blocks:
        try:
            heights.append(q(b["number"]))
        except (KeyError, TypeError, ValueError):
            raise _err(source, "block ?", f"block without a valid number: {str(b)[:120]}") from None
    try:
        return _map(blocks, heights, chain, source, run_id, receipts, traces, logs, tokens, native_asset,
                    trace_kind)
    except IngestError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Find the first block that does not map, to name it in the error.
        for i, b in enumerate(blocks):
            try:
                _map([b], [heights[i]], chain, source, run_id,
                     None if receipts is None else [receipts[i]],
                     None if traces is None else [traces[i]], None, tokens, native_asset, trace_kind)
            except (KeyError, TypeError, ValueError, AttributeError) as inner:
                raise _err(source, f"block {heights[i]}", f"malformed block or receipt ({_why(inner)})") from None
        raise _err(source, f"blocks {heights[0]}-{heights[-1]}", f"malformed logs ({_why(exc)})") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"


def _map(blocks, heights, chain, source, run_id, receipts, traces, logs, tokens, native_asset,
         trace_kind="call") -> EvmBatch:
    nb = len(blocks)
    times = [q(b["timestamp"]) for b in blocks]
    bcols: dict[str, list] = {
        "height": heights,
        "hash": [b["hash"] for b in blocks],
        "prev_hash": [b["parentHash"] for b in blocks],
        "time": times,
        "tx_count": [len(b["transactions"]) for b in blocks],
        "size": [q(b.get("size")) for b in blocks],
        "nonce_hex": [b.get("nonce") for b in blocks],
        "sha3_uncles": [b.get("sha3Uncles") for b in blocks],
        "logs_bloom": [b.get("logsBloom") for b in blocks],
        "transactions_root": [b.get("transactionsRoot") for b in blocks],
        "state_root": [b.get("stateRoot") for b in blocks],
        "receipts_root": [b.get("receiptsRoot") for b in blocks],
        "miner": [(b.get("miner") or "").lower() or None for b in blocks],
        "difficulty": [dec(q(b.get("difficulty"))) for b in blocks],
        "total_difficulty": [dec(q(b.get("totalDifficulty"))) for b in blocks],
        "extra_data": [b.get("extraData") for b in blocks],
        "gas_limit": [q(b.get("gasLimit")) for b in blocks],
        "gas_used": [q(b.get("gasUsed")) for b in blocks],
        "base_fee_per_gas": [dec(q(b.get("baseFeePerGas"))) for b in blocks],
        "withdrawals_root": [b.get("withdrawalsRoot") for b in blocks],
        "withdrawals": [_withdrawals(b.get("withdrawals")) for b in blocks],
        "blob_gas_used": [q(b.get("blobGasUsed")) for b in blocks],
        "excess_blob_gas": [q(b.get("excessBlobGas")) for b in blocks],
    }
    _fill(bcols, nb, chain=chain, height_source="rpc", source=source, run_id=run_id)

    # Transactions, flattened across blocks.
    txs: list[dict] = []
    tx_block: list[int] = []
    for i, b in enumerate(blocks):
        t = b["transactions"]
        if t and isinstance(t[0], str):
            raise ValueError("block fetched without full transactions")
        txs.extend(t)
        tx_block.extend([i] * len(t))
    n = len(txs)
    block_hash = bcols["hash"]
    values = [q(t["value"]) for t in txs]
    tcols: dict[str, list] = {
        "txid": [t["hash"] for t in txs],
        "block_hash": [block_hash[i] for i in tx_block],
        "block_height": [heights[i] for i in tx_block],
        "block_time": [times[i] for i in tx_block],
        "position": [q(t["transactionIndex"]) for t in txs],
        "nonce": [q(t["nonce"]) for t in txs],
        "from_address": [t["from"].lower() for t in txs],
        "to_address": [t["to"].lower() if t.get("to") else None for t in txs],
        "value": [dec(v) for v in values],
        "value_raw": [str(v) for v in values],
        "gas": [q(t["gas"]) for t in txs],
        "gas_price": [dec(q(t.get("gasPrice"))) for t in txs],
        "input": [t.get("input") for t in txs],
        "max_fee_per_gas": [dec(q(t.get("maxFeePerGas"))) for t in txs],
        "max_priority_fee_per_gas": [dec(q(t.get("maxPriorityFeePerGas"))) for t in txs],
        "transaction_type": [q(t.get("type")) if t.get("type") is not None else 0 for t in txs],
    }
    _fill(tcols, n, chain=chain, is_coinbase=False, run_id=run_id)

    status: list[int | None] = [None] * n
    log_rows: list[dict] = []
    if receipts is not None:
        recs: list[dict] = []
        for i, rs in enumerate(receipts):
            if len(rs) != bcols["tx_count"][i]:
                raise _err(source, f"block {heights[i]}",
                           f"{len(rs)} receipts for {bcols['tx_count'][i]} transactions")
            recs.extend(rs)
        for t, r in zip(tcols["txid"], recs, strict=True):
            if r.get("transactionHash") != t:
                raise ValueError(f"receipt {r.get('transactionHash')} does not match transaction {t}")
        status = [q(r.get("status")) for r in recs]
        gas_used = [q(r["gasUsed"]) for r in recs]
        egp = [q(r.get("effectiveGasPrice")) for r in recs]
        egp = [e if e is not None else q(t.get("gasPrice")) for e, t in zip(egp, txs, strict=True)]
        blob_used = [q(r.get("blobGasUsed")) for r in recs]
        blob_price = [q(r.get("blobGasPrice")) if bu else None for r, bu in zip(recs, blob_used, strict=True)]
        l1_fee = [q(r.get("l1Fee")) for r in recs]
        fee = [
            gu * (p or 0) + (bu or 0) * (bp or 0) + (lf or 0)
            for gu, p, bu, bp, lf in zip(gas_used, egp, blob_used, blob_price, l1_fee, strict=True)
        ]
        tcols.update({
            "has_receipt": [True] * n,
            "status": status,
            "gas_used": gas_used,
            "cumulative_gas_used": [q(r.get("cumulativeGasUsed")) for r in recs],
            "contract_address": [(r.get("contractAddress") or "").lower() or None for r in recs],
            "receipt_root": [r.get("root") for r in recs],
            "effective_gas_price": [dec(e) for e in egp],
            "blob_gas_used": blob_used,
            "blob_gas_price": [dec(b) for b in blob_price],
            "l1_fee": [dec(x) for x in l1_fee],
            "l1_gas_used": [q(r.get("l1GasUsed")) for r in recs],
            "l1_gas_price": [dec(q(r.get("l1GasPrice"))) for r in recs],
            "l1_fee_scalar": [r.get("l1FeeScalar") for r in recs],
            "fee": [dec(f) for f in fee],
        })
        for r in recs:
            log_rows.extend(r["logs"])
    else:
        tcols["has_receipt"] = [False] * n
        if logs is not None:
            log_rows = list(logs)
    log_rows = [lg for lg in log_rows if not lg.get("removed")]

    # Logs.
    hpos = {h: i for i, h in enumerate(heights)}
    lb = [hpos[q(lg["blockNumber"])] for lg in log_rows]
    lcols: dict[str, list] = {
        "block_height": [heights[i] for i in lb],
        "block_hash": [lg.get("blockHash") or block_hash[i] for lg, i in zip(log_rows, lb, strict=True)],
        "block_time": [times[i] for i in lb],
        "txid": [lg["transactionHash"] for lg in log_rows],
        "transaction_index": [q(lg["transactionIndex"]) for lg in log_rows],
        "log_index": [q(lg["logIndex"]) for lg in log_rows],
        "address": [lg["address"].lower() for lg in log_rows],
        "data": [lg["data"] for lg in log_rows],
        "topics": [list(lg["topics"]) for lg in log_rows],
    }
    _fill(lcols, len(log_rows), chain=chain, run_id=run_id)

    # Transfers: native value of successful transactions, then ERC-20 logs, then internal calls.
    xf: dict[str, list] = {k: [] for k in (
        "asset", "txid", "idx", "from_address", "to_address", "amount_raw", "time", "block_height",
        "block_hash", "kind", "symbol", "decimals", "trace_address")}

    def add(asset, txid, idx, frm, to, amount, time, height, bhash, kind, symbol, decimals, trace):
        xf["asset"].append(asset)
        xf["txid"].append(txid)
        xf["idx"].append(idx)
        xf["from_address"].append(frm)
        xf["to_address"].append(to)
        xf["amount_raw"].append(amount)
        xf["time"].append(time)
        xf["block_height"].append(height)
        xf["block_hash"].append(bhash)
        xf["kind"].append(kind)
        xf["symbol"].append(symbol)
        xf["decimals"].append(decimals)
        xf["trace_address"].append(trace)

    contract = tcols.get("contract_address") or [None] * n
    for k in range(n):
        v = values[k]
        if v and status[k] != 0:
            to = tcols["to_address"][k] or contract[k]
            add(native_asset, tcols["txid"][k], 0, tcols["from_address"][k], to, v,
                tcols["block_time"][k], tcols["block_height"][k], tcols["block_hash"][k], "native",
                native_asset, 18, None)

    tokens_seen: set[str] = set()
    for lg, i in zip(log_rows, lb, strict=True):
        parsed = transfer_words(lg["topics"], lg["data"])
        if parsed is None:
            continue
        token = lg["address"].lower()
        if tokens is not None and token not in tokens:
            continue
        tokens_seen.add(token)
        add(token, lg["transactionHash"], q(lg["logIndex"]), parsed[0], parsed[1], parsed[2], times[i],
            heights[i], block_hash[i], "erc20", None, None, None)

    if traces is not None and trace_kind == "parity":
        pos = {(tcols["block_height"][k], tcols["position"][k]): k for k in range(n)}
        for i, block_traces in enumerate(traces):
            for k, idx, path, frm, to, val in _parity_internal_moves(block_traces):
                if (heights[i], k) not in pos:
                    raise _err(source, f"block {heights[i]}", f"trace for unknown transaction position {k}")
                kk = pos[(heights[i], k)]
                add(native_asset, tcols["txid"][kk], idx, frm, to, val, times[i], heights[i], block_hash[i],
                    "internal", native_asset, 18, path)
    elif traces is not None:
        for i, block_traces in enumerate(traces):
            btx = [k for k in range(n) if tx_block[k] == i]
            if len(block_traces) != len(btx):
                raise _err(source, f"block {heights[i]}",
                           f"{len(block_traces)} traces for {len(btx)} transactions")
            for k, tr in zip(btx, block_traces, strict=True):
                if "result" not in tr or not isinstance(tr["result"], dict):
                    raise _err(source, f"block {heights[i]}",
                               f"trace of {tcols['txid'][k]} failed: {str(tr.get('error'))[:120]}")
                for idx, path, frm, to, val in _internal_value_frames(tr["result"]):
                    add(native_asset, tcols["txid"][k], idx, frm, to, val, times[i], heights[i],
                        block_hash[i], "internal", native_asset, 18, path)

    amounts = xf.pop("amount_raw")
    xf["amount"] = [dec(a) for a in amounts]
    xf["amount_raw"] = [str(a) for a in amounts]
    _fill(xf, len(amounts), chain=chain, run_id=run_id)

    return EvmBatch(
        blocks=_table(bcols, BLOCK_SCHEMA),
        transactions=_table(tcols, TX_SCHEMA),
        logs=_table(lcols, LOG_SCHEMA),
        transfers=_table(xf, TRANSFER_SCHEMA),
        heights=(heights[0], heights[-1]) if heights else (0, -1),
        tokens_seen=tokens_seen,
    )


def transfer_words(topics: Sequence[str], data: str | None) -> tuple[str, str, int] | None:
    """(from, to, value) of an ERC-20 Transfer log, or None if the log is not one.

    Topics and data are read as one list of 32-byte words that must be exactly four long (as
    ethereum-etl's token-transfer extractor does), which also accepts early tokens that did not
    index from/to; a log with four topics is ERC-721 (a token id, not an amount) and is skipped.
    """
    if not topics or topics[0] != TRANSFER_TOPIC or len(topics) == 4:
        return None
    hexdata = (data or "0x")[2:]
    if len(hexdata) % 64:
        return None
    words = list(topics[1:]) + ["0x" + hexdata[j : j + 64] for j in range(0, len(hexdata), 64)]
    if len(words) != 3:
        return None
    return "0x" + words[0][-40:].lower(), "0x" + words[1][-40:].lower(), int(words[2], 16)


def _internal_value_frames(root: dict) -> list[tuple[int, str, str, str, int]]:
    """(frame number in depth-first order, path, from, to, value) of internal ether moves.

    The root frame (number 0) is the transaction itself, already a ``native`` transfer. A frame
    with ``error`` reverted, and so did everything under it.
    """
    out: list[tuple[int, str, str, str, int]] = []
    counter = 0
    stack: list[tuple[dict, tuple[int, ...]]] = [(root, ())]
    while stack:
        frame, path = stack.pop()
        number = counter
        counter += 1
        if frame.get("error"):
            # Skip the subtree but keep numbering stable: count its frames.
            counter += _count_frames(frame) - 1
            continue
        if path and frame.get("type", "").upper() in VALUE_FRAMES:
            v = q(frame.get("value")) or 0
            if v:
                out.append((number, ",".join(map(str, path)), frame["from"].lower(),
                            (frame.get("to") or "").lower(), v))
        calls = frame.get("calls") or []
        for j in range(len(calls) - 1, -1, -1):
            stack.append((calls[j], path + (j,)))
    return out


def _parity_internal_moves(traces: Sequence[dict]) -> list[tuple[int, int, str, str, str, int]]:
    """(tx position, frame number, path, from, to, value) from Parity-style ``trace_block`` output.

    The flat list is in depth-first order per transaction, so a trace's rank within its transaction
    is the same frame number callTracer gives. A failed trace reverts its subtree: descendants are
    recognised by their ``traceAddress`` prefix. Block and uncle ``reward`` traces have no
    transaction and are not transfers.
    """
    out = []
    rank: dict[int, int] = {}
    failed: dict[int, list[tuple[int, ...]]] = {}
    for tr in traces:
        k = tr.get("transactionPosition")
        if k is None:
            continue
        number = rank.get(k, 0)
        rank[k] = number + 1
        path = tuple(tr.get("traceAddress") or ())
        if tr.get("error") or any(path[: len(f)] == f for f in failed.get(k, ())):
            failed.setdefault(k, []).append(path)
            continue
        if not path:
            continue  # the transaction itself: its value is the native transfer
        a = tr.get("action") or {}
        kind = tr.get("type")
        if kind == "call" and a.get("callType", "call") == "call":
            frm, to, v = a.get("from"), a.get("to"), q(a.get("value"))
        elif kind == "create":
            frm, to, v = a.get("from"), (tr.get("result") or {}).get("address"), q(a.get("value"))
        elif kind == "suicide":
            frm, to, v = a.get("address"), a.get("refundAddress"), q(a.get("balance"))
        else:
            continue
        if v:
            out.append((k, number, ",".join(map(str, path)), (frm or "").lower(), (to or "").lower(), v))
    return out


def _count_frames(frame: dict) -> int:
    return 1 + sum(_count_frames(c) for c in frame.get("calls") or [])


def _withdrawals(ws: list[dict] | None) -> str | None:
    """Withdrawals in ethereum-etl's form: index, validator_index, address, amount (gwei) as text."""
    if not ws:
        return "[]"  # pre-Shanghai blocks: no withdrawals (ethereum-etl writes an empty list)
    return json.dumps([
        {"index": q(w["index"]), "validator_index": q(w["validatorIndex"]), "address": w["address"].lower(),
         "amount": q(w["amount"])} for w in ws
    ], separators=(",", ":"))
