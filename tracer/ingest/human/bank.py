"""Bank transfers into ``transfers`` (chain ``fiat``): IBM AMLworld, IBM AMLSim, or any CSV through a
column mapping.

Formats (see docs/formats.md):

* **AMLworld** (Altman et al., "Realistic Synthetic Financial Transactions for Anti-Money Laundering
  Models", NeurIPS 2023 Datasets track): header ``Timestamp,From Bank,Account,To Bank,Account,Amount
  Received,Receiving Currency,Amount Paid,Payment Currency,Payment Format,Is Laundering`` — two columns
  are both named ``Account`` (sender's, then receiver's), so columns are taken by position, never by
  name. Timestamps ``YYYY/MM/DD HH:MM``; currencies by English name ("US Dollar", "Bitcoin").
* **AMLSim** (IBM/AMLSim, ``schema.json`` "transaction"): ``tran_id, orig_acct, bene_acct, tx_type,
  base_amt, tran_timestamp, is_sar, alert_id``; the bank and currency of an account come from its
  ``accounts.csv`` (``acct_id, bank_id, acct_rptng_crncy``) when given.
* **Mapped CSV**: a YAML mapping (or ``--map key=column`` flags) names the column of each field.

Amounts are exact integers in the currency's base unit: cents for every fiat currency (AMLworld writes
two decimals for all of them, Yen included), satoshi for Bitcoin. A value with more decimals than that
unit holds is refused, never rounded. Ground truth (``Is Laundering``, ``is_sar``, ``alert_id``) is kept
for scoring detectors.

The file is read in 64 MB chunks of whole lines (the first 8 MB). A chunk is checked for broken UTF-8
with one decode (lines are located with numpy only when something is wrong), parsed by pyarrow (a line
with the wrong number of fields is found by counting commas with numpy), its amounts' shape computed
with Arrow kernels (all of this in a worker thread, one chunk ahead of the writer), then validated and
inserted by one DuckDB statement over the Arrow batch, in its own transaction with a checkpoint ("byte N line L"), so a crash
leaves whole chunks and the next run resumes after the last one. Refused rows go to ``quarantine`` with
file, line and reason.

A row is identified by what it says, never by the name of its file (docs/formats.md, "Reruns and
collisions"). Without an id of its own (AMLworld) its ``txid`` is the md5 of its normalised content
(:data:`CONTENT_FIELDS`) and ``idx`` its occurrence in the file (0; 1 for the second identical row, …),
numbered across chunks with numpy (:class:`Occurrences`); with one (AMLSim ``tran_id``, a mapped
``txid`` column) ``txid`` is ``<dataset>:<id>`` and ``idx`` 0. A key already stored with the same
content and ground truth is "already stored"; with anything else different it is quarantined naming
the stored row's file and line. The insert anti-joins on (chain, txid, idx) unless the store holds no
fiat rows yet (content keys are unique within a file by construction), so re-running adds nothing. That is
stricter than the transfers key (chain, txid, kind, idx): a fiat row's kind is its payment format, part of
what it says, so a second row under a stored id with another format is a collision, not a new transfer.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from tracer.errors import IngestError
from tracer.ingest.csvread import Refused, csv_records, quarantine_many, read_lines, settle, source_name
from tracer.store import Store, graph
from tracer.store.store import utcnow

AMLWORLD_HEADER = ["Timestamp", "From Bank", "Account", "To Bank", "Account", "Amount Received",
                   "Receiving Currency", "Amount Paid", "Payment Currency", "Payment Format", "Is Laundering"]
AMLSIM_COLUMNS = ["tran_id", "orig_acct", "bene_acct", "tx_type", "base_amt", "tran_timestamp", "is_sar",
                  "alert_id"]

#: AMLworld currency names -> (code, decimals of the stored base unit). Fiat in cents; Bitcoin in sat.
CURRENCY_NAMES: dict[str, tuple[str, int]] = {
    "US Dollar": ("USD", 2), "Euro": ("EUR", 2), "Yuan": ("CNY", 2), "Yen": ("JPY", 2),
    "UK Pound": ("GBP", 2), "Rupee": ("INR", 2), "Ruble": ("RUB", 2), "Swiss Franc": ("CHF", 2),
    "Australian Dollar": ("AUD", 2), "Canadian Dollar": ("CAD", 2), "Mexican Peso": ("MXN", 2),
    "Brazil Real": ("BRL", 2), "Shekel": ("ILS", 2), "Saudi Riyal": ("SAR", 2), "Bitcoin": ("BTC", 8),
}
#: ISO 4217 codes accepted as given (stored in cents), plus crypto tickers a bank export may carry.
ISO_CODES = ["AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL"]
CRYPTO_DECIMALS = {"BTC": 8, "XBT": 8, "ETH": 18, "USDT": 6, "USDC": 6, "LTC": 8, "BCH": 8}

#: what a transfer is, as the content hash of a row without an id of its own sees it (docs/formats.md)
CONTENT_FIELDS = ("time", "from_address", "to_address", "amount", "symbol", "amount_received", "received_symbol",
                  "payment_format")
CONTENT_SQL = ("ts", "from_address", "to_address", "paid_units", "cur_code", "recv_units", "rcur_code",
               "payment_format")
#: what else a row says about it (ground truth): under one key, these must agree too
LABEL_FIELDS = ("is_laundering", "alert_id")

CHUNK_BYTES = 64 << 20
FIRST_CHUNK_BYTES = 8 << 20
T = TypeVar("T")
U = TypeVar("U")
MAP_FIELDS = ("time", "time_format", "from_bank", "from_account", "to_bank", "to_account", "amount",
              "currency", "amount_received", "received_currency", "payment_format", "txid",
              "is_laundering", "alert_id", "default_currency", "from_bank_value", "to_bank_value")


@dataclass
class ColumnMap:
    """Which column holds which field. Values are column names, or ``#<index>`` for a position
    (AMLworld needs positions: two columns share the name ``Account``). ``*_value`` and
    ``default_currency`` are constants used when the file has no such column."""

    time: str
    from_account: str
    to_account: str
    amount: str
    time_format: str = "%Y-%m-%d %H:%M:%S"
    from_bank: str | None = None
    to_bank: str | None = None
    currency: str | None = None
    amount_received: str | None = None
    received_currency: str | None = None
    payment_format: str | None = None
    txid: str | None = None
    is_laundering: str | None = None
    alert_id: str | None = None
    default_currency: str | None = None
    from_bank_value: str | None = None
    to_bank_value: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "mapping") -> ColumnMap:
        unknown = set(data) - set(MAP_FIELDS)
        if unknown:
            raise IngestError(source, "mapping", f"unknown mapping keys {sorted(unknown)}; known: {MAP_FIELDS}")
        missing = {"time", "from_account", "to_account", "amount"} - set(data)
        if missing:
            raise IngestError(source, "mapping", f"the mapping lacks {sorted(missing)}")
        if "currency" not in data and "default_currency" not in data:
            raise IngestError(source, "mapping", "the mapping needs a currency column or default_currency")
        return cls(**{k: (None if v is None else str(v)) for k, v in data.items()})

    @classmethod
    def from_yaml(cls, path: str | Path) -> ColumnMap:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise IngestError(str(path), "mapping", f"cannot read the column mapping: {exc}") from None
        if not isinstance(data, dict):
            raise IngestError(str(path), "mapping", "a column mapping is a YAML mapping of field: column")
        return cls.from_dict(data, str(path))


AMLWORLD_MAP = ColumnMap(
    time="#0", time_format="%Y/%m/%d %H:%M", from_bank="#1", from_account="#2", to_bank="#3",
    to_account="#4", amount_received="#5", received_currency="#6", amount="#7", currency="#8",
    payment_format="#9", is_laundering="#10",
)
AMLSIM_MAP = ColumnMap(
    time="tran_timestamp", time_format="%Y-%m-%dT%H:%M:%SZ", from_account="orig_acct",
    to_account="bene_acct", amount="base_amt", payment_format="tx_type", txid="tran_id",
    is_laundering="is_sar", alert_id="alert_id", default_currency="USD",
)


def detect_format(header: list[str]) -> str:
    if [h.strip() for h in header] == AMLWORLD_HEADER:
        return "amlworld"
    if set(AMLSIM_COLUMNS) <= {h.strip() for h in header}:
        return "amlsim"
    return "mapped"


def _currency_table() -> pa.Table:
    names, codes, decimals = [], [], []
    for name, (code, dec) in CURRENCY_NAMES.items():
        names.append(name.lower())
        codes.append(code)
        decimals.append(dec)
    for code in ISO_CODES:
        names.append(code.lower())
        codes.append(code)
        decimals.append(2)
    for code, dec in CRYPTO_DECIMALS.items():
        names.append(code.lower())
        codes.append("BTC" if code == "XBT" else code)
        decimals.append(dec)
    return pa.table({"cur_key": names, "cur_code": codes, "cur_dec": pa.array(decimals, pa.int32()),
                     "cur_scale": pa.array([10 ** d for d in decimals], pa.int64())})


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _column_index(spec: str, header: list[str], source: str) -> int:
    if spec.startswith("#"):
        index = int(spec[1:])
        if not 0 <= index < len(header):
            raise IngestError(source, "line 1", f"column {spec} does not exist (header has {len(header)})")
        return index
    names = [h.strip() for h in header]
    if names.count(spec) > 1:
        raise IngestError(source, "line 1", f"column name {spec!r} occurs twice; map it by position (#n)")
    if spec not in names:
        raise IngestError(source, "line 1", f"no column {spec!r} in the header {names}")
    return names.index(spec)


def _parse_chunk(data: bytes, lines_text: str, numbers: np.ndarray, ncols: int, refused: Refused) -> pa.Table:
    """Fields of every good line as string columns c0..c{n-1}, plus its line number.

    Without quotes, pyarrow parses the bytes; a line with the wrong number of fields is found by
    counting commas per line with numpy (only when pyarrow reports one), so every row keeps its line.
    """
    names = [f"c{i}" for i in range(ncols)]

    def parse(buf: bytes, on_invalid) -> pa.Table:
        return pacsv.read_csv(
            io.BytesIO(buf),
            read_options=pacsv.ReadOptions(column_names=names, block_size=4 << 20),
            parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )

    if b'"' not in data:
        if not data:
            return pa.table({**{n: pa.array([], pa.string()) for n in names}, "line": pa.array([], pa.int64())})
        invalid = []

        def note(row) -> str:
            invalid.append(row)
            return "skip"

        table = parse(data, note)
        if not invalid and len(table) == len(numbers):
            return table.append_column("line", pa.array(numbers, pa.int64()))
        buf = data
        arr = np.frombuffer(buf, dtype=np.uint8)
        newlines = np.flatnonzero(arr == 10)
        if buf[-1:] != b"\n":
            newlines = np.append(newlines, len(buf))
        commas = np.flatnonzero(arr == 44)
        per_line = np.bincount(np.searchsorted(newlines, commas), minlength=len(newlines))[:len(newlines)]
        wrong = np.flatnonzero(per_line != ncols - 1)
        starts = np.concatenate(([0], newlines[:-1] + 1))
        keep = np.ones(len(newlines), dtype=bool)
        for i in wrong.tolist():
            keep[i] = False
            raw = buf[starts[i]:newlines[i]].decode("utf-8").rstrip("\r")
            refused.add(f"line {int(numbers[i])}", raw,
                        f"wrong number of fields: {int(per_line[i]) + 1}, expected {ncols}")
        buf = b"".join(buf[s:e + 1] for s, e in zip(starts[keep], newlines[keep], strict=True))
        numbers = numbers[keep]
        if not buf:
            return pa.table({**{n: pa.array([], pa.string()) for n in names}, "line": pa.array([], pa.int64())})
        table = parse(buf, None)
        if len(table) != len(numbers):
            raise IngestError("csv", "chunk", f"parsed {len(table)} rows from {len(numbers)} lines")
        return table.append_column("line", pa.array(numbers, pa.int64()))
    # quoted fields may hold commas and newlines: the standard library keeps line numbers right
    cols: list[list[str]] = [[] for _ in range(ncols)]
    line_of: list[int] = []
    physical = numbers.tolist()
    for k, fields in csv_records(lines_text):
        number = physical[k - 1] if k - 1 < len(physical) else k
        if len(fields) != ncols:
            refused.add(f"line {number}", ",".join(fields), f"wrong number of fields: {len(fields)}, expected {ncols}")
            continue
        for i, value in enumerate(fields):
            cols[i].append(value)
        line_of.append(number)
    return pa.table({**{n: pa.array(c, pa.string()) for n, c in zip(names, cols)},
                     "line": pa.array(line_of, pa.int64())})


def _amount_sql(text: str, scale: str, dec: str, prefix: str, shape: str) -> str:
    """Split decimal text into integer part and fraction and name what is wrong with it, if anything
    (sign, not a number, more decimals than the unit, too large). :func:`_units_sql` then computes
    exact base units in BIGINT arithmetic (no float, no 38-digit decimals).

    ``shape`` names the columns :func:`_amount_shape` computed in Arrow: ``w_`` is true only for text
    of the form ``[0-9]+(\\.[0-9]*)?`` (so the sign and number tests below cannot fire), ``il_`` and
    ``fl_`` are its integer and fraction lengths. Such rows (all of them in a clean file) take the short
    branch; any other text goes through the full tests, which give the same answers for every input.
    """
    return f"""
         {text} AS {prefix}_text,
         CASE WHEN w_{shape} THEN CASE WHEN {dec} IS NULL THEN NULL
                                       WHEN fl_{shape} > {dec} THEN 'amount finer than the currency unit'
                                       WHEN il_{shape} > 18 - {dec} THEN 'amount too large' END
              WHEN {text} IS NULL OR {text} = '' THEN NULL
              WHEN starts_with({text}, '-') AND TRY_CAST(substr({text}, 2) AS DOUBLE) IS NOT NULL THEN 'negative amount'
              WHEN NOT regexp_full_match({text}, '[0-9]+(\\.[0-9]*)?') THEN 'amount is not a number'
              WHEN {dec} IS NULL THEN NULL
              WHEN length(split_part({text}, '.', 2)) > {dec} THEN 'amount finer than the currency unit'
              WHEN length(split_part({text}, '.', 1)) > 18 - {dec} THEN 'amount too large'
         END AS {prefix}_problem,
         w_{shape} AS {prefix}_w, fl_{shape} AS {prefix}_fl, dg_{shape} AS {prefix}_dg"""


def _units_sql(prefix: str, scale: str, dec: str) -> str:
    """Exact base units of a good amount: its digits times 10^(decimals - fraction length) when Arrow
    read them (any text of the plain form: at most 18 digits once checked), else from the split text."""
    return (f"CASE WHEN reason_kind IS NULL AND {prefix}_w AND {dec} IS NOT NULL "
            f"THEN {prefix}_dg * CAST(10 ** ({dec} - {prefix}_fl) AS BIGINT) "
            f"WHEN reason_kind IS NULL AND {prefix}_text <> '' AND {dec} IS NOT NULL "
            f"THEN CAST(split_part({prefix}_text, '.', 1) AS BIGINT) * {scale} "
            f"+ coalesce(TRY_CAST(rpad(split_part({prefix}_text, '.', 2), {dec}, '0') AS BIGINT), 0) END")


#: the plain decimal form of an amount (the only form the short path in :func:`_amount_sql` takes)
PLAIN_AMOUNT = r"^[0-9]+(\.[0-9]*)?$"


def _amount_shape(column: pa.ChunkedArray, name: str) -> dict[str, pa.ChunkedArray]:
    """Arrow columns describing an amount's text: plain form (``w_``), integer and fraction lengths
    (``il_``, ``fl_``) and its digits as an integer where they fit 18 digits (``dg_``).

    Each is one vectorised Arrow kernel, so DuckDB does not repeat the regular expression and the
    splits for every place the validation refers to them. A column the file lacks, or text that is
    trimmed in SQL first (mapped files), gets a constant false ``w_`` instead, sending every row
    through the full tests.
    """
    length = pc.binary_length(column)
    dot = pc.find_substring(column, ".")
    has_dot = pc.greater_equal(dot, 0)
    int_len = pc.if_else(has_dot, dot, length)
    frac_len = pc.if_else(has_dot, pc.subtract(pc.subtract(length, dot), 1), 0)
    # PLAIN_AMOUNT without a regular expression: the text less its first '.' is all ASCII digits
    # (false for "", and for any second '.', sign, space or non-ASCII byte) and a digit comes first
    joined = pc.replace_substring(column, ".", "", max_replacements=1)
    plain = pc.and_(pc.ascii_is_decimal(joined), pc.greater(int_len, 0))
    fits = pc.and_(plain, pc.less_equal(pc.add(int_len, frac_len), 18))
    digits = pc.cast(pc.if_else(fits, joined, pa.scalar(None, pa.string())), pa.int64())
    return {f"w_{name}": plain, f"il_{name}": int_len, f"fl_{name}": frac_len, f"dg_{name}": digits}


def _validation_sql(view: str, idx: dict[str, int | None], cmap: ColumnMap, dataset: str,
                    run_id: int, accounts: bool, trim: bool, shaped: bool = False) -> str:
    """One pass over the parsed strings: typed transfer columns plus ``reason_kind`` (NULL = good).

    Each source column is read (and, for mapped files, trimmed) once in ``b``; everything after refers
    to those names, so DuckDB evaluates each string function once per row.
    """
    fields = ("time", "from_bank", "from_account", "to_bank", "to_account", "amount", "currency",
              "amount_received", "received_currency", "payment_format", "txid", "is_laundering", "alert_id")

    def shape(field: str) -> str:
        if shaped and idx.get(field) is not None:
            return f"r.w_{field} AS w_{field}, r.il_{field} AS il_{field}, r.fl_{field} AS fl_{field}, r.dg_{field} AS dg_{field}"
        return (f"false AS w_{field}, NULL::BIGINT AS il_{field}, NULL::BIGINT AS fl_{field}, "
                f"NULL::BIGINT AS dg_{field}")

    def src(field: str) -> str:
        i = idx.get(field)
        if i is None:
            return "NULL::VARCHAR"
        return f"trim(r.c{i})" if trim else f"r.c{i}"

    base = ", ".join(f"{src(f)} AS f_{f}" for f in fields) + ", " + shape("amount") + ", " + shape("amount_received")
    formats = cmap.time_format.split("|")
    time_fmt = _sql_str(formats[0]) if len(formats) == 1 else "[" + ", ".join(map(_sql_str, formats)) + "]"
    currency = "f_currency" if idx.get("currency") is not None else _sql_str(cmap.default_currency or "")
    if accounts:
        from_bank = f"coalesce(f_from_bank, acc_from.bank_id, {_sql_str(cmap.from_bank_value or 'amlsim')})"
        to_bank = f"coalesce(f_to_bank, acc_to.bank_id, {_sql_str(cmap.to_bank_value or 'amlsim')})"
        currency = f"coalesce(acc_from.currency, {currency})"
        joins = ("LEFT JOIN _accounts acc_from ON acc_from.acct_id = b.f_from_account "
                 "LEFT JOIN _accounts acc_to ON acc_to.acct_id = b.f_to_account")
    else:
        from_bank = "f_from_bank" if idx.get("from_bank") is not None else _sql_str(cmap.from_bank_value or "bank")
        to_bank = "f_to_bank" if idx.get("to_bank") is not None else _sql_str(cmap.to_bank_value or "bank")
        joins = ""
    own_ids = idx.get("txid") is not None
    txid = f"{_sql_str(dataset + ':')} || f_txid" if own_ids else "NULL::VARCHAR"
    # A transfer without an id of its own is identified by what it is: the md5 of its normalised
    # content (CONTENT_FIELDS, NULL as '', joined by U+001F), never by the file it came in.
    content = ", ".join(f"coalesce(CAST({c} AS VARCHAR), '')" for c in CONTENT_SQL)
    key = "txid" if own_ids else f"md5(concat_ws(chr(31), {content}))"
    return f"""
