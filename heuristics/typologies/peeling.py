"""Peeling chains on UTXO chains, and off-ramps: the peeled or remaining coins deposited at an exchange.

**Peeling chain** (Meiklejohn et al., "A Fistful of Bitcoins", IMC 2013): a large coin is spent by a
transaction with (almost) one input and two outputs, one a small *peel* paid away, the other the large
remainder, which the next such transaction spends; repeated many times within a short time. Set-based:
one SQL query picks the candidate transactions (at most ``max_inputs`` inputs, two outputs, the larger at
least ``1 - max_peel`` of the value) and the edges between them (a candidate spending another's larger
output within ``max_hop_hours``); chains are the connected paths of those edges, found by pointer
jumping over numpy arrays (log2 of the longest chain passes, no walk over transactions).

Score: ``(1 - 2^-(hops - min_hops + 1)) x (1 - service_discount x s) x (1 - exchange_discount x e)``, s
the share of the peeled value paid to labelled non-exchange services (shops, ad sites, miners: a wallet
paying its bills one by one has the same shape), e = 1 when the chain's coins come out of an
exchange-labelled address (an exchange's own withdrawal chain), x ``1 + flag_boost`` when a peel or
input touches a flagged (sanctioned or abuse-labelled) address, capped at 1.

**Off-ramp** (FinCEN FIN-2020-A008, FATF: value moved through a chain of wallets then cashed out at an
exchange): a deposit into an exchange address — labelled ``exchange``, or an address an exchange sweeps
(spent together in a transaction all of whose outputs pay exchange-labelled addresses) — by a
transaction that spends an output of a peeling chain, or by a flagged address; on account chains, a
transfer into an account that forwards to an exchange-labelled account, from an account the
``pass_through`` typology alerts on or a flagged one. Score ``min(1, source score x (0.5 + 0.5 x share))``,
share the part of the deposited value that came from the flagged source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from heuristics.typologies.base import Context, Typology, found, param, register
from heuristics.typologies.labelling import flag_boost, labelled, member


@dataclass(frozen=True)
class PeelingParams:
    min_hops: int = param(4, "Chained peel transactions needed.")
    max_inputs: int = param(2, "Inputs a peel transaction may have (the remainder, and perhaps one more coin).")
    max_peel: float = param(0.2, "The peel is at most this share of the transaction's output value.")
    max_hop_hours: float = param(48.0, "Longest time between a peel and the next.")
    service_discount: float = param(0.8, "Score lowered by this x the share of peeled value paid to labelled services.")
    exchange_discount: float = param(0.8, "Score lowered by this when the chain starts at an exchange's address.")
    flag_boost: float = param(0.5, "Score raised by this share when a flagged (sanctioned, abuse) address takes part.")
    min_score: float = param(0.1, "Chains scoring below this raise no alert.")
    chains: tuple = param(("bitcoin",), "UTXO chains searched (comma list on the command line).")


def chain_heads(pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For nodes 0..n-1 with ``pred[i]`` the previous node of a path (-1 at a start): each node's path start
    and its depth, by pointer jumping (log2 of the longest path passes)."""
    n = pred.size
    head = np.where(pred >= 0, pred, np.arange(n))
    depth = (pred >= 0).astype(np.int64)
    while True:
        nxt = head[head]
        if np.array_equal(nxt, head):
            return head, depth
        depth = depth + depth[head] * (head != nxt)  # add the jumped-over distance where the pointer moves
        head = nxt


def _chains(ctx: Context, p: PeelingParams, chain: str) -> dict[str, np.ndarray] | None:
    """Candidate peel transactions of ``chain`` linked into chains of at least ``min_hops``."""
    cache = ctx.__dict__.setdefault("_peel_cache", {})
    key = (chain, p.max_inputs, p.max_peel, p.max_hop_hours, p.min_hops)
    if key in cache:
        return cache[key]
    t = ctx.store.arrow("""
        WITH o AS (SELECT tx_id, any_value(txkey) AS txkey, count(*) AS nout, sum(value) AS total,
                          max(value) AS big, arg_max(n, value) AS big_n, arg_min(address_id, value) AS peel_to
                   FROM outputs WHERE chain = ? GROUP BY tx_id),
        i AS (SELECT tx_id, count(*) AS nin FROM inputs WHERE chain = ? GROUP BY tx_id),
        c AS (SELECT o.*, i.nin, epoch(x.block_time)::BIGINT AS t FROM o JOIN i USING (tx_id)
              JOIN transactions x ON x.chain = ? AND x.tx_id = o.tx_id
              WHERE o.nout = 2 AND i.nin <= ? AND o.big >= (1 - ?) * o.total AND o.total > 0),
        e AS (SELECT a.tx_id AS prev, b.tx_id AS next
              FROM c a JOIN inputs s ON s.chain = ? AND s.prev_txkey = a.txkey AND s.prev_n = a.big_n
              JOIN c b ON b.tx_id = s.tx_id WHERE b.t - a.t BETWEEN 0 AND ?)
        SELECT c.tx_id, c.t, c.total, c.big, c.peel_to, (SELECT min(prev) FROM e WHERE e.next = c.tx_id) AS prev
        FROM c ORDER BY c.tx_id""", [chain, chain, chain, p.max_inputs, p.max_peel, chain, int(p.max_hop_hours * 3600)])
    if t.num_rows == 0:
        cache[key] = None
        return None
    cols = {n: t.column(n).to_numpy(zero_copy_only=False) for n in ("tx_id", "t", "total", "big")}
    cols["peel_to"] = np.nan_to_num(t.column("peel_to").to_numpy(zero_copy_only=False).astype(np.float64), nan=0).astype(np.int64)
    prev_tx = np.nan_to_num(t.column("prev").to_numpy(zero_copy_only=False).astype(np.float64), nan=-1).astype(np.int64)
    tx = cols["tx_id"].astype(np.int64)
    pred = np.where(prev_tx >= 0, np.searchsorted(tx, prev_tx), -1)
    head, depth = chain_heads(pred)
    hops = np.bincount(head, minlength=tx.size)
    keep = hops[head] >= p.min_hops
    order = np.lexsort((depth[keep], head[keep]))
    sel = np.flatnonzero(keep)[order]
    out = {"tx_id": tx[sel], "head": head[sel], "t": cols["t"][sel].astype(np.int64),
           "peel": (cols["total"] - cols["big"])[sel].astype(np.float64), "total": cols["total"][sel].astype(np.float64),
           "peel_to": cols["peel_to"][sel]}
    cache[key] = out
    return out


