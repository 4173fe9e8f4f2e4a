"""Reading text sources with their line numbers, and loading rows so that re-running adds nothing.

Shared by the human-side ingesters (bank, reports, ads, labels, prices). Every refused row must be
named by file and line, so the readers here keep the physical line number of every record:

* :func:`read_lines` splits a byte buffer into lines with numpy (newline positions), finds lines that
  are not valid UTF-8 without decoding line by line, and returns the good text plus the refused lines.
* :func:`csv_records` parses CSV with the standard library when fields may hold quoted newlines
  (``reader.line_num`` gives the line each record ends on).
* :func:`append_new` inserts an Arrow table minus the rows whose key is already stored (an anti-join
  in DuckDB), which is what makes every ingest idempotent.
* :func:`append_by_key` does the same for sources with their own ids (report_id, ad_id, …): a row
  whose key is stored with the same content is "already stored"; with different content it is refused
  naming both positions (the stored row's file and line, and the new one's), never skipped silently.
* :func:`quarantine_many` records refused rows in one bulk insert, skipping ones already recorded. It
  writes through its own cursor, outside the caller's transaction, so a refusal survives the rollback
  of the batch it explains.
* :func:`ingest_files` runs an ingester over several files, each atomic on its own: a file that cannot
  be read is refused and quarantined, the others load.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytz

from tracer.errors import IngestError, MoneytrailError
from tracer.store import Store
from tracer.store.store import Run, utcnow


@dataclass
class Refused:
    """Rows refused while reading: (position, raw text, reason)."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, position: str, raw: str, reason: str) -> None:
        self.rows.append((position, raw, reason))

    def __len__(self) -> int:
        return len(self.rows)


