"""The real mainnet blocks of fixtures/bitcoin load with the facts published for them."""

from __future__ import annotations

import pytest

# From fixtures/SOURCES.md (the blocks' published hashes and transaction counts).
RAW_BLOCKS = {
    227835: ("00000000000001aa077d7aa84c532a4d69bdbff519609d1da0835261b7a74eb6", 122),
    227836: ("00000000000000d0dfd4c9d588d325dce4f32c1b31b7c0064cba7025a9b9adcc", 100),
    413567: ("0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069", 1557),
    481829: ("000000000000000000917cba69f69b758fe396c8e30ae97bbcf08c4eb975e726", 2020),
    540107: ("00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab", 230),
    702861: ("000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae", 2500),
}
GENESIS = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
BLOCK_438 = "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"


def test_every_real_block_is_stored_with_its_hash_height_and_tx_count(loaded):
    store, summary = loaded
    assert summary.blocks == 439 + 6
    rows = dict(
        (h, (hash_, n))
        for h, hash_, n in store.query("SELECT height, hash, tx_count FROM blocks WHERE height > 438")
    )
    assert rows == RAW_BLOCKS
    assert store.query("SELECT hash FROM blocks WHERE height = 0") == [(GENESIS,)]
    assert store.query("SELECT hash FROM blocks WHERE height = 438") == [(BLOCK_438,)]
    assert store.scalar("SELECT count(*) FROM blocks WHERE height BETWEEN 0 AND 438") == 439
    # blocks 0..438 hold 446 transactions (fixtures/SOURCES.md); all blocks together 6,975
    assert store.scalar("SELECT count(*) FROM transactions WHERE block_height <= 438") == 446
    assert store.scalar("SELECT count(*) FROM transactions") == 446 + sum(n for _, n in RAW_BLOCKS.values())
    per_block = store.query(
        "SELECT b.hash, b.tx_count, count(t.txid) FROM blocks b JOIN transactions t ON t.block_hash = b.hash "
        "GROUP BY ALL HAVING b.tx_count <> count(t.txid)"
    )
    assert per_block == []


def test_heights_come_from_bip34_or_chaining(loaded):
    store, _ = loaded
    sources = dict(store.query("SELECT height, height_source FROM blocks WHERE height IN (0, 1, 170, 227835, 227836, 702861)"))
    # block 227835 is version 1 (no BIP34 height): its height comes from its child 227836 by chaining
    assert sources == {0: "genesis", 1: "chain", 170: "chain", 227835: "chain", 227836: "bip34", 702861: "bip34"}
    assert store.scalar("SELECT count(*) FROM blocks WHERE height IS NULL") == 0
    assert store.scalar("SELECT count(*) FROM transactions WHERE block_height IS NULL") == 0


def test_block_702861_outputs_sum_to_the_published_total(loaded):
    store, _ = loaded
    n_in, n_out, total = store.query(
        "SELECT (SELECT count(*) FROM inputs WHERE block_height = 702861),"
        "       count(*), sum(value) FROM outputs WHERE block_height = 702861"
    )[0]
    assert (n_in, n_out, total) == (6518, 6015, 2_883_682_728_990)


def test_block_170_payment_resolves_satoshi_paying_hal_finney_10_btc(loaded):
    store, _ = loaded
    txid = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    inputs = store.query("SELECT address, value, prev_txid, prev_n FROM inputs WHERE txid = ?", [txid])
    assert inputs == [
        ("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", 50 * 10**8,
         "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9", 0)
    ]
    outputs = store.query("SELECT n, address, script_type, value FROM outputs WHERE txid = ? ORDER BY n", [txid])
    assert outputs == [
        (0, "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3", "p2pk", 10 * 10**8),
        (1, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "p2pk", 40 * 10**8),
    ]
    assert store.scalar("SELECT fee FROM transactions WHERE txid = ?", [txid]) == 0
    # the block-9 coinbase output it spends is marked spent by it
    assert store.query(
        "SELECT spent_by_txid, spent_by_n FROM outputs WHERE txid = "
        "'0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9' AND n = 0"
    ) == [(txid, 0)]


