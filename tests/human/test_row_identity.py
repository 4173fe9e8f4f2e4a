"""Nothing lost, nothing counted twice (issue #9): a row is identified by what it says, not by the name
of the file it came in; a key that comes back with other content is refused naming both places; a
file that cannot be read is refused while the files beside it load."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import tracer
from tracer.ingest.csvread import ingest_files
from tracer.ingest.human.ads import ingest_ads
from tracer.ingest.human.bank import ingest_bank
from tracer.ingest.human.reports import ingest_reports
from tracer.ingest.prices import ingest_prices

ROOT = Path(__file__).resolve().parents[2]
AML = ROOT / "fixtures" / "aml"
HUMAN = ROOT / "fixtures" / "human"
SMALL = AML / "amlworld-small.csv"
AMLSIM = AML / "amlsim"


def lines_of(path: Path, *numbers: int) -> str:
    """The header and the given (1-based) lines of a real fixture, as a new file's text."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return lines[0] + "".join(lines[n - 1] for n in numbers)


def counts(summary: dict) -> tuple[int, int, int, int]:
    return summary["read"], summary["loaded"], summary["already_stored"], summary["quarantined"]


def tracer_cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer.cli", "--db", str(db), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


# -- bank: AMLworld rows have no id of their own -------------------------------------------------------

def test_two_bank_files_with_the_same_name_both_load(store, tmp_path: Path):
    (tmp_path / "march").mkdir()
    (tmp_path / "april").mkdir()
    (tmp_path / "march" / "transactions.csv").write_text(lines_of(SMALL, 2, 3))
    # the two laundering transfers of the fixture (lines 11 and 13), lines 2 and 3 of their own file
    (tmp_path / "april" / "transactions.csv").write_text(lines_of(SMALL, 11, 13))
    assert counts(ingest_bank(store, tmp_path / "march" / "transactions.csv")) == (2, 2, 0, 0)
    assert counts(ingest_bank(store, tmp_path / "april" / "transactions.csv")) == (2, 2, 0, 0)
    assert store.query("SELECT from_address, to_address, amount, symbol, source_line FROM transfers "
                       "WHERE is_laundering ORDER BY time") == [
        ("070:100428660", "001120:8004ACD50", Decimal(465783), "USD", 2),
        ("001120:8004ACD50", "0011:800BC5D40", Decimal(695947), "USD", 3)]
    assert store.count("transfers") == 4


def test_rerun_of_the_same_bank_file_adds_nothing(store, tmp_path: Path):
    assert counts(ingest_bank(store, SMALL)) == (12, 12, 0, 0)
    assert counts(ingest_bank(store, SMALL)) == (12, 0, 12, 0)
    # the same file downloaded again under another name is the same twelve transfers
    (tmp_path / "amlworld-small (1).csv").write_bytes(SMALL.read_bytes())
    assert counts(ingest_bank(store, tmp_path / "amlworld-small (1).csv")) == (12, 0, 12, 0)
    assert store.count("transfers") == 12
    assert store.scalar("SELECT sum(amount) FROM transfers WHERE is_laundering") == Decimal(465783 + 695947)


def test_identical_rows_in_one_file_are_two_transfers_numbered_by_occurrence(store, tmp_path: Path):
    once = tmp_path / "once.csv"
    once.write_text(lines_of(SMALL, 9))  # 11.86 USD, 001:8000EC1E0 to itself, Reinvestment
    twice = tmp_path / "twice.csv"
    twice.write_text(lines_of(SMALL, 9, 10, 9))
    assert counts(ingest_bank(store, once)) == (1, 1, 0, 0)
    # the first 11.86 is the one already stored; the second is a transfer of its own
    assert counts(ingest_bank(store, twice, chunk_bytes=120)) == (3, 2, 1, 0)
    assert store.query("SELECT idx, amount FROM transfers WHERE from_address = '001:8000EC1E0' ORDER BY idx") == [
        (0, Decimal(1186)), (1, Decimal(1186))]
    assert counts(ingest_bank(store, twice)) == (3, 0, 3, 0)
    assert store.count("transfers") == 3


def test_same_transfer_with_another_ground_truth_is_quarantined_with_both_positions(store, tmp_path: Path):
    ingest_bank(store, SMALL)
    relabelled = tmp_path / "relabelled.csv"
    relabelled.write_text(lines_of(SMALL, 13).replace(",Wire,1\n", ",Wire,0\n"))
    summary = ingest_bank(store, relabelled)
    assert counts(summary) == (1, 0, 0, 1)
    assert store.query("SELECT source, position, reason FROM quarantine") == [
        (str(relabelled), "line 2",
         f"the same transfer already stored from {SMALL} line 13 with different content (is_laundering)")]
    assert store.scalar("SELECT is_laundering FROM transfers WHERE amount = 695947") is True


# -- bank: AMLSim rows carry their own id (tran_id) -------------------------------------------------------

