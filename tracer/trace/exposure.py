"""Exposure: how much of an address's (or cluster's) money came from, and went to, labelled categories —
directly and within N hops — and a risk level with the rule that produced it. The screening answer.

Method (haircut, after Möser, Böhme & Breuker 2014). Received side: the subject's inflow is 1. Walking
backward over ``flows``, a node's share is passed to the nodes that paid it in proportion to what each
paid (a movement of x into a node that received X in all passes x / X of its share on). A labelled node
reached with share s accounts for s × the subject's inflow and does not pass it on (the first labelled
party on a path is the exposure; walking on behind it would count the same money twice); it is *direct* when it paid the subject
itself (one hop at address level: an address → transaction → address step on a UTXO chain is one hop),
*indirect* when further away. The sent side is the same forward, by outflow. Values are in USD where
the movement is priced and in the asset's whole units otherwise (say so when mixing assets).

Classes of a label (its ``abuse`` if given, else its ``category``), and the risk rule:

- severe: sanction, black_list, ransomware, sextortion, terrorism, human_trafficking, csam
- high: market (darknet), mixing_service, coinjoin, scam, phishing, theft, hack
- medium: gambling, and any other abuse value
- low: exchange, service, shop, miner, user, wallet_service and the rest

level **severe** if any direct exposure to a severe class, or ≥ 1 % of the inflow or outflow from/to one
within N hops; **high** if any smaller indirect severe exposure, any direct high-class exposure, or ≥ 10 %
indirect to a high class; **medium** if any other high-class or medium-class exposure; else **low**.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tracer.workspace import Workspace

SEVERE = {"sanction", "black_list", "ransomware", "sextortion", "terrorism", "human_trafficking", "csam"}
HIGH = {"market", "mixing_service", "coinjoin", "scam", "phishing", "theft", "hack"}
MEDIUM = {"gambling"}


def risk_class(category: str | None, abuse: str | None) -> str:
    key = (abuse or category or "").lower()
    if key in SEVERE:
        return "severe"
    if key in HIGH:
        return "high"
    if key in MEDIUM or abuse:
        return "medium"
    return "low"


@dataclass
class Exposure:
    subject: list[str]
    hops: int
    received_total: float
    sent_total: float
    categories: list[dict[str, Any]] = field(default_factory=list)
    level: str = "low"
    rule: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "hops": self.hops, "received_total": self.received_total,
                "sent_total": self.sent_total, "categories": self.categories,
                "risk": {"level": self.level, "rule": self.rule}}


def _values(e: dict[str, np.ndarray]) -> np.ndarray:
    usd = e["usd"]
    units = e["amount"] / np.power(10.0, e["decimals"])
    return np.where(np.isnan(usd), units, usd)


def _walk(ws: Workspace, start: list[int], hops: int, direction: str) -> tuple[dict[int, tuple[float, int]], float]:
    """Share of the subject's in- (``in``) or outflow (``out``) attributed to each party node, with the
    address-level hop at which it was first reached; and the subject's total."""
    known: dict[int, bool] = {}

    def labelled(nodes: list[int]) -> set[int]:
        ask = [n for n in nodes if n > 0 and n not in known]
        if ask:
            found = {r[0] for r in ws.rows(
                """SELECT DISTINCT a.address_id FROM addresses a JOIN labels l ON l.chain = a.chain
                   AND l.address = a.address WHERE a.address_id IN (SELECT unnest(?))""", [ask])}
            known.update((n, n in found) for n in ask)
        return {n for n in nodes if known.get(n, False)}

    shares: dict[int, float] = {n: 1.0 for n in start}
    first_hop: dict[int, int] = {}
    frontier = dict(shares)
    subject = set(start)
    total = 0.0
    address_hop = 0
    for step in range(2 * hops):
        if not frontier:
            break
        t = ws.hop(sorted(frontier), direction)
        e = {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names}
        near, far = ("dst_id", "src_id") if direction == "in" else ("src_id", "dst_id")
        keep = ~np.isin(e[far], list(subject)) & (e[far] != 0)   # the subject paying itself is not exposure
        values = _values(e)
        # each frontier node passes its share on in proportion to what each counterpart moved
        nodes, at = np.unique(e[near], return_inverse=True)
        flow_total = np.bincount(at, weights=values, minlength=nodes.size)
        if total == 0.0:
            total = float(flow_total[np.isin(nodes, start)].sum())
        passing = keep & (flow_total[at] != 0)
        if step == 0:
            # a subject of several addresses: each passes on its part of the subject's flow, not 1 each
            frontier = {int(n): (float(f) / total if total else 0.0) for n, f in zip(nodes, flow_total, strict=True)}
        share = np.array([frontier.get(int(n), 0.0) for n in nodes])[at]
        contrib = share[passing] * values[passing] / flow_total[at][passing]
        others, to = np.unique(e[far][passing], return_inverse=True)
        nxt = dict(zip(others.tolist(), np.bincount(to, weights=contrib, minlength=others.size).tolist(), strict=True))
        if any(n > 0 for n in nxt):
            address_hop += 1
        for n, s in nxt.items():
            if n > 0 and address_hop <= hops:
                first_hop.setdefault(n, address_hop)
                shares[n] = shares.get(n, 0.0) + s
        # a labelled node accounts for the share that reached it and does not pass it on (counting it again
        # behind the exchange that paid it would count the same money twice: shares above 1)
        absorbed = labelled(list(nxt))
        frontier = {n: s for n, s in nxt.items() if n not in absorbed}
        if address_hop >= hops and all(n > 0 for n in nxt):
            break
    return {n: (s, first_hop[n]) for n, s in shares.items() if n in first_hop}, total


