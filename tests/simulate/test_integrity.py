"""A simulated store passes the checks an ingested one does: the chain is whole and balanced."""

from __future__ import annotations

from bitcoin.wallet import CBitcoinAddress
from bitcoinlib.encoding import addr_base58_to_pubkeyhash, addr_bech32_to_pubkeyhash

from tracer.codecs.identifiers import validate_address
from tracer.simulate.ledger import FIRST_HEIGHT, subsidy, txid_of

from .conftest import SEED


def one(con, sql):
    return con.execute(sql).fetchall()[0][0]


def test_every_input_resolves_to_an_output(con):
    assert one(con, "SELECT count(*) FROM inputs WHERE prev_txid IS NOT NULL") > 2_000
    missing = one(con, """
        SELECT count(*) FROM inputs i LEFT JOIN outputs o
          ON o.chain = i.chain AND o.txid = i.prev_txid AND o.n = i.prev_n
        WHERE i.chain = 'bitcoin' AND i.prev_txid IS NOT NULL
          AND (o.txid IS NULL OR o.value <> i.value OR o.address IS DISTINCT FROM i.address)""")
    assert missing == 0


def test_inputs_equal_outputs_plus_fee_in_every_transaction(con):
    bad = one(con, """
        WITH i AS (SELECT txid, sum(value) v, count(*) c FROM inputs WHERE chain = 'bitcoin' GROUP BY 1),
             o AS (SELECT txid, sum(value) v, count(*) c FROM outputs WHERE chain = 'bitcoin' GROUP BY 1)
        SELECT count(*) FROM transactions t JOIN i USING (txid) JOIN o USING (txid)
        WHERE t.chain = 'bitcoin' AND NOT t.is_coinbase
          AND (i.v <> o.v + t.fee OR t.fee <= 0 OR i.c <> t.input_count OR o.c <> t.output_count)""")
    assert bad == 0
    assert one(con, "SELECT count(*) FROM outputs WHERE chain = 'bitcoin' AND value < 0") == 0


def test_no_coin_is_spent_twice_and_spent_by_points_back(con):
    twice = one(con, """SELECT count(*) FROM (SELECT prev_txid, prev_n FROM inputs
                        WHERE prev_txid IS NOT NULL GROUP BY ALL HAVING count(*) > 1)""")
    assert twice == 0
    mismatched = one(con, """
        SELECT count(*) FROM outputs o LEFT JOIN inputs i ON i.prev_txid = o.txid AND i.prev_n = o.n
        WHERE o.chain = 'bitcoin' AND (o.spent_by_txid IS DISTINCT FROM i.txid OR o.spent_by_n IS DISTINCT FROM i.n)""")
    assert mismatched == 0
    assert one(con, "SELECT count(*) FROM outputs WHERE script_type = 'nulldata' AND spent_by_txid IS NOT NULL") == 0


def test_inputs_only_spend_outputs_that_came_earlier_in_the_chain(con):
    later = one(con, """
        SELECT count(*) FROM inputs i
        JOIN transactions s ON s.txid = i.txid JOIN transactions p ON p.txid = i.prev_txid
        WHERE (p.block_height, p.position) >= (s.block_height, s.position)""")
    assert later == 0


def test_coinbases_claim_at_most_subsidy_plus_fees_and_mature_before_spending(con):
    rows = con.execute("""
        SELECT t.block_height, o.v, coalesce(f.fees, 0) FROM transactions t
        JOIN (SELECT txid, sum(value) v FROM outputs GROUP BY 1) o USING (txid)
        LEFT JOIN (SELECT block_height, sum(fee) fees FROM transactions WHERE NOT is_coinbase GROUP BY 1) f
          USING (block_height)
        WHERE t.chain = 'bitcoin' AND t.is_coinbase AND t.block_height > (
            SELECT min(block_height) FROM transactions WHERE chain = 'bitcoin')""").fetchall()
    assert len(rows) > 100
    assert all(v <= subsidy(h) + fees for h, v, fees in rows)
    # the opening allocation in the first block is the one documented exception to maturity
    early = one(con, """
        SELECT count(*) FROM inputs i JOIN transactions p ON p.txid = i.prev_txid AND p.is_coinbase
        WHERE p.block_height > (SELECT min(height) FROM blocks WHERE chain = 'bitcoin')
          AND i.block_height < p.block_height + 100""")
    assert early == 0