def line_starts(buf: bytes) -> np.ndarray:
    """Byte offsets at which each line of ``buf`` starts (vectorised newline search)."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], ends + 1)).astype(np.int64)
    if len(starts) and starts[-1] == len(buf):
        starts = starts[:-1]
    return starts


def bad_utf8_lines(buf: bytes, starts: np.ndarray) -> list[int]:
    """Indexes (0-based) of lines that are not valid UTF-8.

    The whole buffer is decoded once; only when that fails do we look for the failing lines, and we
    jump from one error to the next instead of decoding every line on its own.
    """
    bad: list[int] = []
    pos = 0
    decoder_errors = 0
    while pos < len(buf):
        try:
            codecs.decode(buf[pos:], "utf-8")
            break
        except UnicodeDecodeError as exc:
            decoder_errors += 1
            where = pos + exc.start
            line = int(np.searchsorted(starts, where, side="right") - 1)
            bad.append(line)
            pos = int(starts[line + 1]) if line + 1 < len(starts) else len(buf)
    return bad


@dataclass
class Lines:
    """The good lines (as bytes and text), their 1-based line numbers, and the refused ones."""

    data: bytes
    text: str
    numbers: np.ndarray
    refused: Refused

    def split(self) -> list[str]:
        """The kept lines, split on newlines only (``str.splitlines`` would also split on form feeds,
        U+2028 and other characters that may sit inside a field)."""
        parts = self.text.split("\n")
        if parts and parts[-1] == "":
            parts.pop()
        return [p[:-1] if p.endswith("\r") else p for p in parts]


#: a blank line inside a buffer: "\n\n" or "\n\r\n" (one regular-expression scan is faster than two
#: ``bytes.__contains__`` scans for two-byte needles)
BLANK_LINE = re.compile(rb"\n\r?\n")


def read_lines(buf: bytes, first_line: int = 1, skip_blank: bool = True, newlines: int | None = None) -> Lines:
    """Split ``buf`` (whole lines) into good UTF-8 lines with their numbers; refuse broken encoding.

    The common case (valid UTF-8, no blank line) costs one decode and a few byte searches; only a
    buffer with a problem is split into lines with numpy. ``newlines`` is ``buf.count(b"\\n")`` when
    the caller has already counted them.
    """
    if newlines is None:
        newlines = buf.count(b"\n")
    count = newlines + (0 if buf.endswith(b"\n") or not buf else 1)
    has_blank = (buf.startswith((b"\n", b"\r\n")) or BLANK_LINE.search(buf) is not None
                 or buf.endswith(b"\n\r"))
    if not (skip_blank and has_blank):
        try:
            text = codecs.decode(buf, "utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return Lines(buf, text, np.arange(first_line, first_line + count, dtype=np.int64), Refused())
    starts = line_starts(buf)
    refused = Refused()
    bad = bad_utf8_lines(buf, starts)
    keep = np.ones(len(starts), dtype=bool)
    ends = np.concatenate((starts[1:], [len(buf)]))
    for i in bad:
        keep[i] = False
        raw = buf[starts[i]:ends[i]].rstrip(b"\r\n")
        refused.add(f"line {first_line + i}", raw.decode("utf-8", "backslashreplace"),
                    "broken encoding: not valid UTF-8")
    if skip_blank and len(starts):
        # a blank line holds nothing but its line end ("\n", "\r\n"; the last line may have none)
        arr = np.frombuffer(buf, dtype=np.uint8)
        lengths = ends - starts
        has_nl = (lengths > 0) & (arr[np.maximum(ends - 1, 0)] == 10)
        content = lengths - has_nl
        has_cr = (content > 0) & (arr[np.maximum(starts + content - 1, 0)] == 13)
        keep &= (content - has_cr) > 0
    data = buf if keep.all() else b"".join(buf[s:e] for s, e in zip(starts[keep], ends[keep], strict=True))
    numbers = np.flatnonzero(keep).astype(np.int64) + first_line
    return Lines(data, data.decode("utf-8"), numbers, refused)


def csv_records(text: str, first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each CSV record, quoted newlines allowed (standard library csv)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    prev = 0
    for fields in reader:
        start = prev + 1
        prev = reader.line_num
        if not fields or fields == [""]:
            continue
        yield first_line + start - 1, fields


def settle(store: Store) -> None:
    """Finish any half-read result on the connection (``Store.scalar`` reads one row), which DuckDB
    requires before an Arrow table can be registered."""
    store.con.execute("SELECT 1").fetchall()


def append_new(store: Store, table: str, data: pa.Table, key: Sequence[str], dedupe: bool = True) -> int:
    """Insert the rows of ``data`` whose ``key`` is not yet in ``table`` (and each key once).

    The anti-join runs in DuckDB over the whole batch, so re-running an ingest adds nothing and
    costs one hash join, not a lookup per row. ``dedupe=False`` skips the within-batch duplicate
    check when the caller's keys are unique by construction (line numbers).
    """
    if len(data) == 0:
        return 0
    name = f"_new_{table}"
    settle(store)
    store.con.register(name, data)
    try:
        match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM n.{k}" for k in key)
        part = ", ".join(f"n.{k}" for k in key)
        order = "n.source_line" if "source_line" in data.column_names else "1"
        if not dedupe:  # keys are unique within the batch by construction
            fresh = store.con.sql(
                f"SELECT n.* FROM {name} n WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})"
            ).to_arrow_table()
            return store.append(table, fresh)
        fresh = store.con.sql(
            f"SELECT * EXCLUDE (_dup) FROM ("
            f"  SELECT n.*, row_number() OVER (PARTITION BY {part} ORDER BY {order}) AS _dup"
            f"  FROM {name} n WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})"
            f") WHERE _dup = 1"
        ).to_arrow_table()
    finally:
        store.con.unregister(name)
    return store.append(table, fresh)


def source_name(path: str | Path) -> str:
    """How a file is named in ``ingest_runs.target`` and ``quarantine.source``: its absolute path, so
    the same file named two ways (relative, absolute) is one source and a refusal is recorded once."""
    return str(Path(path).resolve())


def quarantine_many(store: Store, run: Run | None, source: str,
                    refused: Refused | Sequence[tuple[str, str, str]]) -> int:
    """Record refused rows in one insert; a row already quarantined for the same reason is skipped.

    The insert runs on a cursor of its own (DuckDB: a separate connection to the same database) in
    auto-commit mode, so it is committed at once, whatever happens to the caller's open transaction:
    a batch that is rolled back still leaves the record of what was refused in it, and re-running the
    same input adds no second identical row (source, position and reason match).
    """
    rows = refused.rows if isinstance(refused, Refused) else list(refused)
    if not rows:
        return 0
    positions, raws, reasons = zip(*rows)
    raws = [r if r is None or len(r) <= 8192 else r[:8192] + "…" for r in raws]
    data = pa.table({
        "run_id": pa.array([run.run_id if run else None] * len(rows), pa.int64()),
        "source": pa.array([source] * len(rows), pa.string()),
        "position": pa.array(positions, pa.string()),
        "raw": pa.array(raws, pa.string()),
        "reason": pa.array(reasons, pa.string()),
        "created": pa.array([utcnow()] * len(rows), pa.timestamp("us")),
    })
    cursor = store.con.cursor()
    try:
        cursor.register("_refused", data)
        added = cursor.execute("""
            INSERT INTO quarantine BY NAME
            SELECT * EXCLUDE (_dup) FROM (
              SELECT n.*, row_number() OVER (PARTITION BY n.source, n.position, n.reason) AS _dup FROM _refused n
              WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source = n.source AND q.position = n.position
                                AND q.reason = n.reason)
            ) WHERE _dup = 1""").fetchall()[0][0]
    finally:
        cursor.close()
    if run is not None:
        run.add(quarantined=len(rows))
    return int(added)


def append_by_key(store: Store, run: Run, table: str, data: pa.Table, key: Sequence[str],
                  content: Sequence[str], what: Callable[[dict[str, Any]], str]) -> tuple[int, list[tuple[int, str]]]:
    """Insert the rows of ``data`` whose ``key`` is new; name the ones whose key is taken by other content.

    Each row is one of: loaded (its key is new; the first of several rows with one key in ``data``),
    already stored (the stored row under its key has the same ``content`` columns), or a collision:
    the stored row (or the earlier row of this batch) has different content. Collisions are returned as
    (row index in ``data``, reason) for the caller to quarantine; the reason names the stored row's file
    and line and the columns that differ, and ``what(key values)`` names the key ("report_id R-1").
    One anti-join and one join in DuckDB, whatever the size of the batch.
    """
    if len(data) == 0:
        return 0, []
    data = data.append_column("_ord", pa.array(range(len(data)), pa.int64()))
    match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM n.{k}" for k in key)
    part = ", ".join(f"n.{k}" for k in key)
    differs = ", ".join(f"CASE WHEN t.{c} IS DISTINCT FROM n.{c} THEN '{c}' END" for c in content)
    con = store.con
    settle(store)
    con.register("_keyed", data)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _fresh AS
            SELECT * EXCLUDE (_rank) FROM (
              SELECT n.*, row_number() OVER (PARTITION BY {part} ORDER BY n._ord) AS _rank FROM _keyed n
              WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})
            ) WHERE _rank = 1""")
        loaded = con.execute(f"INSERT INTO {table} BY NAME SELECT * EXCLUDE (_ord) FROM _fresh").fetchall()[0][0]
        store.inserted(table, "_fresh")
        clashes = con.execute(f"""
            SELECT _ord, {", ".join(f"n_{k}" for k in key)}, target, source_line, differs FROM (
              SELECT n._ord, {", ".join(f"n.{k} AS n_{k}" for k in key)}, r.target, t.source_line,
                     concat_ws(', ', {differs}) AS differs,
                     row_number() OVER (PARTITION BY n._ord ORDER BY t.run_id, t.source_line) AS _pick
              FROM _keyed n JOIN {table} t ON {match}
              LEFT JOIN ingest_runs r ON r.run_id = t.run_id
              WHERE NOT EXISTS (SELECT 1 FROM _fresh f WHERE f._ord = n._ord)
            ) WHERE _pick = 1 AND differs <> '' ORDER BY _ord""").fetchall()
        con.execute("DROP TABLE _fresh")
    finally:
        con.unregister("_keyed")
    collisions = []
    for ord_, *rest in clashes:
        values, (target, line, fields) = rest[:len(key)], rest[len(key):]
        where = f"{target} line {line}" if line is not None else str(target)
        collisions.append((ord_, f"{what(dict(zip(key, values)))} already stored from {where} "
                                 f"with different content ({fields})"))
    return int(loaded), collisions


