"""Bank transfers: AMLworld and AMLSim formats, mapped CSV, bad rows, re-runs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracer
from tracer.errors import IngestError
from tracer.ingest.human.bank import AMLSIM_COLUMNS, ColumnMap, ingest_bank

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
AML = FIXTURES / "aml"


def test_amlworld_duplicate_account_header_maps_sender_and_receiver(store):
    summary = ingest_bank(store, AML / "amlworld-small.csv")
    assert summary["format"] == "amlworld"
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (12, 12, 0)
    row = store.query("SELECT from_address, to_address, amount, amount_raw, asset, symbol, decimals, time, kind "
                      "FROM transfers WHERE source_line = 10")[0]
    # line 10: From Bank 012 / Account 8000EC280 -> To Bank 02835 / Account 8017BF800, 7.66 USD by card
    assert row[:7] == ("012:8000EC280", "02835:8017BF800", Decimal(766), "766", "US Dollar", "USD", 2)
    assert str(row[7]) == "2022-09-01 00:26:00" and row[8] == "credit card"


def test_amlworld_amounts_are_exact_cents_and_satoshi(store):
    ingest_bank(store, AML / "amlworld-small.csv")
    assert store.scalar("SELECT sum(amount) FROM transfers WHERE symbol = 'USD'") == Decimal(
        369734 + 1 + 1467557 + 280697 + 3668297 + 616244 + 1426 + 1186 + 766 + 465783 + 695947)
    assert store.query("SELECT amount, decimals FROM transfers WHERE symbol = 'BTC'") == [(Decimal(291233), 8)]
    # cross-currency: paid 6959.47 USD, received 1,000,000.00 Yen
    assert store.query("SELECT amount, amount_received, received_asset, received_symbol FROM transfers "
                       "WHERE source_line = 13") == [(Decimal(695947), Decimal(100000000), "Yen", "JPY")]
    assert store.scalar("SELECT typeof(amount) FROM transfers LIMIT 1") == "DECIMAL(38,0)"


def test_amlworld_ground_truth_is_kept(store):
    ingest_bank(store, AML / "amlworld-small.csv")
    assert store.query("SELECT source_line FROM transfers WHERE is_laundering ORDER BY source_line") == [(11,), (13,)]
    assert store.scalar("SELECT count(*) FROM transfers WHERE NOT is_laundering") == 10


def test_amlsim_transactions_take_bank_and_currency_from_accounts(store):
    summary = ingest_bank(store, AML / "amlsim" / "transactions.csv", accounts=AML / "amlsim" / "accounts.csv")
    assert summary["format"] == "amlsim" and summary["loaded"] == 6
    rows = store.query("SELECT txid, from_address, to_address, amount, symbol, is_laundering, alert_id "
                       "FROM transfers ORDER BY source_line")
    assert rows[0] == ("amlsim:1", "bank_a:17", "bank_b:435", Decimal(18677), "USD", False, None)
    assert rows[1][4] == "EUR"  # account 603 reports in EUR
    assert [r[6] for r in rows if r[5]] == ["7", "7", "7"]  # the SAR cycle 212 -> 886 -> 90 -> 212
    assert store.scalar("SELECT sum(amount) FROM transfers WHERE is_laundering") == Decimal(12105 + 11894 + 11602)


def test_amlsim_columns_match_its_schema():
    import json

    schema = json.loads((AML / "amlsim" / "schema.json").read_text())
    assert [c["name"] for c in schema["transaction"]] == AMLSIM_COLUMNS


def test_bad_rows_are_quarantined_with_line_and_reason_and_good_rows_load(store):
    summary = ingest_bank(store, AML / "amlworld-bad.csv")
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (10, 3, 7)
    assert summary["reasons"] == {
        "bad date": 1, "negative amount": 1, "amount is not a number": 1, "unknown currency": 1,
        "amount finer than the currency unit": 1, "wrong number of fields": 1, "broken encoding": 1}
    reasons = dict(store.query("SELECT position, reason FROM quarantine"))
    assert reasons == {
        "line 3": "bad date: '2022/13/01 00:20'",
        "line 4": "negative amount: '-5.00 / -5.00'",  # paid / received
        "line 5": "amount is not a number: 'twelve / 12.50'",
        "line 6": "unknown currency: 'Doubloon / Doubloon'",
        "line 7": "amount finer than the currency unit: '12.505 / 12.505'",
        "line 8": "wrong number of fields: 10, expected 11",
        "line 10": "broken encoding: not valid UTF-8",
    }
    assert store.scalar("SELECT DISTINCT source FROM quarantine").endswith("amlworld-bad.csv")
    assert store.query("SELECT source_line FROM transfers ORDER BY source_line") == [(2,), (9,), (11,)]
    counts = store.scalar("SELECT row_counts FROM ingest_runs")
    assert '"quarantined: bad date": 1' in counts and '"transfers": 3' in counts


def test_rerunning_a_bank_ingest_adds_nothing(store):
    ingest_bank(store, AML / "amlworld-bad.csv")
    again = ingest_bank(store, AML / "amlworld-bad.csv")
    assert again["loaded"] == 0 and again["already_stored"] == 3
    assert store.count("transfers") == 3
    assert store.count("quarantine") == 7


def test_small_chunks_give_the_same_rows_and_lines(store, tmp_path: Path):
    ingest_bank(store, AML / "amlworld-bad.csv", chunk_bytes=200)
    assert store.query("SELECT source_line FROM transfers ORDER BY source_line") == [(2,), (9,), (11,)]
    assert store.count("quarantine") == 7


def test_mapped_csv_with_quoted_fields(store, tmp_path: Path):
    path = tmp_path / "export.csv"
    path.write_text(
        'id,booked,sender,receiver,value,ccy,memo\n'
        'T1,2024-03-01 10:00:00,DE89370400440532013000,GB82WEST12345698765432,"1,000.00",EUR,"rent"\n'
        'T2,2024-03-02 11:30:00,DE89370400440532013000,GB82WEST12345698765432,250.10,EUR,"two\nlines"\n'
        'T3,2024-03-03 09:15:00,DE89370400440532013000,GB82WEST12345698765432,99.5,EUR,x\n'
    )
    cmap = ColumnMap.from_dict({"txid": "id", "time": "booked", "from_account": "sender", "to_account": "receiver",
                                "amount": "value", "currency": "ccy", "from_bank_value": "iban",
                                "to_bank_value": "iban"})
    summary = ingest_bank(store, path, mapping=cmap)
    assert (summary["loaded"], summary["quarantined"]) == (2, 1)
    assert store.query("SELECT txid, source_line, from_address, amount FROM transfers ORDER BY source_line") == [
        ("mapped:T2", 3, "iban:DE89370400440532013000", Decimal(25010)),
        ("mapped:T3", 5, "iban:DE89370400440532013000", Decimal(9950))]
    assert store.query("SELECT position, reason FROM quarantine") == [
        ("line 2", "amount is not a number: '1,000.00 / '")]


def test_quoted_newline_is_never_split_by_a_chunk_boundary(store, tmp_path: Path):
    path = tmp_path / "memo.csv"
    rows = "".join(f'T{i},2024-03-01 10:00:00,A,B,1.{i % 100:02d},EUR,"line one\nline {i}"\n' for i in range(40))
    path.write_text("id,booked,sender,receiver,value,ccy,memo\n" + rows)
    cmap = ColumnMap.from_dict({"txid": "id", "time": "booked", "from_account": "sender", "to_account": "receiver",
                                "amount": "value", "currency": "ccy"})
    summary = ingest_bank(store, path, mapping=cmap, chunk_bytes=100)
    assert (summary["loaded"], summary["quarantined"]) == (40, 0)
    assert store.query("SELECT source_line FROM transfers WHERE txid = 'mapped:T39'") == [(80,)]  # records start on even lines


def test_unknown_layout_without_mapping_is_refused(store, tmp_path: Path):
    path = tmp_path / "odd.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(IngestError) as err:
        ingest_bank(store, path)
    assert "column mapping" in str(err.value) and err.value.position == "line 1"
    assert store.count("transfers") == 0


def test_empty_file_is_refused_naming_it(store, tmp_path: Path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(IngestError, match="empty file"):
        ingest_bank(store, tmp_path / "empty.csv")


def test_mapping_yaml_with_unknown_key_is_refused(tmp_path: Path):
    path = tmp_path / "map.yaml"
    path.write_text("time: t\nfrom_account: a\nto_account: b\namount: x\ncurrency: c\ncolour: red\n")
    with pytest.raises(IngestError, match="unknown mapping keys"):
        ColumnMap.from_yaml(path)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**15), st.integers(0, 99)), min_size=1, max_size=20))
def test_any_two_decimal_amount_loads_as_exact_cents(tmp_path_factory, amounts):
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "prop.csv"
    lines = [("Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
             "Payment Currency,Payment Format,Is Laundering")]
    for units, cents in amounts:
        text = f"{units}.{cents:02d}"
        lines.append(f"2022/09/01 00:20,1,A,2,B,{text},Euro,{text},Euro,Wire,0")
    path.write_text("\n".join(lines) + "\n")
    with tracer.open_store(folder / "prop.duckdb") as s:
        ingest_bank(s, path)
        got = [r[0] for r in s.query("SELECT amount FROM transfers ORDER BY source_line")]
    assert got == [Decimal(units * 100 + cents) for units, cents in amounts]


def test_a_crash_keeps_committed_chunks_and_the_rerun_completes_without_duplicates(store):
    calls = []

    def crash_after_first_chunk(done: int, total: int, rows: int) -> None:
        calls.append(done)
        if len(calls) == 1:
            raise KeyboardInterrupt("power cut")

    with pytest.raises(KeyboardInterrupt):
        ingest_bank(store, AML / "amlworld-small.csv", chunk_bytes=400, progress=crash_after_first_chunk)
    first = store.count("transfers")
    assert 0 < first < 12  # the first chunk was committed, the rest not
    assert store.scalar("SELECT position FROM checkpoints WHERE source = 'bank'").startswith("byte ")
    again = ingest_bank(store, AML / "amlworld-small.csv", chunk_bytes=400)
    assert again["resumed_at_line"] == 2 + first  # continues after the last committed chunk
    assert again["loaded"] == 12 - first and again["read"] == 12 - first
    assert store.count("transfers") == 12
    assert store.scalar("SELECT count(DISTINCT source_line) FROM transfers") == 12


def test_crlf_line_endings_load_the_same_rows(store, tmp_path: Path):
    crlf = tmp_path / "windows.csv"
    crlf.write_bytes((AML / "amlworld-small.csv").read_bytes().replace(b"\n", b"\r\n"))
    summary = ingest_bank(store, crlf)
    assert (summary["loaded"], summary["quarantined"]) == (12, 0)
    assert store.query("SELECT is_laundering, payment_format FROM transfers WHERE source_line = 13") == [(True, "Wire")]


def test_mapping_file_with_positional_columns(store, tmp_path: Path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("time: '#0'\ntime_format: '%d.%m.%Y'\nfrom_account: '#1'\nto_account: '#2'\n"
                       "amount: '#3'\ndefault_currency: CHF\nfrom_bank_value: ubs\nto_bank_value: ubs\n")
    data = tmp_path / "konto.csv"
    data.write_text("Datum,Konto,Konto,Betrag\n01.02.2024, CH1 , CH2 , 12.30\n31.02.2024,CH1,CH2,1\n")
    summary = ingest_bank(store, data, mapping=ColumnMap.from_yaml(mapping))
    assert (summary["loaded"], summary["quarantined"]) == (1, 1)
    assert store.query("SELECT from_address, to_address, amount, symbol, CAST(time AS VARCHAR) FROM transfers") == [
        ("ubs:CH1", "ubs:CH2", Decimal(1230), "CHF", "2024-02-01 00:00:00")]
    assert store.scalar("SELECT reason FROM quarantine") == "bad date: '31.02.2024'"
