"""tracer.lookup on a store of real Bitcoin blocks, a real TagPack and a real bank sample.

Every expected value is either a known fact of the Bitcoin blockchain (block 9 coinbase, block 170) or
computed in the test by a different SQL route than the one lookup takes.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

import tracer
from tests.dashboard.known import BLOCK_170_TX, HAL, SATOSHI
from tracer import lookup


@pytest.fixture(scope="module")
def store(built_store):
    s = tracer.open_store(built_store, read_only=True)
    yield s
    s.close()


def test_satoshis_totals_equal_his_outputs_and_inputs(store):
    act = lookup.address_activity(store, "bitcoin", SATOSHI)
    [btc] = act.totals
    received = store.scalar("SELECT sum(value) FROM outputs WHERE chain = 'bitcoin' AND address = ?", [SATOSHI])
    sent = store.scalar("SELECT sum(value) FROM inputs WHERE chain = 'bitcoin' AND address = ?", [SATOSHI])
    unspent = store.scalar("SELECT sum(value) FROM outputs WHERE address = ? AND spent_by_txid IS NULL", [SATOSHI])
    # 50 BTC coinbase (block 9) + change of 40, 30, 29, 28 and 18 BTC (blocks 170, 181, 182, 183, 248)
    assert (btc.symbol, btc.decimals) == ("BTC", 8)
    assert btc.received == received == 19_500_000_000
    assert btc.sent == sent == 17_700_000_000
    assert btc.balance == unspent == 1_800_000_000
    assert (btc.received_count, btc.sent_count) == (6, 5)
    assert act.transaction_count == 6 and len(act.transactions) == 6
    assert act.labels == []


def test_satoshi_paid_hal_finney_ten_bitcoin_in_block_170(store):
    act = lookup.address_activity(store, "bitcoin", SATOSHI)
    tx = next(t for t in act.transactions if t.txid == BLOCK_170_TX)
    assert tx.block_height == 170
    assert (tx.received, tx.sent, tx.net, tx.direction) == (4_000_000_000, 5_000_000_000, -1_000_000_000, "both")
    assert [p.address for p in tx.counterparties] == [HAL]   # his own change output is not a counterparty
    coinbase = act.transactions[-1]
    assert (coinbase.block_height, coinbase.received, coinbase.sent) == (9, 5_000_000_000, 0)
    assert [(p.address, p.note) for p in coinbase.counterparties] == [(None, "coinbase")]


def test_hal_finney_sees_satoshi_as_the_payer(store):
    act = lookup.address_activity(store, "bitcoin", HAL)
    tx = next(t for t in act.transactions if t.txid == BLOCK_170_TX)
    assert (tx.received, tx.sent, tx.direction) == (1_000_000_000, 0, "in")
    assert [p.address for p in tx.counterparties] == [SATOSHI]


def test_first_and_last_seen_are_the_block_times_of_the_address_transactions(store):
    act = lookup.address_activity(store, "bitcoin", SATOSHI)
    first, last = store.con.execute(
        "SELECT min(block_time), max(block_time) FROM transactions WHERE txid IN "
        "(SELECT txid FROM outputs WHERE address = ? UNION SELECT txid FROM inputs WHERE address = ?)",
        [SATOSHI, SATOSHI]).fetchone()
    assert (act.first_seen, act.last_seen) == (first, last)
    assert act.first_seen == dt.datetime(2009, 1, 9, 3, 54, 39)        # block 9
    assert [t.time for t in act.transactions] == sorted((t.time for t in act.transactions), reverse=True)


def test_deepbit_pool_address_carries_its_walletexplorer_label(store):
    address = "1VayNert3x1KzbpzMGt2qdqrAThiRovi8"
    act = lookup.address_activity(store, "bitcoin", address)
    assert [(lb.label, lb.category, lb.actor) for lb in act.labels] == [("DeepBit.net", "service", "deepbitnet")]
    assert act.totals[0].received == store.scalar("SELECT sum(value) FROM outputs WHERE address = ?", [address])
    assert act.totals[0].received == 50_867_877_330


def test_payer_of_crimenet_sees_the_label_on_its_counterparty(store):
    act = lookup.address_activity(store, "bitcoin", "12W9EUFcjHgXu62dxLpBrAUfqp2PKQyvn4")
    tx = next(t for t in act.transactions if t.txid.startswith("c280bd935c9c656b"))
    assert tx.block_height == 413567 and tx.sent == 19_725_402
    parties = {p.address: p.labels for p in tx.counterparties}
    assert parties == {"1MXK3LHnqbjEKavuQLFCXGkNUeaLKy7oGX": ("CrimeNet.biz",), "1QJmk3YK4iDDGPugfewXyEazBryEya52RC": ()}


def test_bank_account_totals_come_from_fiat_transfers_in_cents(store):
    party = store.scalar("SELECT to_address FROM transfers WHERE chain = 'fiat' AND kind = 'ach'")
    act = lookup.address_activity(store, "fiat", party)
    received = store.scalar("SELECT sum(amount) FROM transfers WHERE chain = 'fiat' AND to_address = ?", [party])
    sent = store.scalar("SELECT sum(amount) FROM transfers WHERE chain = 'fiat' AND from_address = ?", [party])
    [usd] = act.totals
    assert (usd.symbol, usd.decimals, usd.received, usd.sent) == ("USD", 2, received, sent)
    assert (usd.received, usd.sent) == (465_783, 695_947)          # 4,657.83 USD in by ACH, 6,959.47 out by wire
    assert {t.direction: [p.address for p in t.counterparties] for t in act.transactions} == {
        "in": [store.scalar("SELECT from_address FROM transfers WHERE kind = 'ach'")],
        "out": [store.scalar("SELECT to_address FROM transfers WHERE kind = 'wire'")],
    }
    assert lookup.find_address(store, f"  {party} ") == ["fiat"]


def test_uint256_token_amount_is_totalled_exactly(tmp_path):
    """A token amount beyond DECIMAL(38,0) is NULL in `amount` and exact in `amount_raw`: it still counts."""
    huge = 2**256 - 1
    with tracer.open_store(tmp_path / "t.duckdb") as s:
        s.append("transfers", pa.table({
            "chain": ["ethereum"] * 2, "asset": ["0x" + "ab" * 20] * 2, "txid": ["0x01", "0x02"], "idx": [0, 0],
            "from_address": ["0x" + "11" * 20, "0x" + "22" * 20], "to_address": ["0x" + "22" * 20, "0x" + "33" * 20],
            "amount": pa.array([None, 5], pa.decimal128(38, 0)), "amount_raw": [str(huge), "5"],
            "time": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], "symbol": ["TKN"] * 2, "decimals": [18] * 2,
        }))
        act = lookup.address_activity(s, "ethereum", "0x" + "22" * 20)
        [tkn] = act.totals
        assert (tkn.received, tkn.sent) == (huge, 5)
        assert {t.txid: (t.received, t.sent) for t in act.transactions} == {"0x01": (huge, 0), "0x02": (0, 5)}
        # EVM addresses are stored lowercase; a checksummed search still finds them
        assert lookup.find_address(s, "0x" + "2" * 40) == ["ethereum"]
        assert lookup.address_activity(s, "ethereum", "0x" + "22" * 20).totals == act.totals


def test_unknown_address_and_chain_are_empty_answers_not_errors(store):
    act = lookup.address_activity(store, "bitcoin", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT")
    assert (act.found, act.chain_known, act.totals, act.transactions, act.first_seen) == (False, True, [], [], None)
    assert lookup.address_activity(store, "dogecoin", SATOSHI).chain_known is False
    assert lookup.find_address(store, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT") == []
    with pytest.raises(ValueError, match="not an address"):
        lookup.address_activity(store, "bitcoin", "   ")


def test_quotes_in_a_searched_address_are_data_not_sql(store):
    """Search text reaches DuckDB as a bound parameter: an injection attempt matches nothing."""
    attack = "x' OR '1'='1"
    assert lookup.find_address(store, attack) == []
    act = lookup.address_activity(store, "bitcoin", attack)
    assert act.found is False and act.transaction_count == 0
    assert lookup.address_activity(store, "bitcoin' OR '1'='1", SATOSHI).found is False


def test_overview_counts_runs_and_daily_activity_match_the_tables(store):
    ov = lookup.store_overview(store)
    for table, n in ov.table_counts.items():
        assert n == store.count(table), table
    assert set(ov.table_counts) == set(lookup.CANONICAL_TABLES)
    assert (ov.table_counts["blocks"], ov.table_counts["transactions"]) == (445, 6975)
    assert [(ch.chain, ch.kind, ch.network) for ch in ov.chains] == [("bitcoin", "utxo", "mainnet"), ("fiat", "fiat", "fiat")]
    assert ov.quarantined == store.count("quarantine")
    by_source = {r.source: r for r in ov.runs}
    btc = by_source["bitcoin"]
    assert btc.status == "ok" and btc.reported["transactions"] == 6975
    assert btc.rows_stored == sum(store.scalar(f"SELECT count(*) FROM {t} WHERE run_id = ?", [btc.run_id])
                                  for t in ("blocks", "transactions", "outputs", "inputs", "addresses"))
    labels = by_source["labels"]
    assert labels.rows_stored == store.scalar("SELECT count(*) FROM labels WHERE run_id = ?", [labels.run_id])
    assert labels.quarantined == store.scalar("SELECT count(*) FROM quarantine WHERE run_id = ?", [labels.run_id])
    per_day = dict(store.query("SELECT CAST(block_time AS DATE), count(*) FROM transactions "
                               "WHERE chain = 'bitcoin' GROUP BY 1"))
    assert {a.day: a.transactions for a in ov.activity if a.chain == "bitcoin"} == per_day
    assert per_day[dt.date(2009, 1, 12)] == 101 and sum(per_day.values()) == 6975
    assert sum(a.transactions for a in ov.activity if a.chain == "fiat") == store.count("transfers")


def test_adding_an_address_to_a_case_writes_the_item_once_and_logs_every_request(store_copy):
    with tracer.open_store(store_copy) as s:
        first = lookup.add_to_case(s, "Operation Nightingale", "address", f"bitcoin:{SATOSHI}", actor="maria")
        again = lookup.add_to_case(s, " operation nightingale ", "address", f"bitcoin:{SATOSHI}", actor="maria")
        other = lookup.add_to_case(s, "Operation Nightingale", "address", f"bitcoin:{HAL}", actor="li")
        assert (first.case_id, first.case_created, first.already_in_case, first.items_in_case) == \
            ("operation-nightingale", True, False, 1)
        assert (again.case_id, again.case_created, again.already_in_case, again.title) == \
            ("operation-nightingale", False, True, "Operation Nightingale")
        assert other.items_in_case == 2
        assert s.query("SELECT case_id, title, created_by FROM cases") == \
            [("operation-nightingale", "Operation Nightingale", "maria")]
        assert s.query("SELECT kind, ref FROM case_items ORDER BY added, ref") == \
            [("address", f"bitcoin:{SATOSHI}"), ("address", f"bitcoin:{HAL}")]
        log = s.query("SELECT actor, action, detail FROM audit_log ORDER BY time")
        assert [(a, b) for a, b, _ in log] == [("maria", "case.add_item")] * 2 + [("li", "case.add_item")]
        assert json.loads(log[1][2]) == {"case_id": "operation-nightingale", "kind": "address",
                                         "ref": f"bitcoin:{SATOSHI}", "case_created": False, "already_in_case": True}
        assert lookup.recent_case_titles(s) == ["Operation Nightingale"]
        with pytest.raises(ValueError, match="title"):
            lookup.add_to_case(s, " -- ", "address", f"bitcoin:{HAL}")
        assert s.count("audit_log") == 3          # the refused request wrote nothing