def _tx_flows(f: dict[str, np.ndarray], tx_ids: np.ndarray) -> np.ndarray:
    """Indexes of the flows into or out of the transaction nodes ``-tx_ids`` (sorted by time, flow id)."""
    nodes = np.sort(-np.asarray(tx_ids, np.int64))
    return np.flatnonzero(member(f["src_id"], nodes) | member(f["dst_id"], nodes))


def peeling_alerts(ctx: Context, p: PeelingParams) -> list[dict]:
    lab = labelled(ctx)
    rows = []
    for chain in p.chains:
        c = _chains(ctx, p, chain)
        if c is None:
            continue
        f = ctx.flows((chain,))
        idx = _tx_flows(f, c["tx_id"])
        node = np.where(f["src_id"][idx] < 0, -f["src_id"][idx], -f["dst_id"][idx])
        # the chain of each evidence flow
        pos = np.searchsorted(np.sort(c["tx_id"]), node)
        head_of_tx = c["head"][np.argsort(c["tx_id"])]
        flow_head = head_of_tx[pos]
        heads, starts = np.unique(c["head"], return_index=True)
        ends = np.append(starts[1:], c["head"].size)
        fo = np.lexsort((idx, flow_head))
        fidx, fhead = idx[fo], flow_head[fo]
        for h, s, e in zip(heads, starts, ends, strict=True):
            n = int(e - s)
            peel_to = c["peel_to"][s:e]
            peel = c["peel"][s:e]
            svc = float(peel[member(peel_to, lab["service"])].sum() / max(peel.sum(), 1.0))
            ev = fidx[np.searchsorted(fhead, h, "left"):np.searchsorted(fhead, h, "right")]
            ev = ev[np.argsort(f["time"][ev], kind="stable")]
            inputs = f["src_id"][ev][f["src_id"][ev] > 0]
            first_in = inputs[:1]
            exch = bool(member(first_in, lab["exchange"]).any())
            addrs = np.unique(np.concatenate([f["src_id"][ev], f["dst_id"][ev]]))
            addrs = addrs[addrs > 0]
            boost, flagged = flag_boost(ctx, addrs, p.flag_boost)
            score = (1 - 0.5 ** (n - p.min_hops + 1)) * (1 - p.service_discount * svc) \
                * (1 - p.exchange_discount * exch) * boost
            score = min(1.0, score)
            if score < p.min_score:
                continue
            focal = int(first_in[0]) if first_in.size else int(addrs[0])
            hours = (c["t"][e - 1] - c["t"][s]) / 3600
            usd = float(f["usd"][ev][f["dst_id"][ev] > 0].sum())
            rows.append({
                "focal_id": focal, "anchor": int(f["flow_id"][ev[0]]), "score": float(score),
                "subjects": [focal] + [int(a) for a in addrs if a != focal], "evidence": f["flow_id"][ev].tolist(),
                "usd": usd, "first_time": int(f["time"][ev[0]]), "last_time": int(f["time"][ev[-1]]),
                "summary": f"{n} peel transactions in {hours:.1f} h, each paying at most "
                           f"{float((peel / c['total'][s:e]).max()):.0%} away; {svc:.0%} of the peeled value to labelled "
                           f"services" + (", starting at an exchange" if exch else "")
                           + (f"; flagged addresses {flagged}" if flagged else ""),
                "_txs": c["tx_id"][s:e], "_last_tx": int(c["tx_id"][e - 1]),
            })
    return rows


def detect_peeling(ctx: Context, p: PeelingParams) -> pa.Table:
    return found([{k: v for k, v in r.items() if not k.startswith("_")} for r in peeling_alerts(ctx, p)])


register(Typology("peeling_chain", "Peeling chain (1-input/2-output chain of small peels)", PeelingParams,
                  detect_peeling, "Meiklejohn et al., A Fistful of Bitcoins (IMC 2013); FATF virtual-asset red flags"))
