"""The money graph: integer ids for every party, the `flows` table, and the schema-4 -> 5 migration."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import tracer
from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.ingest.human.bank import ingest_bank
from tracer.store import graph

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = ROOT / "fixtures" / "bitcoin"


def sums(store, table: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(chain, asset) -> (rows, exact sum of amounts)."""
    return {(c, a): (int(n), int(s)) for c, a, n, s in store.query(
        f"SELECT chain, asset, count(*), sum(amount) FROM {table} GROUP BY ALL")}


def assert_ids_resolve(store) -> None:
    """Every src_id/dst_id names the party in src/dst: addresses for ids > 0, tx nodes (-tx_id) for < 0."""
    assert store.scalar("SELECT count(*) - count(DISTINCT flow_id) FROM flows") == 0
    assert store.scalar("SELECT count(*) FROM flows WHERE flow_id IS NULL") == 0
    for side in ("src", "dst"):
        bad_party = store.scalar(
            f"""SELECT count(*) FROM flows f LEFT JOIN addresses a ON a.address_id = f.{side}_id
                WHERE f.{side}_id > 0 AND (a.address IS DISTINCT FROM f.{side} OR a.chain <> f.chain)""")
        bad_tx = store.scalar(
            f"""SELECT count(*) FROM flows f LEFT JOIN transactions t ON t.tx_id = -f.{side}_id
                WHERE f.{side}_id < 0 AND ('tx:' || t.txid IS DISTINCT FROM f.{side} OR t.chain <> f.chain)""")
        unnamed = store.scalar(f"SELECT count(*) FROM flows WHERE {side}_id IS NULL AND {side} IS NOT NULL")
        assert (bad_party, bad_tx, unnamed) == (0, 0, 0), side
    # ids are dense: 1..n, one per party
    assert store.one("SELECT min(address_id), max(address_id), count(*), count(DISTINCT address_id) FROM addresses") == \
        (1, store.count("addresses"), store.count("addresses"), store.count("addresses"))


def test_demo_store_flows_have_unique_ids_resolving_on_every_chain_and_the_old_views_sums(demo_store):
    store = demo_store
    chains = {c for (c,) in store.query("SELECT DISTINCT chain FROM flows")}
    assert chains == {"bitcoin", "sim-evm", "fiat"}
    assert_ids_resolve(store)
    assert sums(store, "flows") == sums(store, "flows_v4")
    # every party of every chain has an id: EVM addresses and bank accounts too
    for chain in ("sim-evm", "fiat"):
        missing = store.scalar(
            "SELECT count(*) FROM transfers WHERE chain = ? AND (from_id IS NULL OR to_id IS NULL OR flow_id IS NULL)",
            [chain])
        assert missing == 0, chain
    # inputs and outputs carry the ids of their addresses
    assert store.scalar("""SELECT count(*) FROM outputs o JOIN addresses a ON a.address_id = o.address_id
                           WHERE a.address <> o.address""") == 0
    assert store.scalar("SELECT count(*) FROM outputs WHERE address IS NOT NULL AND address_id IS NULL") == 0
    assert store.scalar("SELECT count(*) FROM inputs WHERE value IS NOT NULL AND address_id IS NULL "
                        "AND address IS NOT NULL") == 0


def test_usd_per_chain_equals_the_old_view_where_the_old_view_priced_by_contract(demo_store):
    new = dict(demo_store.query("SELECT chain, round(sum(usd), 2) FROM flows GROUP BY chain"))
    old = dict(demo_store.query("SELECT chain, round(sum(usd), 2) FROM flows_v4 GROUP BY chain"))
    assert new == old


