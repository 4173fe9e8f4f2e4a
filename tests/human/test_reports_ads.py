"""Reports (SAR/STR/tips) and ads: identifiers from fields and narratives, bad records, re-runs."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tracer.errors import IngestError
from tracer.ingest.human.ads import ingest_ads
from tracer.ingest.human.reports import ingest_reports

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "human"


def test_sar_identifiers_come_from_fields_and_narrative(store):
    summary = ingest_reports(store, FIXTURES / "reports.jsonl")
    assert (summary["loaded"], summary["identifiers"]) == (3, 13)
    sar = store.query("SELECT kind, filer, filed_at, subjects, amount, currency, accounts FROM reports "
                      "WHERE report_id = 'SAR-2024-0001'")[0]
    assert sar[:2] == ("SAR", "First Example Bank") and str(sar[2]) == "2024-02-14 00:00:00"
    assert sar[3:] == (["Jane Roe", "Northside Massage LLC"], Decimal("48250.00"), "USD", ["0215:8031A4F10"])
    assert json.loads(store.scalar("SELECT identifiers FROM reports WHERE report_id = 'SAR-2024-0001'")) == {
        "account": ["0215:8031A4F10"], "bitcoin": ["bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"],
        "email": ["jane.roe@example.com"], "phone": ["+12025550143"]}
    narrative = store.query("SELECT kind, value FROM report_identifiers WHERE report_id = 'STR-2024-0107' "
                            "AND origin = 'narrative' ORDER BY kind")
    assert narrative == [("bitcoin", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
                         ("ethereum", "0x983a81ca6fb1e441266d2fbcb7d8e530ac2e05a2"),
                         ("iban", "DE89370400440532013000"),
                         ("tron", "TEAqwfMhXLaomXhZ8KeMhx3njGmQEDnsUR")]
    # a Taproot (Bech32m) address in a tip's narrative
    assert store.scalar("SELECT value FROM report_identifiers WHERE report_id = 'TIP-17' AND kind = 'bitcoin'") == \
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"


def test_bad_reports_and_identifiers_are_quarantined_and_rerun_adds_nothing(store):
    first = ingest_reports(store, FIXTURES / "reports.jsonl")
    assert (first["rejected_reports"], first["invalid_identifiers"]) == (5, 1)
    assert first["reasons"] == {"bad date": 1, "missing report_id": 1, "kind must be SAR, STR or tip": 1,
                                "bad amount": 1, "not JSON": 1, "invalid bitcoin identifier": 1}
    reasons = dict(store.query("SELECT position, reason FROM quarantine"))
    assert reasons["line 4"] == "bad date: not an ISO-8601 time: '2024-13-01'"
    assert reasons["line 5"] == "missing report_id"
    assert reasons["line 6"] == "kind must be SAR, STR or tip: 'memo'"
    assert reasons["line 7"] == "bad amount: negative amount: '-10'"
    assert reasons["line 8"].startswith("not JSON")
    assert "Base58Check checksum mismatch" in reasons["line 3 (bitcoin)"]
    again = ingest_reports(store, FIXTURES / "reports.jsonl")
    assert (again["loaded"], again["identifiers"]) == (0, 0)
    assert (store.count("reports"), store.count("report_identifiers"), store.count("quarantine")) == (3, 13, 6)


def test_reports_from_csv_with_semicolon_lists(store, tmp_path: Path):
    path = tmp_path / "str.csv"
    path.write_text('report_id,kind,filer,filed_at,subjects,phone,email,amount,currency,narrative\n'
                    'STR-9,STR,Bank B,2024-05-01,"A. Person;B. Person",+14155552671;(202) 555-0143,'
                    'X@Example.com,100.10,EUR,"see GB82 WEST 1234 5698 7654 32"\n')
    assert ingest_reports(store, path)["loaded"] == 1
    assert store.query("SELECT kind, value, origin FROM report_identifiers ORDER BY kind, value") == [
        ("email", "x@example.com", "field"), ("iban", "GB82WEST12345698765432", "narrative"),
        ("phone", "+12025550143", "field"), ("phone", "+14155552671", "field")]
    assert store.scalar("SELECT subjects FROM reports") == ["A. Person", "B. Person"]


def test_ads_normalise_phones_extract_addresses_and_keep_the_fee(store):
    summary = ingest_ads(store, FIXTURES / "ads.csv")
    assert (summary["loaded"], summary["quarantined"]) == (2, 4)
    assert summary["reasons"] == {"bad date": 1, "invalid phone": 1, "bad number": 2}
    ad = store.query("SELECT posted_at, posted_offset, price, currency, phones, addresses, lat, lon, "
                     "fee_chain, fee_txid, fee_amount, image_hashes FROM ads WHERE ad_id = 'A-1001'")[0]
    assert str(ad[0]) == "2016-03-02 03:15:00" and ad[1] == "-05:00"  # 22:15 EST is 03:15 UTC
    assert ad[2:6] == (Decimal("150.00"), "USD", ["+12025550143"], ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"])
    assert ad[6:] == (38.9072, -77.0369, "bitcoin",
                      "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16", Decimal(1000000),
                      ["d41d8cd98f00b204e9800998ecf8427e"])
    # a phone and an e-mail only in the body are found too
    assert store.query("SELECT phones, emails FROM ads WHERE ad_id = 'A-1002'") == [
        (["+442079460958"], ["lina.k@example.org"])]


def test_bad_ads_are_quarantined_with_line_and_reason(store):
    ingest_ads(store, FIXTURES / "ads.csv")
    assert dict(store.query("SELECT position, reason FROM quarantine")) == {
        "line 4": "bad date: time without a time zone: '2016-03-02 10:00'",
        "line 5": "invalid phone: '12': not a valid phone number for its region (libphonenumber)",
        "line 6": "bad number: latitude 95.0 outside [-90, 90]",
        "line 7": "bad number: negative amount: '-20'"}
    again = ingest_ads(store, FIXTURES / "ads.csv")
    assert again["loaded"] == 0 and store.count("ads") == 2 and store.count("quarantine") == 4


def test_default_time_zone_places_local_posting_times(store):
    ingest_ads(store, FIXTURES / "ads.csv", default_tz="America/New_York")
    assert str(store.scalar("SELECT posted_at FROM ads WHERE ad_id = 'A-1003'")) == "2016-03-02 15:00:00"


def test_pii_can_be_stored_only_as_salted_hashes(store):
    ingest_ads(store, FIXTURES / "ads.csv", hash_pii=True, salt="case-17")
    phones, emails, hashed = store.query("SELECT phones, emails, pii_hashed FROM ads WHERE ad_id = 'A-1002'")[0]
    assert hashed is True
    assert phones == ["sha256:" + hashlib.sha256(b"case-17+442079460958").hexdigest()]
    assert emails == ["sha256:" + hashlib.sha256(b"case-17lina.k@example.org").hexdigest()]
    assert store.scalar("SELECT count(*) FROM ads WHERE list_contains(phones, '+442079460958')") == 0


def test_hashing_without_a_salt_is_refused(store):
    with pytest.raises(IngestError, match="salt"):
        ingest_ads(store, FIXTURES / "ads.csv", hash_pii=True)
    assert store.count("ads") == 0


def test_ads_from_json_lines(store, tmp_path: Path):
    path = tmp_path / "ads.jsonl"
    path.write_text(json.dumps({"site": "s.test", "ad_id": "9", "posted_at": "2017-01-01T00:00:00+00:00",
                                "phones": ["+1 415 555 2671"], "body": "USDT only: TEAqwfMhXLaomXhZ8KeMhx3njGmQEDnsUR",
                                "image_hashes": ["aa", "bb"]}) + "\n{broken\n")
    summary = ingest_ads(store, path)
    assert (summary["loaded"], summary["quarantined"]) == (1, 1)
    assert store.query("SELECT phones, addresses, image_hashes FROM ads") == [
        (["+14155552671"], ["TEAqwfMhXLaomXhZ8KeMhx3njGmQEDnsUR"], ["aa", "bb"])]
