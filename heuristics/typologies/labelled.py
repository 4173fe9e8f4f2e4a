"""Labelled counterparty: flows to or from an address that a label flags (OFAC SDN, TagPack abuse
categories) or places in a high-risk category (darknet markets, mixers, gambling).

Sources: OFAC's SDN "Digital Currency Address" entries (31 CFR 501: U.S. persons must not deal with
them); GraphSense TagPack ``abuse`` values (ransomware, sextortion, scam, ...); WalletExplorer's
categories as TagPacks carry them (``market`` for darknet markets, ``mixing_service``, ``gambling``).
Which labels flag an address is :mod:`heuristics.typologies.labelling`'s rule.

One alert per labelled address with flows, the evidence every flow touching it. Score ``severity x (0.75 +
0.25 x (1 - 2^-(n - 1)))``, n the flows: a single flow to a sanctioned address is already most of the
score. Severity: ``sanction_score`` (1.0) for OFAC/sanctions labels, ``abuse_score`` (0.9) for other abuse,
``risky_score`` (0.5) for the risky categories. The other typologies raise their scores by their
``flag_boost`` when a subject is flagged (sanctions and abuse, not the risky categories).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from heuristics.typologies.base import Context, Typology, found, param, register
from heuristics.typologies.labelling import FLAG_WORDS, member


@dataclass(frozen=True)
class LabelledParams:
    sanction_score: float = param(1.0, "Severity of a sanctions label (OFAC SDN, TagPack abuse 'sanction').")
    abuse_score: float = param(0.9, "Severity of another abuse label (ransomware, sextortion, scam, ...).")
    risky_score: float = param(0.5, "Severity of a risky category (risky_categories).")
    risky_categories: tuple = param(("market", "mixing_service", "mixer", "coinjoin", "gambling"),
                                    "Label categories that are risky but not abuse (comma list).")
    chains: tuple = param((), "Chains searched (comma list; empty: all).")


def detect_labelled(ctx: Context, p: LabelledParams) -> pa.Table:
    words = " OR ".join(["strpos(t, ?) > 0"] * len(FLAG_WORDS))
    cats = ", ".join("?" * len(p.risky_categories)) or "NULL"
    t = ctx.store.arrow(f"""
        WITH l AS (SELECT chain, address, label, lower(coalesce(category, '')) AS category, abuse,
                          lower(coalesce(category, '') || ' ' || coalesce(abuse, '') || ' ' || coalesce(source, '')
                                || ' ' || coalesce(label, '')) AS t FROM labels)
        SELECT a.address_id,
               max(CASE WHEN strpos(l.t, 'sanction') > 0 OR strpos(l.t, 'ofac') > 0 OR strpos(l.t, 'sdn') > 0 THEN ?
                        WHEN l.abuse IS NOT NULL OR {words} THEN ?
                        WHEN l.category IN ({cats}) THEN ? ELSE 0 END) AS severity,
               string_agg(DISTINCT l.label, '; ' ORDER BY l.label) AS labels
        FROM l JOIN addresses a ON a.chain = l.chain AND a.address = l.address
        GROUP BY a.address_id HAVING severity > 0 ORDER BY a.address_id""",
        [p.sanction_score, *FLAG_WORDS, p.abuse_score, *p.risky_categories, p.risky_score])
    if t.num_rows == 0:
        return found([])
    ids = t.column("address_id").to_numpy(zero_copy_only=False).astype(np.int64)
    severity = t.column("severity").to_numpy(zero_copy_only=False)
    names = t.column("labels").to_pylist()
    f = ctx.flows(p.chains or None)
    touch = np.flatnonzero(member(f["src_id"], ids) | member(f["dst_id"], ids))
    # a flow between two labelled addresses counts for both
    node = np.concatenate([f["src_id"][touch], f["dst_id"][touch]])
    flow = np.concatenate([touch, touch])
    keep = member(node, ids)
    node, flow = node[keep], flow[keep]
    order = np.lexsort((f["flow_id"][flow], f["time"][flow], node))
    node, flow = node[order], flow[order]
    heads, starts = np.unique(node, return_index=True)
    ends = np.append(starts[1:], node.size)
    rows = []
    for a, s, e in zip(heads, starts, ends, strict=True):
        ev = flow[s:e]
        k = int(np.searchsorted(ids, a))
        n = int(ev.size)
        score = float(severity[k]) * (0.75 + 0.25 * (1 - 0.5 ** (n - 1)))
        inflow = f["dst_id"][ev] == a
        others = np.unique(np.where(inflow, f["src_id"][ev], f["dst_id"][ev]))
        rows.append({
            "focal_id": int(a), "anchor": int(f["flow_id"][ev[0]]), "score": score,
            "subjects": [int(a)] + [int(x) for x in others if x != a and x > 0], "evidence": f["flow_id"][ev].tolist(),
            "usd": float(f["usd"][ev].sum()), "first_time": int(f["time"][ev[0]]), "last_time": int(f["time"][ev[-1]]),
            "summary": f"{n} flows ({int(inflow.sum())} in, {int((~inflow).sum())} out) of an address labelled "
                       f"{names[k]}",
        })
    return found(rows)


register(Typology("labelled_counterparty", "Flows of a sanctioned, abuse-labelled or high-risk address", LabelledParams,
                  detect_labelled, "OFAC SDN list (31 CFR 501); GraphSense TagPacks; WalletExplorer categories"))