#: errors that refuse one file of several (the others still load); anything else is a bug and stops the run
FILE_ERRORS = (MoneytrailError, pa.ArrowInvalid, duckdb.ConversionException, duckdb.InvalidInputException)


def ingest_files(store: Store, ingest: Callable[..., dict[str, Any]], paths: str | Path | Sequence[str | Path],
                 **options: Any) -> dict[str, Any]:
    """Run ``ingest(store, path, **options)`` for each file; one summary for all of them.

    Each file is its own unit of work (its ingester commits it, or its batches, on its own): a file
    that cannot be read (no such file, unknown layout, broken JSON document, …) is refused — recorded
    in ``quarantine`` with its position and reason, unless there is no file to hold — and the files
    beside it still load. ``refused_files`` lists them; the CLI exits non-zero when it is not empty.
    Counts add up over the files: read = loaded + already_stored + quarantined.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    total: dict[str, Any] = {"read": 0, "loaded": 0, "already_stored": 0, "quarantined": 0, "reasons": {},
                             "files": [], "refused_files": []}
    for path in paths:
        try:
            summary = ingest(store, path, **options)
        except FILE_ERRORS as exc:
            position = getattr(exc, "position", None) or "file"
            reason = getattr(exc, "reason", None) or str(exc)
            if Path(path).is_file():
                quarantine_many(store, None, source_name(path), [(position, None, f"file refused: {reason}")])
            total["refused_files"].append({"source": source_name(path), "position": position, "reason": reason})
            continue
        total["files"].append({"source": source_name(path), **summary})
        for k in ("read", "loaded", "already_stored", "quarantined"):
            total[k] += summary.get(k, 0)
        for reason, n in (summary.get("reasons") or {}).items():
            total["reasons"][reason] = total["reasons"].get(reason, 0) + n
    if len(total["files"]) == 1 and not total["refused_files"]:
        return {**total["files"][0], "files": total["files"], "refused_files": []}
    total["run_id"] = [f["run_id"] for f in total["files"]]
    return total


def read_records(path: str | Path, refused: Refused) -> list[tuple[str, int | None, dict[str, Any]]]:
    """Records of a CSV (with header), JSON Lines or JSON-array file: (position, line, fields).

    CSV list fields stay text here (callers split them on ';'); JSON keeps its own lists. Lines that
    are not UTF-8, not JSON or not an object are refused with their position.
    """
    path = Path(path)
    buf = path.read_bytes()
    lines = read_lines(buf)
    refused.rows.extend(lines.refused.rows)
    suffix = path.suffix.lower()
    out: list[tuple[str, int | None, dict[str, Any]]] = []
    if suffix in (".jsonl", ".ndjson"):
        for number, text in zip(lines.numbers.tolist(), lines.split(), strict=True):
            try:
                item = json.loads(text)
            except json.JSONDecodeError as exc:
                refused.add(f"line {number}", text, f"not JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(item, dict):
                refused.add(f"line {number}", text, "a record is a JSON object")
                continue
            out.append((f"line {number}", number, item))
        return out
    if suffix == ".json":
        if lines.refused.rows:
            raise IngestError(str(path), lines.refused.rows[0][0], "broken encoding: not valid UTF-8")
        try:
            items = json.loads(lines.text)
        except json.JSONDecodeError as exc:
            raise IngestError(str(path), f"line {exc.lineno}", f"not JSON: {exc.msg}") from None
        if isinstance(items, dict):
            items = items.get("reports") or items.get("ads") or items.get("records") or [items]
        for k, item in enumerate(items):
            if not isinstance(item, dict):
                refused.add(f"item {k + 1}", json.dumps(item), "a record is a JSON object")
                continue
            out.append((f"item {k + 1}", None, item))
        return out
    physical = lines.numbers.tolist()
    header: list[str] | None = None
    for k, fields in csv_records(lines.text):
        number = physical[k - 1] if k - 1 < len(physical) else k
        if header is None:
            header = [h.strip() for h in fields]
            continue
        if len(fields) != len(header):
            refused.add(f"line {number}", ",".join(fields),
                        f"wrong number of fields: {len(fields)}, expected {len(header)}")
            continue
        out.append((f"line {number}", number, dict(zip(header, fields))))
    return out


def split_list(value: Any) -> list[str]:
    """A list field: a JSON list, or text separated by ';' (CSV); empty items dropped."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [v.strip() for v in str(value).split(";") if v.strip()]


