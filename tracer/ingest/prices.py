"""Prices: CSV of asset, time, USD — what every flow's ``usd`` column is computed from.

Format (docs/formats.md): a header naming ``asset``, ``time`` and ``usd`` columns (aliases: symbol;
date, timestamp; price, close). Times are ISO dates or date-times, UTC (a ``Z`` or ``+00:00`` suffix is
accepted; other offsets are converted to UTC). The ``flows`` view takes, for each movement, the latest
price of its asset at or before the movement's time (``price_intervals`` in migration 004).

A price is a rate, not an amount, so it is stored as DOUBLE (schema 1); amounts stay exact integers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from tracer.errors import IngestError
from tracer.ingest.csvread import (
    Refused,
    append_by_key,
    csv_records,
    quarantine_many,
    read_lines,
    reason_counts,
    settle,
    source_name,
)
from tracer.store import Store

ALIASES = {"asset": ("asset", "symbol", "currency"), "time": ("time", "date", "timestamp", "datetime"),
           "usd": ("usd", "price", "close", "price_usd")}


def ingest_prices(store: Store, path: str | Path, provider: str | None = None) -> dict[str, Any]:
    """Load a price CSV; bad rows go to quarantine with their line; re-running adds nothing.

    A price is identified by (asset, time, source): ``provider`` names the source, so two providers'
    prices for one moment both stay; unnamed, the key is (asset, time). The same price from another file
    is already stored; a different price for the same key is refused naming both files and lines.
    """
    path = Path(path)
    source = source_name(path)
    if not path.is_file():
        raise IngestError(source, "path", "no such file")
    lines = read_lines(path.read_bytes())
    refused = lines.refused
    records = csv_records(lines.text)
    physical = lines.numbers.tolist()
    try:
        _, header = next(records)
    except StopIteration:
        raise IngestError(source, "line 1", "empty file") from None
    names = [h.strip().lower() for h in header]
    where: dict[str, int] = {}
    for field, aliases in ALIASES.items():
        hit = next((names.index(a) for a in aliases if a in names), None)
        if hit is None:
            raise IngestError(source, f"line {physical[0]}", f"no {field} column (one of {aliases}) in {header}")
        where[field] = hit
    assets, times, usds, line_of = [], [], [], []
    for k, fields in records:
        number = physical[k - 1]
        if len(fields) != len(header):
            refused.add(f"line {number}", ",".join(fields), f"wrong number of fields: {len(fields)}, expected {len(header)}")
            continue
        assets.append(fields[where["asset"]].strip())
        times.append(fields[where["time"]].strip())
        usds.append(fields[where["usd"]].strip())
        line_of.append(number)
    run = store.begin_run("prices", source, {"source": provider})
    table = pa.table({"a": assets, "t": times, "u": usds, "line": pa.array(line_of, pa.int64())})
    settle(store)
    try:
        quarantine_many(store, run, source, refused)  # lines refused while reading, recorded on their own
        with store.transaction():
            store.con.register("_prices", table)
            checked = store.con.sql("""
                SELECT upper(a) AS asset, line, a || ',' || t || ',' || u AS raw,
                       coalesce(try_strptime(t, ['%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S', '%Y-%m-%d %H:%M',
                                                 '%Y-%m-%dT%H:%M', '%Y-%m-%d']),
                                CAST(TRY_CAST(t AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)) AS time,
                       TRY_CAST(u AS DOUBLE) AS usd, t, u
                FROM _prices
            """).to_arrow_table()
            store.con.unregister("_prices")
            store.con.register("_checked_prices", checked)
            bad = store.con.execute("""
                SELECT line, raw, CASE WHEN asset = '' THEN 'missing asset'
                                       WHEN time IS NULL THEN 'bad date: ' || t
                                       WHEN usd IS NULL OR isnan(usd) OR isinf(usd) THEN 'price is not a number: ' || u
                                       WHEN usd <= 0 THEN 'price must be positive: ' || u END AS reason
                FROM _checked_prices
                WHERE asset = '' OR time IS NULL OR usd IS NULL OR isnan(usd) OR isinf(usd) OR usd <= 0
                ORDER BY line""").fetchall()
            good = store.con.sql(
                f"SELECT asset, time, usd, {_quote(provider) if provider else 'NULL::VARCHAR'} AS source, "
                "line AS source_line, raw, "
                f"{run.run_id}::BIGINT AS run_id FROM _checked_prices "
                "WHERE asset <> '' AND time IS NOT NULL AND usd > 0 AND NOT isnan(usd) AND NOT isinf(usd)"
            ).to_arrow_table()
            store.con.unregister("_checked_prices")
            read = len(table) + len(refused)  # parsed rows + lines refused before parsing
            loaded, collisions = append_by_key(
                store, run, "prices", good.drop_columns(["raw"]), ["asset", "time", "source"], ["usd"],
                lambda key: f"price of {key['asset']} at {key['time']}")
            later = Refused([(f"line {line}", raw, reason) for line, raw, reason in bad])
            for k, reason in collisions:
                later.add(f"line {good['source_line'][k].as_py()}", good["raw"][k].as_py(), reason)
            quarantine_many(store, run, source, later)
            refused.rows.extend(later.rows)
            run.add(read=read, prices=loaded)
            run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    quarantined = len(refused)
    return {"run_id": run.run_id, "read": read, "loaded": loaded, "quarantined": quarantined,
            "already_stored": read - loaded - quarantined, "reasons": reason_counts(refused)}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