WITH b AS (
  SELECT r.line, {base} FROM {view} r
), v AS (
  SELECT b.line,
         try_strptime(f_time, {time_fmt}) AS ts, f_time AS ts_text,
         {from_bank} AS from_bank, f_from_account AS from_account,
         {to_bank} AS to_bank, f_to_account AS to_account,
         {currency} AS cur_text, cp.cur_code, cp.cur_dec, cp.cur_scale,
         f_received_currency AS rcur_text, cr.cur_code AS rcur_code, cr.cur_dec AS rcur_dec,
         cr.cur_scale AS rcur_scale,
         f_payment_format AS payment_format, f_is_laundering AS flag_text,
         CASE lower(f_is_laundering) WHEN '1' THEN true WHEN 'true' THEN true WHEN '0' THEN false
              WHEN 'false' THEN false WHEN '' THEN NULL END AS flag,
         NULLIF(NULLIF(f_alert_id, ''), '-1') AS alert_id, {txid} AS txid,
         {_amount_sql('f_amount', 'cp.cur_scale', 'cp.cur_dec', 'paid', 'amount')},
         {_amount_sql('f_amount_received', 'cr.cur_scale', 'cr.cur_dec', 'recv', 'amount_received')}
  FROM b
  {joins}
  LEFT JOIN _currencies cp ON cp.cur_key = lower({currency})
  LEFT JOIN _currencies cr ON cr.cur_key = lower(f_received_currency)
), checked AS (
  SELECT *,
    CASE
      WHEN ts IS NULL THEN 'bad date'
      WHEN coalesce(from_account, '') = '' OR coalesce(to_account, '') = '' THEN 'missing account'
      WHEN coalesce(paid_text, '') = '' THEN 'amount is not a number'
      WHEN paid_problem IS NOT NULL AND paid_problem <> 'amount finer than the currency unit'
           AND paid_problem <> 'amount too large' THEN paid_problem
      WHEN cur_code IS NULL THEN 'unknown currency'
      WHEN paid_problem IS NOT NULL THEN paid_problem
      WHEN recv_problem IS NOT NULL AND recv_problem <> 'amount finer than the currency unit'
           AND recv_problem <> 'amount too large' THEN recv_problem
      WHEN rcur_text IS NOT NULL AND rcur_text <> '' AND rcur_code IS NULL THEN 'unknown currency'
      WHEN recv_problem IS NOT NULL THEN recv_problem
      WHEN flag_text IS NOT NULL AND flag_text <> '' AND flag IS NULL THEN 'bad ground-truth flag'
      WHEN txid = {_sql_str(dataset + ':')} THEN 'missing transfer id'
    END AS reason_kind
  FROM v
)
, units AS (
  SELECT *, {_units_sql('paid', 'cur_scale', 'cur_dec')} AS paid_units,
         {_units_sql('recv', 'rcur_scale', 'rcur_dec')} AS recv_units,
         from_bank || ':' || from_account AS from_address, to_bank || ':' || to_account AS to_address
  FROM checked
), keyed AS (
  SELECT *, {key} AS key_txid FROM units
)
SELECT 'fiat' AS chain, cur_text AS asset, key_txid AS txid, 0::BIGINT AS idx, from_address, to_address,
       CAST(paid_units AS DECIMAL(38,0)) AS amount, CAST(paid_units AS VARCHAR) AS amount_raw,
       ts AS time, lower(payment_format) AS kind, cur_code AS symbol, cur_dec AS decimals,
       payment_format, flag AS is_laundering, alert_id, line AS source_line, {int(run_id)}::BIGINT AS run_id,
       CAST(recv_units AS DECIMAL(38,0)) AS amount_received,
       rcur_text AS received_asset, rcur_code AS received_symbol, rcur_dec AS received_decimals,
       hash(key_txid) AS row_key,
       reason_kind,
       CASE reason_kind WHEN 'bad date' THEN ts_text
            WHEN 'unknown currency' THEN coalesce(cur_text, '') || ' / ' || coalesce(rcur_text, '')
            WHEN 'bad ground-truth flag' THEN flag_text
            WHEN 'missing account' THEN NULL
            WHEN 'missing transfer id' THEN NULL
            ELSE coalesce(paid_text, '') || ' / ' || coalesce(recv_text, '') END AS reason_detail
