"""Address clustering: CoinJoin detection on real blocks, multi-input on simulated worlds scored against
their truth files, stable ids (two runs, full vs incremental), and the evidence behind every link."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

import tracer
from heuristics.clustering import MultiInput, cluster
from heuristics.clustering.scoring import coinjoin_detection, pairwise
from tracer.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = ROOT / "fixtures" / "bitcoin"
REAL = [BLOCKS / "blk-heights-0-438.dat", *sorted(BLOCKS.glob("block-*.raw"))]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    ws = tracer.open(tmp_path_factory.mktemp("real") / "real.duckdb")
    ws.ingest("bitcoin", REAL)
    ws.cluster()
    yield ws
    ws.close()


@pytest.fixture(scope="module", params=[3, 11])
def world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"world{request.param}")
    ws = tracer.open(folder / "w.duckdb")
    summary = simulate(ws.store, seed=request.param, scale="test", truth_path=folder / "truth.json")
    result = ws.cluster()
    yield ws, summary.truth_path, result
    ws.close()


def test_block_702861_whirlpool_mixes_are_flagged_as_whirlpool(real):
    mixes = real.rows(
        """SELECT f.txid FROM tx_flags f JOIN transactions t ON t.tx_id = f.tx_id
           WHERE t.block_height = 702861 AND f.flag = 'coinjoin:whirlpool' ORDER BY f.txid""")
    assert len(mixes) == 7
    # each is what Whirlpool builds: 5 inputs, 5 outputs, all of one pool denomination
    shapes = real.rows(
        """SELECT t.txid, t.input_count, t.output_count, count(DISTINCT o.value), min(o.value) FROM transactions t
           JOIN outputs o ON o.tx_id = t.tx_id WHERE t.txid IN (SELECT unnest(?)) GROUP BY ALL""",
        [[m for (m,) in mixes]])
    assert all(n_in == n_out == 5 and values == 1 and d in (100_000, 1_000_000, 5_000_000, 50_000_000)
               for _, n_in, n_out, values, d in shapes)
    assert len(shapes) == 7
    assert real.rows("SELECT count(*) FROM transactions WHERE flags = 'coinjoin:whirlpool' AND block_height = 702861") \
        == [(7,)]


def test_multi_input_is_precise_and_no_coinjoin_merges_its_participants(world):
    ws, truth, result = world
    score = pairwise(ws.store, truth)
    assert score.precision >= 0.99 and score.predicted_pairs > 1000
    detection = {s.kind: s for s in coinjoin_detection(ws.store, truth)}
    assert detection["any coinjoin"].recall == 1.0
    assert detection["coinjoin_whirlpool"].recall == detection["coinjoin_wasabi"].recall == 1.0
    # and no merge was made by a transaction the truth calls a CoinJoin
    import pyarrow.parquet as pq

    kinds = pq.read_table(truth.parent / "truth.transactions.parquet", columns=["txid", "kind"])
    with ws.store.view("_k", kinds):
        assert ws.rows("""SELECT count(*) FROM cluster_links l JOIN _k k ON k.txid = l.txid
                          WHERE k.kind LIKE 'coinjoin%'""") == [(0,)]
    assert result.merges == ws.store.count("cluster_links") > 0


def test_clusters_equal_networkx_components_of_the_same_pairs(world):
    ws, _, _ = world
    rows = ws.rows(
        """SELECT i.txid, i.address FROM inputs i WHERE i.address IS NOT NULL AND i.chain = 'bitcoin'
           AND i.txid NOT IN (SELECT txid FROM tx_flags WHERE flag LIKE 'coinjoin:%')""")
    g = nx.Graph()
    g.add_nodes_from(a for (a,) in ws.rows("SELECT address FROM addresses WHERE chain = 'bitcoin'"))
    by_tx: dict[str, list[str]] = {}
    for txid, address in rows:
        by_tx.setdefault(txid, []).append(address)
    for addresses in by_tx.values():
        g.add_edges_from((addresses[0], b) for b in addresses[1:])
    expected = {frozenset(c) for c in nx.connected_components(g)}
    stored: dict[int, set[str]] = {}
    for address, cluster_id in ws.rows("SELECT address, cluster_id FROM clusters WHERE chain = 'bitcoin'"):
        stored.setdefault(cluster_id, set()).add(address)
    assert {frozenset(c) for c in stored.values()} == expected
    # a cluster's id is its smallest address id
    assert ws.rows("""SELECT count(*) FROM (SELECT cluster_id, min(address_id) AS m FROM clusters GROUP BY cluster_id)
                      WHERE m <> cluster_id""") == [(0,)]


def test_the_int32_forest_gives_the_same_unions_as_int64(world):
    """The union-find runs on int32 arrays while address ids fit (half the memory); the same pairs give the
    same merges, evidence and cluster ids as on int64 arrays."""
    import numpy as np

    from heuristics.clustering.cluster import ClusterMemory
    from heuristics.clustering.unionfind import forest, id_dtype, roots, union_pairs

    ws, _, result = world
    sql, params = MultiInput().pairs_sql("bitcoin", 0)
    t = ws.store.arrow(f"SELECT a, b FROM ({sql}) ORDER BY tx_id, a, b", params)
    a, b = t["a"].to_numpy().astype(np.int64), t["b"].to_numpy().astype(np.int64)
    n = int(ws.store.scalar("SELECT max(address_id) FROM addresses")) + 1
    p32, s32 = forest(n)
    p64, s64 = np.arange(n, dtype=np.int64), np.ones(n, np.int64)
    assert (p32.dtype, s32.dtype) == (np.int32, np.int32)
    got32, got64 = union_pairs(p32, s32, a, b), union_pairs(p64, s64, a, b)
    for x, y in zip(got32, got64, strict=True):
        assert np.array_equal(x, y)
    assert int(got32[0].sum()) == result.merges
    r32, r64 = roots(p32), roots(p64)
    assert r32.dtype == np.int32 and np.array_equal(r32, r64) and np.array_equal(s32, s64)
    kept = ws._clusters["bitcoin"]
    assert kept.parent.dtype == np.int32  # what the workspace keeps
    # and what a workspace that did not run it reads back from the store: the same forest, sizes, counts
    loaded = ClusterMemory.load(ws.store, "bitcoin")
    assert (loaded.parent.dtype, loaded.size.dtype) == (np.int32, np.int32)
    n = loaded.parent.size
    assert np.array_equal(roots(loaded.parent), roots(kept.parent)[:n])
    assert np.array_equal(loaded.size[roots(loaded.parent)], kept.size[roots(kept.parent)][:n])
    assert (loaded.clusters, loaded.largest) == (kept.clusters, kept.largest)
    assert (id_dtype(2**31 - 1), id_dtype(2**31)) == (np.int32, np.int64)


_HELD = ("transactions", "inputs", "outputs")


def _hold_back(store, above: int) -> None:
    """Take the Bitcoin rows of the transactions above tx id ``above`` out of the store (kept in _held_*)."""
    with store.transaction():
        for t in _HELD:
            store.con.execute(f"CREATE TABLE _held_{t} AS SELECT * FROM {t} WHERE tx_id > ?", [above])
            store.con.execute(f"DELETE FROM {t} WHERE tx_id > ?", [above])


def _put_back(store, lo: int, hi: int) -> None:
    """Put the held rows of the transactions in (``lo``, ``hi``] back: "they are ingested"."""
    with store.transaction():
        for t in _HELD:
            store.con.execute(f"INSERT INTO {t} SELECT * FROM _held_{t} WHERE tx_id > ? AND tx_id <= ?", [lo, hi])


def test_ids_are_the_same_in_two_runs_and_block_by_block(tmp_path):
    full = tracer.open(tmp_path / "full.duckdb")
    simulate(full.store, seed=5, scale="test", truth_path=tmp_path / "t.json")
    first = full.cluster()
    ids = full.rows("SELECT address, cluster_id FROM clusters ORDER BY address")
    links = full.rows("SELECT id_a, id_b, txid, surviving_id, absorbed_id FROM cluster_links ORDER BY id_a, id_b")
    again = full.cluster(full=True)
    assert full.rows("SELECT address, cluster_id FROM clusters ORDER BY address") == ids
    assert (again.merges, again.clusters) == (first.merges, first.clusters)
    # incremental: the same world, clustered as it grows, in four slices of transactions — the second and
    # fourth from the workspace's memory, the third by a caller without it (the clusters read back from the
    # store), after which the workspace's memory is stale and must be re-read
    inc = tracer.open(tmp_path / "inc.duckdb")
    simulate(inc.store, seed=5, scale="test", truth_path=tmp_path / "t2.json")
    top = inc.store.scalar("SELECT max(tx_id) FROM transactions")
    _hold_back(inc.store, top // 4)
    start = inc.cluster()
    assert start.full  # the first run starts from nothing
    steps = []
    for i, (lo, hi) in enumerate(((top // 4, top // 2), (top // 2, 3 * top // 4), (3 * top // 4, top))):
        _put_back(inc.store, lo, hi)
        steps.append(cluster(inc.store) if i == 1 else inc.cluster())
    assert [(s.full, s.transactions > 0, s.merges > 0) for s in steps] == [(False, True, True)] * 3
    assert inc.rows("SELECT address, cluster_id FROM clusters ORDER BY address") == ids
    assert inc.rows("SELECT id_a, id_b, txid, surviving_id, absorbed_id FROM cluster_links ORDER BY id_a, id_b") == links
    assert (steps[-1].addresses, steps[-1].clusters, steps[-1].largest) == (first.addresses, first.clusters,
                                                                            first.largest)
    assert start.merges + sum(s.merges for s in steps) == first.merges
    # a full run writes one row per absorbed address (roots are implicit) and no renames; incremental runs
    # rename the roots of absorbed clusters of two or more addresses instead of rewriting their members
    assert (full.store.count("cluster_members"), full.store.count("cluster_renames")) == (
        first.addresses - first.clusters, 0)
    assert inc.store.count("cluster_members") + inc.store.count("cluster_renames") == first.addresses - first.clusters
    assert inc.store.count("cluster_renames") > 0
    # read back in batches of 7 rows (members and renames streamed): the forest the workspace holds
    import numpy as np

    from heuristics.clustering.cluster import ClusterMemory
    from heuristics.clustering.unionfind import roots

    kept, loaded = inc._clusters["bitcoin"], ClusterMemory.load(inc.store, "bitcoin", batch_rows=7)
    n = loaded.parent.size
    assert n > 7 * 10 and np.array_equal(roots(loaded.parent), roots(kept.parent)[:n])
    assert np.array_equal(np.flatnonzero(loaded.renamed_to), np.flatnonzero(kept.renamed_to[:n]))
    assert (loaded.addresses, loaded.clusters, loaded.largest) == (kept.addresses, kept.clusters, kept.largest)


def test_an_008_store_is_converted_to_integer_tables_with_the_same_clusters_and_links(tmp_path, monkeypatch):
    import tracer.store.store as store_module

    shipped = store_module.migrations()
    monkeypatch.setattr(store_module, "migrations", lambda: [m for m in shipped if m[0] < 10])
    old = tracer.open_store(tmp_path / "old.duckdb")
    assert old.schema_version == 9
    old.con.execute("""INSERT INTO addresses (chain, address, address_id) VALUES
                       ('bitcoin', 'addr-1', 1), ('bitcoin', 'addr-2', 2), ('bitcoin', 'addr-3', 3), ('bitcoin', 'addr-4', 4)""")
    old.con.execute("INSERT INTO transactions (chain, txid, tx_id) VALUES ('bitcoin', 'tx-9', 9)")
    old.con.execute("""INSERT INTO clusters VALUES ('bitcoin', 'addr-1', 1, 1, 7), ('bitcoin', 'addr-2', 2, 2, 7),
                       ('bitcoin', 'addr-3', 3, 1, 7)""")
    old.con.execute("""INSERT INTO cluster_links (chain, address_a, address_b, heuristic, txid, confidence, run_id,
                       id_a, id_b, tx_id, surviving_id, absorbed_id, size_a, size_b)
                       VALUES ('bitcoin', 'addr-1', 'addr-3', 'multi-input', 'tx-9', 1.0, 7, 1, 3, 9, 1, 3, 1, 1)""")
    old.con.execute("INSERT INTO cluster_state VALUES ('bitcoin', 9, '{}', 7, now())")
    old.con.execute("INSERT INTO labels (chain, address, label, source, confidence) VALUES ('bitcoin', 'addr-3', 'X', 't', 1)")
    old.close()
    monkeypatch.undo()
    with tracer.open_store(tmp_path / "old.duckdb") as s:
        assert s.schema_version == shipped[-1][0]
        assert s.query("SELECT address, address_id, cluster_id, run_id FROM clusters ORDER BY address_id") == [
            ("addr-1", 1, 1, 7), ("addr-2", 2, 2, 7), ("addr-3", 3, 1, 7)]  # addr-4 came after the run
        assert s.query("SELECT chain, address_id, cluster_id, run_id FROM cluster_members") == [("bitcoin", 3, 1, 7)]
        assert s.query("""SELECT address_a, address_b, heuristic, txid, confidence, surviving_id, absorbed_id
                          FROM cluster_links""") == [("addr-1", "addr-3", "multi-input", "tx-9", 1.0, 1, 3)]
        assert s.query("SELECT cluster_id, labelled_address FROM cluster_labels") == [(1, "addr-3")]
        assert s.query("SELECT through_tx_id, through_address_id FROM cluster_state") == [(9, 3)]


def test_explain_gives_the_chain_of_transactions_that_joined_two_addresses(world):
    ws, _, _ = world
    [(cluster_id,)] = ws.rows("SELECT cluster_id FROM clusters GROUP BY cluster_id ORDER BY count(*) DESC, 1 LIMIT 1")
    members = [r[0] for r in ws.rows("SELECT address FROM clusters WHERE cluster_id = ? ORDER BY address_id",
                                      [cluster_id])]
    a, b = members[0], members[-1]
    path = ws.explain(a, b)
    assert path
    # consecutive links share an address, the path starts at a and ends at b
    ends = {path[0].address_a, path[0].address_b}
    assert a in ends
    assert b in {path[-1].address_a, path[-1].address_b}
    # every link is a transaction that spent from both addresses
    for link in path:
        spenders = {r[0] for r in ws.rows("SELECT address FROM inputs WHERE txid = ?", [link.txid])}
        assert {link.address_a, link.address_b} <= spenders and link.heuristic == "multi-input"
    other = ws.rows("SELECT address FROM clusters WHERE cluster_id <> ? LIMIT 1", [cluster_id])[0][0]
    assert ws.explain(a, other) is None


def test_super_cluster_report_lists_the_biggest_merges(world):
    ws, _, result = world
    report = ws.super_clusters(min_size=result.largest)
    assert report and report[0]["size"] == result.largest
    merges = report[0]["biggest_merges"]
    assert merges and all(m["heuristic"] == "multi-input" for m in merges)
    assert [min(m["size_a"], m["size_b"]) for m in merges] == sorted((min(m["size_a"], m["size_b"]) for m in merges),
                                                                     reverse=True)


def test_labels_propagate_to_clusters_and_conflicts_are_reported(world):
    ws, _, _ = world
    labelled = ws.rows("""SELECT c.cluster_id, count(DISTINCT c.address) FROM clusters c JOIN labels l
                          ON l.chain = c.chain AND l.address = c.address GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1""")
    assert labelled
    cluster_id = labelled[0][0]
    carried = ws.cluster_labels().to_pylist()
    mine = [r for r in carried if r["cluster_id"] == cluster_id]
    assert mine and all(r["source"] is not None for r in mine)
    # every unlabelled member of that cluster is reachable through the cluster's labels
    members = ws.rows("SELECT count(*) FROM clusters WHERE cluster_id = ?", [cluster_id])[0][0]
    assert members >= 1
    # a wrong label on a member of another entity's cluster shows as a conflict, with both labels
    other = ws.rows("""SELECT address FROM clusters WHERE cluster_id = ? AND address NOT IN
                       (SELECT address FROM labels) LIMIT 1""", [cluster_id])
    if not other:  # the cluster is a single labelled address: label a second cluster member-free case
        other = ws.rows("SELECT address FROM clusters WHERE cluster_id = ?", [cluster_id])
    ws.store.con.execute(
        "INSERT INTO labels (chain, address, label, category, source, confidence, actor) "
        "VALUES ('bitcoin', ?, 'Test Mixer', 'mixer', 'test', 0.5, 'test-mixer')", [other[0][0]])
    conflicts = ws.cluster_labels(conflicts=True).to_pylist()
    row = next(r for r in conflicts if r["cluster_id"] == cluster_id)
    assert row["actors"] >= 2 and "test-mixer (mixer, test)" in row["labels"]


def test_a_failing_run_changes_nothing_and_is_recorded_as_failed(tmp_path):
    ws = tracer.open(tmp_path / "w.duckdb")
    simulate(ws.store, seed=5, scale="test", truth_path=tmp_path / "t.json")
    ws.cluster()
    before = ws.rows("SELECT address, cluster_id FROM clusters ORDER BY address")
    state = ws.rows("SELECT through_tx_id, run_id FROM cluster_state")

    class Broken:  # a user's evidence source whose SQL names a column that does not exist
        name = "broken"

        def pairs_sql(self, chain, after_tx_id):
            return "SELECT tx_id, no_such_column AS a, address_id AS b, 1.0 AS confidence FROM inputs", []

        def describe(self):
            return {"name": self.name}

    with pytest.raises(Exception, match="no_such_column"):
        ws.cluster(full=True, links=[MultiInput(), Broken()])
    assert ws.rows("SELECT address, cluster_id FROM clusters ORDER BY address") == before
    assert ws.rows("SELECT through_tx_id, run_id FROM cluster_state") == state
    [(status, error)] = ws.rows("SELECT status, error FROM ingest_runs WHERE source = 'cluster' ORDER BY run_id DESC LIMIT 1")
    assert status == "failed" and "no_such_column" in error
    assert ws.cluster().merges == 0  # the next run starts from the committed state (its memory was dropped)
    assert ws.rows("SELECT address, cluster_id FROM clusters ORDER BY address") == before


def test_one_pass_union_equals_pairs_then_union_on_a_world(world):
    from tests.heuristics.test_unionfind import _same as same_as_two_steps

    ws, _, result = world
    tx, addr, skip, weak = MultiInput().columns(ws.store, "bitcoin", 0)
    n = int(ws.store.scalar("SELECT max(address_id) FROM addresses")) + 1
    records = same_as_two_steps(n, tx, addr, skip, weak)
    assert records[0].size == result.merges > 1000 and skip.size > 0


def test_a_run_with_other_coinjoin_rules_replaces_the_verdicts_on_transactions_too(tmp_path):
    """``transactions.flags`` follows ``tx_flags``: a full run under other rules clears the verdicts it does
    not repeat (they stayed behind before) and leaves the ones it repeats."""
    from heuristics.clustering.coinjoin import CoinJoinRules

    ws = tracer.open(tmp_path / "w.duckdb")
    simulate(ws.store, seed=5, scale="test", truth_path=tmp_path / "t.json")
    ws.cluster()
    on_transactions = "SELECT tx_id, flags FROM transactions WHERE flags IS NOT NULL ORDER BY tx_id"
    before = ws.rows("SELECT tx_id, flag FROM tx_flags ORDER BY tx_id")
    kinds = {f for _, f in before}
    assert "coinjoin:whirlpool" in kinds and len(kinds) > 1
    assert ws.rows(on_transactions) == before
    ws.cluster(rules=CoinJoinRules(whirlpool_pools=(1,)))  # no Whirlpool pool matches: other rules, a full run
    after = ws.rows("SELECT tx_id, flag FROM tx_flags ORDER BY tx_id")
    assert "coinjoin:whirlpool" not in {f for _, f in after} and after != before
    assert ws.rows(on_transactions) == after
    ws.close()


def test_a_run_failing_while_its_union_runs_leaves_nothing_behind(tmp_path, monkeypatch):
    """The one-pass union runs in a thread while the flags are written: a write that fails waits for it,
    rolls back, and drops the workspace's forest (the thread changed it), so the next run is right."""
    import importlib

    clustering = importlib.import_module("heuristics.clustering.cluster")  # the package exports a function of that name

    ws = tracer.open(tmp_path / "w.duckdb")
    simulate(ws.store, seed=5, scale="test", truth_path=tmp_path / "t.json")
    top = ws.store.scalar("SELECT max(tx_id) FROM transactions")
    _hold_back(ws.store, top // 2)
    ws.cluster()
    before = ws.rows("SELECT address, cluster_id FROM clusters ORDER BY address")
    _put_back(ws.store, top // 2, top)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(clustering, "write_flags", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ws.cluster()
    assert "bitcoin" not in ws._clusters
    assert ws.rows("SELECT address, cluster_id FROM clusters ORDER BY address") == before
    monkeypatch.undo()
    step = ws.cluster()
    assert not step.full and step.merges > 0
    after = ws.rows("SELECT address, cluster_id FROM clusters ORDER BY address")
    assert ws.cluster(full=True).merges > step.merges
    assert ws.rows("SELECT address, cluster_id FROM clusters ORDER BY address") == after
    ws.close()
