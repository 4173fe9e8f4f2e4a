"""Address clustering: multi-input with a CoinJoin guard, union-find over integer ids, stable ids,
incremental updates, and the evidence for every merge.

Multi-input (common-input ownership; Reid & Harrigan 2011, Meiklejohn et al. 2013): the inputs of one
non-coinbase transaction are spent by one entity, so their addresses are one cluster. It fails on
CoinJoins (many entities sign one transaction: flagged first by :mod:`heuristics.clustering.coinjoin` and
skipped), on PayJoin (undetectable by shape), and on custodial consolidation (an exchange spending its
customers' deposit addresses together — those addresses then *are* the exchange's, which is the right
entity for an investigator). A few false links snowball into super-clusters (Harrigan & Fretter 2016):
:func:`super_clusters` lists the biggest clusters with the merges that built them.

Pairs: each transaction contributes (first input address, other input address) for its distinct input
addresses — k − 1 pairs for k addresses, which connect them all. Ids: a cluster's id is its smallest
address_id (union by the smaller root), so ids depend only on membership. A run reads the transactions
above the chain's ``cluster_state.through_tx_id`` and merges them into the stored clusters; ``full``
starts over. Only merges that joined two clusters are written to ``cluster_links`` (the spanning forest:
enough to explain any pair, far smaller than every pair).

Account-model chains (EVM) have no ``transactions.tx_id``: their runs are ordered by ``transfers.flow_id``
(``cluster_state.through_tx_id`` then holds a flow id), no CoinJoin pass runs, and the default evidence is
the exchange deposit-address heuristic (:mod:`heuristics.clustering.evm_deposit`).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from heuristics.clustering.coinjoin import COINJOIN_FLAGS, CoinJoinRules, flag_coinjoins
from tracer.store import Store
from tracer.store.store import utcnow

MULTI_INPUT = "multi-input"


@dataclass
class ClusterResult:
    chain: str
    run_id: int
    full: bool
    transactions: int = 0          # transactions read
    coinjoins: dict[str, int] = field(default_factory=dict)   # flag -> transactions flagged
    pairs: int = 0                 # address pairs considered
    merges: int = 0                # pairs that joined two clusters (rows added to cluster_links)
    addresses: int = 0             # addresses in the chain's clusters table
    clusters: int = 0              # distinct clusters
    largest: int = 0               # size of the largest cluster
    unresolved_inputs: int = 0     # inputs read without a known address (their funding tx is not stored)


class LinkHeuristic(Protocol):
    """A source of evidence that two addresses have one owner: multi-input, a change rule, …"""

    name: str

    def pairs_sql(self, chain: str, after_tx_id: int) -> tuple[str, list]:
        """SQL giving (tx_id, a, b, confidence) address-id pairs from the transactions above ``after_tx_id``."""
        ...

    def describe(self) -> dict: ...


@dataclass(frozen=True)
class MultiInput:
    """Common-input ownership over non-CoinJoin transactions: (smallest input address, other input address).
    A Stonewall-shaped transaction's links get confidence 0.6 (STONEWALLx2 has two signers)."""

    name: str = MULTI_INPUT

    def pairs_sql(self, chain: str, after_tx_id: int) -> tuple[str, list]:
        skip = ", ".join(f"'{f}'" for f in COINJOIN_FLAGS)
        sql = f"""WITH a AS (
                SELECT DISTINCT i.tx_id, i.address_id FROM inputs i
                WHERE i.chain = ? AND i.tx_id > ? AND i.address_id IS NOT NULL AND i.prev_txid IS NOT NULL
                  AND i.tx_id NOT IN (SELECT tx_id FROM tx_flags WHERE chain = ? AND tx_id > ? AND flag IN ({skip}))
            ), f AS (SELECT tx_id, min(address_id) AS first FROM a GROUP BY tx_id HAVING count(*) > 1)
            SELECT f.tx_id, f.first AS a, a.address_id AS b,
                   CASE WHEN s.tx_id IS NULL THEN 1.0 ELSE 0.6 END AS confidence
            FROM a JOIN f USING (tx_id)
            LEFT JOIN (SELECT tx_id FROM tx_flags WHERE chain = ? AND tx_id > ? AND flag = 'stonewall') s USING (tx_id)
            WHERE a.address_id <> f.first"""
        return sql, [chain, after_tx_id, chain, after_tx_id, chain, after_tx_id]

    def describe(self) -> dict:
        return {"name": self.name}


