"""Rapid pass-through: an account that receives money and sends nearly all of it on within hours, again and
again (FATF and FinCEN FIN-2020-A008 red flag: "funds ... moved out of the account shortly after deposit";
FinCEN FIN-2014-A005 on funnel accounts).

Over account-model chains (bank transfers, ERC-20/ETH transfers; a Bitcoin address spends whole coins,
so every UTXO "passes through" — the ``peeling_chain`` typology covers that case). For every inflow to
an account, the outflows of the same account in ``(t, t + window_hours]`` are summed with one
``searchsorted`` over a composite (account, time) key and a cumulative sum; the inflow is *passed
through* when they reach ``min_share`` of it. An account with ``min_events`` or more passed-through
inflows is an alert.

Ordinary activity of the same shape, and what lowers its score:

- exchanges, payment processors, payroll processors: labelled services (factor ``1 - label_discount``),
  and an exchange's deposit accounts, which forward everything to the exchange's labelled hot wallet
  (``1 - label_discount x`` the share of the passed value going to exchange-labelled accounts);
- people paying their bills right after payday: the money goes to billers and utilities that many
  accounts pay. Each recipient's popularity is ``senders / (senders + popular_senders)`` (its distinct
  senders over the whole data); the score is lowered by ``popular_discount x`` the passed value's
  popularity-weighted share;
- busy accounts whose outflows happen to follow some inflows: the score is multiplied by the share of
  *all* the account's incoming value that was passed through.

Score ``(1 - 2^-(n - min_events + 1)) x share x (1 - popular_discount x pop) x (1 - label_discount x lab)``,
x ``1 + flag_boost`` when a counterparty is a flagged (sanctioned, abuse-labelled) address, capped at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from heuristics.typologies.base import AlertsError, Context, Typology, found, param, register
from heuristics.typologies.labelling import flag_boost, labelled, member


@dataclass(frozen=True)
class PassThroughParams:
    window_hours: float = param(24.0, "Outflows within this many hours after an inflow count as passing it on.")
    min_share: float = param(0.9, "An inflow is passed through when the outflows reach this share of it.")
    min_events: int = param(2, "Passed-through inflows needed for an alert.")
    min_usd: float = param(1_000.0, "Inflows below this value (USD) are not considered.")
    popular_senders: int = param(10, "Recipients with this many distinct senders count half as a popular payee.")
    popular_discount: float = param(0.9, "Score lowered by this x the share of passed value going to popular payees.")
    label_discount: float = param(0.9, "Score lowered by this for labelled services and forwards to exchanges.")
    flag_boost: float = param(0.5, "Score raised by this share when a flagged (sanctioned, abuse) address takes part.")
    min_score: float = param(0.1, "Accounts scoring below this raise no alert.")
    chains: tuple = param((), "Chains searched (comma list; empty: every account-model chain).")


def _account_flows(ctx: Context, chains: tuple) -> dict[str, np.ndarray]:
    f = ctx.flows(chains or None)
    utxo = np.flatnonzero(f["kind_names"] == "utxo")
    keep = ~np.isin(f["kind"], utxo) & (f["src_id"] > 0) & (f["dst_id"] > 0) & (f["src_id"] != f["dst_id"])
    return {k: (v[keep] if isinstance(v, np.ndarray) and v.dtype != object else v) for k, v in f.items()}


def pass_through_events(ctx: Context, p: PassThroughParams) -> dict[str, np.ndarray]:
    """Per passed-through inflow: its flow index, account, and the [lo, hi) range of the account's
    outflows in the window (indexes into ``out_order``); plus the per-account aggregates."""
    cache = ctx.__dict__.setdefault("_pass_cache", {})
    key = (p.chains, p.window_hours, p.min_share, p.min_usd)
    if key in cache:
        return cache[key]
    f = _account_flows(ctx, p.chains)
    t = f["time"] // 1_000_000
    width = int(p.window_hours * 3600)
    nodes, inv = np.unique(np.concatenate([f["src_id"], f["dst_id"]]), return_inverse=True)
    src_r, dst_r = inv[:f["src_id"].size], inv[f["src_id"].size:]
    if nodes.size == 0:
        cache[key] = None
        return None
    t0 = int(t.min()) if t.size else 0
    span = int(t.max()) - t0 + width + 2 if t.size else 1
    if (nodes.size + 1) * span >= 2**62:
        raise AlertsError("time span too wide for the pass-through index")
    out_key = src_r.astype(np.int64) * span + (t - t0)
    out_order = np.argsort(out_key, kind="stable")
    out_sorted = out_key[out_order]
    cum = np.concatenate([[0.0], np.cumsum(f["usd"][out_order])])
    in_idx = np.flatnonzero(f["usd"] >= p.min_usd)
    in_key = dst_r[in_idx].astype(np.int64) * span + (t[in_idx] - t0)
    lo = np.searchsorted(out_sorted, in_key, "left")
    hi = np.searchsorted(out_sorted, in_key + width, "right")
    passed = np.minimum(cum[hi] - cum[lo], f["usd"][in_idx])
    ok = passed >= p.min_share * f["usd"][in_idx]
    # recipients' popularity: distinct senders over all the data
    pairs = np.unique(src_r.astype(np.int64) * nodes.size + dst_r)
    senders = np.bincount(pairs % nodes.size, minlength=nodes.size)
    total_in = np.bincount(dst_r, weights=f["usd"], minlength=nodes.size)
    out = {"f": f, "nodes": nodes, "in_idx": in_idx[ok], "acct": dst_r[in_idx[ok]], "lo": lo[ok], "hi": hi[ok],
           "passed": passed[ok], "out_order": out_order, "dst_r": dst_r, "senders": senders, "total_in": total_in}
    cache[key] = out
    return out


def detect_pass_through(ctx: Context, p: PassThroughParams) -> pa.Table:
    ev = pass_through_events(ctx, p)
    if ev is None or ev["acct"].size == 0:
        return found([])
    f, nodes, lab = ev["f"], ev["nodes"], labelled(ctx)
    n_events = np.bincount(ev["acct"], minlength=nodes.size)
    cand = np.flatnonzero(n_events >= p.min_events)
    order = np.lexsort((ev["in_idx"], ev["acct"]))
    acct_sorted = ev["acct"][order]
    pop_w = ev["senders"] / (ev["senders"] + p.popular_senders)
    is_exch = member(nodes, lab["exchange"])
    is_svc = member(nodes, lab["service"]) | is_exch
    rows = []
    for a in cand:  # one iteration per candidate account (accounts with repeated pass-through)
        sel = order[np.searchsorted(acct_sorted, a, "left"):np.searchsorted(acct_sorted, a, "right")]
        ins = ev["in_idx"][sel]
        outs = np.unique(np.concatenate([ev["out_order"][lo:hi] for lo, hi in zip(ev["lo"][sel], ev["hi"][sel],
                                                                                 strict=True)]))
        out_usd = f["usd"][outs]
        denom = max(float(out_usd.sum()), 1e-9)
        pop = float((out_usd * pop_w[ev["dst_r"][outs]]).sum() / denom)
        to_exch = float(out_usd[is_exch[ev["dst_r"][outs]]].sum() / denom)
        lab_factor = max(float(is_svc[a]), to_exch)
        share = float(ev["passed"][sel].sum() / max(ev["total_in"][a], 1e-9))
        n = int(sel.size)
        evidence = np.unique(np.concatenate([ins, outs]))
        addrs = np.unique(np.concatenate([f["src_id"][evidence], f["dst_id"][evidence]]))
        boost, flagged = flag_boost(ctx, addrs, p.flag_boost)
        score = min(1.0, (1 - 0.5 ** (n - p.min_events + 1)) * min(share, 1.0) * (1 - p.popular_discount * pop)
                    * (1 - p.label_discount * lab_factor) * boost)
        if score < p.min_score:
            continue
        focal = int(nodes[a])
        evidence = evidence[np.lexsort((f["flow_id"][evidence], f["time"][evidence]))]
        delays = []
        for i, lo, hi in zip(ins, ev["lo"][sel], ev["hi"][sel], strict=True):
            if hi > lo:
                delays.append((f["time"][ev["out_order"][hi - 1]] - f["time"][i]) / 3.6e9)
        rows.append({
            "focal_id": focal, "anchor": int(f["flow_id"][ins.min()]), "score": float(score),
            "subjects": [focal] + [int(x) for x in addrs if x != focal], "evidence": f["flow_id"][evidence].tolist(),
            "usd": float(f["usd"][ins].sum()), "first_time": int(f["time"][evidence[0]]),
            "last_time": int(f["time"][evidence[-1]]),
            "summary": f"{n} inflows ({float(f['usd'][ins].sum()):,.2f} USD) passed on within "
                       f"{max(delays) if delays else 0:.1f} h; {min(share, 1.0):.0%} of all incoming value passed "
                       f"through; {pop:.0%} to popular payees, {to_exch:.0%} to exchanges"
                       + (", account labelled as a service" if is_svc[a] else "")
                       + (f"; flagged addresses {flagged}" if flagged else ""),
        })
    return found(rows)


register(Typology("pass_through", "Rapid pass-through (in and out within hours, repeatedly)", PassThroughParams,
                  detect_pass_through, "FATF red flags; FinCEN FIN-2020-A008 and FIN-2014-A005 (funnel accounts)"))
