"""Suspicious-activity reports (SAR, STR) and tips into ``reports`` and ``report_identifiers``.

The record format is documented in docs/formats.md (CSV, JSON Lines or a JSON array): ``report_id``,
``kind`` (SAR, STR, tip), ``filer``, ``filed_at``, ``subjects``, identifier fields (``bitcoin``,
``ethereum``, ``tron``, ``litecoin``, ``iban``, ``phone``, ``email``, ``account``; or one
``identifiers`` object of kind -> list), ``amount``, ``currency``, ``narrative``. The fields follow what
a FinCEN SAR holds (filer, subjects with their identifiers, amounts, dates, and a narrative that says
who, what, when, where, why and how).

Identifiers are taken from the fields (origin ``field``) and also found in the narrative (origin
``narrative``): Bitcoin addresses of every script type (checksum-validated, also by bitcoinlib), EVM
addresses (EIP-55 aware), TRON addresses, IBANs (mod-97), phone numbers (libphonenumber, E.164) and
e-mails. An invalid identifier in a field is quarantined on its own; the report still loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracer.errors import IngestError
from tracer.ingest.csvread import (
    Refused,
    append_by_key,
    append_new,
    parse_decimal,
    parse_time,
    quarantine_many,
    read_records,
    reason_counts,
    source_name,
    split_list,
)
from tracer.codecs.identifiers import (
    InvalidIdentifier,
    find_identifiers,
    normalize_email,
    normalize_phone,
    validate_address,
    validate_bitcoin_user_address,
    validate_iban,
)
from tracer.store import Store

KINDS = {"sar": "SAR", "str": "STR", "tip": "tip"}
IDENTIFIER_FIELDS = ("bitcoin", "ethereum", "tron", "litecoin", "iban", "phone", "email", "account")
#: FinCEN advisory FIN-2020-A008 asks filers to put this key term in human-trafficking SARs.
HUMAN_TRAFFICKING_KEY_TERM = "HUMAN TRAFFICKING FIN-2020-A008"


def validate_identifier(kind: str, value: str, region: str | None = "US", bitcoin_network: str = "mainnet") -> str:
    """Normalise one identifier of a known kind, or raise InvalidIdentifier. Bitcoin addresses are
    validated for ``bitcoin_network``, the network the store's Bitcoin chain holds (a regtest store's
    reports name regtest addresses)."""
    if kind == "bitcoin":
        if bitcoin_network != "mainnet":
            from tracer.ingest.labels.sources import validate_bitcoin_address

            return validate_bitcoin_address(value, bitcoin_network)[0]
        return validate_bitcoin_user_address(value)[0]
    if kind in ("ethereum", "tron", "litecoin"):
        return validate_address(kind, value)[0]
    if kind == "iban":
        return validate_iban(value)
    if kind == "phone":
        return normalize_phone(value, region)
    if kind == "email":
        return normalize_email(value)
    if kind == "account":
        if ":" not in value:
            raise InvalidIdentifier("a bank account is written <bank>:<account>")
        return value.strip()
    raise InvalidIdentifier(f"unknown identifier kind {kind!r}")


def _field_identifiers(record: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    nested = record.get("identifiers")
    if isinstance(nested, str) and nested.strip().startswith(("{", "[")):
        nested = json.loads(nested)
    if isinstance(nested, dict):
        for kind, values in nested.items():
            pairs += [(kind, v) for v in split_list(values)]
    elif isinstance(nested, list):
        for item in nested:
            if isinstance(item, dict):
                pairs.append((str(item.get("kind", "")), str(item.get("value", ""))))
    for kind in IDENTIFIER_FIELDS:
        pairs += [(kind, v) for v in split_list(record.get(kind))]
    return pairs


REPORT_SCHEMA = pa.schema([
    ("report_id", pa.string()), ("kind", pa.string()), ("filer", pa.string()), ("filed_at", pa.timestamp("us")),
    ("subjects", pa.list_(pa.string())), ("identifiers", pa.string()), ("amount", pa.decimal128(18, 2)),
    ("currency", pa.string()), ("narrative", pa.string()), ("accounts", pa.list_(pa.string())),
    ("source_line", pa.int64()), ("run_id", pa.int64()),
])
#: what a report says: two records with one report_id and these equal are the same report
REPORT_CONTENT = ("kind", "filer", "filed_at", "subjects", "identifiers", "amount", "currency", "narrative")
IDENTIFIER_SCHEMA = pa.schema([("report_id", pa.string()), ("kind", pa.string()), ("value", pa.string()),
                               ("origin", pa.string()), ("run_id", pa.int64()), ("source_line", pa.int64())])


def collect_identifiers(report_id: str, field_rows: list[tuple[str, str, str]], narrative: str,
                        region: str | None, run_id: int, line: int,
                        bitcoin_network: str = "mainnet") -> tuple[dict[str, list[str]], list[dict]]:
    """A report's identifiers: the validated field ones plus those found in the narrative, each
    (kind, value, origin) once. Returns the ``reports.identifiers`` map and the ``report_identifiers`` rows."""
    rows = field_rows + [(i.kind, i.value, "narrative") for i in find_identifiers(narrative, region, bitcoin_network)]
    found: dict[str, list[str]] = {}
    idents: list[dict] = []
    seen: set[tuple[str, str, str]] = set()
    for kind, value, origin in rows:
        if (kind, value, origin) in seen:
            continue
        seen.add((kind, value, origin))
        if value not in found.setdefault(kind, []):
            found[kind].append(value)
        idents.append({"report_id": report_id, "kind": kind, "value": value, "origin": origin,
                       "run_id": run_id, "source_line": line})
    return found, idents


def ingest_reports(store: Store, path: str | Path, region: str | None = "US") -> dict[str, Any]:
    """Load reports; return the run summary. ``region`` is the default country for phone numbers."""
    path = Path(path)
    source = source_name(path)
    if not path.is_file():
        raise IngestError(source, "path", "no such file")
    refused = Refused()
    records = read_records(path, refused)
    run = store.begin_run("reports", source, {"region": region})
    bitcoin_network = store.scalar("SELECT network FROM chains WHERE chain = 'bitcoin'") or "mainnet"
    reports: list[dict[str, Any]] = []
    raws: list[tuple[str, str]] = []
    idents: list[list[dict[str, Any]]] = []  # per report
    bad_identifiers = 0
    for position, line, rec in records:
        raw = json.dumps(rec, default=str, ensure_ascii=False)
        report_id = str(rec.get("report_id") or "").strip()
        if not report_id:
            refused.add(position, raw, "missing report_id")
            continue
        kind = KINDS.get(str(rec.get("kind") or "").strip().lower())
        if kind is None:
            refused.add(position, raw, f"kind must be SAR, STR or tip: {rec.get('kind')!r}")
            continue
        try:
            filed_at = parse_time(rec["filed_at"])[0] if str(rec.get("filed_at") or "").strip() else None
        except ValueError as exc:
            refused.add(position, raw, f"bad date: {exc}")
            continue
        amount = None
        if str(rec.get("amount") or "").strip():
            try:
                amount = parse_decimal(rec["amount"], 2)
            except ValueError as exc:
                refused.add(position, raw, f"bad amount: {exc}")
                continue
        narrative = str(rec.get("narrative") or "")
        rows: list[tuple[str, str, str]] = []
        try:
            field_pairs = _field_identifiers(rec)
        except json.JSONDecodeError as exc:
            refused.add(position, raw, f"identifiers is not JSON: {exc.msg}")
            continue
        for ident_kind, value in field_pairs:
            try:
                normalised = validate_identifier(ident_kind, value, region, bitcoin_network)
            except InvalidIdentifier as exc:
                refused.add(f"{position} ({ident_kind})", value,
                            f"invalid {ident_kind} identifier: report {report_id}: {exc}")
                bad_identifiers += 1
                continue
            rows.append((ident_kind, normalised, "field"))
        found, report_idents = collect_identifiers(report_id, rows, narrative, region, run.run_id, line,
                                                   bitcoin_network)
        idents.append(report_idents)
        raws.append((position, raw))
        reports.append({
            "report_id": report_id, "kind": kind, "filer": rec.get("filer") or None, "filed_at": filed_at,
            "subjects": split_list(rec.get("subjects")), "identifiers": json.dumps(found, sort_keys=True),
            "amount": amount, "currency": (str(rec.get("currency")).strip().upper() or None)
            if rec.get("currency") else None, "narrative": narrative or None,
            "accounts": found.get("account", []), "source_line": line, "run_id": run.run_id,
        })
    rejected = len(refused) - bad_identifiers
    read = len(reports) + rejected
    try:
        # refusals found while reading are recorded first, on their own: they stay if the batch fails
        quarantine_many(store, run, source, refused)
        with store.transaction():
            loaded, collisions = append_by_key(
                store, run, "reports", pa.Table.from_pylist(reports, REPORT_SCHEMA), ["report_id"],
                REPORT_CONTENT, lambda key: f"report_id {key['report_id']}")
            # a refused report's identifiers would attach to the other report stored under its id
            clashing = {k for k, _ in collisions}
            kept = [i for k, found_here in enumerate(idents) if k not in clashing for i in found_here]
            ident_loaded = append_new(store, "report_identifiers", pa.Table.from_pylist(kept, IDENTIFIER_SCHEMA),
                                      ["report_id", "kind", "value", "origin"])
            clash_rows = Refused([(raws[k][0], raws[k][1], reason) for k, reason in collisions])
            quarantine_many(store, run, source, clash_rows)
            run.add(read=read, reports=loaded, identifiers=ident_loaded, invalid_identifiers=bad_identifiers)
            run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    quarantined = rejected + len(collisions)
    reasons = reason_counts(refused.rows + clash_rows.rows)
    return {"run_id": run.run_id, "read": read, "loaded": loaded, "identifiers": ident_loaded,
            "quarantined": quarantined, "invalid_identifiers": bad_identifiers, "rejected_reports": rejected,
            "collisions": len(collisions), "already_stored": read - loaded - quarantined, "reasons": reasons}