def _params(rules: CoinJoinRules, links: list[LinkHeuristic]) -> str:
    return json.dumps({"heuristics": [h.describe() for h in links], "coinjoin": rules.as_dict()}, sort_keys=True)


def cluster(store: Store, chain: str = "bitcoin", full: bool = False, rules: CoinJoinRules | None = None,
            links: list[LinkHeuristic] | None = None, summary: bool = True) -> ClusterResult:
    """Cluster the addresses of ``chain``: incrementally from the last run, or from scratch.

    ``links``: the evidence sources, multi-input alone by default; a change rule is added with
    :class:`heuristics.clustering.change.ChangeLinks`. An account-model chain (``chains.kind`` =
    'account') has no transactions.tx_id: its run is ordered by ``transfers.flow_id`` and its default
    evidence is :class:`heuristics.clustering.evm_deposit.EvmDeposit`. ``summary`` False skips counting
    the clusters (a scan of the table) after an incremental run."""
    rules = rules or CoinJoinRules()
    if not links:
        if _is_account(store, chain):
            from heuristics.clustering.evm_deposit import EvmDeposit

            links = [EvmDeposit()]
        else:
            links = [MultiInput()]
    params = _params(rules, links)
    run = store.begin_run("cluster", chain, {"full": full, "params": json.loads(params)})
    try:
        with store.transaction():
            result = _cluster(store, chain, full, rules, links, params, run.run_id, summary)
        run.add(transactions=result.transactions, merges=result.merges, clusters=result.clusters)
        run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    return result


def _cluster(store: Store, chain: str, full: bool, rules: CoinJoinRules, links: list[LinkHeuristic], params: str,
             run_id: int, summary: bool = True) -> ClusterResult:
    con = store.con
    state = store.one("SELECT through_tx_id, params FROM cluster_state WHERE chain = ?", [chain])
    if state is not None and state[1] != params:
        full = True  # other rules: what was merged before may not hold
    after = 0 if full or state is None else int(state[0])
    result = ClusterResult(chain, run_id, full or state is None)
    if result.full:
        con.execute("DELETE FROM clusters WHERE chain = ?", [chain])
        con.execute("DELETE FROM cluster_links WHERE chain = ?", [chain])
    account = _is_account(store, chain)
    if account:  # no UTXO transactions: positions are the transfers' flow ids
        top = store.scalar("SELECT max(flow_id) FROM transfers WHERE chain = ?", [chain])
    else:
        top = store.scalar("SELECT max(tx_id) FROM transactions WHERE chain = ?", [chain])
    if top is None or top <= after:
        _summarise(store, result)
        return result
    if account:
        result.transactions = int(store.scalar(
            "SELECT count(DISTINCT txid) FROM transfers WHERE chain = ? AND flow_id > ?", [chain, after]))
    else:
        result.transactions = int(store.scalar(
            "SELECT count(*) FROM transactions WHERE chain = ? AND tx_id > ?", [chain, after]))
        flag_coinjoins(store, chain, after, run_id, rules)
        result.coinjoins = dict(store.query(
            "SELECT flag, count(*) FROM tx_flags WHERE chain = ? AND tx_id > ? GROUP BY flag ORDER BY flag",
            [chain, after]))
        result.unresolved_inputs = int(store.scalar(
            "SELECT count(*) FROM inputs WHERE chain = ? AND tx_id > ? AND prev_txid IS NOT NULL AND address_id IS NULL",
            [chain, after]))
    parts, params_ = [], []
    for rank, h in enumerate(links):
        sql, p = h.pairs_sql(chain, after)
        parts.append(f"SELECT tx_id, a, b, confidence, '{h.name}' AS heuristic, {rank} AS rank FROM ({sql})")
        params_ += p
    pairs = store.arrow(" UNION ALL ".join(parts) + " ORDER BY tx_id, rank, b, a", params_)
    result.pairs = len(pairs)
    from heuristics.clustering.unionfind import roots, union_pairs

    a = pairs["a"].to_numpy().astype(np.int64)
    b = pairs["b"].to_numpy().astype(np.int64)
    if result.full:
        # every address of the store in one array; clusters rewritten from it
        n_ids = int(store.scalar("SELECT coalesce(max(address_id), 0) FROM addresses")) + 1
        parent = np.arange(n_ids, dtype=np.int64)
        size = np.ones(n_ids, dtype=np.int64)
        merged, survive, absorb, size_a, size_b = union_pairs(parent, size, a, b)
        cluster_of = roots(parent)
        members = store.arrow("SELECT address_id FROM addresses WHERE chain = ? ORDER BY address_id", [chain])
        ids = members["address_id"].to_numpy()
        with store.view("_clusters", pa.table({"address_id": ids, "cluster_id": cluster_of[ids]})):
            con.execute(
                """INSERT INTO clusters SELECT ?, a.address, c.address_id, c.cluster_id, ? FROM _clusters c
                   JOIN addresses a ON a.address_id = c.address_id""", [chain, run_id])
    else:
        merged, survive, absorb, size_a, size_b = _merge_delta(store, chain, run_id, a, b)
    result.merges = int(merged.sum())
    if result.merges:
        evidence = pa.table({
            "id_a": a[merged], "id_b": b[merged], "tx_id": pairs["tx_id"].to_numpy()[merged],
            "heuristic": pairs["heuristic"].filter(pa.array(merged)),
            "confidence": pairs["confidence"].filter(pa.array(merged)),
            "surviving_id": survive[merged], "absorbed_id": absorb[merged],
            "size_a": size_a[merged], "size_b": size_b[merged],
        })
        # the evidence's txid: the UTXO transaction, or on an account chain the transfer (flow) that linked
        source = ("(SELECT flow_id AS tx_id, txid FROM transfers WHERE chain = ?)" if account else
                  "(SELECT tx_id, txid FROM transactions WHERE chain = ?)")
        with store.view("_links", evidence):
            con.execute(
                f"""INSERT INTO cluster_links (chain, address_a, address_b, heuristic, txid, confidence, run_id,
                                              id_a, id_b, tx_id, surviving_id, absorbed_id, size_a, size_b)
                   SELECT ?, aa.address, ab.address, l.heuristic, t.txid, l.confidence, ?,
                          l.id_a, l.id_b, l.tx_id, l.surviving_id, l.absorbed_id, l.size_a, l.size_b
                   FROM _links l
                   JOIN addresses aa ON aa.address_id = l.id_a JOIN addresses ab ON ab.address_id = l.id_b
                   JOIN {source} t ON t.tx_id = l.tx_id""",
                [chain, run_id, chain])
    con.execute("DELETE FROM cluster_state WHERE chain = ?", [chain])
    con.execute("INSERT INTO cluster_state VALUES (?, ?, ?, ?, ?)", [chain, int(top), params, run_id, utcnow()])
    if summary:
        _summarise(store, result)
    return result


