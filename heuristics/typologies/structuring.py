"""Structuring: several movements just under a reporting threshold within a few days.

The U.S. Currency Transaction Report threshold is 10,000 USD (31 CFR 1010.311); breaking a sum into
pieces below it is structuring (31 U.S.C. 5324) and a red flag of FATF's and FinCEN's trafficking
advisories (FIN-2020-A008). Two shapes: one account *sending* (or depositing cash: AMLworld records a
cash deposit as a row from the account to itself) several just-under amounts; one account *receiving*
several from at least two different senders (the mules' deposits into a funnel).

Ordinary businesses deposit cash just under 10,000 now and then. What separates structuring is the
repetition within days and that the just-under amounts are most of what the account moves in that
window: the score is ``(1 - 2^-(n - min_count + 1)) x (0.5 + 0.5 x share)``, n the just-under movements
in the window and share their part of all the account's movements in it (by count).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heuristics.typologies.base import (Context, Typology, found, greedy_windows, group_sort, param, register,
                                        window_ends)


@dataclass(frozen=True)
class StructuringParams:
    threshold_usd: float = param(10_000.0, "The reporting threshold (CTR: 10,000 USD).")
    band: float = param(0.15, "Amounts in [threshold x (1 - band), threshold) count as just under.")
    window_hours: float = param(72.0, "The window the just-under movements fall in.")
    min_count: int = param(3, "Just-under movements needed in one window.")
    min_senders: int = param(2, "Distinct senders needed for the receiving shape.")
    chains: tuple = param(("fiat",), "Chains searched (comma list on the command line).")


def detect(ctx: Context, p: StructuringParams) -> object:
    f = ctx.flows(p.chains)
    lo = p.threshold_usd * (1 - p.band)
    near = (f["usd"] >= lo) & (f["usd"] < p.threshold_usd)
    width = int(p.window_hours * 3600)
    time_s = f["time"] // 1_000_000
    rows = []
    for role in ("send", "receive"):
        actor = f["src_id"] if role == "send" else f["dst_id"]
        mask = near if role == "send" else near & (f["src_id"] != f["dst_id"])
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        order = idx[group_sort(actor[idx], time_s[idx])]
        g, t = actor[order], time_s[order]
        end = window_ends(g, t, width)
        ok = (end - np.arange(order.size)) >= p.min_count
        # every movement of the actors in that role, for the share
        all_idx = np.flatnonzero(np.isin(actor, np.unique(g[ok])) & ((f["src_id"] != f["dst_id"]) | (role == "send")))
        all_order = all_idx[group_sort(actor[all_idx], time_s[all_idx])]
        ag, at = actor[all_order], time_s[all_order]
        for s, e in greedy_windows(g, end, ok):
            ev = order[s:e]
            if role == "receive" and np.unique(f["src_id"][ev]).size < p.min_senders:
                continue
            a = g[s]
            g0, g1 = np.searchsorted(ag, a, "left"), np.searchsorted(ag, a, "right")
            in_window = np.searchsorted(at[g0:g1], t[s] + width, "right") - np.searchsorted(at[g0:g1], t[s], "left")
            n, total = ev.size, max(int(in_window), ev.size)
            share = n / total
            score = (1 - 0.5 ** (n - p.min_count + 1)) * (0.5 + 0.5 * share)
            usd = float(f["usd"][ev].sum())
            others = np.unique(np.concatenate([f["src_id"][ev], f["dst_id"][ev]]))
            subjects = [int(a)] + [int(x) for x in others if x != a]
            verb = "sent or deposited" if role == "send" else f"received from {np.unique(f['src_id'][ev]).size} senders"
            rows.append({
                "focal_id": int(a), "anchor": int(f["flow_id"][ev[0]]), "score": float(score),
                "subjects": subjects, "evidence": f["flow_id"][ev].tolist(), "usd": usd,
                "first_time": int(f["time"][ev[0]]), "last_time": int(f["time"][ev[-1]]),
                "summary": f"{n} movements of {lo:,.0f}–{p.threshold_usd:,.0f} USD {verb} within "
                           f"{(t[e - 1] - t[s]) / 3600:.1f} h, {usd:,.2f} USD in all; {share:.0%} of the account's "
                           f"movements in that window",
            })
    return found(rows)


register(Typology("structuring", "Structuring under a reporting threshold", StructuringParams, detect,
                  "31 CFR 1010.311 (CTR), 31 U.S.C. 5324; FinCEN FIN-2020-A008; FATF red flags"))
