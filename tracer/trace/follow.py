"""Follow the money: multi-hop traces and shortest paths over the ``flows`` graph.

A trace walks a frontier one hop at a time over the workspace's in-memory adjacency
(:mod:`tracer.store.adjacency`): one lookup per hop for account-model and fiat movements, two for a UTXO
hop (address → transaction node → address), which counts as one hop — the hop an investigator means.
Money only moves forward in time: a node reached at time t is followed only along movements at or after
t (before, when walking backward). Movements below the value threshold are not followed; nodes labelled
with a stop category (an exchange, say) are reached but not walked through. At cluster level, reaching an
address reaches its whole cluster (clusters from ``tracer cluster``).

The result is one subgraph with a stable JSON form (:meth:`Trace.as_json`) that the dashboard, reports
and exports consume:

    {"seeds": [...], "nodes": [{"id", "chain", "address", "cluster_id", "labels", "hop", "kind"}],
     "edges": [{"flow_id", "src", "dst", "chain", "asset", "amount", "usd", "time", "txid", "kind"}],
     "params": {...}}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tracer.workspace import Workspace

NEVER = np.iinfo(np.int64).max


@dataclass
class TraceParams:
    direction: str = "forward"          # forward, backward, both
    hops: int = 3
    min_value: float | None = None      # in the asset's whole units (BTC, USDT, USD …)
    min_usd: float | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    chain: str | None = None
    stop_at: tuple[str, ...] = ()       # label categories not walked through
    level: str = "address"              # address or cluster
    max_edges: int = 100_000            # a guard against walking into an exchange's whole history


@dataclass
class Trace:
    seeds: list[str]
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "nodes": self.nodes, "edges": self.edges,
                "params": {**self.params, "truncated": self.truncated}}


class SeedError(ValueError):
    """A seed that names nothing in the store."""


def resolve_seeds(ws: Workspace, seeds: list[str], chain: str | None = None) -> dict[int, str]:
    """Node ids of the seeds: addresses on any chain (or ``chain``), bank accounts, ``cluster:N``, txids
    (a UTXO transaction's node; an account-model transaction's senders)."""
    found: dict[int, str] = {}
    for seed in seeds:
        if seed.startswith("cluster:"):
            rows = ws.rows("SELECT address_id FROM clusters WHERE cluster_id = ?", [int(seed.split(":", 1)[1])])
        else:
            text = seed.removeprefix("tx:")
            where, params = ("AND chain = ?", [chain]) if chain else ("", [])
            rows = ws.rows(f"SELECT address_id FROM addresses WHERE address = ? {where}", [seed, *params])
            if not rows:
                rows = ws.rows(f"SELECT -tx_id FROM transactions WHERE txid = ? AND tx_id IS NOT NULL {where}",
                               [text, *params])
            if not rows:
                rows = ws.rows(f"SELECT DISTINCT src_id FROM flows WHERE txid = ? AND src_id IS NOT NULL {where}",
                               [text, *params])
        if not rows:
            raise SeedError(f"{seed}: not an address, account, cluster or transaction in this store")
        for (node,) in rows:
            found[int(node)] = seed
    return found


def _arrays(t: Any) -> dict[str, np.ndarray]:
    return {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names}


def trace(ws: Workspace, seeds: list[str], params: TraceParams | None = None) -> Trace:
    """Walk the flows graph from ``seeds`` (see the module docstring)."""
    p = params or TraceParams()
    if p.direction not in ("forward", "backward", "both"):
        raise ValueError("direction is forward, backward or both")
    start = resolve_seeds(ws, seeds, p.chain)
    edges: dict[int, int] = {}   # flow_id -> hop
    hop_of: dict[int, int] = {n: 0 for n in start}
    truncated = False
    for direction in (("out", "in") if p.direction == "both" else ("out",) if p.direction == "forward" else ("in",)):
        arrival = {n: (-NEVER if direction == "out" else NEVER) for n in start}
        frontier = _expand_clusters(ws, list(start), p)
        for n in frontier:
            arrival.setdefault(n, arrival[next(iter(start))])
            hop_of.setdefault(n, 0)
        for hop in range(1, p.hops + 1):
            if not frontier:
                break
            walkable = _not_stopped(ws, frontier, p) if hop > 1 or p.stop_at else frontier
            reached, used = _one_hop(ws, walkable, arrival, direction, p)
            for fid in used:
                edges.setdefault(fid, hop)
            new = [n for n in reached if n not in hop_of]
            new = _expand_clusters(ws, new, p) if new else new
            for n in new:
                hop_of.setdefault(n, hop)
                arrival.setdefault(n, reached.get(n, arrival.get(n, 0)))
            frontier = [n for n in new if n > 0]
            if len(edges) > p.max_edges:
                truncated = True
                break
    return _materialise(ws, seeds, start, hop_of, edges, p, truncated)


def _one_hop(ws: Workspace, nodes: list[int], arrival: dict[int, int], direction: str, p: TraceParams):
    """One hop from party nodes: their movements, and through UTXO transaction nodes the second leg."""
    side = "dst_id" if direction == "out" else "src_id"
    pick = min if direction == "out" else max
    first = _arrays(ws.hop(nodes, direction))
    keep = _allowed(first, p, arrival, direction)
    used = first["flow_id"][keep].tolist()
    near = _arrivals(first, keep, side, pick)
    reached = {n: t for n, t in near.items() if n > 0}
    tx_nodes = sorted(n for n in near if n < 0)
    if tx_nodes:
        second = _arrays(ws.hop(tx_nodes, direction))
        keep2 = _allowed(second, p, {n: near[n] for n in tx_nodes}, direction)
        used += second["flow_id"][keep2].tolist()
        for n, t in _arrivals(second, keep2, side, pick).items():
            if n > 0:
                reached[n] = pick(reached.get(n, t), t)
    return reached, used


def _arrivals(e: dict[str, np.ndarray], keep: np.ndarray, side: str, pick) -> dict[int, int]:
    """For each node on ``side`` of the kept movements, when money first (forward: earliest; backward:
    latest) reaches it."""
    out: dict[int, int] = {}
    for node, t in zip(e[side][keep].tolist(), e["time"][keep].tolist(), strict=True):
        out[node] = pick(out.get(node, t), t)
    return out


def _allowed(e: dict[str, np.ndarray], p: TraceParams, arrival: dict[int, int], direction: str) -> np.ndarray:
    keep = np.ones(e["flow_id"].size, dtype=bool)
    if p.min_value is not None:
        keep &= e["amount"] / np.power(10.0, e["decimals"]) >= p.min_value
    if p.min_usd is not None:
        keep &= np.nan_to_num(e["usd"], nan=-1.0) >= p.min_usd
    if p.since is not None:
        keep &= e["time"] >= int(p.since.timestamp() * 1_000_000)
    if p.until is not None:
        keep &= e["time"] <= int(p.until.timestamp() * 1_000_000)
    # money moves forward in time: from a node reached at t, only movements at or after t (before, backward)
    side = "src_id" if direction == "out" else "dst_id"
    when = np.array([arrival.get(int(n), -NEVER if direction == "out" else NEVER) for n in e[side]], dtype=np.int64)
    keep &= (e["time"] >= when) if direction == "out" else (e["time"] <= when)
    return keep


def _not_stopped(ws: Workspace, nodes: list[int], p: TraceParams) -> list[int]:
    if not p.stop_at:
        return nodes
    stopped = {r[0] for r in ws.rows(
        """SELECT DISTINCT a.address_id FROM addresses a JOIN labels l ON l.chain = a.chain AND l.address = a.address
           WHERE a.address_id IN (SELECT unnest(?)) AND l.category IN (SELECT unnest(?))""", [nodes, list(p.stop_at)])}
    return [n for n in nodes if n not in stopped]


def _expand_clusters(ws: Workspace, nodes: list[int], p: TraceParams) -> list[int]:
    if p.level != "cluster" or not nodes:
        return nodes
    members = [r[0] for r in ws.rows(
        """SELECT c2.address_id FROM clusters c1 JOIN clusters c2 ON c2.chain = c1.chain AND c2.cluster_id = c1.cluster_id
           WHERE c1.address_id IN (SELECT unnest(?))""", [[n for n in nodes if n > 0]])]
    return sorted(set(nodes) | set(members))


def _materialise(ws: Workspace, seeds: list[str], start: dict[int, str], hop_of: dict[int, int],
                 edges: dict[int, int], p: TraceParams, truncated: bool) -> Trace:
    rows = ws.rows(
        """SELECT flow_id, src_id, dst_id, src, dst, chain, asset, amount_raw, usd, time, txid, kind
           FROM flows WHERE flow_id IN (SELECT unnest(?)) ORDER BY flow_id""", [sorted(edges)])
    edge_list = []
    node_ids = set(hop_of)
    for fid, sid, did, src, dst, chain, asset, amount, usd, time, txid, kind in rows:
        edge_list.append({"flow_id": fid, "src": src, "dst": dst, "chain": chain, "asset": asset, "amount": amount,
                          "usd": usd, "time": time.isoformat() if time else None, "txid": txid, "kind": kind,
                          "hop": edges[fid]})
        node_ids.update(x for x in (sid, did) if x is not None)
    parties = [n for n in node_ids if n > 0]
    info = {r[0]: r[1:] for r in ws.rows(
        """SELECT a.address_id, a.chain, a.address, c.cluster_id FROM addresses a
           LEFT JOIN clusters c ON c.address_id = a.address_id WHERE a.address_id IN (SELECT unnest(?))""", [parties])}
    labels: dict[int, list[dict]] = {}
    for aid, label, category, source in ws.rows(
            """SELECT a.address_id, l.label, l.category, l.source FROM addresses a
               JOIN labels l ON l.chain = a.chain AND l.address = a.address WHERE a.address_id IN (SELECT unnest(?))
               ORDER BY 1, 2""", [parties]):
        labels.setdefault(aid, []).append({"label": label, "category": category, "source": source})
    txs = {r[0]: r[1:] for r in ws.rows(
        "SELECT -tx_id, chain, txid FROM transactions WHERE tx_id IN (SELECT unnest(?))",
        [[-n for n in node_ids if n < 0]])}
    nodes = []
    for n in sorted(node_ids, key=lambda x: (hop_of.get(x, NEVER), x)):
        if n > 0:
            chain, address, cluster_id = info.get(n, (None, None, None))
            nodes.append({"id": address, "node": n, "chain": chain, "address": address, "cluster_id": cluster_id,
                          "labels": labels.get(n, []), "hop": hop_of.get(n), "kind": "party",
                          "seed": n in start})
        else:
            chain, txid = txs.get(n, (None, None))
            nodes.append({"id": f"tx:{txid}", "node": n, "chain": chain, "address": None, "cluster_id": None,
                          "labels": [], "hop": hop_of.get(n), "kind": "transaction", "seed": n in start})
    params = {k: (v.isoformat() if isinstance(v, dt.datetime) else list(v) if isinstance(v, tuple) else v)
              for k, v in asdict(p).items()}
    return Trace(list(seeds), nodes, edge_list, params, truncated)


# -- paths ------------------------------------------------------------------------------------------------
def path(ws: Workspace, a: str, b: str, hops: int = 6, max_degree: int | None = 1000, limit: int = 5) -> list[list[dict]]:
    """Shortest value-carrying paths from ``a`` to ``b`` (forward in flow direction), at most ``hops``
    address hops; nodes with more than ``max_degree`` movements (exchange hot wallets) are not walked
    through unless ``max_degree`` is None. Returns up to ``limit`` paths, each a list of flow edges."""
    src = set(resolve_seeds(ws, [a]))
    dst = set(resolve_seeds(ws, [b]))
    parents: dict[int, list[tuple[int, int]]] = {n: [] for n in src}   # node -> [(previous node, flow_id)]
    frontier = sorted(src)
    found = False
    for _ in range(2 * hops):  # a UTXO hop is two graph steps
        if not frontier or found:
            break
        e = _arrays(ws.hop(frontier, "out"))
        if max_degree is not None and e["flow_id"].size:
            srcs, counts = np.unique(e["src_id"], return_counts=True)
            busy = set(srcs[counts > max_degree].tolist()) - src
            if busy:
                mask = ~np.isin(e["src_id"], list(busy))
                e = {k: v[mask] for k, v in e.items()}
        nxt: set[int] = set()
        for fid, s, d in zip(e["flow_id"], e["src_id"], e["dst_id"], strict=True):
            d, s, fid = int(d), int(s), int(fid)
            if d == 0:
                continue
            if d not in parents:
                parents[d] = []
                nxt.add(d)
            if d in nxt:
                parents[d].append((s, fid))
        found = bool(dst & nxt)
        frontier = sorted(nxt)
    if not found:
        return []
    routes: list[list[int]] = []

    def walk(node: int, acc: list[int]) -> None:
        if len(routes) >= limit:
            return
        if node in src:
            routes.append(acc[::-1])
            return
        for prev, fid in parents[node]:
            walk(prev, [*acc, fid])

    for target in sorted(dst):
        if target in parents:
            walk(target, [])
    out = []
    for route in routes:
        rows = {r[0]: r for r in ws.rows(
            "SELECT flow_id, src, dst, chain, asset, amount_raw, usd, time, txid, kind FROM flows "
            "WHERE flow_id IN (SELECT unnest(?))", [route])}
        out.append([dict(zip(("flow_id", "src", "dst", "chain", "asset", "amount", "usd", "time", "txid", "kind"),
                             (*rows[f][:7], rows[f][7].isoformat() if rows[f][7] else None, *rows[f][8:]),
                             strict=True)) for f in route])
    return out
