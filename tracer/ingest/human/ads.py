"""Online ads into ``ads``: the first link of the chain (ad -> posting fee -> wallet -> exchange).

Record format (docs/formats.md; CSV, JSON Lines or a JSON array): ``site``, ``ad_id``, ``posted_at``
(ISO-8601 with its time zone offset), ``title``, ``body``, ``price``, ``currency``, ``phones``,
``emails``, ``location``, ``lat``, ``lon``, ``image_hashes``, and the posting fee if known
(``fee_chain``, ``fee_txid``, ``fee_amount`` in the asset's base unit, ``fee_asset``) and the posting fee
in USD where the site shows it (``fee_usd``: what ``tracer ads link`` looks for). Portnoff et al.
("Backpage and Bitcoin", KDD 2017) link an ad to its fee payment by posting time and price, so the
posting time must be placed exactly on the UTC line: a time without an offset is refused unless a
default time zone is given.

Phones (libphonenumber, E.164) and e-mails are normalised and also collected from the title and body;
crypto addresses in the text are extracted and checksum-validated. With ``hash_pii`` phones and e-mails
are stored only as ``sha256:<hex>`` of salt + normalised value, so two data sets hashed with the same
salt still match on them while the numbers themselves never enter the store.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracer.errors import IngestError
from tracer.ingest.csvread import (
    Refused,
    append_by_key,
    parse_decimal,
    parse_time,
    quarantine_many,
    read_records,
    reason_counts,
    source_name,
    split_list,
)
from tracer.codecs.identifiers import InvalidIdentifier, find_identifiers, normalize_email, normalize_phone
from tracer.store import Store

AD_SCHEMA = pa.schema([
    ("ad_id", pa.string()), ("site", pa.string()), ("posted_at", pa.timestamp("us")), ("title", pa.string()),
    ("body", pa.string()), ("price", pa.decimal128(18, 2)), ("currency", pa.string()),
    ("phones", pa.list_(pa.string())), ("emails", pa.list_(pa.string())), ("location", pa.string()),
    ("lat", pa.float64()), ("lon", pa.float64()), ("image_hashes", pa.list_(pa.string())),
    ("addresses", pa.list_(pa.string())), ("fee_chain", pa.string()), ("fee_txid", pa.string()),
    ("fee_amount", pa.decimal128(38, 0)), ("fee_asset", pa.string()), ("pii_hashed", pa.bool_()),
    ("posted_offset", pa.string()), ("source_line", pa.int64()), ("run_id", pa.int64()),
    ("fee_usd", pa.decimal128(18, 2)),
])
#: what an ad says: two records of one (site, ad_id) with these equal are the same ad
AD_CONTENT = ("posted_at", "title", "body", "price", "currency", "phones", "emails", "location", "lat", "lon",
              "image_hashes", "fee_chain", "fee_txid", "fee_amount", "fee_asset", "pii_hashed", "posted_offset", "fee_usd")
_TXID = {"bitcoin": re.compile(r"[0-9a-f]{64}"), "ethereum": re.compile(r"0x[0-9a-f]{64}"),
         "tron": re.compile(r"[0-9a-f]{64}")}


def pii_hash(value: str, salt: str) -> str:
    """The stored form of a phone or e-mail when personal data is hashed."""
    return "sha256:" + hashlib.sha256((salt + value).encode("utf-8")).hexdigest()


def _coordinate(value: Any, low: float, high: float, name: str) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    number = float(value)
    if not low <= number <= high:
        raise ValueError(f"{name} {number} outside [{low}, {high}]")
    return number


def ingest_ads(store: Store, path: str | Path, *, region: str | None = "US", default_tz: str | None = None,
               hash_pii: bool = False, salt: str | None = None) -> dict[str, Any]:
    """Load ads; return the run summary. ``region`` is the default country for phone numbers."""
    path = Path(path)
    source = source_name(path)
    if not path.is_file():
        raise IngestError(source, "path", "no such file")
    if hash_pii and not salt:
        raise IngestError(source, "options", "hashing phones and e-mails needs a salt (--salt or "
                                                "MONEYTRAIL_PII_SALT): without one, hashes are guessable")
    refused = Refused()
    records = read_records(path, refused)
    run = store.begin_run("ads", source, {"region": region, "default_tz": default_tz, "hash_pii": hash_pii})
    # an ad prints addresses of the network the store's Bitcoin chain holds (a regtest world's ads: regtest)
    bitcoin_network = store.scalar("SELECT network FROM chains WHERE chain = 'bitcoin'") or "mainnet"
    rows: list[dict[str, Any]] = []
    raws: list[tuple[str, str]] = []
    for position, line, rec in records:
        raw = json.dumps(rec, default=str, ensure_ascii=False)
        site = str(rec.get("site") or "").strip()
        ad_id = str(rec.get("ad_id") or "").strip()
        if not site or not ad_id:
            refused.add(position, raw, "missing site or ad_id")
            continue
        try:
            posted_at, offset = parse_time(rec.get("posted_at") or "", default_tz, need_zone=True)
        except ValueError as exc:
            refused.add(position, raw, f"bad date: {exc}")
            continue
        try:
            price = parse_decimal(rec["price"], 2) if str(rec.get("price") or "").strip() else None
            lat = _coordinate(rec.get("lat"), -90, 90, "latitude")
            lon = _coordinate(rec.get("lon"), -180, 180, "longitude")
            fee_amount = parse_decimal(rec["fee_amount"], 0) if str(rec.get("fee_amount") or "").strip() else None
            fee_usd = parse_decimal(rec["fee_usd"], 2) if str(rec.get("fee_usd") or "").strip() else None
            if fee_usd is not None and fee_usd <= 0:
                raise ValueError(f"fee_usd {fee_usd} is not positive")
        except ValueError as exc:
            refused.add(position, raw, f"bad number: {exc}")
            continue
        fee_chain = str(rec.get("fee_chain") or "").strip().lower() or None
        fee_txid = str(rec.get("fee_txid") or "").strip().lower() or None
        if fee_txid and fee_chain in _TXID and not _TXID[fee_chain].fullmatch(fee_txid):
            refused.add(position, raw, f"fee_txid is not a {fee_chain} transaction id")
            continue
        phones, emails = [], []
        bad_field = None
        for value in split_list(rec.get("phones")):
            try:
                phones.append(normalize_phone(value, region))
            except InvalidIdentifier as exc:
                bad_field = f"invalid phone: {value!r}: {exc}"
        for value in split_list(rec.get("emails")):
            try:
                emails.append(normalize_email(value))
            except InvalidIdentifier as exc:
                bad_field = f"invalid e-mail: {value!r}: {exc}"
        if bad_field:
            refused.add(position, raw, bad_field)
            continue
        text = "\n".join(str(rec.get(k) or "") for k in ("title", "body"))
        addresses = []
        for ident in find_identifiers(text, region, bitcoin_network):
            if ident.kind == "phone" and ident.value not in phones:
                phones.append(ident.value)
            elif ident.kind == "email" and ident.value not in emails:
                emails.append(ident.value)
            elif ident.kind not in ("phone", "email", "iban") and ident.value not in addresses:
                addresses.append(ident.value)
        if hash_pii:
            phones = [pii_hash(p, salt or "") for p in phones]
            emails = [pii_hash(e, salt or "") for e in emails]
        raws.append((position, raw))
        rows.append({
            "ad_id": ad_id, "site": site, "posted_at": posted_at, "title": rec.get("title") or None,
            "body": rec.get("body") or None, "price": price,
            "currency": str(rec.get("currency") or "").strip().upper() or None, "phones": phones,
            "emails": emails, "location": rec.get("location") or None, "lat": lat, "lon": lon,
            "image_hashes": split_list(rec.get("image_hashes")), "addresses": addresses, "fee_chain": fee_chain,
            "fee_txid": fee_txid, "fee_amount": fee_amount,
            "fee_asset": str(rec.get("fee_asset") or "").strip() or None, "pii_hashed": hash_pii,
            "posted_offset": offset, "source_line": line, "run_id": run.run_id, "fee_usd": fee_usd,
        })
    read = len(rows) + len(refused)
    try:
        # refusals found while reading are recorded first, on their own: they stay if the batch fails
        quarantine_many(store, run, source, refused)
        with store.transaction():
            loaded, collisions = append_by_key(
                store, run, "ads", pa.Table.from_pylist(rows, AD_SCHEMA), ["site", "ad_id"], AD_CONTENT,
                lambda key: f"ad {key['site']} {key['ad_id']}")
            for k, reason in collisions:
                refused.add(raws[k][0], raws[k][1], reason)
            quarantine_many(store, run, source, refused.rows[len(refused) - len(collisions):])
            run.add(read=read, ads=loaded)
            run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    return {"run_id": run.run_id, "read": read, "loaded": loaded, "quarantined": len(refused),
            "collisions": len(collisions), "already_stored": read - loaded - len(refused),
            "reasons": reason_counts(refused)}
