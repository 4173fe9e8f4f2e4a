"""Follow the money: multi-hop traces and shortest paths over the ``flows`` graph.

A trace walks a frontier one hop at a time over the workspace's in-memory adjacency
(:mod:`tracer.store.adjacency`): one lookup per hop for account-model and fiat movements, two for a UTXO
hop (address → transaction node → address), which counts as one hop — the hop an investigator means.
Money only moves forward in time: a node reached at time t is followed only along movements at or after
t (before, when walking backward). Movements below the value threshold are not followed; nodes labelled
with a stop category (an exchange, say) are reached but not walked through. At cluster level, reaching an
address reaches its whole cluster (clusters from ``tracer cluster``). With ``through_exchanges``, money that
reaches an exchange labelled on several chains continues from that exchange's matching withdrawals on the
other chains, as an ``inferred`` edge with its basis (docs/tracing.md, "Through exchanges").

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
    through_exchanges: bool = False     # cross an exchange labelled on several chains (inferred steps)
    exchange_window_hours: float = 72.0  # withdrawals at most this long after the arrival
    exchange_tolerance: float = 0.03    # |withdrawn USD - arrived USD| <= this share of the arrival
    exchange_max_parts: int = 20        # a split withdrawal has at most this many movements


class Trace:
    """A trace's answer. Built as columns (:class:`_Columns`); ``nodes``, ``edges`` and :meth:`as_json`
    build the documented dictionaries from them when first asked (a 10^5-movement answer spends more
    time making dictionaries than finding the movements)."""

    def __init__(self, seeds: list[str], nodes: list[dict[str, Any]] | None = None,
                 edges: list[dict[str, Any]] | None = None, params: dict[str, Any] | None = None,
                 truncated: bool = False, columns: _Columns | None = None):
        self.seeds, self.params, self.truncated, self.columns = seeds, params or {}, truncated, columns
        self._nodes, self._edges = nodes, edges

    @property
    def nodes(self) -> list[dict[str, Any]]:
        if self._nodes is None:
            self._nodes = _without_gc(self.columns.node_dicts) if self.columns is not None else []
        return self._nodes

    @property
    def edges(self) -> list[dict[str, Any]]:
        if self._edges is None:
            self._edges = _without_gc(self.columns.edge_dicts) if self.columns is not None else []
        return self._edges

    def counts(self) -> tuple[int, int, int]:
        """(nodes, parties among them, edges), without building the dictionaries."""
        if self.columns is None or self._nodes is not None:
            return len(self.nodes), sum(1 for n in self.nodes if n["kind"] == "party"), len(self.edges)
        c = self.columns
        return c.nodes["node"].size, int(c.nodes["party"].sum()), c.edges["flow_id"].size + len(c.inferred)

    def as_json(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "nodes": self.nodes, "edges": self.edges,
                "params": {**self.params, "truncated": self.truncated}}


def _without_gc(build: Any) -> Any:
    """``build()`` with the cyclic garbage collector paused: 10^5 new dictionaries (none in a cycle) would
    otherwise set off collections that walk every object of the process, many times."""
    import gc

    paused = gc.isenabled()
    gc.disable()
    try:
        return build()
    finally:
        if paused:
            gc.enable()


@dataclass
class _Columns:
    """A trace's nodes and edges column by column (numpy arrays; text as object arrays), the inferred
    edges as their dictionaries, and the labels of the labelled nodes."""

    edges: dict[str, np.ndarray]
    inferred: list[dict[str, Any]]
    nodes: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[int, list[dict]] = field(default_factory=dict)

    def edge_dicts(self) -> list[dict[str, Any]]:
        e = self.edges
        usd = e["usd"].astype(object)
        usd[np.isnan(e["usd"])] = None
        out = [{"flow_id": a, "src": b, "dst": c, "chain": d, "asset": f, "amount": g, "usd": h, "time": i,
                "txid": j, "kind": k, "hop": m}
               for a, b, c, d, f, g, h, i, j, k, m in zip(
                   e["flow_id"].tolist(), e["src"].tolist(), e["dst"].tolist(), e["chain"].tolist(),
                   e["asset"].tolist(), e["amount"].tolist(), usd.tolist(), e["time"].tolist(), e["txid"].tolist(),
                   e["kind"].tolist(), e["hop"].tolist(), strict=True)]
        return out + [dict(x) for x in self.inferred]

    def node_dicts(self) -> list[dict[str, Any]]:
        n, labels = self.nodes, self.labels
        return [{"id": i, "node": node, "chain": chain, "address": address, "cluster_id": cluster,
                 "labels": labels.get(node, []) if party else [], "hop": None if hop < 0 else hop,
                 "kind": "party" if party else "transaction", "seed": seed}
                for i, node, chain, address, cluster, hop, party, seed in zip(
                    n["id"].tolist(), n["node"].tolist(), n["chain"].tolist(), n["address"].tolist(),
                    n["cluster_id"].tolist(), n["hop"].tolist(), n["party"].tolist(), n["seed"].tolist(), strict=True)]


class SeedError(ValueError):
    """A seed that names nothing in the store."""


def resolve_seeds(ws: Workspace, seeds: list[str], chain: str | None = None) -> dict[int, str]:
    """Node ids of the seeds: addresses on any chain (or ``chain``), bank accounts, ``cluster:N``, txids
    (a UTXO transaction's node; an account-model transaction's senders) and ads (``ad:[<site>:]<ad_id>``:
    the transaction that paid its fee)."""
    found: dict[int, str] = {}
    for seed in seeds:
        if seed.startswith("ad:"):
            for node in _ad_nodes(ws, seed):
                found[node] = seed
            continue
        if seed.startswith("cluster:"):
            rows = ws.rows("SELECT address_id FROM clusters WHERE cluster_id = ?", [int(seed.split(":", 1)[1])])
        else:
            text = seed.removeprefix("tx:")
            where, params = ("AND chain = ?", [chain]) if chain else ("", [])
            rows = _address_rows(ws, seed, where, params)
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


def _address_rows(ws: Workspace, text: str, where: str, params: list) -> list[tuple]:
    """The address ids named ``text``. ``addresses`` has no index on its text (an index would slow every
    ingest): the first lookup of a workspace scans it; later ones build (then keep current) an in-memory
    index of 64-bit hashes of every address, sorted (16 bytes an address), and check the few candidates it
    gives by id — milliseconds instead of a scan of millions of strings."""
    ws._trace_lookups = getattr(ws, "_trace_lookups", 0) + 1
    if ws._trace_lookups < 2:
        return ws.rows(f"SELECT address_id FROM addresses WHERE address = ? {where}", [text, *params])
    hashes, ids = _address_hashes(ws)
    h = np.uint64(ws.rows("SELECT hash(?)", [text])[0][0])
    candidates = ids[np.searchsorted(hashes, h, "left"):np.searchsorted(hashes, h, "right")].tolist()
    if not candidates:
        return []
    return ws.rows(f"SELECT address_id FROM addresses WHERE address_id = ANY(?) AND address = ? {where}",
                   [candidates, text, *params])


def _address_hashes(ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """(sorted hashes, their address ids), brought up to date with the addresses added since (ids only grow)."""
    count, top = ws.rows("SELECT count(*), coalesce(max(address_id), 0) FROM addresses")[0]
    cached = getattr(ws, "_trace_address_hashes", None)
    if cached is not None and cached[0] == (count, top):
        return cached[1], cached[2]
    above = cached[0][1] if cached is not None and count > cached[0][0] and top > cached[0][1] else None
    t = ws.store.arrow("SELECT hash(address) AS h, address_id FROM addresses WHERE address_id > ?",
                       [above if above is not None else -1])
    hashes, ids = t["h"].to_numpy().astype(np.uint64), t["address_id"].to_numpy().astype(np.int64)
    if above is not None:
        hashes, ids = np.concatenate([cached[1], hashes]), np.concatenate([cached[2], ids])
    order = np.argsort(hashes, kind="stable")
    ws._trace_address_hashes = ((count, top), hashes[order], ids[order])
    return hashes[order], ids[order]


def _ad_nodes(ws: Workspace, seed: str) -> list[int]:
    """``ad:<ad_id>`` or ``ad:<site>:<ad_id>``: the transaction that paid the ad's posting fee, as linked in
    ``ad_payments`` (``tracer ads link``) — forward it reaches the site's payment output and the payer's
    change, backward the payer."""
    site, _, ad_id = seed[3:].rpartition(":")
    where, params = ("ad_id = ? AND site = ?", [ad_id, site]) if site else ("ad_id = ?", [ad_id])
    sites = [r[0] for r in ws.rows(f"SELECT DISTINCT site FROM ads WHERE {where} ORDER BY 1", params)]
    if not sites:
        raise SeedError(f"{seed}: no such ad in this store (ad:<ad_id> or ad:<site>:<ad_id>)")
    if len(sites) > 1:
        raise SeedError(f"{seed}: the ad id is on several sites ({', '.join(sites)}): give ad:<site>:<ad_id>")
    paid = ws.rows(f"SELECT chain, txid FROM ad_payments WHERE {where}", params)
    if not paid:
        raise SeedError(f"{seed}: the ad is not linked to a payment (tracer ads link links ads to their fees)")
    chain, txid = paid[0]
    rows = ws.rows("SELECT -tx_id FROM transactions WHERE chain = ? AND txid = ? AND tx_id IS NOT NULL", [chain, txid])
    rows = rows or ws.rows("SELECT DISTINCT src_id FROM flows WHERE chain = ? AND txid = ? AND src_id IS NOT NULL",
                           [chain, txid])
    if not rows:
        raise SeedError(f"{seed}: its payment {chain} {txid} is not in this store")
    return [int(r[0]) for r in rows]


def _arrays(t: Any) -> dict[str, np.ndarray]:
    return {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names}


def _hop(ws: Workspace, nodes: Any, direction: str) -> dict[str, np.ndarray]:
    """One hop on the workspace's graph arrays as numpy columns, without checking the store for new flows
    (:func:`trace` brings the arrays up to date once, before it walks)."""
    return ws.adjacency().hop(nodes, direction, refresh=False)


def trace(ws: Workspace, seeds: list[str], params: TraceParams | None = None) -> Trace:
    """Walk the flows graph from ``seeds`` (see the module docstring)."""
    p = params or TraceParams()
    if p.direction not in ("forward", "backward", "both"):
        raise ValueError("direction is forward, backward or both")
    start = resolve_seeds(ws, seeds, p.chain)
    ws.adjacency().refresh()
    edges: dict[int, int] = {}   # flow_id -> hop
    inferred: list[dict[str, Any]] = []
    hop_of: dict[int, int] = {n: 0 for n in start}
    truncated = False
    exchanges = exchange_nodes(ws) if p.through_exchanges else None
    for direction in (("out", "in") if p.direction == "both" else ("out",) if p.direction == "forward" else ("in",)):
        forward = direction == "out"
        frontier = np.asarray(_expand_clusters(ws, list(start), p), np.int64)
        reached = _Times(forward)
        reached.add(frontier, np.full(frontier.size, reached.default))
        for n in frontier.tolist():
            hop_of.setdefault(n, 0)
        crossing: _Crossing | None = None
        for hop in range(1, p.hops + 1):
            if not frontier.size and crossing is None:
                break
            walkable = _not_stopped(ws, frontier, p) if frontier.size else frontier
            step = _one_hop(ws, walkable, reached, direction, p, with_arrivals=exchanges is not None)
            nodes, times, used = step.nodes, step.times, step.used
            if crossing is not None:  # the inferred steps found at the previous hop are this hop's
                nodes, times = np.concatenate([nodes, crossing.nodes]), np.concatenate([times, crossing.times])
                used = np.concatenate([used, crossing.used])
                for e in crossing.edges:
                    inferred.append({**e, "hop": hop})
                    hop_of.setdefault(e["src_id"], hop)  # the actor's node on the other chain (the other end
                    hop_of.setdefault(e["dst_id"], hop)  # was reached the hop before)
                crossing = None
            for fid in used.tolist():
                edges.setdefault(fid, hop)
            nodes, times = _first(nodes, times, forward)
            fresh = np.fromiter((n not in hop_of for n in nodes.tolist()), bool, nodes.size)
            new, new_times = nodes[fresh], times[fresh]
            if new.size and p.level == "cluster":
                members = np.setdiff1d(np.asarray(_expand_clusters(ws, new.tolist(), p), np.int64), new)
                members = members[np.fromiter((n not in hop_of for n in members.tolist()), bool, members.size)]
                new = np.concatenate([new, members])  # reached with their cluster: no time bound of their own
                new_times = np.concatenate([new_times, np.full(members.size, reached.default)])
            for n in new.tolist():
                hop_of[n] = hop
            reached.add(new, new_times)
            if exchanges is not None and hop < p.hops:
                crossing = _cross(ws, exchanges, step, p, forward)
            frontier = new[new > 0]
            if len(edges) > p.max_edges:
                truncated = True
                break
    return _materialise(ws, seeds, start, hop_of, edges, inferred, p, truncated)


class _Times:
    """When money first reached each node (forward: the earliest time; backward: the latest), as sorted
    arrays, so a hop's movements are checked against it without a loop over them."""

    def __init__(self, forward: bool):
        self.default = -NEVER if forward else NEVER
        self.nodes = np.zeros(0, np.int64)
        self.times = np.zeros(0, np.int64)

    def _at(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.minimum(np.searchsorted(self.nodes, nodes), max(self.nodes.size - 1, 0))
        return i, (self.nodes[i] == nodes) if self.nodes.size else np.zeros(nodes.size, bool)

    def of(self, nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64)
        i, hit = self._at(nodes)
        return np.where(hit, self.times[i] if self.nodes.size else self.default, self.default)

    def add(self, nodes: np.ndarray, times: np.ndarray) -> None:
        """Nodes (unique) not reached before, at ``times``."""
        nodes, times = np.asarray(nodes, np.int64), np.asarray(times, np.int64)
        _, hit = self._at(nodes)
        nodes, times = nodes[~hit], times[~hit]
        every = np.concatenate([self.nodes, nodes])
        order = np.argsort(every, kind="stable")
        self.nodes, self.times = every[order], np.concatenate([self.times, times])[order]


def _first(nodes: np.ndarray, times: np.ndarray, forward: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each node once, with the time money first reached it (forward: earliest; backward: latest)."""
    if not nodes.size:
        return nodes.astype(np.int64), times.astype(np.int64)
    order = np.lexsort((times if forward else -times, nodes))
    n, t = nodes[order], times[order]
    head = np.ones(n.size, bool)
    head[1:] = n[1:] != n[:-1]
    return n[head], t[head]


@dataclass
class _Step:
    """One hop: the parties reached and when, the movements used, and (for crossing exchanges) the
    movements that reached a party (backward: that a party paid) with the share of their value the trace
    carried and, as ``bound``, when the money was at the party on the trace's side (forward: when it reached
    the party that paid; backward: the latest time it was at the party paid)."""

    nodes: np.ndarray
    times: np.ndarray
    used: np.ndarray
    arrivals: dict[str, np.ndarray] | None = None


def _one_hop(ws: Workspace, nodes: np.ndarray, reached: _Times, direction: str, p: TraceParams,
             with_arrivals: bool = False) -> _Step:
    """One hop from party nodes: their movements, and through UTXO transaction nodes the second leg."""
    forward = direction == "out"
    side, near_side = ("dst_id", "src_id") if forward else ("src_id", "dst_id")
    first = _hop(ws, nodes, direction)
    k1 = _kept(first, _allowed(first, p, reached.of(first[near_side]), direction))
    used = [k1["flow_id"]]
    party = k1[side] > 0
    to_tx = k1[side] < 0
    out_nodes, out_times = [k1[side][party]], [k1["time"][party]]
    arrivals = None
    if with_arrivals:
        arrivals = {"flow_id": k1["flow_id"][party], "node": k1[side][party], "time": k1["time"][party],
                    "usd": k1["usd"][party], "share": np.ones(int(party.sum())),
                    "bound": reached.of(k1[near_side][party])}
    tx_nodes, tx_times = _first(k1[side][to_tx], k1["time"][to_tx], forward)
    if tx_nodes.size:
        at_tx = _Times(forward)
        at_tx.add(tx_nodes, tx_times)
        second = _hop(ws, tx_nodes, direction)
        k2 = _kept(second, _allowed(second, p, at_tx.of(second[near_side]), direction))
        used.append(k2["flow_id"])
        party2 = k2[side] > 0
        out_nodes.append(k2[side][party2])
        out_times.append(k2["time"][party2])
        if arrivals is not None:
            share, paid_from = _tx_share(ws, k1, to_tx, tx_nodes, reached, forward)
            at = np.searchsorted(tx_nodes, k2[near_side][party2])
            more = {"flow_id": k2["flow_id"][party2], "node": k2[side][party2], "time": k2["time"][party2],
                    "usd": k2["usd"][party2], "share": share[at], "bound": paid_from[at]}
            arrivals = {c: np.concatenate([arrivals[c], more[c]]) for c in arrivals}
    return _Step(np.concatenate(out_nodes), np.concatenate(out_times), np.concatenate(used), arrivals)


def _tx_share(ws: Workspace, k1: dict[str, np.ndarray], to_tx: np.ndarray, tx_nodes: np.ndarray,
              reached: _Times, forward: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per transaction node (sorted ``tx_nodes``): the share of its value the trace carried — forward, of its
    inputs' value the trace brought in (haircut: an exchange's sweep carries other customers' deposits
    too); backward, of its outputs' value the trace came back through (an exchange's batch pays other
    customers too) — and when the money was at the trace's side: forward, when it first reached the
    addresses that paid in; backward, the latest time it was at the addresses paid."""
    tx_side, near = ("dst_id", "src_id") if forward else ("src_id", "dst_id")
    at = np.searchsorted(tx_nodes, k1[tx_side][to_tx])
    traced = np.bincount(at, weights=k1["amount"][to_tx], minlength=tx_nodes.size)
    bound = np.full(tx_nodes.size, NEVER if forward else -NEVER, np.int64)
    (np.minimum if forward else np.maximum).at(bound, at, reached.of(k1[near][to_tx]))
    legs = _hop(ws, tx_nodes, "in" if forward else "out")
    total = np.bincount(np.searchsorted(tx_nodes, legs[tx_side]), weights=legs["amount"], minlength=tx_nodes.size)
    return np.minimum(1.0, traced / np.where(total > 0, total, 1.0)), bound


def _kept(e: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {c: v[keep] for c, v in e.items()}


def _allowed(e: dict[str, np.ndarray], p: TraceParams, when: np.ndarray | None, direction: str) -> np.ndarray:
    """Movements that pass the thresholds and, when ``when`` (the time money reached each movement's near
    end) is given, move forward in time from it (backward: happened before it)."""
    keep = np.ones(e["flow_id"].size, dtype=bool)
    if p.min_value is not None:
        keep &= e["amount"] / np.power(10.0, e["decimals"]) >= p.min_value
    if p.min_usd is not None:
        keep &= np.nan_to_num(e["usd"], nan=-1.0) >= p.min_usd
    if p.since is not None:
        keep &= e["time"] >= int(p.since.timestamp() * 1_000_000)
    if p.until is not None:
        keep &= e["time"] <= int(p.until.timestamp() * 1_000_000)
    if when is not None:
        keep &= (e["time"] >= when) if direction == "out" else (e["time"] <= when)
    return keep


# -- crossing an exchange between chains ------------------------------------------------------------------
def labelled_nodes(ws: Workspace) -> dict[str, np.ndarray]:
    """Every labelled node with its label's category, actor and the node's chain, as arrays sorted by node
    (codes into ``categories``, ``actors``, ``chains``; actor "" when the label names none). One join of
    ``labels`` with ``addresses``, kept on the workspace until labels or addresses change."""
    key = ws.rows("SELECT (SELECT count(*) FROM labels), (SELECT max(run_id) FROM labels), "
                  "(SELECT count(*) FROM addresses)")[0]
    cached = getattr(ws, "_trace_labelled_nodes", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    t = ws.store.arrow(
        """SELECT DISTINCT a.address_id AS node, coalesce(l.category, '') AS category,
                  coalesce(l.actor, '') AS actor, a.chain FROM labels l
           JOIN addresses a ON a.chain = l.chain AND a.address = l.address ORDER BY ALL""")
    out: dict[str, np.ndarray] = {"node": t["node"].to_numpy().astype(np.int64)}
    for col, names in (("category", "categories"), ("actor", "actors"), ("chain", "chains")):
        values = np.asarray(t[col].to_pylist(), dtype=object)
        out[names], out[col] = np.unique(values, return_inverse=True) if values.size else (values, values.astype(np.int64))
    ws._trace_labelled_nodes = (key, out)
    return out


def exchange_nodes(ws: Workspace) -> dict[str, np.ndarray]:
    """Nodes labelled ``exchange`` with an ``actor``, as sorted arrays: node, actor code, chain code (with
    the ``actors`` and ``chains`` they index); a node with labels of several actors keeps the first by name."""
    lab = labelled_nodes(ws)
    is_exchange = lab["categories"] == "exchange"
    keep = np.isin(lab["category"], np.flatnonzero(is_exchange)) & (lab["actors"][lab["actor"]] != "") \
        if lab["node"].size else np.zeros(0, bool)
    node, actor, chain = lab["node"][keep], lab["actor"][keep], lab["chain"][keep]
    first = np.ones(node.size, bool)
    first[1:] = node[1:] != node[:-1]
    return {"node": node[first], "actor": actor[first], "chain": chain[first], "actors": lab["actors"],
            "chains": lab["chains"]}


@dataclass
class _Crossing:
    nodes: np.ndarray   # the withdrawals' recipients
    times: np.ndarray   # when they received them
    used: np.ndarray    # the withdrawals' flow ids
    edges: list[dict[str, Any]]  # the inferred steps, with their basis


def _cross(ws: Workspace, ex: dict[str, np.ndarray], step: _Step, p: TraceParams,
           forward: bool = True) -> _Crossing | None:
    """Continue from exchanges the money reached on one chain at the same actor's nodes on another chain
    (docs/tracing.md, "Through exchanges"). Forward: the withdrawals after the arrival whose USD value
    matches what arrived. Backward (the trace came back through the exchange's withdrawals): the deposits
    before them whose value matches what was withdrawn. The movements of one hop at one actor on one chain
    are matched together."""
    a = step.arrivals
    if a is None or not a["node"].size or not ex["node"].size:
        return None
    i = np.minimum(np.searchsorted(ex["node"], a["node"]), ex["node"].size - 1)
    value = a["usd"] * a["share"]
    hit = (ex["node"][i] == a["node"]) & ~np.isnan(value)
    if not hit.any():
        return None
    window = int(p.exchange_window_hours * 3600 * 1_000_000)
    nodes, times, used, edges = [], [], [], []
    actor, chain = ex["actor"][i], ex["chain"][i]
    for act, ch in sorted({(int(x), int(y)) for x, y in zip(actor[hit], chain[hit], strict=True)}):
        sel = hit & (actor == act) & (chain == ch)
        traced = float(value[sel].sum())
        if traced <= 0:
            continue
        first, last = int(a["time"][sel].min()), int(a["time"][sel].max())
        if forward:  # from when the money reached the exchange's payer, at most the window before the arrival
            since, until = max(int(a["bound"][sel].min()), first - window), last + window
        else:  # the window around the withdrawals: the hot wallet sees a deposit when the exchange sweeps
            since, until = first - window, last + window  # it, which may be after it credited and paid out
        own = ex["node"][ex["actor"] == act]
        here = int(a["node"][sel][np.argmax(value[sel])])  # the actor's node that carried most of it
        for there in sorted(set(ex["chain"][(ex["actor"] == act) & (ex["chain"] != ch)].tolist())):
            found = (_withdrawals if forward else _deposits)(
                ws, ex["node"][(ex["actor"] == act) & (ex["chain"] == there)], own, traced, since, until, p)
            if found is None:
                continue
            m, rule = found
            matched = float(m["usd"])
            arrived, withdrawn = (traced, matched) if forward else (matched, traced)
            ids = (a["flow_id"][sel], m["actor_flow_ids"]) if forward else (m["actor_flow_ids"], a["flow_id"][sel])
            basis = {"actor": str(ex["actors"][act]),
                     "from_chain": str(ex["chains"][ch if forward else there]),
                     "to_chain": str(ex["chains"][there if forward else ch]),
                     "arrival_flow_ids": sorted(int(f) for f in ids[0]), "arrival_usd": round(arrived, 2),
                     "withdrawal_flow_ids": sorted(int(f) for f in ids[1]),
                     "withdrawal_usd": round(withdrawn, 2), "usd_difference": round(withdrawn - arrived, 2),
                     "usd_difference_share": round((withdrawn - arrived) / arrived, 4),
                     "window": [_iso(since), _iso(until)], "tolerance": p.exchange_tolerance, "rule": rule}
            when = int(m["time"]) if forward else first  # the first withdrawal
            for node in sorted(set(m["actor_nodes"].tolist())):
                src, dst = (here, node) if forward else (node, here)
                edges.append({"src_id": src, "dst_id": dst, "usd": round(arrived, 2), "time": when, "basis": basis})
            nodes.append(m["reach"])
            times.append(m["reach_time"])
            used.append(m["flow_ids"])
    if not edges:
        return None
    return _Crossing(np.concatenate(nodes), np.concatenate(times), np.concatenate(used), edges)


def _match(usd: np.ndarray, target: float, p: TraceParams) -> tuple[np.ndarray, str] | None:
    """Positions (in the order given: the nearest in time first) of the movements that match ``target``
    USD: the single one closest in value within the tolerance, else the shortest run from the first whose
    running total comes within it (at most ``exchange_max_parts``)."""
    tol = p.exchange_tolerance * target
    gap = np.abs(usd - target)
    if (gap <= tol).any():
        return np.array([int(np.argmin(gap))]), "one"
    ok = np.abs(np.cumsum(usd[: p.exchange_max_parts]) - target) <= tol
    if not ok.any():
        return None
    return np.arange(int(np.argmax(ok)) + 1), "run"


def _withdrawals(ws: Workspace, there: np.ndarray, own: np.ndarray, arrived: float, since: int, until: int,
                 p: TraceParams) -> tuple[dict[str, Any], str] | None:
    """The withdrawals from ``there`` (the actor's nodes on one other chain) to outsiders within the window
    that match ``arrived`` USD: the single one closest in value within the tolerance, else the first ones
    in time order whose running total comes within it (at most ``exchange_max_parts``)."""
    w = _hop(ws, there, "out")
    keep = _allowed(w, p, None, "out") & (w["time"] >= since) & (w["time"] <= until) & ~np.isnan(w["usd"])
    keep &= (w["dst_id"] != 0) & ~np.isin(w["dst_id"], own)
    w = _kept(w, keep)
    order = np.lexsort((w["flow_id"], w["time"]))
    w = {c: v[order] for c, v in w.items()}
    found = _match(w["usd"], arrived, p)
    if found is None:
        return None
    chosen, rule = found
    out = _kept(w, np.isin(np.arange(w["flow_id"].size), chosen))
    return ({"usd": out["usd"].sum(), "time": out["time"].min(), "actor_nodes": out["src_id"],
             "actor_flow_ids": out["flow_id"], "flow_ids": out["flow_id"], "reach": out["dst_id"],
             "reach_time": out["time"]},
            "one withdrawal" if rule == "one" else "the first withdrawals after the arrival")


def _deposits(ws: Workspace, there: np.ndarray, own: np.ndarray, withdrawn: float, since: int, until: int,
              p: TraceParams) -> tuple[dict[str, Any], str] | None:
    """The deposits into ``there`` (the actor's nodes on one other chain) from outsiders within the window
    that match ``withdrawn`` USD, by depositor (a customer's deposits come from its account, or its deposit
    address, however many movements it took): the single depositor whose total is closest in value within
    the tolerance, else the depositors nearest before the withdrawal, the latest first, whose running total
    comes within it (at most ``exchange_max_parts``). On a UTXO chain the depositors are the addresses
    whose coins the transactions paying the actor spent, each with the share of the transaction's outputs
    that went to the actor (haircut)."""
    d = _hop(ws, there, "in")
    keep = _allowed(d, p, None, "in") & (d["time"] >= since) & (d["time"] <= until) & ~np.isnan(d["usd"])
    keep &= (d["src_id"] != 0) & ~np.isin(d["src_id"], own)
    d = _kept(d, keep)
    direct = d["src_id"] > 0
    # per deposit: the depositor, the USD it gave, when, the movement into the actor's node and its own
    who, usd, when = [d["src_id"][direct]], [d["usd"][direct]], [d["time"][direct]]
    leg, own_leg = [d["flow_id"][direct]], [d["flow_id"][direct]]
    txs = np.unique(d["src_id"][~direct])
    if txs.size:
        outs = _hop(ws, txs, "out")
        total = np.bincount(np.searchsorted(txs, outs["src_id"]), weights=outs["amount"], minlength=txs.size)
        paid = np.bincount(np.searchsorted(txs, d["src_id"][~direct]), weights=d["amount"][~direct],
                           minlength=txs.size)
        share = np.minimum(1.0, paid / np.where(total > 0, total, 1.0))
        ins = _hop(ws, txs, "in")
        ins = _kept(ins, _allowed(ins, p, None, "in") & (ins["src_id"] > 0) & ~np.isin(ins["src_id"], own)
                    & ~np.isnan(ins["usd"]))
        at = np.searchsorted(txs, ins["dst_id"])
        who.append(ins["src_id"])
        usd.append(ins["usd"] * share[at])
        when.append(ins["time"])
        leg.append(ins["flow_id"])
        own_leg.append(-at - 1)  # which transaction: its movements into the actor are named below
    who, usd, when, leg, own_leg = (np.concatenate(x) for x in (who, usd, when, leg, own_leg))
    if not who.size:
        return None
    depositors, inv = np.unique(who, return_inverse=True)
    total_usd = np.bincount(inv, weights=usd, minlength=depositors.size)
    latest = np.full(depositors.size, -NEVER, np.int64)
    np.maximum.at(latest, inv, when)
    order = np.lexsort((depositors, -latest))  # the latest first
    found = _match(total_usd[order], withdrawn, p)
    if found is None:
        return None
    chosen, rule = found
    picked = np.isin(inv, order[chosen])
    tx_of = -own_leg[picked & (own_leg < 0)] - 1
    utxo = np.isin(d["src_id"], txs[np.unique(tx_of)]) & ~direct
    into = np.concatenate([d["flow_id"][direct][picked[: int(direct.sum())]], d["flow_id"][utxo]])
    nodes_in = np.concatenate([d["dst_id"][direct][picked[: int(direct.sum())]], d["dst_id"][utxo]])
    return ({"usd": total_usd[order[chosen]].sum(), "time": when[picked].max(), "actor_nodes": nodes_in,
             "actor_flow_ids": into, "flow_ids": np.concatenate([leg[picked], d["flow_id"][utxo]]),
             "reach": who[picked], "reach_time": when[picked]},
            "one depositor" if rule == "one" else "the last depositors before the withdrawal")


def _iso(us: int) -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).isoformat()


def _not_stopped(ws: Workspace, nodes: np.ndarray, p: TraceParams) -> np.ndarray:
    if not p.stop_at:
        return nodes
    lab = labelled_nodes(ws)
    stop = np.flatnonzero(np.isin(lab["categories"], list(p.stop_at)))
    return nodes[~np.isin(nodes, lab["node"][np.isin(lab["category"], stop)])]


def _expand_clusters(ws: Workspace, nodes: list[int], p: TraceParams) -> list[int]:
    if p.level != "cluster" or not nodes:
        return nodes
    members = [r[0] for r in ws.rows(
        """SELECT c2.address_id FROM clusters c1 JOIN clusters c2 ON c2.chain = c1.chain AND c2.cluster_id = c1.cluster_id
           WHERE c1.address_id IN (SELECT unnest(?))""", [[n for n in nodes if n > 0]])]
    return sorted(set(nodes) | set(members))


def _materialise(ws: Workspace, seeds: list[str], start: dict[int, str], hop_of: dict[int, int],
                 edges: dict[int, int], inferred: list[dict[str, Any]], p: TraceParams, truncated: bool) -> Trace:
    """The Trace's nodes and edges as columns: the movements' columns from the in-memory graph arrays
    (:meth:`tracer.store.adjacency.Adjacency.columns`), the nodes' names from the workspace's id → text
    indexes (:mod:`tracer.store.names`), joined in numpy; only movements whose text is not known by id
    (account-model and fiat movements carry a txid of their own; amounts beyond 64 bits) are read from
    ``flows``. No dictionaries: :meth:`Trace.as_json` builds them when asked."""
    fids = np.fromiter(edges.keys(), np.int64, len(edges))
    edge_hops = np.fromiter(edges.values(), np.int64, len(edges))
    order = np.argsort(fids)
    fids, edge_hops = fids[order], edge_hops[order]
    adj = ws.adjacency()
    f = adj.columns(fids, ("src_id", "dst_id", "usd", "time", "units", "code")) if fids.size else \
        {c: np.zeros(0, np.int64) for c in ("src_id", "dst_id", "units", "code", "time")} | {"usd": np.zeros(0)}
    sid, did = f["src_id"].astype(np.int64), f["dst_id"].astype(np.int64)
    hop_nodes = np.fromiter(hop_of.keys(), np.int64, len(hop_of))
    hop_values = np.fromiter(hop_of.values(), np.int64, len(hop_of))
    ends = [hop_nodes, sid[sid != 0], did[did != 0],
            np.asarray([n for e in inferred for n in (e["src_id"], e["dst_id"])], np.int64)]
    node_ids = np.unique(np.concatenate(ends))
    names = ws.names()
    parties, txs = node_ids > 0, node_ids < 0
    a_named, t_named = names.addresses.take(node_ids[parties]), names.transactions.take(-node_ids[txs])
    chain = np.full(node_ids.size, None, object)
    address = np.full(node_ids.size, None, object)
    tx_text = np.full(node_ids.size, None, object)
    chain[parties], chain[txs] = a_named.chain, t_named.chain
    address[parties] = _objects(a_named.text)
    tx_text[txs] = _objects(t_named.text)
    known = np.zeros(node_ids.size, bool)
    known[parties], known[txs] = a_named.found, t_named.found
    name = address.copy()  # each node's name (an address, ``tx:<txid>``), None for one not known by id
    at_tx = np.flatnonzero(txs & known)
    name[at_tx] = [f"tx:{t}" for t in tx_text[at_tx].tolist()]

    def of(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _lookup(node_ids, n)

    def party_name(n: int) -> str | None:
        at, hit = of(np.asarray([n], np.int64))
        return name[at[0]] if n > 0 and hit[0] else None

    s_at, _ = of(sid)
    d_at, _ = of(did)
    src, dst = np.where(sid != 0, name[s_at], None), np.where(did != 0, name[d_at], None)
    tx_end = np.where(sid < 0, sid, did)
    x_at, x_hit = of(tx_end)
    x_hit &= (tx_end < 0)
    txid = np.full(fids.size, None, object)
    txid[x_hit] = tx_text[x_at[x_hit]]
    x_hit &= txid != None  # noqa: E711
    kinds = np.asarray([c[2] for c in adj.codes] or [""], object)
    kind = kinds[f["code"]] if fids.size else np.zeros(0, object)
    units = f["units"].astype(np.int64)
    amount = np.full(fids.size, None, object)
    exact = units >= 0
    amount[exact] = units[exact].astype(str).astype(object)
    # account-model and fiat movements carry a txid of their own; and any end not known by id
    plain = (kind == "utxo") & (sid != 0) & (src != None) & (dst != None) & x_hit & exact  # noqa: E711
    if not plain.all():
        x = _with_ids(ws, "SELECT flow_id, src, dst, txid, amount_raw FROM flows "
                          "WHERE flow_id IN (SELECT id FROM _trace_ids) ORDER BY 1", fids[~plain])
        at = np.searchsorted(fids, x["flow_id"].to_numpy().astype(np.int64))
        for col, values in (("src", src), ("dst", dst), ("txid", txid), ("amount_raw", amount)):
            values[at] = _objects(x[col])
    times = f["time"]
    valid = ~np.isnan(times) if times.dtype.kind == "f" else np.ones(times.size, bool)
    columns = _Columns(
        edges={"flow_id": fids, "src": src, "dst": dst,
               "chain": np.asarray([c[0] for c in adj.codes] or [""], object)[f["code"]] if fids.size else kind,
               "asset": np.asarray([c[1] for c in adj.codes] or [""], object)[f["code"]] if fids.size else kind,
               "amount": amount, "usd": f["usd"].astype(np.float64),
               "time": _isoformat(np.where(valid, times, 0).astype(np.int64), valid), "txid": txid,
               "kind": kind, "hop": edge_hops},
        inferred=[{"flow_id": None, "src": party_name(e["src_id"]), "dst": party_name(e["dst_id"]), "chain": None, "asset": "USD", "amount": None, "usd": e["usd"], "time": _iso(e["time"]),
                   "txid": None, "kind": "inferred", "hop": e["hop"], "basis": e["basis"]} for e in inferred])
    by_node = np.argsort(hop_nodes)
    at, hit = _lookup(hop_nodes[by_node], node_ids)
    hops = np.where(hit, hop_values[by_node][at] if hop_nodes.size else 0, NEVER)
    order = np.lexsort((node_ids, hops))  # by hop (nodes without one last), then id
    ordered = node_ids[order]
    party = ordered > 0
    cluster = np.full(ordered.size, None, object)
    if (party & known[order]).any() and ws.rows("SELECT count(*) FROM cluster_state")[0][0]:
        c = _with_ids(ws, "SELECT address_id, cluster_id FROM clusters WHERE address_id IN (SELECT id FROM _trace_ids)",
                      ordered[party & known[order]])
        c_at, c_hit = _lookup(ordered, c["address_id"].to_numpy().astype(np.int64))
        cluster[c_at[c_hit]] = _objects(c["cluster_id"])[c_hit]
    node_names = np.where(party, address[order], None)
    at_tx = np.flatnonzero(~party)
    node_names[at_tx] = [f"tx:{t}" for t in tx_text[order][at_tx].tolist()]
    columns.nodes = {"id": node_names, "node": ordered, "chain": chain[order],
                     "address": np.where(party, address[order], None), "cluster_id": cluster,
                     "hop": np.where(hit, hops, -1)[order], "party": party,
                     "seed": np.isin(ordered, np.fromiter(start.keys(), np.int64, len(start)))}
    columns.labels = _node_labels(ws, ordered[party & known[order]])
    params = {k: (v.isoformat() if isinstance(v, dt.datetime) else list(v) if isinstance(v, tuple) else v)
              for k, v in asdict(p).items()}
    return Trace(list(seeds), params=params, truncated=truncated, columns=columns)


def _with_ids(ws: Workspace, sql: str, ids: Any) -> Any:
    """``sql`` run with the table ``_trace_ids(id)`` holding ``ids``: DuckDB scans an Arrow table of
    thousands of ids far faster than it binds a list parameter of them."""
    import pyarrow as pa

    with ws.store.view("_trace_ids", pa.table({"id": ids if isinstance(ids, pa.ChunkedArray) else pa.array(ids)})):
        return ws.store.arrow(sql)


def _objects(column: Any) -> np.ndarray:
    """An Arrow column as a numpy object array (None for nulls)."""
    return np.asarray(column.to_pylist(), dtype=object) if len(column) else np.zeros(0, object)


def _lookup(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``wanted`` in the sorted unique ``keys`` and whether each is there."""
    if not keys.size:
        return np.zeros(wanted.size, np.int64), np.zeros(wanted.size, bool)
    at = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    return at, keys[at] == wanted


def _isoformat(us: np.ndarray, valid: Any) -> np.ndarray:
    """Microseconds since the epoch as ``datetime.isoformat`` writes them (no fraction when it is zero)."""
    out = np.full(us.size, None, object)
    distinct, back = np.unique(np.asarray(us[valid], np.int64), return_inverse=True)  # a block's movements
    t = distinct.astype("datetime64[us]")                                               # share its time
    text = np.datetime_as_string(t, unit="s").astype(object)
    part = (distinct % 1_000_000) != 0
    if part.any():
        text[part] = np.datetime_as_string(t[part], unit="us").astype(object)
    out[valid] = text[back]
    return out


def _node_labels(ws: Workspace, nodes: np.ndarray) -> dict[int, list[dict]]:
    """The labels of the party ``nodes`` by node id (each node's in label, category, source order), from
    one join of ``labels`` with ``addresses`` kept on the workspace until labels or addresses change."""
    key = ws.rows("SELECT (SELECT count(*) FROM labels), (SELECT max(run_id) FROM labels), "
                  "(SELECT count(*) FROM addresses)")[0]
    cached = getattr(ws, "_trace_node_labels", None)
    if cached is None or cached[0] != key:
        t = ws.store.arrow("""SELECT a.address_id AS node, l.label, l.category, l.source FROM labels l
                              JOIN addresses a ON a.chain = l.chain AND a.address = l.address
                              ORDER BY node, l.label, l.category, l.source""")
        ids = t["node"].to_numpy().astype(np.int64)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if ids.size else np.zeros(0, np.int64)
        rows = [{"label": a, "category": b, "source": c} for a, b, c in zip(
            t["label"].to_pylist(), t["category"].to_pylist(), t["source"].to_pylist(), strict=True)]
        bounds = np.r_[starts, ids.size].tolist()
        cached = (key, ids[starts], [rows[i:j] for i, j in zip(bounds[:-1], bounds[1:], strict=True)])
        ws._trace_node_labels = cached
    _, labelled, groups = cached
    at, hit = _lookup(labelled, np.asarray(nodes, np.int64))
    return {int(n): groups[i] for n, i in zip(np.asarray(nodes)[hit].tolist(), at[hit].tolist(), strict=True)}


# -- paths ------------------------------------------------------------------------------------------------
def path(ws: Workspace, a: str, b: str, hops: int = 6, max_degree: int | None = 1000, limit: int = 5) -> list[list[dict]]:
    """Shortest value-carrying paths from ``a`` to ``b`` (forward in flow direction), at most ``hops``
    address hops; nodes with more than ``max_degree`` movements (exchange hot wallets) are not walked
    through unless ``max_degree`` is None. Returns up to ``limit`` paths, each a list of flow edges."""
    src = set(resolve_seeds(ws, [a]))
    dst = set(resolve_seeds(ws, [b]))
    ws.adjacency().refresh()
    parents: dict[int, list[tuple[int, int]]] = {n: [] for n in src}   # node -> [(previous node, flow_id)]
    frontier = sorted(src)
    found = False
    for _ in range(2 * hops):  # a UTXO hop is two graph steps
        if not frontier or found:
            break
        e = _hop(ws, frontier, "out")
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
