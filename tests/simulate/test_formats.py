"""Downstream cannot tell: the simulated rows are what the real ingesters store from the same records."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import tracer
from tracer.ingest.human.ads import ingest_ads
from tracer.codecs.identifiers import normalize_phone
from tracer.ingest.labels.sources import ingest_tagpacks
from tracer.ingest.human.reports import ingest_reports

AD_COLS = ("ad_id, site, posted_at, title, body, price, currency, phones, emails, location, lat, lon, image_hashes, "
           "addresses, fee_chain, fee_txid, fee_amount, fee_asset, pii_hashed, posted_offset, source_line")


@pytest.fixture()
def fresh(tmp_path):
    s = tracer.open_store(tmp_path / "fresh.duckdb")
    yield s
    s.close()


def test_labels_are_exactly_what_a_tagpack_import_of_the_pack_stores(world, con, fresh):
    _, summary, truth = world
    pack = summary.truth_path.parent / truth["companions"]["tagpack"]
    ingest_tagpacks(fresh, pack)
    cols = ("address, label, category, source, confidence, actor, abuse, is_public, context, source_line, "
            "source_asset, source_network, confidence_level, is_cluster_definer, pack, pack_header, tag_extra")
    ours = con.execute(f"SELECT {cols} FROM labels ORDER BY ALL").fetchall()
    theirs = fresh.con.execute(f"SELECT {cols} FROM labels ORDER BY ALL").fetchall()
    assert ours == theirs and len(ours) > 100
    # EVM tags are filed under ETH in the pack and stored under the simulated chain
    assert dict(con.execute("SELECT chain, count(*) FROM labels GROUP BY 1").fetchall()).keys() == {"bitcoin", "sim-evm", "fiat"}
    assert set(con.execute("SELECT DISTINCT category FROM labels").fetchall()) == {
        ("exchange",), ("miner",), ("coinjoin",), ("shop",)}


def test_ads_are_exactly_what_the_ads_ingester_stores_from_their_records(con, fresh, tmp_path):
    rows = con.execute(f"SELECT {AD_COLS} FROM ads ORDER BY source_line").fetchall()
    names = [c.strip() for c in AD_COLS.split(",")]
    path = tmp_path / "ads.jsonl"
    with path.open("w") as f:
        for row in rows:
            rec = dict(zip(names, row))
            off = rec["posted_offset"]
            hours = int(off[:3])
            local = rec["posted_at"] + dt.timedelta(hours=hours)
            rec["posted_at"] = local.isoformat() + off
            rec["price"] = str(rec["price"])
            rec["fee_amount"] = None if rec["fee_amount"] is None else str(rec["fee_amount"])
            for k in ("posted_offset", "pii_hashed", "source_line", "addresses"):
                rec.pop(k)
            f.write(json.dumps(rec) + "\n")
    result = ingest_ads(fresh, path)
    assert result["quarantined"] == 0
    theirs = fresh.con.execute(f"SELECT {AD_COLS} FROM ads ORDER BY source_line").fetchall()
    assert theirs == rows
    for (phones,) in con.execute("SELECT phones FROM ads").fetchall():
        assert phones and all(normalize_phone(p) == p for p in phones)


def test_reports_are_exactly_what_the_reports_ingester_stores_from_their_records(con, fresh, tmp_path):
    reports = con.execute("""SELECT report_id, kind, filer, filed_at, subjects, identifiers, amount, currency,
                             narrative FROM reports ORDER BY source_line""").fetchall()
    path = tmp_path / "reports.jsonl"
    with path.open("w") as f:
        for rid, kind, filer, filed, subjects, _, amount, currency, narrative in reports:
            fields = [r for r in con.execute("SELECT kind, value FROM report_identifiers WHERE report_id = ? "
                                             "AND origin = 'field' ORDER BY rowid", [rid]).fetchall()]
            idents: dict[str, list[str]] = {}
            for k, v in fields:
                idents.setdefault(k, []).append(v)
            f.write(json.dumps({"report_id": rid, "kind": kind, "filer": filer, "filed_at": filed.isoformat() + "Z",
                                "subjects": subjects, "identifiers": idents,
                                "amount": None if amount is None else str(amount), "currency": currency,
                                "narrative": narrative}) + "\n")
    ingest_reports(fresh, path)
    for table in ("reports", "report_identifiers"):
        q = f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL"
        assert con.execute(q).fetchall() == fresh.con.execute(q).fetchall(), table


def test_prices_cover_the_world_and_every_flow_gets_a_usd_value(con):
    assets = con.execute("""SELECT asset, count(*), min(time), max(time) FROM prices GROUP BY 1 ORDER BY 1""").fetchall()
    assert [a[0] for a in assets] == ["BTC", "ETH", "USDT"]
    first_block, last_block = con.execute("SELECT min(time), max(time) FROM blocks WHERE chain = 'bitcoin'").fetchall()[0]
    assert all(lo <= first_block and hi >= last_block for _, _, lo, hi in assets)
    missing = con.execute("SELECT count(*), count(usd) FROM flows WHERE chain IN ('bitcoin', 'sim-evm', 'fiat')").fetchall()[0]
    assert missing[0] > 10_000 and missing[0] == missing[1]


def test_fiat_rows_follow_the_bank_ingesters_conventions(con):
    rows = con.execute("""SELECT DISTINCT asset, symbol, decimals, kind, payment_format, received_symbol
                          FROM transfers WHERE chain = 'fiat'""").fetchall()
    assert {r[4] for r in rows} == {"ACH", "Credit Card", "Wire", "Cheque", "Cash", "Reinvestment"}
    assert all(r[0] == r[1] == r[5] == "USD" and r[2] == 2 and r[3] == r[4].lower() for r in rows)
    bad = con.execute("""SELECT count(*) FROM transfers WHERE chain = 'fiat' AND (
                         NOT regexp_full_match(from_address, '[a-z]+:[0-9A-F]{9}') OR amount <> amount_received
                         OR CAST(amount AS VARCHAR) <> amount_raw OR NOT regexp_full_match(txid, '[0-9a-f]{32}'))""").fetchall()[0][0]
    assert bad == 0
    # identity as the bank ingester gives it: content md5, and the occurrence among identical rows
    assert con.execute("""SELECT count(*) FROM (SELECT txid, list(idx ORDER BY idx) AS k FROM transfers
                          WHERE chain = 'fiat' GROUP BY txid) WHERE k <> range(0, len(k))""").fetchall() == [(0,)]
