"""``tracer ingest etl``: import ethereum-etl exports (CSV or newline-delimited JSON).

ethereum-etl (github.com/blockchain-etl/ethereum-etl, docs/schema.md) is how most public Ethereum
data sets are made: ``export_blocks_and_transactions``, ``export_receipts_and_logs``,
``export_token_transfers``, ``extract_token_transfers``, ``export_tokens`` and ``stream`` (NDJSON
with a ``type`` per line and ``receipt_*`` fields on transactions). Each export lands in the same
tables as ``tracer ingest evm``: blocks, transactions, logs, transfers (ERC-20 and native), and the
token metadata cache ``evm_tokens``.

Files are parsed into Arrow columns of text and converted in one SQL pass (exact: integers are
cast from their decimal text, never through floats). A value that does not convert names its file
and line, goes to ``quarantine``, and nothing of the import is written (one transaction).
Rows are keyed (blocks by height, transactions by hash, logs by (hash, log index), transfers by
(chain, txid, kind, idx)), so importing the same export twice adds nothing.

:func:`export_rows` renders the store back into ethereum-etl's rows, so an import (or an RPC ingest)
can be checked against ethereum-etl's own output field by field.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from tracer import chains
from tracer.errors import IngestError
from tracer.ingest.evm.node import network_name
from tracer.ingest.evm.mapper import transfer_words
from tracer.store import Store, graph

# target column, SQL type, ethereum-etl column. Types: INT (BIGINT), I32, DEC (DECIMAL(38,0),
# NULL beyond 38 digits), TS (unix seconds), TEXT, ADDR (lowercased text).
SPECS: dict[str, list[tuple[str, str, str]]] = {
    "blocks": [
        ("height", "INT", "number"), ("hash", "TEXT", "hash"), ("prev_hash", "TEXT", "parent_hash"),
        ("nonce_hex", "TEXT", "nonce"), ("sha3_uncles", "TEXT", "sha3_uncles"),
        ("logs_bloom", "TEXT", "logs_bloom"), ("transactions_root", "TEXT", "transactions_root"),
        ("state_root", "TEXT", "state_root"), ("receipts_root", "TEXT", "receipts_root"),
        ("miner", "ADDR", "miner"), ("difficulty", "DEC", "difficulty"),
        ("total_difficulty", "DEC", "total_difficulty"), ("size", "I32", "size"),
        ("extra_data", "TEXT", "extra_data"), ("gas_limit", "INT", "gas_limit"), ("gas_used", "INT", "gas_used"),
        ("time", "TS", "timestamp"), ("tx_count", "I32", "transaction_count"),
        ("base_fee_per_gas", "DEC", "base_fee_per_gas"), ("withdrawals_root", "TEXT", "withdrawals_root"),
        ("withdrawals", "TEXT", "withdrawals"), ("blob_gas_used", "INT", "blob_gas_used"),
        ("excess_blob_gas", "INT", "excess_blob_gas"),
    ],
    "transactions": [
        ("txid", "TEXT", "hash"), ("nonce", "INT", "nonce"), ("block_hash", "TEXT", "block_hash"),
        ("block_height", "INT", "block_number"), ("position", "I32", "transaction_index"),
        ("from_address", "ADDR", "from_address"), ("to_address", "ADDR", "to_address"),
        ("value", "DEC", "value"), ("value_raw", "TEXT", "value"), ("gas", "INT", "gas"),
        ("gas_price", "DEC", "gas_price"), ("input", "TEXT", "input"), ("block_time", "TS", "block_timestamp"),
        ("max_fee_per_gas", "DEC", "max_fee_per_gas"),
        ("max_priority_fee_per_gas", "DEC", "max_priority_fee_per_gas"),
        ("transaction_type", "I32", "transaction_type"),
    ],
    "receipts": [
        ("txid", "TEXT", "transaction_hash"), ("cumulative_gas_used", "INT", "cumulative_gas_used"),
        ("gas_used", "INT", "gas_used"), ("contract_address", "ADDR", "contract_address"),
        ("receipt_root", "TEXT", "root"), ("status", "I32", "status"),
        ("effective_gas_price", "DEC", "effective_gas_price"), ("l1_fee", "DEC", "l1_fee"),
        ("l1_gas_used", "INT", "l1_gas_used"), ("l1_gas_price", "DEC", "l1_gas_price"),
        ("l1_fee_scalar", "TEXT", "l1_fee_scalar"),
    ],
    "logs": [
        ("log_index", "INT", "log_index"), ("txid", "TEXT", "transaction_hash"),
        ("transaction_index", "I32", "transaction_index"), ("block_hash", "TEXT", "block_hash"),
        ("block_height", "INT", "block_number"), ("address", "ADDR", "address"), ("data", "TEXT", "data"),
        ("topics_text", "TEXT", "topics"), ("block_time", "TS", "block_timestamp"),
    ],
    "token_transfers": [
        ("asset", "ADDR", "token_address"), ("from_address", "ADDR", "from_address"),
        ("to_address", "ADDR", "to_address"), ("amount", "DEC", "value"), ("amount_raw", "TEXT", "value"),
        ("txid", "TEXT", "transaction_hash"), ("idx", "INT", "log_index"), ("block_height", "INT", "block_number"),
        ("time", "TS", "block_timestamp"), ("block_hash", "TEXT", "block_hash"),
    ],
    "tokens": [
        ("address", "ADDR", "address"), ("symbol", "TEXT", "symbol"), ("name", "TEXT", "name"),
        ("decimals", "I32", "decimals"),
    ],
}
# Receipt fields that ethereum-etl's stream puts on transactions as receipt_<name>.
STREAM_RECEIPT = ["cumulative_gas_used", "gas_used", "contract_address", "root", "status",
                  "effective_gas_price", "l1_fee", "l1_gas_used", "l1_gas_price", "l1_fee_scalar"]
KINDS_BY_TYPE = {"block": "blocks", "transaction": "transactions", "log": "logs",
                 "token_transfer": "token_transfers", "receipt": "receipts", "token": "tokens"}
_SQL_TYPE = {"INT": "BIGINT", "I32": "INTEGER", "DEC": "DECIMAL(38,0)", "TEXT": "VARCHAR", "ADDR": "VARCHAR",
             "TS": "BIGINT"}
ORDER = ["tokens", "blocks", "transactions", "receipts", "logs", "token_transfers"]


def _kind_of(path: Path) -> str | None:
    name = path.name.lower()
    for kind in ("token_transfers", "transactions", "receipts", "blocks", "logs", "tokens"):
        if kind in name:
            return kind
    return None


def _files(paths: Sequence[Path | str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # Only files named like ethereum-etl exports (blocks.csv, token_transfers.json, ...).
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in (".csv", ".json") and _kind_of(f) is not None)
            if not found:
                raise IngestError(str(p), "directory", "no ethereum-etl export files (blocks, transactions, "
                                  "receipts, logs, token_transfers as .csv or .json)")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise IngestError(str(p), "file", "no such file or directory")
    return out


def _text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def _read_csv(path: Path) -> pa.Table:
    """A CSV export as Arrow text columns (read by pyarrow, vectorised) plus its line numbers.

    ethereum-etl writes no line breaks inside fields, so row k is line k + 2. If pyarrow refuses the
    file, the offending line is found with the csv module (error path only) and named.
    """
    with path.open(newline="", encoding="utf-8", errors="strict") as f:
        try:
            header = next(csv.reader([f.readline()]), None)
        except UnicodeDecodeError as exc:
            raise IngestError(str(path), f"byte {exc.start}", "not UTF-8 text") from None
    if not header:
        return pa.table({"_line": pa.array([], pa.int64())})
    try:
        t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header}, strings_can_be_null=True, null_values=[""],
            quoted_strings_can_be_null=True))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            for n, row in enumerate(csv.reader(f), start=1):
                if len(row) != len(header):
                    raise IngestError(str(path), f"line {n}", f"{len(row)} fields, header has {len(header)}",
                                      item=",".join(row)[:200]) from None
        raise IngestError(str(path), "file", f"not a CSV export ({exc})") from None
    return t.append_column("_line", pa.array(range(2, len(t) + 2), pa.int64()))


def read_export(path: Path) -> dict[str, pa.Table]:
    """Rows of an export file by kind, as Arrow text columns with a ``_line`` column."""
    if path.suffix.lower() == ".csv":
        kind = _kind_of(path)
        if kind is None:
            raise IngestError(str(path), "file name", "cannot tell which ethereum-etl export this is "
                              "(name must contain blocks, transactions, receipts, logs, token_transfers or tokens)")
        t = _read_csv(path)
        return {kind: t} if len(t) else {}
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(str(path), f"byte {exc.start}", "not UTF-8 text") from None
    out: dict[str, tuple[list[str], list[list[str | None]], list[int]]] = {}
    fallback = _kind_of(path)
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise IngestError(str(path), f"line {n}", f"not JSON ({exc.msg})", item=line[:200]) from None
        if not isinstance(obj, dict):
            raise IngestError(str(path), f"line {n}", "not a JSON object", item=line[:200])
        kind = KINDS_BY_TYPE.get(obj.get("type", ""), fallback)
        if kind is None:
            raise IngestError(str(path), f"line {n}", f"unknown item type {obj.get('type')!r}", item=line[:200])
        if kind == "transactions" and any(f"receipt_{k}" in obj for k in STREAM_RECEIPT):
            # ethereum-etl stream: receipt fields ride on the transaction.
            rec = {k: obj.get(f"receipt_{k}") for k in STREAM_RECEIPT}
            rec["transaction_hash"] = obj.get("hash")
            cols_r, rows_r, lines_r = out.setdefault("receipts", (list(rec), [], []))
            rows_r.append([_text(rec.get(c)) for c in cols_r])
            lines_r.append(n)
        if kind == "blocks" and isinstance(obj.get("withdrawals"), list):
            obj["withdrawals"] = json.dumps(obj["withdrawals"])
        cols, rows, lines = out.setdefault(kind, (list(obj), [], []))
        rows.append([_text(obj.get(c)) for c in cols])
        lines.append(n)
    return {kind: pa.table({**{c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(cols)},
                            "_line": pa.array(lines, pa.int64())})
            for kind, (cols, rows, lines) in out.items()}


def _withdrawals_json(v: str | None) -> str | None:
    """ethereum-etl writes withdrawals as comma-joined JSON objects (CSV) or a Python repr (JSON)."""
    if v is None:
        return "[]"
    s = v.strip()
    if not s:
        return "[]"
    try:
        obj = json.loads(s if s.startswith("[") else f"[{s}]")
    except ValueError:
        obj = ast.literal_eval(s)
    return json.dumps([{"index": int(w["index"]), "validator_index": int(w["validator_index"]),
                        "address": str(w["address"]).lower(), "amount": int(w["amount"])} for w in obj],
                      separators=(",", ":"))


def _convert(store: Store, path: Path, kind: str, table: pa.Table) -> pa.Table:
    """Text columns → typed columns in one SQL pass; the first value that does not convert is an error."""
    spec = SPECS[kind]
    cols = [c for c in table.column_names if c != "_line"]
    present = set(cols)
    if kind == "blocks" and "withdrawals" in present:
        # One value per block (not per transaction): normalised in Python.
        fixed = []
        for v, n in zip(table["withdrawals"].to_pylist(), table["_line"].to_pylist(), strict=True):
            try:
                fixed.append(_withdrawals_json(v))
            except (ValueError, SyntaxError, KeyError, TypeError):
                raise IngestError(str(path), f"line {n}", "malformed withdrawals", item=str(v)[:200]) from None
        table = table.set_column(table.schema.get_field_index("withdrawals"), "withdrawals",
                                 pa.array(fixed, pa.string()))
    required = {"blocks": "number", "transactions": "hash", "receipts": "transaction_hash", "logs": "log_index",
                "token_transfers": "transaction_hash", "tokens": "address"}[kind]
    if required not in present:
        raise IngestError(str(path), "header", f"no {required!r} column: not an ethereum-etl {kind} export")
    selects, checks = [], []
    for target, typ, src in spec:
        if src not in present:
            selects.append(f"CAST(NULL AS {_SQL_TYPE[typ]}) AS {target}")
            continue
        col = f'"{src}"'
        if typ == "TEXT":
            expr = col
        elif typ == "ADDR":
            expr = f"lower({col})"
        elif typ == "DEC":
            expr = f"CASE WHEN length({col}) <= 38 THEN TRY_CAST({col} AS DECIMAL(38,0)) END"
            checks.append(f"({col} IS NOT NULL AND NOT regexp_full_match({col}, '[0-9]+'))")
        elif typ == "TS":
            expr = f"TRY_CAST({col} AS BIGINT)"
            checks.append(f"({col} IS NOT NULL AND TRY_CAST({col} AS BIGINT) IS NULL)")
        else:
            expr = f"TRY_CAST({col} AS {_SQL_TYPE[typ]})"
            checks.append(f"({col} IS NOT NULL AND {expr} IS NULL)")
        selects.append(f"{expr} AS {target}")
    store.con.register("_etl_src", table)
    try:
        if checks:
            bad = store.con.execute(
                f"SELECT _line, * EXCLUDE (_line) FROM _etl_src WHERE {' OR '.join(checks)} ORDER BY _line LIMIT 1"
            ).fetchall()
            bad = bad[0] if bad else None
            if bad is not None:
                raise IngestError(str(path), f"line {bad[0]}", f"value does not convert for {kind}",
                                  item=json.dumps(dict(zip(cols, bad[1:], strict=True)))[:2000])
        selects.append("_line AS source_line")
        out = store.con.sql(f"SELECT {', '.join(selects)} FROM _etl_src ORDER BY _line").to_arrow_table()
    finally:
        store.con.unregister("_etl_src")
    return out


def _ts(t: pa.Table, name: str) -> pa.Table:
    i = t.schema.get_field_index(name)
    return t.set_column(i, name, t[name].cast(pa.timestamp("s")))


def ingest_etl(store: Store, paths: Sequence[Path | str], chain: str | None = None, chain_id: int = 1,
               native_asset: str | None = None, token_prices: dict[str, str] | None = None) -> dict[str, Any]:
    """Import ethereum-etl export files (or directories of them) into the store, atomically.

    ``chain`` and ``native_asset`` default to the chain registry's name and native coin for ``chain_id``
    (:mod:`tracer.chains`: 1 ethereum/ETH, 56 bsc/BNB, ...), as ``tracer ingest evm`` names them.

    ``token_prices`` declares which price series values a token contract of this chain
    (``{"0xdac1…": "USDT"}``, see :func:`tracer.store.graph.set_token_price_asset`) before the rows load:
    what a fork or a test chain needs, where a contract at a known address is not the known token."""
    chain = chain or chains.chain_name(chain_id)
    native_asset = native_asset or chains.native_symbol(chain_id, chains.native_symbol(chain))
    files = _files(paths)
    run = store.begin_run("etl", ",".join(map(str, paths)), {"chain": chain, "chain_id": chain_id,
                                                             "files": [str(f) for f in files],
                                                             "token_prices": token_prices or {}})
    counts: dict[str, int] = {}
    try:
        parsed: list[tuple[str, Path, tuple]] = []
        for f in files:
            for kind, content in read_export(f).items():
                parsed.append((kind, f, content))
        parsed.sort(key=lambda x: ORDER.index(x[0]))
        typed = [(kind, f, _convert(store, f, kind, content)) for kind, f, content in parsed]
        with store.transaction():
            store.claim_chain(chain, "account", network_name(chain_id), chain_id, run.run_id)
            # claim_chain reads with fetchone(); DuckDB 2.0 keeps that result open and then
            # refuses to register Arrow views on the connection. Finish it.
            store.con.execute("SELECT 1").fetchall()
            for contract, price_asset in (token_prices or {}).items():
                graph.set_token_price_asset(store, chain, contract, price_asset, f"declared at etl ingest (run {run.run_id})")
            has_transfer_file = any(k == "token_transfers" for k, _, _ in typed)
            touched_tx: list[pa.Table] = []
            for kind, f, t in typed:
                n = _load(store, kind, t, chain, run.run_id, derive_transfers=not has_transfer_file, path=f)
                counts[kind] = counts.get(kind, 0) + n
                if kind in ("transactions", "receipts"):
                    touched_tx.append(t.select(["txid"]))
            if touched_tx:
                counts["native_transfers"] = _native_transfers(
                    store, chain, pa.concat_tables(touched_tx), run.run_id, native_asset)
            counts["erc20_transfers"] = counts.pop("token_transfers", 0) + counts.pop("derived_transfers", 0)
        run.add(**counts)
        run.finish()
    except BaseException as exc:
        if isinstance(exc, IngestError):
            run.quarantine(exc.position, exc.item, exc.reason, source=exc.source)
        run.fail(exc)
        raise
    return {"run_id": run.run_id, "chain": chain, **counts}


def _replace(store: Store, table: str, data: pa.Table, key_sql: str) -> int:
    """Delete rows with the same key as ``data``, then append it (idempotent re-import)."""
    store.con.register("_etl_new", data)
    try:
        if table == "transfers":
            graph.delete_transfers(store, f"EXISTS (SELECT 1 FROM _etl_new n WHERE {key_sql.replace('t.', 'transfers.')})", [])
        else:
            store.con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _etl_new n WHERE {key_sql})")
    finally:
        store.con.unregister("_etl_new")
    return store.append(table, data)


def _const(t: pa.Table, **cols: Any) -> pa.Table:
    for k, v in cols.items():
        typ = pa.int64() if isinstance(v, int) else pa.string()
        t = t.append_column(k, pa.array([v] * len(t), typ))
    return t


def _load(store: Store, kind: str, t: pa.Table, chain: str, run_id: int, derive_transfers: bool,
          path: Path) -> int:
    if kind == "tokens":
        t = _const(t.drop_columns(["source_line"]), chain=chain, status="ok", run_id=run_id)
        return _replace(store, "evm_tokens", t, "t.chain = n.chain AND t.address = n.address")
    if kind == "blocks":
        t = _const(_ts(t, "time"), chain=chain, height_source="etl", source=str(path), run_id=run_id)
        return _replace(store, "blocks", t, "t.chain = n.chain AND t.height = n.height")
    if kind == "transactions":
        t = _const(_ts(t, "block_time"), chain=chain, run_id=run_id)
        t = t.append_column("is_coinbase", pa.array([False] * len(t)))
        return _replace(store, "transactions", t, "t.chain = n.chain AND t.txid = n.txid")
    if kind == "receipts":
        return _apply_receipts(store, chain, t.drop_columns(["source_line"]))
    if kind == "logs":
        topics = [None if x is None else x.split(",") for x in t["topics_text"].to_pylist()]
        t = t.drop_columns(["topics_text"]).append_column("topics", pa.array(topics, pa.list_(pa.string())))
        t = _const(_ts(t, "block_time"), chain=chain, run_id=run_id)
        n = _replace(store, "logs", t, "t.chain = n.chain AND t.txid = n.txid AND t.log_index = n.log_index")
        if derive_transfers:
            _derive_token_transfers(store, chain, t, run_id)
        return n
    if kind == "token_transfers":
        t = _const(_ts(t, "time"), chain=chain, kind="erc20", run_id=run_id)
        t = _fill_from_blocks(store, chain, t)
        return _replace(store, "transfers", t, graph.transfer_key_match("t", "n"))
    raise AssertionError(kind)


def _fill_from_blocks(store: Store, chain: str, t: pa.Table) -> pa.Table:
    """Block time (and hash) for transfers whose export lacks them (CSV token_transfers), plus token metadata."""
    store.con.register("_etl_tt", t)
    try:
        return store.con.sql(
            """SELECT n.* EXCLUDE (time, block_hash, symbol, decimals),
                      coalesce(n.time, b.time) AS time, coalesce(n.block_hash, b.hash) AS block_hash,
                      k.symbol, k.decimals
               FROM (SELECT *, CAST(NULL AS VARCHAR) AS symbol, CAST(NULL AS INTEGER) AS decimals FROM _etl_tt) n
               LEFT JOIN blocks b ON b.chain = n.chain AND b.height = n.block_height
               LEFT JOIN evm_tokens k ON k.chain = n.chain AND k.address = n.asset""").to_arrow_table()
    finally:
        store.con.unregister("_etl_tt")


def _apply_receipts(store: Store, chain: str, r: pa.Table) -> int:
    """Receipt fields onto their transactions (set-based UPDATE), and the fee the sender paid."""
    store.con.register("_etl_rc", r)
    try:
        store.con.execute(
            """UPDATE transactions t SET cumulative_gas_used = r.cumulative_gas_used, gas_used = r.gas_used,
                      contract_address = r.contract_address, receipt_root = r.receipt_root, status = r.status,
                      effective_gas_price = coalesce(r.effective_gas_price, t.gas_price),
                      l1_fee = r.l1_fee, l1_gas_used = r.l1_gas_used, l1_gas_price = r.l1_gas_price,
                      l1_fee_scalar = r.l1_fee_scalar, has_receipt = true,
                      fee = r.gas_used * coalesce(r.effective_gas_price, t.gas_price) + coalesce(r.l1_fee, 0)
               FROM _etl_rc r WHERE t.chain = ? AND t.txid = r.txid""", [chain])
        missing = store.con.execute(
            "SELECT count(*) FROM _etl_rc r WHERE NOT EXISTS "
            "(SELECT 1 FROM transactions t WHERE t.chain = ? AND t.txid = r.txid)", [chain]).fetchall()[0][0]
    finally:
        store.con.unregister("_etl_rc")
    return len(r) - int(missing)


def _native_transfers(store: Store, chain: str, txids: pa.Table, run_id: int, native_asset: str) -> int:
    """Value transfers of (re)imported transactions that did not revert, derived in one query."""
    store.con.register("_etl_tx", txids)
    try:
        graph.delete_transfers(store, "chain = ? AND kind = 'native' AND txid IN (SELECT txid FROM _etl_tx)", [chain])
        rows = store.con.sql(
            f"""SELECT chain, '{native_asset}' AS asset, txid, CAST(0 AS BIGINT) AS idx, from_address,
                       coalesce(to_address, contract_address) AS to_address, value AS amount,
                       value_raw AS amount_raw, block_time AS time, block_height, block_hash,
                       'native' AS kind, '{native_asset}' AS symbol, 18 AS decimals, source_line,
                       {int(run_id)} AS run_id
                FROM transactions
                WHERE chain = $chain AND txid IN (SELECT DISTINCT txid FROM _etl_tx)
                  AND value_raw <> '0' AND coalesce(status, 1) <> 0""",
            params={"chain": chain}).to_arrow_table()
    finally:
        store.con.unregister("_etl_tx")
    return store.append("transfers", rows)


def _derive_token_transfers(store: Store, chain: str, logs: pa.Table, run_id: int) -> int:
    """ERC-20 transfers from imported logs (ethereum-etl's extract_token_transfers rule)."""
    topics = logs["topics"].to_pylist()
    data = logs["data"].to_pylist()
    keep, parsed = [], []
    for i, (tp, d) in enumerate(zip(topics, data, strict=True)):
        p = transfer_words(tp or [], d)
        if p is not None:
            keep.append(i)
            parsed.append(p)
    if not keep:
        return 0
    sel = logs.take(pa.array(keep, pa.int64()))
    t = pa.table({
        "chain": sel["chain"], "asset": sel["address"], "txid": sel["txid"], "idx": sel["log_index"],
        "from_address": pa.array([p[0] for p in parsed]), "to_address": pa.array([p[1] for p in parsed]),
        "amount": pa.array([p[2] if p[2] < 10**38 else None for p in parsed], pa.decimal128(38, 0)),
        "amount_raw": pa.array([str(p[2]) for p in parsed]), "time": sel["block_time"],
        "block_height": sel["block_height"], "block_hash": sel["block_hash"],
        "kind": pa.array(["erc20"] * len(sel)), "source_line": sel["source_line"], "run_id": sel["run_id"],
    })
    t = _fill_from_blocks(store, chain, t)
    return _replace(store, "transfers", t, graph.transfer_key_match("t", "n"))