def test_amlsim_tran_id_collision_with_different_content_is_quarantined_with_both_positions(store, tmp_path: Path):
    ingest_bank(store, AMLSIM / "transactions.csv", accounts=AMLSIM / "accounts.csv")
    # another simulation's output, also called transactions.csv: tran_id 1 is a different transfer,
    # tran_id 3 the same leg of the SAR cycle
    other = tmp_path / "sim-2" / "transactions.csv"
    other.parent.mkdir()
    other.write_text(lines_of(AMLSIM / "transactions.csv", 4, 2).replace(",186.77,", ",286.77,"))
    summary = ingest_bank(store, other, accounts=AMLSIM / "accounts.csv")
    assert counts(summary) == (2, 0, 1, 1)
    assert store.query("SELECT position, reason FROM quarantine") == [
        ("line 3", f"transfer id amlsim:1 already stored from {AMLSIM / 'transactions.csv'} line 2 "
                   "with different content (amount)")]
    assert store.scalar("SELECT amount FROM transfers WHERE txid = 'amlsim:1'") == Decimal(18677)
    # a namespace of its own keeps the second simulation apart
    apart = ingest_bank(store, other, accounts=AMLSIM / "accounts.csv", dataset="sim-2")
    assert counts(apart) == (2, 2, 0, 0)


def test_rerun_of_the_same_amlsim_file_adds_nothing(store, tmp_path: Path):
    ingest_bank(store, AMLSIM / "transactions.csv", accounts=AMLSIM / "accounts.csv")
    again = ingest_bank(store, AMLSIM / "transactions.csv", accounts=AMLSIM / "accounts.csv")
    assert counts(again) == (6, 0, 6, 0)
    # the same simulation output, copied under another name: its tran_ids are the same transfers
    copy = tmp_path / "sim-7-transactions.csv"
    copy.write_bytes((AMLSIM / "transactions.csv").read_bytes())
    assert counts(ingest_bank(store, copy, accounts=AMLSIM / "accounts.csv")) == (6, 0, 6, 0)
    assert store.count("transfers") == 6 and store.count("quarantine") == 0


# -- reports and ads: report_id, (site, ad_id) -------------------------------------------------------------

def test_report_id_collision_with_different_content_is_quarantined_with_both_positions(store, tmp_path: Path):
    ingest_reports(store, HUMAN / "reports.jsonl")
    first, _, tip = (json.loads(line) for line in (HUMAN / "reports.jsonl").read_text().splitlines()[:3])
    later = tmp_path / "export-2024-03" / "reports.jsonl"
    later.parent.mkdir()
    later.write_text(json.dumps({**first, "amount": "51250.00"}) + "\n" + json.dumps(tip) + "\n")
    summary = ingest_reports(store, later)
    assert counts(summary) == (2, 0, 1, 1) and summary["invalid_identifiers"] == 1  # TIP-17's, as before
    assert store.query("SELECT source, position, reason FROM quarantine WHERE run_id = ? AND position = 'line 1'",
                       [summary["run_id"]]) == [
        (str(later), "line 1",
         f"report_id SAR-2024-0001 already stored from {HUMAN / 'reports.jsonl'} line 1 with different content "
         "(amount)")]
    assert store.scalar("SELECT amount FROM reports WHERE report_id = 'SAR-2024-0001'") == Decimal("48250.00")
    assert store.count("report_identifiers") == 13


def test_same_report_from_a_csv_export_is_already_stored(store, tmp_path: Path):
    ingest_reports(store, HUMAN / "reports.jsonl")
    tip = json.loads((HUMAN / "reports.jsonl").read_text().splitlines()[2])
    path = tmp_path / "tips.csv"
    path.write_text("report_id,kind,filer,filed_at,bitcoin,narrative\n"
                    f"{tip['report_id']},{tip['kind']},{tip['filer']},{tip['filed_at']},{tip['bitcoin']},"
                    f"\"{tip['narrative']}\"\n")
    summary = ingest_reports(store, path)
    # the tip's Bitcoin field is invalid (checksum): quarantined on its own, the tip itself is the stored one
    assert counts(summary) == (1, 0, 1, 0) and summary["invalid_identifiers"] == 1


def test_ad_id_collision_with_different_content_is_quarantined_with_both_positions(store, tmp_path: Path):
    ingest_ads(store, HUMAN / "ads.csv")
    later = tmp_path / "crawl-2" / "ads.csv"
    later.parent.mkdir()
    # the same two ads crawled again; A-1001 now asks 200.00 instead of 150.00
    later.write_text(lines_of(HUMAN / "ads.csv", 2, 3).replace(",150.00,USD,", ",200.00,USD,"))
    summary = ingest_ads(store, later)
    assert counts(summary) == (2, 0, 1, 1)
    assert store.query("SELECT position, reason FROM quarantine WHERE source = ?", [str(later)]) == [
        ("line 2", f"ad example-escorts.test A-1001 already stored from {HUMAN / 'ads.csv'} line 2 "
                   "with different content (price)")]
    assert store.scalar("SELECT price FROM ads WHERE ad_id = 'A-1001'") == Decimal("150.00")