def test_blocks_chain_from_height_one_million_and_count_their_transactions(con):
    rows = con.execute("""SELECT height, hash, prev_hash, tx_count, time FROM blocks
                          WHERE chain = 'bitcoin' ORDER BY height""").fetchall()
    assert rows[0][0] == FIRST_HEIGHT
    for (h0, hash0, _, _, t0), (h1, _, prev1, _, t1) in zip(rows, rows[1:]):
        assert h1 == h0 + 1 and prev1 == hash0 and t1 > t0
    wrong = one(con, """
        SELECT count(*) FROM blocks b JOIN (SELECT block_hash, count(*) n, max(position) mp,
               sum(CASE WHEN is_coinbase THEN 1 ELSE 0 END) cb, min(CASE WHEN is_coinbase THEN position END) cbp
               FROM transactions WHERE chain = 'bitcoin' GROUP BY 1) t ON t.block_hash = b.hash
        WHERE b.tx_count <> t.n OR t.mp <> t.n - 1 OR t.cb <> 1 OR t.cbp <> 0""")
    assert wrong == 0
    assert one(con, "SELECT count(DISTINCT height_source) FROM blocks WHERE chain = 'bitcoin'") == 1
    assert one(con, "SELECT any_value(height_source) FROM blocks WHERE chain = 'bitcoin'") == "simulate"


def test_txids_are_the_seeded_hashes_and_cannot_meet_mainnet(con):
    first = con.execute("""SELECT txid FROM transactions WHERE chain = 'bitcoin' AND is_coinbase
                           ORDER BY block_height LIMIT 1""").fetchall()[0][0]
    assert first == txid_of(SEED, 0)
    assert one(con, "SELECT count(*) FROM transactions WHERE chain = 'bitcoin' AND NOT regexp_full_match(txid, '[0-9a-f]{64}')") == 0
    assert one(con, "SELECT min(block_height) FROM transactions WHERE chain = 'bitcoin'") == FIRST_HEIGHT


def test_addresses_are_valid_mainnet_encodings_of_their_script_type(con):
    rows = con.execute("""SELECT script_type, address FROM addresses WHERE chain = 'bitcoin'
                          ORDER BY address_id""").fetchall()
    assert {r[0] for r in rows} == {"p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"}
    prefix = {"p2pkh": "1", "p2sh": "3", "p2wpkh": "bc1q", "p2wsh": "bc1q", "p2tr": "bc1p"}
    length = {"p2wpkh": 42, "p2wsh": 62, "p2tr": 62}
    for script_type, address in rows[::7]:
        assert address.startswith(prefix[script_type])
        assert validate_address("bitcoin", address)[0] == address
        if script_type in length:
            assert len(address) == length[script_type]
            decoded = addr_bech32_to_pubkeyhash(address, include_witver=True, as_hex=True)
            assert decoded.startswith({"p2wpkh": "0014", "p2wsh": "0020", "p2tr": "5120"}[script_type])
        else:
            assert len(addr_base58_to_pubkeyhash(address, as_hex=True)) == 40
        if script_type != "p2tr":  # python-bitcoinlib predates Bech32m
            assert type(CBitcoinAddress(address)).__name__.lower().startswith(script_type)


def test_address_ids_are_dense_in_order_of_first_sight(con):
    n, lo, hi, distinct = con.execute("""SELECT count(*), min(address_id), max(address_id), count(DISTINCT address)
                                         FROM addresses WHERE chain = 'bitcoin'""").fetchall()[0]
    assert (lo, hi, distinct) == (1, n, n)  # ids start at 1, as ingest numbers them
    unsorted = one(con, """
        WITH f AS (SELECT o.address, min(t.block_height * 1e9 + t.position * 1e4 + o.n) k
                   FROM outputs o JOIN transactions t USING (txid) WHERE o.address IS NOT NULL GROUP BY 1)
        SELECT count(*) FROM (SELECT a.address_id, row_number() OVER (ORDER BY f.k) AS r
                              FROM addresses a JOIN f USING (address)) WHERE address_id <> r""")
    assert unsorted == 0
    assert one(con, "SELECT count(*) FROM outputs WHERE address IS NOT NULL AND address NOT IN (SELECT address FROM addresses)") == 0


def test_sizes_weights_and_fee_rates_are_plausible(con):
    bad = one(con, """SELECT count(*) FROM transactions WHERE chain = 'bitcoin'
                      AND (weight < size OR weight > 4 * size OR size < 60 OR weight > 400000)""")
    assert bad == 0
    lo, med, hi = con.execute("""SELECT min(r), median(r), max(r) FROM (SELECT fee / ceil(weight / 4) r
                                 FROM transactions WHERE chain = 'bitcoin' AND NOT is_coinbase)""").fetchall()[0]
    assert 0.5 <= lo and 5 <= med <= 30 and hi < 1_000


def test_every_row_carries_the_simulate_run(world, con):
    _, summary, _ = world
    assert con.execute("SELECT source, status FROM ingest_runs WHERE run_id = ?", [summary.run_id]).fetchall()[0] == (
        "simulate", "ok")
    for table in ("blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "labels", "ads",
                  "reports", "report_identifiers", "prices", "logs", "evm_tokens"):
        assert one(con, f"SELECT count(*) FROM {table}") > 0, table
        assert one(con, f"SELECT count(*) FROM {table} WHERE run_id IS DISTINCT FROM {summary.run_id}") == 0, table