def parse_time(value: Any, default_tz: str | None = None, need_zone: bool = False) -> tuple[dt.datetime, str | None]:
    """ISO-8601 date or date-time -> (UTC naive datetime, the offset as written or None).

    A time without an offset is taken in ``default_tz`` (an IANA name, via pytz) when given; with
    ``need_zone`` and no default it is refused, because a local time cannot be placed on the UTC line.
    """
    text = str(value).strip()
    if not text:
        raise ValueError("empty time")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {text!r}") from None
    if parsed.tzinfo is None:
        if default_tz:
            parsed = pytz.timezone(default_tz).localize(parsed)
        elif need_zone:
            raise ValueError(f"time without a time zone: {text!r}")
        else:
            return parsed, None
    offset = parsed.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None), offset


def parse_decimal(value: Any, places: int) -> Decimal:
    """A non-negative decimal with at most ``places`` decimals, exactly (never through float)."""
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {text!r}")
    if number < 0:
        raise ValueError(f"negative amount: {text!r}")
    if number != number.quantize(Decimal(1).scaleb(-places)) if places else number != number.to_integral_value():
        raise ValueError(f"more than {places} decimals: {text!r}")
    return number


def reason_counts(refused: Refused | Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """How many refused rows per kind of reason (the text before its first ':', '(' or ';')."""
    rows = refused.rows if isinstance(refused, Refused) else refused
    counts: dict[str, int] = {}
    for _, _, reason in rows:
        kind = re.split(r"[:(;]", reason, maxsplit=1)[0].strip()
        counts[kind] = counts.get(kind, 0) + 1
    return counts
