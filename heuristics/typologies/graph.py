"""Graph typologies over account-level flows: fan-in, fan-out, cycles, scatter-gather, gather-scatter.

The shapes are IBM AMLSim's alert patterns (Weber et al., "Scalable Graph Learning for Anti-Money
Laundering", 2018; github.com/IBM/AMLSim) and the funnel accounts of FinCEN FIN-2014-A005. They are
searched over the account-model flows (``kind`` fiat, erc20, native, internal): bank accounts and EVM
addresses. Bitcoin is not searched here (its flows pass through transaction nodes; an address-level
projection is future work, docs/heuristics.md).

Everything is set-based: flows are numpy columns sorted once; windows come from one ``searchsorted``
over a composite (node, time) key; two-hop and k-hop paths are grown frontier by frontier, each
frontier joined to the candidate next edges by ranges of a sorted edge list (``np.repeat`` over the
ranges), pruned by time order, the time window, the share of value kept and a degree cap. Python loops
only run over candidate windows and groups, never over the flows.

Ordinary activity shares these shapes — payroll runs (one employer to many employees), merchants taking
card payments and utilities taking bill payments (many to one). Scores combine features that separate
them (docs/heuristics.md gives the rationale of each):

* ``through``: the share of the value passed on within ``hold_hours`` (funnels are emptied within
  hours or days; merchants and utilities keep balances), or for a fan-out the share funded within
  ``hold_hours`` before (a mule fans out what it just received; an employer pays out of revenue);
* ``dedicated``: the share of the hub's flows (in the data) that belong to the pattern (accounts opened
  for a scheme are used in a burst; businesses trade all month);
* ``novel``: the share of the pattern's flows whose counterparty relationship does not outlast the
  window (payroll and bills recur each period; mules appear once);
* ``noncard``: the share of the value not paid by card (card payments in are a merchant's takings);
* ``size``: ``1 - 2^-(n - min + 1)``, n the counterparties (more of them, more certainty).

A pattern is reported under its most specific shape: a fan-in or fan-out whose evidence lies mostly
within a scatter-gather or gather-scatter alert (with their default parameters) is left to that alert.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from heuristics.typologies.base import (AlertsError, Context, Typology, found, group_sort, make_params, param, register,
                                        window_ends)

ACCOUNT_KINDS = ("fiat", "erc20", "native", "internal")
AMLSIM = "IBM AMLSim alert patterns (github.com/IBM/AMLSim); "


# -- the account-level graph, loaded once per run ----------------------------------------------------------
class Graph:
    """Account-level flows (self-movements other than fiat cash deposits dropped), with per-flow features.

    ``t`` in seconds; ``card`` a fiat card payment; ``cash`` a fiat cash deposit (AMLworld writes one as a
    row from the account to itself); ``span`` the time between the first and the last flow of the flow's
    (src, dst) pair; ``degree`` the flows of each node (by dense node index ``si``/``di``)."""

    def __init__(self, ctx: Context, chains: tuple, min_usd: float, one_off_days: float = 0.0):
        f = ctx.flows(chains or None, ACCOUNT_KINDS)
        keep = (f["usd"] >= min_usd) & (f["src_id"] > 0) & (f["dst_id"] > 0)
        fiat = _code(f, "chain", "fiat")
        self_row = f["src_id"] == f["dst_id"]
        keep &= ~self_row | (f["chain"] == fiat)
        if one_off_days > 0:  # only pairs whose flows all fall within one_off_days of each other
            keep &= _pair_span(f["src_id"], f["dst_id"], f["time"] // 1_000_000, keep) <= one_off_days * 86400
        idx = np.flatnonzero(keep)
        self.fid = f["flow_id"][idx]
        self.src, self.dst = f["src_id"][idx], f["dst_id"][idx]
        self.usd = f["usd"][idx]
        self.t = f["time"][idx] // 1_000_000
        self.us = f["time"][idx]
        self.cash = self.src == self.dst
        card_ids = np.asarray([r[0] for r in ctx.store.query(
            "SELECT f.flow_id FROM flows f JOIN transfers t ON t.chain = 'fiat' AND f.chain = 'fiat' "
            "AND t.txid = f.txid AND t.idx IS NOT DISTINCT FROM f.idx WHERE t.kind = 'credit card'")], np.int64)
        self.card = np.isin(self.fid, card_ids)
        nodes, inv = np.unique(np.concatenate([self.src, self.dst]), return_inverse=True)
        self.nodes = nodes
        n = self.fid.size
        self.si, self.di = inv[:n], inv[n:]
        # flows per node (a cash deposit counts once)
        self.degree = np.bincount(self.si, minlength=nodes.size) + np.bincount(self.di[~self.cash], minlength=nodes.size)
        self.span = _pair_span(self.si, self.di, self.t, np.ones(n, bool))
        # outgoing edges (no self rows) sorted by (source, time): the candidates of the path searches
        out = np.flatnonzero(~self.cash)
        self.out = out[group_sort(self.si[out], self.t[out])]
        self.tmin = int(self.t.min()) if n else 0
        self.tspan = (int(self.t.max()) - self.tmin + 1) if n else 1
        self.out_key = self.key(self.si[self.out], self.t[self.out])

    def key(self, node_idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """A composite (node, time) key; times outside the data's span are clipped to it."""
        return node_idx.astype(np.int64) * (self.tspan + 1) + np.clip(np.asarray(t) - self.tmin, 0, self.tspan)

    def next_edges(self, node_idx: np.ndarray, after: np.ndarray, until: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each i: the out-edges of ``node_idx[i]`` with time in [after[i], until[i]] as pairs
        (i, flow index): each hop at or after the previous one (equal times happen at a day's or a
        minute's resolution)."""
        lo = np.searchsorted(self.out_key, self.key(node_idx, after), "left")
        hi = np.searchsorted(self.out_key, self.key(node_idx, np.maximum(until, after)), "right")
        n = np.maximum(hi - lo, 0)
        left = np.repeat(np.arange(node_idx.size), n)
        start = np.repeat(lo - np.cumsum(n) + n, n)
        return left, self.out[start + np.arange(left.size)]


def _pair_span(src: np.ndarray, dst: np.ndarray, t: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each flow: the time between the first and the last flow (among ``mask``) of its (src, dst) pair."""
    out = np.zeros(src.size, np.int64)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    _, pinv = np.unique(np.stack([src[idx], dst[idx]], axis=1), axis=0, return_inverse=True)
    pinv = pinv.ravel()
    lo = np.full(pinv.max() + 1, np.iinfo(np.int64).max)
    hi = np.full(lo.size, np.iinfo(np.int64).min)
    np.minimum.at(lo, pinv, t[idx])
    np.maximum.at(hi, pinv, t[idx])
    out[idx] = (hi - lo)[pinv]
    return out


def _code(f: dict, col: str, name: str) -> int:
    names = list(f[f"{col}_names"])
    return names.index(name) if name in names else -1


def graph_of(ctx: Context, p) -> Graph:
    cache = ctx.__dict__.setdefault("_graph_typologies", {})
    one_off = p.window_days if p.one_off_only else 0.0
    key = ("graph", p.chains, p.min_usd, one_off)
    if key not in cache:
        cache[key] = Graph(ctx, p.chains, p.min_usd, one_off)
    return cache[key]


def dense_windows(group: np.ndarray, end: np.ndarray, ok: np.ndarray) -> list[tuple[int, int]]:
    """Non-overlapping windows per group, the fullest first: of the windows ``ok`` marks (events sorted by
    group and time, ``end`` from ``window_ends``), take them by descending number of events and keep each
    that overlaps no window already kept for its group. A burst is not cut in two by a window that an
    earlier, ordinary event opened. Loops over candidate windows only."""
    cand = np.flatnonzero(ok)
    cand = cand[np.lexsort((cand, -(end[cand] - cand)))]
    taken: dict[int, list[tuple[int, int]]] = {}
    for i in cand:
        s, e = int(i), int(end[i])
        mine = taken.setdefault(int(group[i]), [])
        if all(e <= s2 or s >= e2 for s2, e2 in mine):
            mine.append((s, e))
    return sorted(w for ws in taken.values() for w in ws)


def _size(n, minimum: int):
    return 1 - 0.5 ** (n - minimum + 1)


# -- parameters --------------------------------------------------------------------------------------------
def _common():
    return {
        "chains": param((), "Chains searched (comma list; empty: every chain with account-level flows)."),
        "min_usd": param(1.0, "Flows below this USD value (or unvalued) are ignored."),
        "window_days": param(7.0, "The window the pattern's movements fall in."),
        "hold_hours": param(72.0, "How soon value counts as passed on (or how recently funded)."),
        "max_node_flows": param(200, "Nodes with more flows than this are services, not intermediaries "
                                     "(prunes the path searches)."),
        "min_score": param(0.75, "Alerts scoring below this are not raised."),
        "one_off_only": param(False, "Search only flows whose counterparty relationship does not outlast the "
                                     "window (for data where ordinary relationships recur, as in AMLSim)."),
    }


def _params(name: str, fields: dict) -> type:
    ns = {"__annotations__": {k: type(v.default) for k, v in fields.items()}, **fields}
    return dataclass(frozen=True)(type(name, (), ns))


FanParams = _params("FanParams", {
    **_common(),
    "min_counterparties": param(5, "Distinct senders (fan-in) or recipients (fan-out) in one window; each fiat "
                                   "cash deposit counts as a sender of its own."),
    "defer": param(True, "Leave patterns that lie mostly inside a scatter-gather or gather-scatter alert to it."),
})
CycleParams = _params("CycleParams", {
    **_common(),
    "window_days": param(10.0, "The window from the first hop to the return."),
    "min_usd": param(500.0, "Hops below this USD value are ignored (small round trips are repayments among "
                            "friends)."),
    "max_hops": param(6, "Longest round trip searched (hops; the shortest is 2)."),
    "keep": param(0.6, "Each hop carries at least this share of the previous hop's value ..."),
    "grow": param(1.05, "... and at most this multiple of it."),
})
ScatterGatherParams = _params("ScatterGatherParams", {
    **_common(),
    "min_intermediaries": param(3, "Distinct intermediaries between the source and the destination."),
    "keep": param(0.6, "An intermediary passes on at least this share of what it received ..."),
    "grow": param(1.05, "... and at most this multiple of it."),
})
GatherScatterParams = _params("GatherScatterParams", {
    **_common(),
    "min_senders": param(4, "Distinct senders into the hub within the window (cash deposits count each)."),
    "min_recipients": param(4, "Distinct recipients of the hub within hold_hours after the last inflow."),
})


# -- fan-in, fan-out and gather-scatter: windows around a hub -------------------------------------------------
def _distinct(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The number of distinct ``values[starts[k]:ends[k]]`` for each k, at once (no loop over k)."""
    lens = np.maximum(ends - starts, 0)
    wid = np.repeat(np.arange(starts.size), lens)
    pos = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(wid.size)
    if wid.size == 0:
        return np.zeros(starts.size, np.int64)
    pairs = np.unique(np.stack([wid, values[pos]], axis=1), axis=0)
    return np.bincount(pairs[:, 0], minlength=starts.size)


def _windows(g: Graph, p, role: str, min_cp: int) -> dict[str, np.ndarray]:
    """Windows of ``window_days`` in which a hub receives from (role ``in``) or sends to (``out``) at least
    ``min_cp`` distinct counterparties, with the features of docs/heuristics.md, as arrays (one element
    per window; ``idx[s:e]`` are its flows, ``back[a:b]`` the hub's flows the other way within
    ``hold_hours``). Features are computed for all windows at once with prefix sums and searchsorted."""
    width, hold = int(p.window_days * 86400), int(p.hold_hours * 3600)
    if role == "in":
        idx = np.arange(g.fid.size)
        hub, other = g.di[idx], np.where(g.cash[idx], -1 - idx, g.si[idx])
        back = np.flatnonzero(~g.cash)  # the hub's outflows
        back_hub, back_other = g.si[back], g.di[back]
    else:
        idx = np.flatnonzero(~g.cash)
        hub, other = g.si[idx], g.di[idx]
        back = np.arange(g.fid.size)  # the hub's inflows, cash deposits included
        back_hub, back_other = g.di[back], np.where(g.cash, -1 - back, g.si[back])
    order = group_sort(hub, g.t[idx])
    idx, hub, other = idx[order], hub[order], other[order]
    t = g.t[idx]
    end = window_ends(hub, t, width)
    ok = (end - np.arange(idx.size)) >= min_cp
    wins = np.asarray(dense_windows(hub, end, ok) if ok.any() else np.zeros((0, 2)), np.int64).reshape(-1, 2)
    s, e = wins[:, 0], wins[:, 1]
    n = _distinct(other, s, e)
    keep = n >= min_cp
    s, e, n = s[keep], e[keep], n[keep]
    border = group_sort(back_hub, g.t[back])
    back, back_hub, back_other = back[border], back_hub[border], back_other[border]
    bkey = g.key(back_hub, g.t[back])
    h, t0, t1 = hub[s], t[s], t[e - 1] if e.size else t[:0]
    lo_t, hi_t = (t0, t1 + hold) if role == "in" else (t0 - hold, t1)
    a = np.searchsorted(bkey, g.key(h, lo_t), "left")
    b = np.searchsorted(bkey, g.key(h, hi_t), "right")

    def total(x: np.ndarray, order_: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(x[order_].astype(np.float64))])
        return c[hi] - c[lo]

    usd = total(g.usd, idx, s, e)
    counter = total(g.usd, back, a, b)
    safe = np.where(usd > 0, usd, 1.0)
    return {
        "idx": idx, "back": back, "hub": h, "s": s, "e": e, "a": a, "b": b, "n": n, "t0": t0, "t1": t1,
        "usd": usd, "counter": counter,
        "through": np.where(usd > 0, np.clip(1 - np.abs(1 - counter / safe), 0, 1), 0.0),
        "dedicated": np.minimum(1.0, (e - s + b - a) / np.maximum(g.degree[h], 1)),
        "novel": total((g.span <= width).astype(np.float64), idx, s, e) / np.maximum(e - s, 1),
        "noncard": np.where(usd > 0, 1 - total(g.usd * g.card, idx, s, e) / safe, 1.0),
        "burst": 1 - np.minimum(1.0, (t1 - t0) / width),
        # counterparties used for little else (a mule has its two flows; a biller or utility, dozens)
        "cp_dedicated": total(np.minimum(1.0, 2.0 / np.maximum(g.degree[g.di if role == "out" else g.si], 1))
                              * (~g.cash), idx, s, e) / np.maximum(e - s, 1),
        "n_back": _distinct(back_other, a, b),
    }


def _specific_evidence(ctx: Context, names: tuple, p) -> np.ndarray:
    """Flow ids in the evidence of the more specific typologies' alerts: their own defaults, with the
    parameters they share with ``p`` (chains, window, hold, one_off_only, ...) taken from ``p``."""
    ev = []
    for name in names:
        own = make_params(name)
        shared = {f.name: getattr(p, f.name) for f in dataclasses.fields(own) if hasattr(p, f.name)}
        ev += [np.asarray(e, np.int64) for e in _run(ctx, name, dataclasses.replace(own, **shared)).column(
            "evidence").to_pylist()]
    return np.unique(np.concatenate(ev)) if ev else np.zeros(0, np.int64)


def _check(name: str, p) -> None:
    """Values a detector cannot take are an :class:`AlertsError` naming the parameter."""
    lowest = {"hold_hours": 0, "min_usd": 0, "max_node_flows": 2, "min_counterparties": 2, "min_senders": 2,
              "min_recipients": 2, "min_intermediaries": 2, "max_hops": 2}
    bad = [(k, f"must be >= {v}") for k, v in lowest.items() if hasattr(p, k) and getattr(p, k) < v]
    if p.window_days <= 0:
        bad.append(("window_days", "must be > 0"))
    if hasattr(p, "keep") and not 0 < p.keep <= p.grow:
        bad.append(("keep", "must be > 0 and <= grow"))
    if bad:
        raise AlertsError(f"{name}.{bad[0][0]}={getattr(p, bad[0][0])!r}: {bad[0][1]}")


def _run(ctx: Context, name: str, p):
    _check(name, p)
    cache = ctx.__dict__.setdefault("_graph_typologies", {})
    key = ("run", name, p)
    if key not in cache:
        cache[key] = DETECTORS[name](ctx, p)
    return cache[key]


def _fan(ctx: Context, p, role: str):
    g = graph_of(ctx, p)
    w = _windows(g, p, role, p.min_counterparties)
    score = (0.3 * w["through"] + 0.2 * w["dedicated"] + 0.15 * w["novel"] + 0.1 * w["noncard"]
             + 0.15 * w["burst"] + 0.1 * _size(w["n"], p.min_counterparties))
    if role == "out":  # paying billers and utilities (popular payees) is not paying out to mules
        score = score * (0.75 + 0.25 * w["cp_dedicated"])
    take = np.flatnonzero(score >= p.min_score)
    specific = _specific_evidence(ctx, ("scatter_gather", "gather_scatter"), p) if p.defer and take.size else None
    rows = []
    for k in take:
        ev_in = w["idx"][w["s"][k]:w["e"][k]]
        if specific is not None and np.isin(g.fid[ev_in], specific).mean() >= 0.5:
            continue
        ev = np.concatenate([ev_in, w["back"][w["a"][k]:w["b"][k]]])
        span_h = (w["t1"][k] - w["t0"][k]) / 3600
        if role == "in":
            text = (f"{w['n'][k]} senders paid {w['usd'][k]:,.2f} USD in {span_h:.1f} h; {w['through'][k]:.0%} passed "
                    f"on within {p.hold_hours:g} h to {w['n_back'][k]} accounts")
        else:
            text = (f"{w['n'][k]} recipients got {w['usd'][k]:,.2f} USD in {span_h:.1f} h; {w['through'][k]:.0%} of it "
                    f"received within {p.hold_hours:g} h before from {w['n_back'][k]} senders")
        text += (f"; {w['novel'][k]:.0%} one-off counterparties, {w['dedicated'][k]:.0%} of the account's flows, "
                 f"{1 - w['noncard'][k]:.0%} by card")
        rows.append(_row(g, int(w["hub"][k]), ev_in[0], float(score[k]), ev, float(w["usd"][k]), text))
    return found(rows)


def _row(g: Graph, hub_idx: int, anchor_idx: int, score: float, ev: np.ndarray, usd: float, summary: str) -> dict:
    """An alert: the hub first among the subjects, the evidence flows in time order."""
    ev = ev[np.argsort(g.us[ev], kind="stable")]
    cps = np.unique(np.concatenate([g.si[ev], g.di[ev]]))
    focal = int(g.nodes[hub_idx])
    subjects = [focal] + [int(g.nodes[c]) for c in cps if c != hub_idx]
    return {"focal_id": focal, "anchor": int(g.fid[anchor_idx]), "score": float(score), "subjects": subjects,
            "evidence": [int(x) for x in g.fid[ev]], "usd": float(usd), "first_time": int(g.us[ev].min()),
            "last_time": int(g.us[ev].max()), "summary": summary}


def detect_fan_in(ctx: Context, p) -> object:
    return _fan(ctx, p, "in")


def detect_fan_out(ctx: Context, p) -> object:
    return _fan(ctx, p, "out")


def detect_gather_scatter(ctx: Context, p) -> object:
    g = graph_of(ctx, p)
    w = _windows(g, p, "in", p.min_senders)
    both = np.minimum(w["n"], w["n_back"])
    score = (0.3 * w["through"] + 0.2 * w["dedicated"] + 0.2 * w["novel"] + 0.15 * w["burst"]
             + 0.15 * _size(both, min(p.min_senders, p.min_recipients)))
    rows = []
    for k in np.flatnonzero((w["n_back"] >= p.min_recipients) & (score >= p.min_score)):
        ev_in = w["idx"][w["s"][k]:w["e"][k]]
        ev = np.concatenate([ev_in, w["back"][w["a"][k]:w["b"][k]]])
        rows.append(_row(g, int(w["hub"][k]), ev_in[0], float(score[k]), ev, float(w["usd"][k]),
                         f"{w['n'][k]} senders paid {w['usd'][k]:,.2f} USD in {(w['t1'][k] - w['t0'][k]) / 3600:.1f} h; "
                         f"{w['counter'][k]:,.2f} USD ({w['through'][k]:.0%}) went on to {w['n_back'][k]} recipients "
                         f"within {p.hold_hours:g} h; {w['novel'][k]:.0%} one-off counterparties, "
                         f"{w['dedicated'][k]:.0%} of the account's flows"))
    return found(rows)


# -- scatter-gather: source -> intermediaries -> destination ---------------------------------------------------
def detect_scatter_gather(ctx: Context, p) -> object:
    g = graph_of(ctx, p)
    width, hold = int(p.window_days * 86400), int(p.hold_hours * 3600)
    first = np.flatnonzero(~g.cash & (g.degree[g.di] <= p.max_node_flows))
    left, second = g.next_edges(g.di[first], g.t[first], g.t[first] + hold)
    a, b = first[left], second
    ratio = g.usd[b] / g.usd[a]
    ok = (ratio >= p.keep) & (ratio <= p.grow) & (g.di[b] != g.si[a])
    a, b = a[ok], b[ok]
    if a.size == 0:
        return found([])
    # group by (source, destination) in time order of the scatter
    n_nodes = g.nodes.size
    pair = g.si[a].astype(np.int64) * n_nodes + g.di[b]
    order = np.lexsort((g.t[a], pair))
    a, b, pair = a[order], b[order], pair[order]
    end = window_ends(pair, g.t[a], width)
    ok = (end - np.arange(a.size)) >= p.min_intermediaries
    rows = []
    for s, e in dense_windows(pair, end, ok):
        mids = g.di[a[s:e]]
        n = np.unique(mids).size
        if n < p.min_intermediaries:
            continue
        ea, eb = np.unique(a[s:e]), np.unique(b[s:e])
        out_usd, back_usd = float(g.usd[ea].sum()), float(g.usd[eb].sum())
        kept = min(1.0, back_usd / out_usd)
        ev = np.concatenate([ea, eb])
        duration = float(g.t[ev].max() - g.t[ev].min())
        novel = float(np.mean(g.span[ev] <= width))
        dedicated = float(np.mean(np.minimum(1.0, 2 / np.maximum(g.degree[np.unique(mids)], 1))))
        score = (0.3 * kept + 0.2 * (1 - min(1.0, duration / width)) + 0.2 * novel + 0.15 * dedicated
                 + 0.15 * _size(n, p.min_intermediaries))
        if score < p.min_score:
            continue
        src, dst = int(g.si[a[s]]), int(g.di[b[s]])
        rows.append(_row(g, src, a[s], score, ev, out_usd,
                         f"{out_usd:,.2f} USD scattered to {n} intermediaries, {back_usd:,.2f} USD ({kept:.0%}) "
                         f"gathered into {g.nodes[dst]} within {duration / 3600:.1f} h; {novel:.0%} one-off "
                         f"counterparties"))
    return found(rows)


# -- cycles: a bounded temporal path search ----------------------------------------------------------------------
def detect_cycle(ctx: Context, p) -> object:
    g = graph_of(ctx, p)
    width = int(p.window_days * 86400)
    start = np.flatnonzero(~g.cash & (g.degree[g.di] <= p.max_node_flows))
    # paths: the edges taken (columns), their nodes; grown hop by hop
    edges = start[:, None]
    nodes = np.stack([g.si[start], g.di[start]], axis=1)
    found_paths: list[np.ndarray] = []
    for _hop in range(2, p.max_hops + 1):
        if edges.shape[0] == 0:
            break
        last = edges[:, -1]
        t_first = g.t[edges[:, 0]]
        left, nxt = g.next_edges(g.di[last], g.t[last], t_first + width)
        ratio = g.usd[nxt] / g.usd[last[left]]
        ok = (ratio >= p.keep) & (ratio <= p.grow)
        left, nxt = left[ok], nxt[ok]
        dst = g.di[nxt]
        closes = dst == nodes[left, 0]
        if closes.any():
            found_paths.append(np.concatenate([edges[left[closes]], nxt[closes, None]], axis=1))
        visited = (nodes[left] == dst[:, None]).any(axis=1)
        go = ~closes & ~visited & (g.degree[dst] <= p.max_node_flows)
        edges = np.concatenate([edges[left[go]], nxt[go, None]], axis=1)
        nodes = np.concatenate([nodes[left[go]], dst[go, None]], axis=1)
    best: dict[tuple[int, int], dict] = {}
    for paths in found_paths:
        for path in paths:
            kept = float(g.usd[path[-1]] / g.usd[path[0]])
            per_hop = min(1.0, kept) ** (1 / (len(path) - 1))  # a long round trip loses more on the way
            duration = float(g.t[path[-1]] - g.t[path[0]])
            novel = float(np.mean(g.span[path] <= width))
            dedicated = float(np.mean(np.minimum(1.0, 2 / np.maximum(g.degree[g.di[path]], 1))))
            score = 0.3 * per_hop + 0.2 * (1 - min(1.0, duration / width)) + 0.25 * novel + 0.25 * dedicated
            if score < p.min_score:
                continue
            origin = int(g.si[path[0]])
            key = (origin, int(path[0]))
            if key in best and best[key]["score"] >= score:
                continue
            best[key] = _row(g, origin, path[0], score, path, float(g.usd[path[0]]),
                             f"{len(path)}-hop round trip: {g.usd[path[0]]:,.2f} USD out, {g.usd[path[-1]]:,.2f} USD "
                             f"({kept:.0%}) back within {duration / 3600:.1f} h; {novel:.0%} one-off counterparties, "
                             f"members' dedication {dedicated:.0%}")
    return found(best[k] for k in sorted(best))


DETECTORS = {"fan_in": detect_fan_in, "fan_out": detect_fan_out, "cycle": detect_cycle,
             "scatter_gather": detect_scatter_gather, "gather_scatter": detect_gather_scatter}

register(Typology("fan_in", "Fan-in / funnel account: many senders, one account, emptied quickly", FanParams,
                  lambda ctx, p: _run(ctx, "fan_in", p), AMLSIM + "FinCEN FIN-2014-A005 (funnel accounts)"))
register(Typology("fan_out", "Fan-out: one account pays many recipients with what it just received", FanParams,
                  lambda ctx, p: _run(ctx, "fan_out", p), AMLSIM + "FATF layering red flags"))
register(Typology("cycle", "Round trip: money returns to its origin through 2..max_hops later hops", CycleParams,
                  lambda ctx, p: _run(ctx, "cycle", p), AMLSIM + "FATF round-tripping"))
register(Typology("scatter_gather", "Scatter-gather: one source, several intermediaries, one destination",
                  ScatterGatherParams, lambda ctx, p: _run(ctx, "scatter_gather", p), AMLSIM + "smurfing/layering"))
register(Typology("gather_scatter", "Gather-scatter: many senders, one hub, many recipients", GatherScatterParams,
                  lambda ctx, p: _run(ctx, "gather_scatter", p), AMLSIM + "FATF layering red flags"))