def test_block_170_is_an_input_edge_and_two_output_edges_through_its_transaction_node(tmp_path):
    store = tracer.open_store(tmp_path / "s.duckdb")
    ingest_bitcoin(store, [BLOCKS / "blk-heights-0-438.dat"])
    txid = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    rows = store.query("SELECT leg, src, dst, amount, src_id < 0, dst_id < 0 FROM flows WHERE txid = ? ORDER BY flow_id",
                       [txid])
    assert rows == [
        ("in", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", f"tx:{txid}", 5_000_000_000, False, True),
        ("out", f"tx:{txid}", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3", 1_000_000_000, True, False),
        ("out", f"tx:{txid}", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", 4_000_000_000, True, False),
    ]
    # one hop forward from the sender, at address level, is two lookups on integer columns
    [(sender,)] = store.query("SELECT address_id FROM addresses WHERE address = '12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S'")
    nodes = [r[0] for r in store.query("SELECT dst_id FROM flows WHERE src_id = ?", [sender])]
    reached = store.query("SELECT DISTINCT dst FROM flows WHERE src_id IN (SELECT unnest(?)) ORDER BY dst", [nodes])
    assert ("1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3",) in reached
    assert_ids_resolve(store)


def test_funding_block_arriving_later_resolves_its_inputs_into_flows(tmp_path):
    later_first = tracer.open_store(tmp_path / "a.duckdb")
    first = ingest_bitcoin(later_first, [BLOCKS / "block-227836.raw"])
    second = ingest_bitcoin(later_first, [BLOCKS / "block-227835.raw"])
    in_order = tracer.open_store(tmp_path / "b.duckdb")
    ingest_bitcoin(in_order, [BLOCKS / "block-227835.raw", BLOCKS / "block-227836.raw"])
    spent_across = in_order.scalar("SELECT count(*) FROM flows WHERE leg = 'in'")
    # 227836 spends 4 of its own outputs; the rest of what it spends from 227835 resolves when that arrives
    assert (first.inputs_resolved, first.inputs_resolved + second.inputs_resolved) == (4, spent_across)
    assert second.inputs_resolved > 0
    assert later_first.count("utxo_pending") == in_order.count("utxo_pending")
    assert sums(later_first, "flows") == sums(in_order, "flows") == sums(in_order, "flows_v4")
    assert later_first.query("SELECT txid, fee FROM transactions ORDER BY txid") == \
        in_order.query("SELECT txid, fee FROM transactions ORDER BY txid")
    assert_ids_resolve(later_first)


def test_a_token_that_only_calls_itself_usdt_gets_no_usd_value(tmp_path):
    store = tracer.open_store(tmp_path / "s.duckdb")
    fake = "0x00000000000000000000000000000000000000aa"
    tether = "0xdac17f958d2ee523a2206206994597c13d831ec7"
    t0 = pa.scalar(1_700_000_000_000_000, pa.timestamp("us"))
    store.append("prices", pa.table({"asset": ["USDT"], "time": pa.array([t0.as_py()], pa.timestamp("us")),
                                     "usd": [1.0], "source": ["test"]}))
    store.append("transfers", pa.table({
        "chain": ["ethereum", "ethereum"], "asset": [fake, tether], "txid": ["0x01", "0x02"], "idx": [0, 0],
        "from_address": ["0x" + "11" * 20, "0x" + "11" * 20], "to_address": ["0x" + "22" * 20, "0x" + "33" * 20],
        "amount": pa.array([5_000_000, 7_000_000], pa.decimal128(38, 0)), "amount_raw": ["5000000", "7000000"],
        "time": pa.array([t0.as_py()] * 2, pa.timestamp("us")), "kind": ["erc20", "erc20"],
        "symbol": ["USDT", "USDT"], "decimals": pa.array([6, 6], pa.int32()),
    }))
    assert dict(store.query("SELECT asset, usd FROM flows")) == {fake: None, tether: 7.0}
    # an analyst who knows better can declare the series; the flows are revalued
    graph.set_token_price_asset(store, "ethereum", fake, "USDT", "analyst")
    assert dict(store.query("SELECT asset, usd FROM flows")) == {fake: 5.0, tether: 7.0}


def test_prices_arriving_after_the_movements_value_them(tmp_path):
    store = tracer.open_store(tmp_path / "s.duckdb")
    ingest_bank(store, ROOT / "fixtures" / "aml" / "amlworld-small.csv")
    before = store.scalar("SELECT count(usd) FROM flows WHERE chain = 'fiat' AND price_asset <> 'USD'")
    assert before == 0
    [(first,)] = store.query("SELECT min(time) FROM flows")
    symbols = [s for (s,) in store.query("SELECT DISTINCT price_asset FROM flows WHERE price_asset <> 'USD'")]
    store.append("prices", pa.table({"asset": symbols, "time": pa.array([first] * len(symbols), pa.timestamp("us")),
                                     "usd": [2.0] * len(symbols), "source": ["test"] * len(symbols)}))
    after = store.query("SELECT amount, decimals, usd FROM flows WHERE price_asset <> 'USD'")
    assert after and all(usd == pytest.approx(float(a) / 10 ** d * 2.0) for a, d, usd in after)


def test_a_schema_4_store_built_by_the_previous_release_is_converted(tmp_path):
    db = tmp_path / "old.duckdb"
    with gzip.open(ROOT / "fixtures" / "stores" / "schema4.duckdb.gz") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    store = tracer.open_store(db)
    assert store.schema_version >= 5
    assert sums(store, "flows") == sums(store, "flows_v4")
    assert store.scalar("SELECT count(*) FROM flows") == 910 + 12 + 2
    assert_ids_resolve(store)
    # the counters continue where the converted data ends: a new ingest numbers on without a clash
    top = store.scalar("SELECT max(address_id) FROM addresses")
    ingest_bitcoin(store, [BLOCKS / "block-481829.raw"])
    assert store.scalar("SELECT min(address_id) FROM addresses WHERE run_id = (SELECT max(run_id) FROM ingest_runs)") \
        == top + 1
    assert_ids_resolve(store)


def _sql_hop(store, nodes: list[int], direction: str) -> list[tuple]:
    side = "src_id" if direction == "out" else "dst_id"
    return sorted(store.query(f"SELECT flow_id, src_id, dst_id FROM flows WHERE {side} IN (SELECT unnest(?))", [nodes]))


def _ws_hop(ws, nodes: list[int], direction: str) -> list[tuple]:
    t = ws.hop(nodes, direction)
    return sorted(zip(t["flow_id"].to_pylist(), t["src_id"].to_pylist(), t["dst_id"].to_pylist(), strict=True))


def test_one_hop_from_memory_equals_the_sql_answer_and_follows_new_and_deleted_flows(tmp_path):
    import random

    ws = tracer.open(tmp_path / "s.duckdb")
    ws.ingest("bitcoin", [BLOCKS / "block-227835.raw"])
    rng = random.Random(5)
    for direction in ("out", "in"):
        side = "src_id" if direction == "out" else "dst_id"
        ids = [r[0] for r in ws.rows(f"SELECT DISTINCT {side} FROM flows WHERE {side} IS NOT NULL ORDER BY 1")]
        frontier = rng.sample(ids, 40)
        assert _ws_hop(ws, frontier, direction) == _sql_hop(ws.store, frontier, direction) != []
    # a later ingest is seen by the next hop (only the new flows are read)
    ws.ingest("bitcoin", [BLOCKS / "block-227836.raw"])
    ids = [r[0] for r in ws.rows("SELECT DISTINCT src_id FROM flows WHERE run_id = 2 ORDER BY 1")]
    assert _ws_hop(ws, ids, "out") == _sql_hop(ws.store, ids, "out") != []
    # fiat transfers, then deleted as a reorg would: the hop rebuilds and no longer returns them
    ws.ingest("bank", ROOT / "fixtures" / "aml" / "amlworld-small.csv")
    fiat = [r[0] for r in ws.rows("SELECT DISTINCT src_id FROM flows WHERE chain = 'fiat'")]
    assert len(_ws_hop(ws, fiat, "out")) == 12
    with ws.store.transaction():
        graph.delete_transfers(ws.store, "chain = 'fiat'", [])
    assert _ws_hop(ws, fiat, "out") == _sql_hop(ws.store, fiat, "out") == []
    ws.close()


def test_names_and_movement_columns_in_memory_equal_the_tables_and_follow_new_rows(tmp_path):
    """The id -> text indexes a trace names its nodes with (tracer/store/names.py) and the movement columns
    kept with the graph arrays (exact amount, chain, asset, kind) answer as the tables do, after each ingest."""
    import numpy as np

    ws = tracer.open(tmp_path / "s.duckdb")

    def check() -> None:
        for index, sql in ((ws.names().addresses, "SELECT address_id, chain, address FROM addresses"),
                           (ws.names().transactions, "SELECT tx_id, chain, txid FROM transactions WHERE tx_id > 0")):
            rows = ws.rows(sql + " ORDER BY 1")
            ids = np.asarray([r[0] for r in rows] + [0, 10**9, rows[0][0]], np.int64)
            got = index.take(ids)
            assert list(zip(ids.tolist(), got.chain.tolist(), got.text.to_pylist(), strict=True)) == \
                rows + [(0, None, None), (10**9, None, None), rows[0]]
            assert got.found.tolist() == [True] * len(rows) + [False, False, True]
        flows = ws.rows("SELECT flow_id, chain, asset, kind, CAST(amount AS VARCHAR) FROM flows ORDER BY 1")
        adj = ws.adjacency()
        adj.refresh()
        cols = adj.columns(np.asarray([r[0] for r in flows], np.int64), ("units", "code"))
        assert [(f, *adj.codes[c], str(u)) for f, u, c in zip(
            [r[0] for r in flows], cols["units"].tolist(), cols["code"].tolist(), strict=True)] == flows

    ws.ingest("bitcoin", [BLOCKS / "block-227835.raw"])
    check()  # a workspace's first lookup reads only the ids asked from the store; the second loads the index
    assert ws.names().addresses._key is None and ws.names().transactions._key is None
    ws.ingest("bitcoin", [BLOCKS / "block-227836.raw"])
    check()
    assert ws.names().addresses._key is not None and ws.names().transactions._key is not None
    ws.ingest("bank", ROOT / "fixtures" / "aml" / "amlworld-small.csv")
    check()
    assert {c[0] for c in ws.adjacency().codes} == {"bitcoin", "fiat"}
    ws.close()