def test_coinbases_are_flagged_and_have_no_outpoint(loaded):
    store, _ = loaded
    assert store.scalar("SELECT count(*) FROM transactions WHERE is_coinbase") == 445
    assert store.scalar("SELECT count(*) FROM transactions WHERE is_coinbase AND position <> 0") == 0
    assert store.scalar(
        "SELECT count(*) FROM inputs i JOIN transactions t USING (txid) WHERE t.is_coinbase AND i.prev_txid IS NOT NULL"
    ) == 0


def test_every_resolved_input_spends_a_stored_output_of_the_same_value(loaded):
    store, _ = loaded
    bad = store.scalar(
        "SELECT count(*) FROM inputs i JOIN outputs o ON o.txid = i.prev_txid AND o.n = i.prev_n "
        "WHERE i.value <> o.value OR i.address IS DISTINCT FROM o.address OR o.spent_by_txid <> i.txid"
    )
    assert bad == 0
    # where all inputs are known: inputs = outputs + fee, and fees are never negative
    assert store.scalar("SELECT count(*) FROM transactions WHERE fee < 0") == 0
    assert store.scalar(
        "SELECT count(*) FROM transactions t WHERE fee IS NOT NULL AND fee <> "
        "(SELECT sum(value) FROM inputs WHERE txid = t.txid) - (SELECT sum(value) FROM outputs WHERE txid = t.txid)"
    ) == 0


def test_segwit_block_has_distinct_wtxids_and_weights(loaded):
    store, _ = loaded
    witness_txs, weight = store.query(
        "SELECT count(*) FILTER (WHERE txid <> wtxid), sum(weight) FROM transactions WHERE block_height = 702861"
    )[0]
    # 2,065 of block 702861's 2,500 transactions are witness-serialised (fixtures/SOURCES.md)
    assert witness_txs == 2065
    assert weight <= 4_000_000
    assert store.scalar("SELECT count(*) FROM transactions WHERE block_height < 481829 AND txid <> wtxid") == 0


@pytest.mark.parametrize(
    "script_type",
    ["p2pk", "p2pkh", "p2sh", "p2wpkh", "p2wsh", "nulldata"],
)
def test_output_types_seen_in_real_blocks(loaded, script_type):
    store, _ = loaded
    assert store.scalar("SELECT count(*) FROM outputs WHERE script_type = ?", [script_type]) > 0
    nulls = store.scalar("SELECT count(*) FROM outputs WHERE script_type = ? AND address IS NULL", [script_type])
    assert nulls == (store.scalar("SELECT count(*) FROM outputs WHERE script_type = 'nulldata'") if script_type == "nulldata" else 0)


def test_addresses_get_dense_ids_in_order_of_first_sight(loaded):
    store, _ = loaded
    n, lo, hi, distinct = store.query(
        "SELECT count(*), min(address_id), max(address_id), count(DISTINCT address) FROM addresses"
    )[0]
    assert (lo, hi) == (1, n) and distinct == n
    # every output address and every address derived from an input's spending script (spending.py)
    assert n == store.scalar("""SELECT count(*) FROM (SELECT address FROM outputs WHERE address IS NOT NULL
                                UNION SELECT address FROM inputs WHERE address IS NOT NULL)""") == 32612
    # the genesis coinbase pays the first address ever seen
    assert store.query("SELECT address FROM addresses WHERE address_id = 1") == [("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",)]


def test_every_row_traces_back_to_its_run_and_file_offset(loaded):
    store, summary = loaded
    for table in ("blocks", "transactions", "outputs", "inputs", "addresses"):
        assert store.scalar(f"SELECT count(*) FROM {table} WHERE run_id IS DISTINCT FROM ?", [summary.run_id]) == 0
    source, offset = store.query("SELECT source, source_offset FROM blocks WHERE height = 1")[0]
    assert source.endswith("blk-heights-0-438.dat") and offset == 8 + 285 + 8  # genesis is 285 bytes
    status, counts = store.query("SELECT status, row_counts FROM ingest_runs WHERE run_id = ?", [summary.run_id])[0]
    assert status == "ok" and '"transactions": 6975' in counts