def test_price_collision_names_both_files_and_the_same_price_is_already_stored(store, tmp_path: Path):
    ingest_prices(store, HUMAN / "prices.csv")
    other = tmp_path / "prices.csv"
    other.write_text(lines_of(HUMAN / "prices.csv", 2, 5).replace("1.0052", "1.0061"))
    summary = ingest_prices(store, other)
    assert counts(summary) == (2, 0, 1, 1)
    assert store.query("SELECT position, reason FROM quarantine") == [
        ("line 3", f"price of EUR at 2022-09-01 00:00:00 already stored from {HUMAN / 'prices.csv'} line 5 "
                   "with different content (usd)")]
    # a named provider keeps its own prices beside the unnamed ones
    assert counts(ingest_prices(store, other, provider="ecb")) == (2, 2, 0, 0)


# -- several files: each on its own ------------------------------------------------------------------------

def broken_json(tmp_path: Path, fixture: Path) -> Path:
    """A real fixture saved under the wrong suffix: JSON Lines or CSV named .json is no JSON document."""
    path = tmp_path / (fixture.stem + ".json")
    path.write_bytes(fixture.read_bytes())
    return path


@pytest.mark.parametrize("command, good, bad, loaded, where, why", [
    ("bank", [SMALL, AMLSIM / "transactions.csv"], HUMAN / "prices.csv", 18, "line 1", "unknown CSV layout"),
    ("reports", [HUMAN / "reports.jsonl"], "reports.jsonl", 3, "line 2", "not JSON: Extra data"),
    ("ads", [HUMAN / "ads.csv"], "ads.csv", 2, "line 1", "not JSON: Expecting value"),
    ("prices", [HUMAN / "prices.csv"], HUMAN / "ads.csv", 8, "line 1", "no time column"),
])
def test_bad_file_beside_good_ones_is_refused_and_the_good_ones_load(tmp_path: Path, command, good, bad, loaded,
                                                                     where, why):
    bad = bad if isinstance(bad, Path) else broken_json(tmp_path, HUMAN / bad)
    db = tmp_path / "case.duckdb"
    done = tracer_cli(db, "ingest", command, str(good[0]), str(bad), *map(str, good[1:]), "--json",
                      "--allow-quarantine")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["loaded"] == loaded
    assert summary["read"] == summary["loaded"] + summary["already_stored"] + summary["quarantined"]
    assert [(f["source"], f["position"]) for f in summary["refused_files"]] == [(str(bad), where)]
    assert summary["refused_files"][0]["reason"].startswith(why)
    assert f"file refused: {bad}" in done.stderr
    with tracer.open_store(db) as s:
        assert s.query("SELECT position, left(reason, 14) FROM quarantine WHERE source = ?", [str(bad)]) == [
            (where, "file refused: ")]


def test_quarantine_is_not_repeated_on_rerun(store, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad = [AML / "amlworld-bad.csv", HUMAN / "prices.csv"]
    first = ingest_files(store, ingest_bank, bad)
    assert counts(first) == (10, 3, 0, 7) and len(first["refused_files"]) == 1
    assert store.count("quarantine") == 8
    # the same files again, one named from the working directory
    again = ingest_files(store, ingest_bank, [Path("fixtures/aml/amlworld-bad.csv"), HUMAN / "prices.csv"])
    assert counts(again) == (10, 0, 3, 7) and len(again["refused_files"]) == 1
    assert store.count("quarantine") == 8
    assert store.scalar("SELECT count(DISTINCT source) FROM quarantine") == 2


def test_a_report_file_that_fails_midway_writes_nothing_but_keeps_its_refusals(store, tmp_path: Path):
    path = tmp_path / "reports.jsonl"
    # the fixture plus one report whose amount does not fit the store's DECIMAL(18,2)
    path.write_text((HUMAN / "reports.jsonl").read_text()
                    + json.dumps({"report_id": "SAR-2024-0009", "kind": "SAR", "amount": "1" + "0" * 20}) + "\n")
    summary = ingest_files(store, ingest_reports, [path])
    assert [f["source"] for f in summary["refused_files"]] == [str(path)]
    assert store.count("reports") == 0 and store.count("report_identifiers") == 0
    # what was refused while reading is kept: the rolled-back batch did not take it along
    kept = dict(store.query("SELECT position, reason FROM quarantine WHERE source = ?", [str(path)]))
    assert kept["line 4"] == "bad date: not an ISO-8601 time: '2024-13-01'"
    assert kept["file"].startswith("file refused: ")
    assert len(kept) == 7
