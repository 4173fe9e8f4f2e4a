"""The ground truth names every planted pattern, and every member it names is in the store."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from heuristics.ads import read_fee_schedule
from tracer.ingest.evm.mapper import transfer_words


def patterns(truth, kind=None):
    return [p for p in truth["patterns"] if kind is None or p["type"] == kind]


def test_every_planted_pattern_is_named_with_members(world):
    _, _, truth = world
    types = {p["type"] for p in truth["patterns"]}
    assert types >= {"ad_fee_payments", "decoy_payments", "site_sweeps", "victim_earnings", "collection", "peeling_chain",
                     "coinjoin", "exchange_deposit", "ad_author_linking", "ad_payment_linking", "layering",
                     "deposit_address_forwarding", "structuring", "funnel_account", "cycle"}
    for p in truth["patterns"]:
        members = [v for k, v in p.items() if k in ("txids", "addresses", "ads", "transfer_ids", "links")]
        assert any(members), p["id"]


def test_every_member_txid_address_ad_and_transfer_exists(world, con):
    _, _, truth = world
    for p in truth["patterns"]:
        chain = {"ads": "bitcoin"}.get(p["chain"], p["chain"])
        for txid in p.get("txids", []):
            assert con.execute("SELECT count(*) FROM transactions WHERE chain = ? AND txid = ?",
                               [chain, txid]).fetchall()[0][0] == 1, (p["id"], txid)
        for address in p.get("addresses", []):
            table = "addresses" if chain == "bitcoin" else "transfers"
            col = "address" if chain == "bitcoin" else "to_address"
            assert con.execute(f"SELECT count(*) FROM {table} WHERE {col} = ?", [address]).fetchall()[0][0] >= 1, address
        for ad_id in p.get("ads", []):
            assert con.execute("SELECT count(*) FROM ads WHERE ad_id = ?", [ad_id]).fetchall()[0][0] == 1
        for tid in p.get("transfer_ids", []):
            assert con.execute("SELECT is_laundering FROM transfers WHERE chain = 'fiat' AND txid = ?",
                               [tid]).fetchall()[0] == (True,)


def test_every_simulated_address_has_an_owner_in_the_answer_key(world, con):
    _, summary, truth = world
    key = pq.read_table(summary.truth_path.parent / truth["companions"]["addresses"])
    con.register("key", key)
    try:
        missing = con.execute("""SELECT count(*) FROM addresses a LEFT JOIN key k
                                 ON k.chain = a.chain AND k.address = a.address
                                 WHERE k.owner IS NULL AND a.chain = 'bitcoin'""").fetchall()[0][0]
        evm_missing = con.execute("""SELECT count(*) FROM (SELECT from_address a FROM transfers WHERE chain = 'sim-evm'
                                     UNION SELECT to_address FROM transfers WHERE chain = 'sim-evm') t
                                     LEFT JOIN key k ON k.chain = 'sim-evm' AND k.address = t.a
                                     WHERE k.owner IS NULL""").fetchall()[0][0]
    finally:
        con.unregister("key")
    assert missing == 0 and evm_missing == 0
    assert set(key.column("entity").to_pylist()) >= {"operation-1", "exchange:kestrel", "exchange:lumen"}


def test_ad_fees_were_paid_at_the_posting_times_btc_price(world, con):
    _, summary, truth = world
    links = patterns(truth, "ad_payment_linking")[0]["links"]
    # the scrape does not know the payments: only the truth does
    assert con.execute("SELECT count(fee_txid), count(fee_amount) FROM ads").fetchall() == [(0, 0)]
    key = pa.table({"ad_id": list(links), "txid": [v["txid"] for v in links.values()],
                    "fee_sat": [v["fee_sat"] for v in links.values()]})
    con.register("_links", key)
    try:
        # the fee output pays a labelled address of the site, or (a sweeping site) a fresh address that a
        # sweep of several inputs and one output moves into a labelled one
        rows = con.execute("""
            SELECT a.ad_id, a.site, a.location, a.posted_at, t.block_time, o.value, k.fee_sat,
                   coalesce(l.label, ls.label), l.label IS NULL AND s.input_count >= 2 AND s.output_count = 1,
                   o.value / 1e8 * (SELECT usd FROM prices p WHERE p.asset = 'BTC' AND p.time <= t.block_time
                                    ORDER BY p.time DESC LIMIT 1)
            FROM ads a JOIN _links k USING (ad_id) JOIN transactions t ON t.txid = k.txid
            JOIN outputs o ON o.txid = k.txid AND o.value = k.fee_sat
            LEFT JOIN labels l ON l.address = o.address AND l.category = 'shop'
            LEFT JOIN inputs i ON i.prev_txid = o.txid AND i.prev_n = o.n
            LEFT JOIN transactions s ON s.txid = i.txid
            LEFT JOIN outputs so ON so.txid = i.txid
            LEFT JOIN labels ls ON ls.address = so.address AND ls.category = 'shop'
            WHERE l.label IS NOT NULL OR ls.label IS NOT NULL""").fetchall()
    finally:
        con.unregister("_links")
    assert len(rows) == len(links) >= 60
    sweeping = patterns(truth, "ad_payment_linking")[0]["sweeping_site"]
    assert {(site == sweeping, swept) for _, site, *_, swept, _ in rows} == {(True, True), (False, False)}
    schedule = read_fee_schedule(summary.truth_path.parent / truth["companions"]["fee_schedule"]).to_pylist()
    for ad_id, site, location, posted, block_time, value, fee_sat, label, _, usd in rows:
        assert value == fee_sat
        assert 0 < (posted - block_time).total_seconds() <= 900  # the ad appears minutes after its fee
        assert label.endswith("ad payments")
        # the fee is the schedule's for the ad's site, city and time, at the processor's rate (within 0.8 %)
        fees = [r for r in schedule if r["site"] == site and r["location"] in (location.lower(), "*")
                and (r["valid_from"] is None or r["valid_from"] <= posted) and (r["valid_to"] is None or posted < r["valid_to"])]
        fee = min(fees, key=lambda r: r["location"] == "*")["fee_usd"]
        assert abs(usd - fee) <= 0.0081 * fee + 1e-6, (ad_id, usd, fee)


def test_operation_ads_share_phones_and_photos_and_print_a_victim_address(world, con):
    _, _, truth = world
    p = patterns(truth, "ad_author_linking")[0]
    rows = con.execute("SELECT phones, image_hashes, addresses, body FROM ads WHERE ad_id IN ? ",
                       [p["ads"]]).fetchall()
    assert len(rows) == 30
    assert {ph for r in rows for ph in r[0]} <= set(p["phones"])
    assert len({img for r in rows for img in r[1]}) <= 6
    printed = {a for r in rows for a in r[2]}
    victims = {a["bitcoin"]["printed_in_ads"] for a in truth["actors"] if a["id"].startswith("operation-1:victim")}
    assert printed and printed <= victims
    assert all(r[2][0] in r[3] for r in rows if r[2])


def test_peeling_chain_hops_spend_the_previous_remainder(world, con):
    _, _, truth = world
    txids = patterns(truth, "peeling_chain")[0]["txids"]
    hops = txids[1:]
    assert len(hops) == 10
    for prev, nxt in zip(hops, hops[1:]):
        n_in, n_out = con.execute("SELECT input_count, output_count FROM transactions WHERE txid = ?", [nxt]).fetchall()[0]
        assert (n_in, n_out) == (1, 2)
        spent = con.execute("SELECT prev_txid FROM inputs WHERE txid = ?", [nxt]).fetchall()[0][0]
        assert spent == prev
        # the remainder (the larger output) is what the next hop spends
        big = con.execute("SELECT spent_by_txid FROM outputs WHERE txid = ? ORDER BY value DESC LIMIT 1",
                          [prev]).fetchall()[0][0]
        assert big == nxt


def test_the_operations_coinjoin_has_equal_outputs_and_leads_to_an_exchange_deposit(world, con):
    _, _, truth = world
    cj = patterns(truth, "coinjoin")[0]
    (txid,) = cj["txids"]
    n_in, top, count = con.execute("""
        SELECT t.input_count, mode(o.value), count(*) FILTER (WHERE o.value = (SELECT mode(value) FROM outputs
               WHERE txid = t.txid)) FROM transactions t JOIN outputs o USING (txid) WHERE txid = ? GROUP BY ALL""",
                                   [txid]).fetchall()[0]
    assert n_in == cj["participants"] >= 5 and count == n_in
    deposit = [a for a in truth["actors"] if a["id"] == "operation-1:controller"][0]["bitcoin"]["exchange_deposit_address"]
    assert con.execute("""SELECT count(*) FROM outputs o JOIN inputs i ON i.txid = o.txid
                          JOIN outputs m ON m.txid = i.prev_txid AND m.n = i.prev_n
                          WHERE o.address = ? AND m.txid = ?""", [deposit, txid]).fetchall()[0][0] == 1


def test_usdt_logs_decode_to_the_transfers_and_no_balance_goes_negative(con):
    logs = con.execute("""SELECT l.txid, l.topics, l.data, t.from_address, t.to_address, t.amount_raw
                          FROM logs l JOIN transfers t ON t.chain = l.chain AND t.txid = l.txid AND t.idx = l.log_index
                          WHERE l.chain = 'sim-evm'""").fetchall()
    assert len(logs) == con.execute("SELECT count(*) FROM transfers WHERE chain = 'sim-evm'").fetchall()[0][0]
    for _, topics, data, frm, to, raw in logs[::5]:
        assert transfer_words(topics, data) == (frm, to, int(raw))
    negative = con.execute("""
        WITH moves AS (SELECT time, txid, to_address a, amount v FROM transfers WHERE chain = 'sim-evm'
                       UNION ALL SELECT time, txid, from_address, -amount FROM transfers WHERE chain = 'sim-evm'),
             run AS (SELECT a, sum(v) OVER (PARTITION BY a ORDER BY time, v DESC ROWS UNBOUNDED PRECEDING) bal
                     FROM moves)
        SELECT count(*) FROM run WHERE bal < 0 AND a NOT IN (SELECT from_address FROM transfers
              WHERE chain = 'sim-evm' ORDER BY time LIMIT 1)""").fetchall()[0][0]
    assert negative == 0


def test_deposit_address_forwards_equal_amounts_to_the_hot_wallet(world, con):
    _, _, truth = world
    p = patterns(truth, "deposit_address_forwarding")[0]
    dep, hot = p["addresses"]
    into = con.execute("SELECT list(amount ORDER BY amount) FROM transfers WHERE to_address = ?", [dep]).fetchall()[0][0]
    out = con.execute("SELECT list(amount ORDER BY amount) FROM transfers WHERE from_address = ? AND to_address = ?",
                      [dep, hot]).fetchall()[0][0]
    assert into == out and len(out) == 2


def test_fiat_structuring_stays_under_10000_and_the_cycle_closes(world, con):
    _, _, truth = world
    s = patterns(truth, "structuring")[0]["transfer_ids"]
    amounts = con.execute("SELECT amount FROM transfers WHERE chain = 'fiat' AND txid IN ?", [s]).fetchall()
    assert len(amounts) == len(s) >= 8 and all(a < 1_000_000 for (a,) in amounts)
    cycle = patterns(truth, "cycle")[0]
    legs = con.execute("""SELECT from_address, to_address FROM transfers WHERE txid IN ? AND kind = 'wire'
                          ORDER BY time""", [cycle["transfer_ids"]]).fetchall()
    assert len(legs) == 3 and legs[0][0] == legs[-1][1]
    assert con.execute("SELECT count(*) FROM transfers WHERE chain = 'fiat' AND is_laundering").fetchall()[0][0] == \
        len(set(s) | set(patterns(truth, "funnel_account")[0]["transfer_ids"]) | set(cycle["transfer_ids"]))


def test_reports_name_identifiers_that_lead_into_the_world(world, con):
    rows = con.execute("SELECT kind, value, origin FROM report_identifiers ORDER BY ALL").fetchall()
    kinds = {k for k, _, _ in rows}
    assert kinds >= {"bitcoin", "ethereum", "account", "phone"}
    for kind, value, _ in rows:
        if kind == "bitcoin":
            assert con.execute("SELECT count(*) FROM addresses WHERE address = ?", [value]).fetchall()[0][0] == 1
        if kind == "phone":
            assert con.execute("SELECT count(*) FROM ads WHERE list_contains(phones, ?)", [value]).fetchall()[0][0] > 0
        if kind == "account":
            assert con.execute("SELECT count(*) FROM transfers WHERE chain = 'fiat' AND to_address = ?",
                               [value]).fetchall()[0][0] > 0
    assert con.execute("SELECT count(*) FROM reports WHERE narrative LIKE '%HUMAN TRAFFICKING FIN-2020-A008%'"
                       ).fetchall()[0][0] == 2