FROM keyed
"""


def _load_accounts(store: Store, path: Path) -> None:
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"acct_id": pa.string(), "bank_id": pa.string(), "acct_rptng_crncy": pa.string()}))
    if "acct_id" not in table.column_names:
        raise IngestError(str(path), "line 1", "an AMLSim accounts file has an acct_id column")
    n = len(table)
    data = pa.table({
        "acct_id": table["acct_id"],
        "bank_id": table["bank_id"] if "bank_id" in table.column_names else pa.nulls(n, pa.string()),
        "currency": table["acct_rptng_crncy"] if "acct_rptng_crncy" in table.column_names
        else pa.nulls(n, pa.string()),
    })
    store.con.register("_accounts", data)


def _chunks(path: Path, size: int, start: int, first_line: int, chunk_bytes: int,
            ncols: int) -> Iterator[tuple[int, int, pa.Table, Refused]]:
    """Whole-line chunks of the file from byte ``start``, parsed: (offset after, next line, rows, refused)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        offset, line_no = start, first_line
        # the first chunk is small, so the second is being parsed while the first is written
        size_now = min(chunk_bytes, FIRST_CHUNK_BYTES)
        while offset < size:
            chunk = fh.read(size_now)
            size_now = chunk_bytes
            if not chunk:
                break
            if b'"' in chunk and offset + len(chunk) < size:
                # a quoted field may hold a newline, so a cut at the last newline could split a record:
                # files with quotes (mapped exports, not the bulk AML formats) are read whole
                chunk += fh.read()
            if offset + len(chunk) < size:
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    chunk += fh.readline()
                else:
                    fh.seek(offset + cut + 1)
                    chunk = chunk[:cut + 1]
            newlines = chunk.count(b"\n")
            n_lines = newlines + (0 if chunk.endswith(b"\n") else 1)
            # CRLF files: the CR is not part of the last field (the count of newlines stays)
            text = chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
            lines = read_lines(text, first_line=line_no, newlines=newlines)
            table = _parse_chunk(lines.data, lines.text, lines.numbers, ncols, lines.refused)
            offset += len(chunk)
            line_no += n_lines
            yield offset, line_no, table, lines.refused


