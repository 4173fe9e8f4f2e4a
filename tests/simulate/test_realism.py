"""Wallet behaviour falls in the ranges real chains show (sources and ranges: docs/simulator.md)."""

from __future__ import annotations

import pytest

from tracer.simulate.coinjoin import WASABI_DENOMINATION, WHIRLPOOL_POOLS

# ranges documented in docs/simulator.md, "Realism checks"
ADDRESS_REUSE = (0.20, 0.60)
CHANGE_SHARE = (0.60, 0.95)
COINJOIN_SHARE = (0.0005, 0.02)


@pytest.fixture(scope="module")
def kinds(world, con):
    _, summary, truth = world
    folder = summary.truth_path.parent
    con.execute(f"CREATE OR REPLACE TEMP VIEW truth_tx AS SELECT * FROM '{folder / truth['companions']['transactions']}'")
    con.execute(f"CREATE OR REPLACE TEMP VIEW truth_addr AS SELECT * FROM '{folder / truth['companions']['addresses']}'")
    return dict(con.execute("SELECT kind, count(*) FROM truth_tx GROUP BY 1").fetchall())


def test_address_reuse_rate_is_in_the_measured_range(con):
    # share of outputs paying an address that already received before (OXT / BitMEX Research measure)
    rate = con.execute("""
        WITH o AS (SELECT o.address, t.block_height * 1e9 + t.position * 1e4 + o.n AS k
                   FROM outputs o JOIN transactions t USING (txid) WHERE o.chain = 'bitcoin' AND o.address IS NOT NULL),
             f AS (SELECT address, min(k) AS k0 FROM o GROUP BY 1)
        SELECT avg(CASE WHEN o.k > f.k0 THEN 1.0 ELSE 0.0 END) FROM o JOIN f USING (address)""").fetchall()[0][0]
    assert ADDRESS_REUSE[0] <= rate <= ADDRESS_REUSE[1]


def test_change_output_share_is_in_the_expected_range(con, kinds):
    # of ordinary spends (not coinbase, not CoinJoin), how many return change to a wallet that paid in
    share = con.execute("""
        WITH tx AS (SELECT txid FROM truth_tx WHERE kind IN ('payment', 'exchange_deposit', 'batch_payout')),
             ins AS (SELECT DISTINCT i.txid, a.owner FROM inputs i JOIN tx USING (txid)
                     JOIN truth_addr a ON a.chain = 'bitcoin' AND a.address = i.address),
             outs AS (SELECT DISTINCT o.txid, a.owner FROM outputs o JOIN tx USING (txid)
                      JOIN truth_addr a ON a.chain = 'bitcoin' AND a.address = o.address),
             back AS (SELECT DISTINCT txid FROM ins JOIN outs USING (txid, owner))
        SELECT (SELECT count(*) FROM back) / (SELECT count(*) FROM tx)""").fetchall()[0][0]
    assert CHANGE_SHARE[0] <= share <= CHANGE_SHARE[1]


def test_coinjoin_share_is_in_the_measured_range(kinds):
    cj = kinds.get("coinjoin_wasabi", 0) + kinds.get("coinjoin_whirlpool", 0)
    assert cj >= 2
    assert COINJOIN_SHARE[0] <= cj / sum(kinds.values()) <= COINJOIN_SHARE[1]


def test_wasabi_rounds_have_the_shape_detectors_look_for(con, kinds):
    rows = con.execute("""
        SELECT t.txid, t.input_count, list(o.value) FROM truth_tx k JOIN transactions t USING (txid)
        JOIN outputs o USING (txid) WHERE k.kind = 'coinjoin_wasabi' GROUP BY ALL""").fetchall()
    assert rows
    for _, n_in, values in rows:
        top = max(set(values), key=values.count)
        assert n_in >= 10
        assert abs(top - WASABI_DENOMINATION) <= 0.05 * WASABI_DENOMINATION
        assert values.count(top) == n_in  # one mixed output per participant


def test_whirlpool_mixes_have_five_equal_pool_outputs_and_inputs_within_the_margin(con, kinds):
    rows = con.execute("""
        SELECT t.txid, list(DISTINCT o.value), count(DISTINCT o.n), min(i.value), max(i.value), t.input_count
        FROM truth_tx k JOIN transactions t USING (txid) JOIN outputs o USING (txid) JOIN inputs i USING (txid)
        WHERE k.kind = 'coinjoin_whirlpool' GROUP BY ALL""").fetchall()
    assert rows
    for _, values, n_out, lo, hi, n_in in rows:
        assert n_in == 5 and n_out == 5 and len(values) == 1 and values[0] in WHIRLPOOL_POOLS.tolist()
        assert values[0] <= lo and hi <= values[0] + 110_000


def test_most_spends_have_one_input_and_two_outputs_and_script_types_are_mixed(con):
    one_in, two_out = con.execute("""SELECT avg((input_count = 1)::INT), avg((output_count = 2)::INT)
                                     FROM transactions WHERE chain = 'bitcoin' AND NOT is_coinbase""").fetchall()[0]
    assert 0.5 <= one_in <= 0.9 and 0.4 <= two_out <= 0.85
    shares = dict(con.execute("""SELECT script_type, count(*) / sum(count(*)) OVER () FROM outputs
                                 WHERE chain = 'bitcoin' AND script_type <> 'nulldata' GROUP BY 1""").fetchall())
    assert max(shares, key=shares.get) == "p2wpkh"
    assert all(shares[t] > 0.02 for t in ("p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"))


def test_wallets_own_several_addresses_and_exchanges_sweep_deposits(con, kinds):
    per_user = con.execute("""SELECT median(n) FROM (SELECT owner, count(*) n FROM truth_addr
                              WHERE owner_kind = 'user' GROUP BY 1)""").fetchall()[0][0]
    assert per_user >= 3
    assert kinds["exchange_sweep"] > 10 and kinds["consolidation"] > 10 and kinds["whirlpool_tx0"] > 0