def exposure(ws: Workspace, seeds: list[str], hops: int = 3) -> Exposure:
    from tracer.trace.follow import resolve_seeds

    start = sorted(n for n in resolve_seeds(ws, seeds) if n > 0)
    members = [r[0] for r in ws.rows(
        """SELECT c2.address_id FROM clusters c1 JOIN clusters c2 ON c2.chain = c1.chain AND c2.cluster_id = c1.cluster_id
           WHERE c1.address_id IN (SELECT unnest(?))""", [start])] if any(s.startswith("cluster:") for s in seeds) else []
    start = sorted(set(start) | set(members))
    received, r_total = _walk(ws, start, hops, "in")
    sent, s_total = _walk(ws, start, hops, "out")
    labels: dict[int, list[tuple]] = {}
    nodes = sorted(set(received) | set(sent))
    for aid, label, category, abuse, source in ws.rows(
            """SELECT a.address_id, l.label, l.category, l.abuse, l.source FROM addresses a
               JOIN labels l ON l.chain = a.chain AND l.address = a.address WHERE a.address_id IN (SELECT unnest(?))""",
            [nodes]):
        labels.setdefault(aid, []).append((label, category, abuse, source))
    table: dict[str, dict[str, Any]] = {}
    for side, found, total in (("received", received, r_total), ("sent", sent, s_total)):
        for node, (share, hop) in found.items():
            for label, category, abuse, source in labels.get(node, []):
                key = (abuse or category or "unknown").lower()
                row = table.setdefault(key, {"category": key, "class": risk_class(category, abuse),
                                             "direct_received": 0.0, "indirect_received": 0.0,
                                             "direct_sent": 0.0, "indirect_sent": 0.0, "labels": set()})
                row[f"{'direct' if hop == 1 else 'indirect'}_{side}"] += share * total
                row["labels"].add(f"{label} ({source})")
    cats = []
    for row in sorted(table.values(), key=lambda r: r["category"]):
        row["share_received"] = (row["direct_received"] + row["indirect_received"]) / r_total if r_total else 0.0
        row["share_sent"] = (row["direct_sent"] + row["indirect_sent"]) / s_total if s_total else 0.0
        row["labels"] = sorted(row["labels"])[:20]
        cats.append(row)
    level, rule = _risk(cats, r_total, s_total)
    return Exposure(list(seeds), hops, r_total, s_total, cats, level, rule)


def _risk(cats: list[dict], r_total: float, s_total: float) -> tuple[str, str]:
    def direct(c: dict) -> float:
        return c["direct_received"] + c["direct_sent"]

    def indirect_share(c: dict) -> float:
        return max(c["indirect_received"] / r_total if r_total else 0.0, c["indirect_sent"] / s_total if s_total else 0.0)

    for c in cats:
        if c["class"] == "severe" and direct(c) > 0:
            return "severe", f"direct exposure to {c['category']} ({direct(c):,.2f})"
        if c["class"] == "severe" and indirect_share(c) >= 0.01:
            return "severe", f"{indirect_share(c):.1%} of the flow from/to {c['category']} within the hops"
    for c in cats:
        if c["class"] == "severe" and indirect_share(c) > 0:
            return "high", f"indirect exposure to {c['category']} ({indirect_share(c):.2%})"
        if c["class"] == "high" and direct(c) > 0:
            return "high", f"direct exposure to {c['category']} ({direct(c):,.2f})"
        if c["class"] == "high" and indirect_share(c) >= 0.10:
            return "high", f"{indirect_share(c):.1%} indirect exposure to {c['category']}"
    for c in cats:
        if c["class"] in ("high", "medium") and (direct(c) > 0 or indirect_share(c) > 0):
            return "medium", f"exposure to {c['category']}"
    return "low", "no exposure to a severe, high or medium category within the hops"