def _merge_delta(store: Store, chain: str, run_id: int, a: np.ndarray, b: np.ndarray):
    """Merge new pairs into the stored clusters touching only what they name: the new addresses get
    singleton rows, the pairs' clusters are looked up, united in a small local union-find, and the
    absorbed clusters' rows take the surviving id. The cost follows the batch, plus integer scans."""
    from heuristics.clustering.unionfind import roots, union_pairs

    con = store.con
    through = store.scalar("SELECT coalesce(max(address_id), 0) FROM clusters WHERE chain = ?", [chain])
    con.execute(
        """INSERT INTO clusters SELECT chain, address, address_id, address_id, ? FROM addresses
           WHERE chain = ? AND address_id > ? ORDER BY address_id""", [run_id, chain, through])
    n = a.size
    if not n:
        return (np.zeros(0, np.bool_),) + (np.zeros(0, np.int64),) * 4
    involved = np.unique(np.concatenate([a, b]))
    cur = store.arrow("SELECT address_id, cluster_id FROM clusters WHERE chain = ? AND address_id IN (SELECT unnest(?))",
                      [chain, involved.tolist()])
    ids = cur["address_id"].to_numpy()
    rts = cur["cluster_id"].to_numpy()
    order = np.argsort(ids)
    ids, rts = ids[order], rts[order]
    ra = rts[np.searchsorted(ids, a)]
    rb = rts[np.searchsorted(ids, b)]
    local = np.unique(np.concatenate([ra, rb]))          # ascending: the smallest local index is the smallest id
    sizes = store.arrow("SELECT cluster_id, count(*) AS n FROM clusters WHERE chain = ? AND cluster_id IN (SELECT unnest(?)) "
                        "GROUP BY cluster_id", [chain, local.tolist()])
    size = np.ones(local.size, np.int64)
    size[np.searchsorted(local, sizes["cluster_id"].to_numpy())] = sizes["n"].to_numpy()
    parent = np.arange(local.size, dtype=np.int64)
    merged, survive, absorb, size_a, size_b = union_pairs(parent, size, np.searchsorted(local, ra),
                                                          np.searchsorted(local, rb))
    final = local[roots(parent)]
    moved = final != local
    if moved.any():
        with store.view("_moved", pa.table({"old": local[moved], "new": final[moved]})):
            con.execute(
                """UPDATE clusters SET cluster_id = m.new, run_id = ? FROM _moved m
                   WHERE clusters.chain = ? AND clusters.cluster_id = m.old""", [run_id, chain])
    return merged, local[survive], local[absorb], size_a, size_b


