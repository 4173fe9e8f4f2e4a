"""Peeling chains on UTXO chains, and off-ramps: the peeled or remaining coins deposited at an exchange.

**Peeling chain** (Meiklejohn et al., "A Fistful of Bitcoins", IMC 2013): a large coin is spent by a
transaction with (almost) one input and two outputs, one a small *peel* paid away, the other the large
remainder, which the next such transaction spends; repeated many times within a short time. Set-based:
one SQL query picks the candidate transactions (at most ``max_inputs`` inputs, two outputs, the larger at
least ``1 - max_peel`` of the value, the smaller at least ``min_peel`` of it — a dust output is no payment:
chains of dust outputs in one block are token mints, Runes and Ordinals) and the edges between them (a candidate spending another's larger
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
transaction of a peeling chain or one following it along the remainder (``hops`` transactions, each
spending the previous one's largest output not paid to an exchange); on account chains, a
transfer into an account that forwards to an exchange-labelled account, from an account the
``pass_through`` typology alerts on or a flagged one. Score: the source's score (``flag_score`` for a
flagged address).
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
    min_peel: float = param(0.005, "... and at least this share: a dust output carries no value (token mints such as "
                                   "Runes and Ordinals chain transactions with a dust output each).")
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
    key = (chain, p.max_inputs, p.max_peel, p.min_peel, p.max_hop_hours, p.min_hops)
    if key in cache:
        return cache[key]
    t = ctx.store.arrow("""
        WITH o AS (SELECT tx_id, any_value(txkey) AS txkey, count(*) AS nout, sum(value) AS total,
                          max(value) AS big, arg_max(n, value) AS big_n, arg_min(address_id, value) AS peel_to
                   FROM outputs WHERE chain = ? GROUP BY tx_id),
        i AS (SELECT tx_id, count(*) AS nin FROM inputs WHERE chain = ? GROUP BY tx_id),
        c AS (SELECT o.*, i.nin, epoch(x.block_time)::BIGINT AS t FROM o JOIN i USING (tx_id)
              JOIN transactions x ON x.chain = ? AND x.tx_id = o.tx_id
              WHERE o.nout = 2 AND i.nin <= ? AND o.big >= (1 - ?) * o.total AND o.total - o.big >= ? * o.total
                AND o.total > 0),
        e AS (SELECT a.tx_id AS prev, b.tx_id AS next
              FROM c a JOIN inputs s ON s.chain = ? AND s.prev_txkey = a.txkey AND s.prev_n = a.big_n
              JOIN c b ON b.tx_id = s.tx_id WHERE b.t - a.t BETWEEN 0 AND ?)
        SELECT c.tx_id, c.t, c.total, c.big, c.peel_to, (SELECT min(prev) FROM e WHERE e.next = c.tx_id) AS prev
        FROM c ORDER BY c.tx_id""", [chain, chain, chain, p.max_inputs, p.max_peel, p.min_peel, chain,
                                 int(p.max_hop_hours * 3600)])
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
                "_txs": c["tx_id"][s:e], "_chain": chain,
            })
    return rows


def detect_peeling(ctx: Context, p: PeelingParams) -> pa.Table:
    return found([{k: v for k, v in r.items() if not k.startswith("_")} for r in peeling_alerts(ctx, p)])


register(Typology("peeling_chain", "Peeling chain (1-input/2-output chain of small peels)", PeelingParams,
                  detect_peeling, "Meiklejohn et al., A Fistful of Bitcoins (IMC 2013); FATF virtual-asset red flags"))


# -- off-ramps -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OffRampParams:
    min_source_score: float = param(0.3, "Peeling chains and pass-through accounts scoring below this are not sources.")
    forward_share: float = param(0.9, "An account forwarding this share of its inflow to exchange-labelled accounts "
                                      "is an exchange deposit account.")
    flag_score: float = param(0.9, "Score of a deposit funded by a flagged (sanctioned, abuse) address.")
    hops: int = param(2, "Transactions followed past a peeling chain along the remainder (the largest output "
                         "not paid to an exchange).")
    utxo_chains: tuple = param(("bitcoin",), "UTXO chains searched (comma list).")
    account_chains: tuple = param((), "Account chains searched (comma list; empty: every account-model chain).")


def _exchange_utxo_addresses(ctx: Context, chain: str) -> np.ndarray:
    """Exchange-labelled addresses of a UTXO chain and the addresses the exchanges sweep: inputs of a
    transaction of two or more inputs whose every output pays an exchange-labelled address."""
    lab = labelled(ctx)["exchange"]
    with ctx.store.view("_exch_ids", pa.table({"address_id": pa.array(lab, pa.int64())})) as v:
        swept = ctx.store.arrow(f"""
            WITH t AS (SELECT o.tx_id FROM outputs o LEFT JOIN {v} e USING (address_id)
                       WHERE o.chain = ? GROUP BY o.tx_id HAVING count(e.address_id) = count(*)),
                 n AS (SELECT i.tx_id FROM inputs i JOIN t USING (tx_id) WHERE i.chain = ? GROUP BY i.tx_id
                       HAVING count(*) >= 2)
            SELECT DISTINCT i.address_id FROM inputs i JOIN n USING (tx_id)
            WHERE i.chain = ? AND i.address_id IS NOT NULL""", [chain, chain, chain])
    ids = swept.column("address_id").to_numpy(zero_copy_only=False).astype(np.int64)
    return np.unique(np.concatenate([lab, ids]))


def _follow_remainder(ctx: Context, chain: str, src: pa.Table, exch: np.ndarray, hops: int) -> pa.Table:
    """The peeling chains' transactions and, hop by hop, the transactions spending the remainder of the
    previous ones (their largest output not paid to an exchange address): (tx_id, score, source)."""
    found_ = [src]
    frontier = src
    with ctx.store.view("_exch_addr", pa.table({"address_id": pa.array(exch, pa.int64())})) as ev:
        for _ in range(hops):
            with ctx.store.view("_peel_front", frontier) as v:
                frontier = ctx.store.arrow(f"""
                    WITH big AS (
                        SELECT o.tx_id, any_value(o.txkey) AS txkey, arg_max(o.n, o.value) AS n
                        FROM outputs o JOIN (SELECT DISTINCT tx_id FROM {v}) t USING (tx_id)
                        WHERE o.chain = ? AND o.address_id NOT IN (SELECT address_id FROM {ev})
                        GROUP BY o.tx_id)
                    SELECT i.tx_id, max(s.score) AS score, min(s.source) AS source
                    FROM big JOIN {v} s USING (tx_id)
                    JOIN inputs i ON i.chain = ? AND i.prev_txkey = big.txkey AND i.prev_n = big.n
                    GROUP BY i.tx_id""", [chain, chain])
            if frontier.num_rows == 0:
                break
            found_.append(frontier)
    every = pa.concat_tables([t.select(["tx_id", "score", "source"]).cast(src.schema) for t in found_])
    with ctx.store.view("_peel_every", every) as v:
        return ctx.store.arrow(f"SELECT tx_id, max(score) AS score, min(source) AS source FROM {v} GROUP BY tx_id")


def detect_off_ramp(ctx: Context, p: OffRampParams) -> pa.Table:
    lab = labelled(ctx)
    rows = []
    # UTXO: deposits by a peeling chain's transactions or by transactions spending their outputs
    chains = [r for r in peeling_alerts(ctx, PeelingParams(chains=p.utxo_chains)) if r["score"] >= p.min_source_score]
    for chain in p.utxo_chains:
        exch = _exchange_utxo_addresses(ctx, chain)
        src_tx = [(int(t), r["score"], r["focal_id"]) for r in chains if r["_chain"] == chain for t in r["_txs"]]
        if not src_tx:
            continue
        src = pa.table({"tx_id": pa.array([s[0] for s in src_tx], pa.int64()),
                        "score": pa.array([s[1] for s in src_tx], pa.float64()),
                        "source": pa.array([s[2] for s in src_tx], pa.int64())})
        dep = _follow_remainder(ctx, chain, src, exch, p.hops)
        f = ctx.flows((chain,))
        dep_tx = dep.column("tx_id").to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.argsort(dep_tx)
        dep_tx = dep_tx[order]
        dep_score = dep.column("score").to_numpy(zero_copy_only=False)[order]
        dep_source = dep.column("source").to_numpy(zero_copy_only=False)[order]
        out_leg = f["src_id"] < 0
        idx = np.flatnonzero(out_leg & member(-f["src_id"], dep_tx) & member(f["dst_id"], exch))
        # not the exchange's own transactions (sweeps, withdrawals): their inputs are the exchange's
        own = np.unique(-f["dst_id"][(f["dst_id"] < 0) & member(f["src_id"], exch)])
        idx = idx[~member(-f["src_id"][idx], own)]
        for i in idx:
            tx = -int(f["src_id"][i])
            k = int(np.searchsorted(dep_tx, tx))
            dst = int(f["dst_id"][i])
            score = float(dep_score[k])
            ins = np.flatnonzero(f["dst_id"] == -tx)
            ev = np.concatenate([ins, [i]])
            rows.append({
                "focal_id": dst, "anchor": int(f["flow_id"][i]), "score": score,
                "subjects": [dst, int(dep_source[k])] + [int(x) for x in np.unique(f["src_id"][ins]) if x > 0],
                "evidence": f["flow_id"][ev].tolist(), "usd": float(f["usd"][i]),
                "first_time": int(f["time"][ev].min()), "last_time": int(f["time"][ev].max()),
                "summary": f"{float(f['usd'][i]):,.2f} USD deposited at an exchange address by a transaction "
                           f"{'of' if tx in set(src.column('tx_id').to_pylist()) else 'following'} a peeling chain "
                           f"(chain score {score:.2f})",
            })
    # account chains: deposits into exchange deposit accounts from pass-through accounts or flagged ones
    from heuristics.typologies.passthrough import PassThroughParams, _account_flows, detect_pass_through

    pt = detect_pass_through(ctx, PassThroughParams(chains=p.account_chains))
    src_acct = {int(a): float(s) for a, s in zip(pt.column("focal_id").to_pylist(), pt.column("score").to_pylist(),
                                                strict=True) if s >= p.min_source_score}
    f = _account_flows(ctx, p.account_chains)
    if f["flow_id"].size:
        nodes, inv = np.unique(f["dst_id"], return_inverse=True)
        into = np.bincount(inv, weights=f["usd"], minlength=nodes.size)
        s_nodes, s_inv = np.unique(f["src_id"], return_inverse=True)
        fwd_mask = member(f["dst_id"], lab["exchange"])
        fwd = np.bincount(s_inv[fwd_mask], weights=f["usd"][fwd_mask], minlength=s_nodes.size)
        fwd_of = dict(zip(s_nodes.tolist(), fwd.tolist(), strict=True))
        deposit_accts = np.array(sorted(int(a) for a, v in zip(nodes.tolist(), into.tolist(), strict=True)
                                        if v > 0 and fwd_of.get(a, 0.0) >= p.forward_share * v), np.int64)
        exch = np.unique(np.concatenate([lab["exchange"], deposit_accts]))
        srcs = np.array(sorted(src_acct), np.int64)
        hit = np.flatnonzero(member(f["dst_id"], exch) & (member(f["src_id"], srcs) | member(f["src_id"], lab["flagged"])))
        for i in hit:
            s_id, d_id = int(f["src_id"][i]), int(f["dst_id"][i])
            score = src_acct.get(s_id, p.flag_score)
            fwd_idx = np.flatnonzero((f["src_id"] == d_id) & (f["time"] >= f["time"][i]))[:1]
            ev = np.concatenate([[i], fwd_idx])
            rows.append({
                "focal_id": d_id, "anchor": int(f["flow_id"][i]), "score": float(score),
                "subjects": [d_id, s_id], "evidence": f["flow_id"][ev].tolist(), "usd": float(f["usd"][i]),
                "first_time": int(f["time"][ev].min()), "last_time": int(f["time"][ev].max()),
                "summary": f"{float(f['usd'][i]):,.2f} USD into an exchange "
                           f"{'account' if member(np.array([d_id]), lab['exchange'])[0] else 'deposit account'} from "
                           + (f"a pass-through account (score {score:.2f})" if s_id in src_acct else "a flagged address"),
            })
    return found(rows)


register(Typology("off_ramp", "Off-ramp: value from a peeling chain or pass-through account into an exchange",
                  OffRampParams, detect_off_ramp, "FinCEN FIN-2020-A008; FATF virtual-asset red flags (2020)"))