def _prefetched(items: Iterator[T], prepare: Callable[[T], U]) -> Iterator[U]:
    """``prepare(item)`` for each item, the next one read and prepared in a worker thread while the
    caller stores the current one.

    Reading, UTF-8 checks, the pyarrow parse and the Arrow amount kernels release the GIL, as does
    DuckDB's insert, so on a two-core machine the file is parsed while the previous chunk is written
    (measured: DuckDB alone keeps about 1.5 of 2 cores busy). At most two chunks are in memory. Items
    come out in order, and an error while reading is raised where the sequential loop would raise it.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bank-read") as pool:
        def step() -> tuple[bool, U | None]:
            for item in items:
                return True, prepare(item)
            return False, None

        pending: Future[tuple[bool, U | None]] = pool.submit(step)
        try:
            while True:
                more, value = pending.result()
                if not more:
                    return
                pending = pool.submit(step)
                yield value  # type: ignore[misc]
        finally:
            pending.cancel()
            with contextlib.suppress(BaseException):
                pending.result()
            close = getattr(items, "close", None)
            if close is not None:
                close()


def ingest_bank(store: Store, path: str | Path, *, fmt: str | None = None, mapping: ColumnMap | None = None,
                dataset: str | None = None, accounts: str | Path | None = None,
                chunk_bytes: int = CHUNK_BYTES,
                progress: Callable[[int, int, int], None] | None = None) -> dict[str, Any]:
    """Load a bank-transfer CSV into ``transfers`` (chain 'fiat'); return the run summary.

    ``fmt`` is 'amlworld', 'amlsim' or 'mapped' (detected from the header when omitted); ``mapping``
    is required for 'mapped'. ``dataset`` is the namespace of the source's own ids (default: the format,
    ``amlsim`` or ``mapped``): give two simulations, or two banks whose references may overlap, a name
    each; their rows otherwise collide and are quarantined. Content-keyed rows (AMLworld) need none.
    ``progress(bytes_done, bytes_total, rows_read)`` is called after every committed chunk.
    """
    path = Path(path)
    source = source_name(path)
    if not path.is_file():
        raise IngestError(source, "path", "no such file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        first = fh.readline()
        header_end = len(first)
        if not first.strip():
            raise IngestError(source, "line 1", "empty file: no header")
        try:
            header = next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]))
        except (UnicodeDecodeError, StopIteration):
            raise IngestError(source, "line 1", "the header is not UTF-8 CSV") from None
    fmt = fmt or detect_format(header)
    dataset = dataset or fmt
    if fmt == "amlworld":
        if [h.strip() for h in header] != AMLWORLD_HEADER:
            raise IngestError(source, "line 1", f"not the AMLworld header: {header}")
        cmap = AMLWORLD_MAP
    elif fmt == "amlsim":
        cmap = mapping or AMLSIM_MAP
    elif fmt == "mapped":
        if mapping is None:
            raise IngestError(source, "line 1", "unknown CSV layout: give a column mapping (--mapping FILE or --map)")
        cmap = mapping
    else:
        raise IngestError(source, "format", f"unknown bank format {fmt!r} (amlworld, amlsim, mapped)")
    idx: dict[str, int | None] = {"_ncols": len(header)}
    for field in ("time", "from_bank", "from_account", "to_bank", "to_account", "amount", "currency",
                  "amount_received", "received_currency", "payment_format", "txid", "is_laundering", "alert_id"):
        spec = getattr(cmap, field)
        idx[field] = None if spec is None else _column_index(spec, header, source)

    fingerprint = _fingerprint(path, size)
    run = store.begin_run("bank", source, {"format": fmt, "dataset": dataset, "mapping": asdict(cmap),
                                           "accounts": str(accounts) if accounts else None,
                                           "file": fingerprint})
    store.claim_chain("fiat", "fiat", "fiat", None, run.run_id)
    settle(store)
    store.con.register("_currencies", _currency_table())
    if accounts:
        _load_accounts(store, Path(accounts))
    unit = f"{fingerprint}:{size}"
    mark = store.con.execute("SELECT position, done FROM checkpoints WHERE source = 'bank' AND unit = ?",
                             [unit]).fetchall()
    done = bool(mark and mark[0][1])
    resume_at, resume_line = header_end, 2
    if mark and not done:  # an earlier run stopped part-way: continue after its last committed chunk
        m = re.fullmatch(r"byte (\d+) line (\d+)", mark[0][0] or "")
        if m:
            resume_at, resume_line = int(m.group(1)), int(m.group(2))
    resuming = resume_at != header_end
    own_ids = idx["txid"] is not None
    # Rows without an id of their own are unique within the file by construction (content hash and
    # occurrence), so a store without fiat rows needs no anti-join against what this run wrote.
    empty_store = not resuming and not store.con.execute(
        "SELECT count(*) FROM (SELECT 1 FROM transfers WHERE chain = 'fiat' LIMIT 1)").fetchall()[0][0]
    reasons: Counter[str] = Counter()
    shaped = fmt != "mapped"  # mapped fields are trimmed in SQL, so their text is not what Arrow holds
    offset, line_no = resume_at, resume_line
    read = loaded = 0
    occurrences = Occurrences()
    try:
        # one committed batch per chunk
        def shape(item: tuple[int, int, pa.Table, Refused]) -> tuple[int, int, pa.Table, pa.Table, Refused]:
            offset_after, line_after, table, refused = item
            rows = table
            if shaped:
                for field in ("amount", "amount_received"):
                    if idx[field] is not None:
                        for name, col in _amount_shape(table[f"c{idx[field]}"], field).items():
                            rows = rows.append_column(name, col)
            return offset_after, line_after, table, rows, refused

        # A resumed file is read from its start: the rows before the checkpoint are only numbered (an
        # identical row after it is their next occurrence), nothing of them is written again.
        for offset_after, line_after, table, rows, refused in _prefetched(
                _chunks(path, size, header_end, 2, chunk_bytes, len(header)), shape):
            new_rows = f" AND v.source_line >= {resume_line}" if resuming else ""
            if resuming:
                refused.rows[:] = [r for r in refused.rows if int(r[0].split()[1]) >= resume_line]
                fresh_count = int(np.count_nonzero(table["line"].to_numpy() >= resume_line))
            else:
                fresh_count = len(table)
            read += fresh_count + len(refused)
            with store.transaction():
                settle(store)
                store.con.register("_rows", rows)
                checks = _validation_sql("_rows", idx, cmap, dataset, run.run_id, bool(accounts),
                                         trim=fmt == "mapped", shaped=shaped)
                store.con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {checks}")
                store.con.unregister("_rows")
                good = store.con.execute(
                    "SELECT source_line, row_key FROM _checked WHERE reason_kind IS NULL").fetchnumpy()
                occ = occurrences.number(good["source_line"], good["row_key"])
                repeated = np.flatnonzero(occ > 0)
                occ_join, occ_expr = "", "0"
                if len(repeated):
                    store.con.register("_occ", pa.table({"line": good["source_line"][repeated],
                                                         "occ": occ[repeated]}))
                    occ_join, occ_expr = " LEFT JOIN _occ o ON o.line = v.source_line", "coalesce(o.occ, 0)"
                # An identical row later in the file is the next occurrence of its content (idx 1, 2,
                # …); a row repeating an id of the source's own is not a new transfer: it is compared
                # with the first, below.
                idx_expr = "0" if own_ids else occ_expr
                repeat = f" AND {occ_expr} = 0" if own_ids and len(repeated) else ""
                fresh = "" if empty_store and not own_ids else (
                    " AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.chain = 'fiat' "
                    f"AND t.txid = v.txid AND t.idx = {idx_expr})")
                inserted = store.con.execute(
                    "INSERT INTO transfers BY NAME SELECT v.* EXCLUDE (reason_kind, reason_detail, row_key) "
                    f"REPLACE ({idx_expr} AS idx) FROM _checked v{occ_join} "
                    f"WHERE v.reason_kind IS NULL{repeat}{fresh}{new_rows}").fetchall()[0][0]
                graph.link_transfers(store)
                loaded += inserted
                if inserted < fresh_count:
                    bad = store.con.sql("SELECT source_line AS idx, reason_kind, reason_detail FROM _checked v "
                                        f"WHERE reason_kind IS NOT NULL{new_rows} ORDER BY idx").to_arrow_table()
                    where = pc.index_in(bad["idx"], value_set=table["line"]).to_pylist()
                    for k, line, kind, detail in zip(where, bad["idx"].to_pylist(), bad["reason_kind"].to_pylist(),
                                                     bad["reason_detail"].to_pylist(), strict=True):
                        raw = ",".join(table[f"c{i}"][k].as_py() for i in range(len(header)))
                        refused.add(f"line {line}", raw, f"{kind}: {detail!r}" if detail is not None else kind)
                    for line, txid, target, stored_line, fields in _collisions(store, run.run_id, occ_join,
                                                                                idx_expr, new_rows):
                        k = pc.index(table["line"], line).as_py()
                        raw = ",".join(table[f"c{i}"][k].as_py() for i in range(len(header)))
                        what = f"transfer id {txid}" if own_ids else "the same transfer"
                        refused.add(f"line {line}", raw, f"{what} already stored from {target} line {stored_line} "
                                                         f"with different content ({fields})")
                if len(repeated):
                    store.con.unregister("_occ")
                store.con.execute("DROP TABLE _checked")
                for _, _, reason in refused.rows:
                    reasons[reason.split(":")[0] if " already stored from " not in reason
                            else "already stored with different content"] += 1
                # recorded on a cursor of its own: kept even if this batch is rolled back
                quarantine_many(store, run, source, refused)
                if offset_after > resume_at:
                    offset, line_no = offset_after, line_after
                    store.con.execute("DELETE FROM checkpoints WHERE source = 'bank' AND unit = ?", [unit])
                    store.con.execute("INSERT INTO checkpoints VALUES ('bank', ?, ?, ?, ?, ?)",
                                      [unit, f"byte {offset} line {line_no}", offset >= size, run.run_id,
                                       utcnow()])
            if progress:
                progress(offset_after, size, read)
    except IngestError as exc:
        run.fail(exc)
        raise
    except (OSError, pa.ArrowInvalid, duckdb.ConversionException) as exc:
        run.fail(exc)
        raise IngestError(source, f"byte {offset}", str(exc)) from None
    finally:
        for name in ("_currencies", "_accounts", "_rows", "_occ"):
            with contextlib.suppress(duckdb.Error):
                store.con.unregister(name)
    quarantined = sum(reasons.values())
    run.add(read=read, transfers=loaded)
    run.counts.update({f"quarantined: {k}": v for k, v in reasons.items()})
    run.finish()
    return {"run_id": run.run_id, "format": fmt, "read": read, "loaded": loaded, "quarantined": quarantined,
            "already_stored": read - loaded - quarantined, "reasons": dict(reasons),
            "previously_completed": done, "resumed_at_line": resume_line if resuming else None}


def _collisions(store: Store, run_id: int, occ_join: str, idx_expr: str, new_rows: str) -> list[tuple]:
    """Rows of ``_checked`` whose key is stored (by another file, line or run) with other content:
    (line, txid, the stored row's file, its line, the columns that differ)."""
    differs = ", ".join(f"CASE WHEN t.{c} IS DISTINCT FROM v.{c} THEN '{c}' END"
                        for c in CONTENT_FIELDS + LABEL_FIELDS)
    return store.con.execute(f"""
        SELECT line, txid, target, stored_line, differs FROM (
          SELECT v.source_line AS line, v.txid, coalesce(r.target, 'run ' || t.run_id) AS target,
                 t.source_line AS stored_line, concat_ws(', ', {differs}) AS differs,
                 row_number() OVER (PARTITION BY v.source_line ORDER BY t.run_id, t.source_line) AS pick
          FROM _checked v{occ_join}
          JOIN transfers t ON t.chain = 'fiat' AND t.txid = v.txid AND t.idx = {idx_expr}
          LEFT JOIN ingest_runs r ON r.run_id = t.run_id
          WHERE v.reason_kind IS NULL{new_rows} AND NOT (t.run_id = {int(run_id)} AND t.source_line = v.source_line)
        ) WHERE pick = 1 AND differs <> '' ORDER BY line""").fetchall()


def _fingerprint(path: Path, size: int) -> str:
    """The file's identity for resuming: md5 of its first and last MB (not its name: two files of one
    name in two folders are two files; one file moved is still the same one)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(size - (1 << 20))
            digest.update(fh.read())
    return digest.hexdigest()


class Occurrences:
    """Which occurrence (0, 1, …) of its key each row of a file is, chunk after chunk.

    Keys are 64-bit hashes of the transfer id (the content hash, or the source's own id). The keys seen
    so far are kept as a sorted numpy array with their counts, so a chunk costs one sort and one
    binary search, and a file of n rows holds 16 bytes per distinct key — never a Python loop per row.
    """

    def __init__(self) -> None:
        self.keys = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)

    def number(self, lines: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Occurrence of each key, in file (line) order, counting the rows of earlier chunks."""
        n = len(keys)
        if n == 0:
            return np.zeros(0, np.int64)
        keys = np.asarray(keys, np.uint64)
        by_line = np.argsort(lines, kind="stable")
        order = by_line[np.argsort(keys[by_line], kind="stable")]
        sorted_keys = keys[order]
        first = np.ones(n, bool)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        starts = np.flatnonzero(first)
        rank = np.arange(n) - starts[np.cumsum(first) - 1]
        if len(self.keys):
            at = np.minimum(np.searchsorted(self.keys, sorted_keys), len(self.keys) - 1)
            rank += np.where(self.keys[at] == sorted_keys, self.counts[at], 0)
        occ = np.empty(n, np.int64)
        occ[order] = rank
        merged = np.concatenate((self.keys, sorted_keys[starts]))
        counts = np.concatenate((self.counts, np.diff(np.append(starts, n))))
        by_key = np.argsort(merged, kind="stable")  # two sorted runs: a merge
        merged, counts = merged[by_key], counts[by_key]
        head = np.ones(len(merged), bool)
        head[1:] = merged[1:] != merged[:-1]
        self.keys = merged[head]
        self.counts = np.add.reduceat(counts, np.flatnonzero(head))
        return occ