def _is_account(store: Store, chain: str) -> bool:
    return store.scalar("SELECT kind FROM chains WHERE chain = ?", [chain]) == "account"


def _summarise(store: Store, result: ClusterResult) -> None:
    row = store.one(
        """SELECT count(*), count(DISTINCT cluster_id), coalesce(max(n), 0) FROM clusters c
           JOIN (SELECT cluster_id, count(*) AS n FROM clusters WHERE chain = ? GROUP BY cluster_id) s USING (cluster_id)
           WHERE c.chain = ?""", [result.chain, result.chain])
    result.addresses, result.clusters, result.largest = (int(x) for x in row)


# -- explaining ------------------------------------------------------------------------------------------
@dataclass
class Link:
    address_a: str
    address_b: str
    heuristic: str
    txid: str
    confidence: float


def explain(store: Store, a: str, b: str, chain: str = "bitcoin") -> list[Link] | None:
    """The chain of evidence joining addresses ``a`` and ``b``: the merges on the path between them in
    their cluster's evidence tree (unique, since only merges that joined two clusters are kept). None if
    they are not in one cluster; [] if a == b."""
    rows = store.query(
        "SELECT address, address_id, cluster_id FROM clusters WHERE chain = ? AND address IN (?, ?)", [chain, a, b])
    found = {r[0]: (r[1], r[2]) for r in rows}
    if a not in found or b not in found or found[a][1] != found[b][1]:
        return None
    if a == b:
        return []
    links = store.query(
        """SELECT id_a, id_b, address_a, address_b, heuristic, txid, confidence FROM cluster_links
           WHERE chain = ? AND id_a IN (SELECT address_id FROM clusters WHERE chain = ? AND cluster_id = ?)""",
        [chain, chain, found[a][1]])
    graph: dict[int, list[tuple[int, tuple]]] = {}
    for ia, ib, *rest in links:
        graph.setdefault(ia, []).append((ib, (ia, ib, *rest)))
        graph.setdefault(ib, []).append((ia, (ia, ib, *rest)))
    start, goal = found[a][0], found[b][0]
    back: dict[int, tuple[int, tuple] | None] = {start: None}
    queue = deque([start])
    while queue and goal not in back:
        node = queue.popleft()
        for nxt, link in graph.get(node, ()):
            if nxt not in back:
                back[nxt] = (node, link)
                queue.append(nxt)
    if goal not in back:
        return None
    path: list[Link] = []
    node = goal
    while back[node] is not None:
        prev, (_, _, addr_a, addr_b, heur, txid, conf) = back[node]
        path.append(Link(addr_a, addr_b, heur, txid, conf))
        node = prev
    return path[::-1]


def super_clusters(store: Store, min_size: int = 1000, chain: str = "bitcoin", links_per_cluster: int = 10) -> list[dict]:
    """Clusters of at least ``min_size`` addresses, each with the merges that joined the biggest pieces
    (largest smaller side first): where a false link would have done the most damage."""
    out = []
    for cluster_id, size in store.query(
            """SELECT cluster_id, count(*) AS n FROM clusters WHERE chain = ? GROUP BY cluster_id HAVING count(*) >= ?
               ORDER BY n DESC, cluster_id""", [chain, min_size]):
        links = store.query(
            """SELECT address_a, address_b, heuristic, txid, confidence, size_a, size_b FROM cluster_links
               WHERE chain = ? AND id_a IN (SELECT address_id FROM clusters WHERE chain = ? AND cluster_id = ?)
               ORDER BY least(size_a, size_b) DESC, txid LIMIT ?""",
            [chain, chain, cluster_id, links_per_cluster])
        by_heuristic = dict(store.query(
            """SELECT heuristic, count(*) FROM cluster_links WHERE chain = ? AND id_a IN
               (SELECT address_id FROM clusters WHERE chain = ? AND cluster_id = ?) GROUP BY heuristic""",
            [chain, chain, cluster_id]))
        out.append({"cluster_id": cluster_id, "size": size, "links_by_heuristic": by_heuristic,
                    "biggest_merges": [dict(zip(("address_a", "address_b", "heuristic", "txid", "confidence",
                                                 "size_a", "size_b"), r, strict=True)) for r in links]})
    return out
