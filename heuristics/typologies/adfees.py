"""Ad-fee payers: wallets that pay many online-ad posting fees (Portnoff et al., "Backpage and Bitcoin:
Uncovering Human Traffickers", KDD 2017: the wallets paying for many escort ads reveal who runs them).

A fee payment is a UTXO transaction paying an ad site's address — the sites' addresses found as
``tracer ads link`` finds them (:func:`heuristics.ads.linking.site_addresses`: labels naming a site of
``ads``, their clusters, the addresses swept into them) — or a payment ``ad_payments`` links to an ad;
a transaction spending a site's own address (a processor's sweep) is not a fee payment.
Payments are grouped by payer, set-based: two payments are one payer's when their inputs share an
address cluster (``clusters``, where clustering ran; the input address otherwise) or when one spends
the other's change (a poster paying ad after ad from one wallet: the change of each payment funds the
next). Groups are the connected components of those links (scipy, over the payments only).

Score ``(1 - 2^-(n - min_payments + 1)) x (1 - exchange_discount x e)``, n the payments of the group, e
= 1 when the payer's inputs are exchange-labelled (an exchange or processor paying on its customers'
behalf), x ``1 + flag_boost`` when a flagged address takes part, capped at 1. Independent advertisers
pay a few fees; an operation advertising many victims pays dozens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from heuristics.typologies.base import Context, Typology, found, param, register
from heuristics.typologies.labelling import flag_boost, labelled, member


@dataclass(frozen=True)
class AdFeeParams:
    min_payments: int = param(3, "Fee payments one payer needs for an alert.")
    exchange_discount: float = param(0.8, "Score lowered by this when the payer's coins are exchange-labelled.")
    flag_boost: float = param(0.5, "Score raised by this share when a flagged (sanctioned, abuse) address takes part.")
    chain: str = param("bitcoin", "The UTXO chain of the fee payments.")


def fee_payments(ctx: Context, chain: str) -> pa.Table:
    """(tx_id, flow_id of the payment output) of every payment to an ad site's address or linked to an ad."""
    from heuristics.ads.linking import site_addresses

    has_ads = bool(ctx.store.scalar("SELECT count(*) > 0 FROM ads"))
    sites = site_addresses(ctx.store, chain) if has_ads else pa.table({"address_id": pa.array([], pa.int64())})
    sites = pa.table({"address_id": sites.column("address_id").cast(pa.int64())})
    # a transaction spending a site's own address (a processor sweeping its receiving addresses into its
    # hot wallet) is the site moving its money, not a fee payment
    with ctx.store.view("_ad_sites", sites) as v:
        return ctx.store.arrow(f"""
            WITH own AS (SELECT DISTINCT -f.dst_id AS tx_id FROM flows f JOIN {v} s ON s.address_id = f.src_id
                         WHERE f.chain = ? AND f.dst_id < 0)
            SELECT * FROM (
                SELECT DISTINCT -f.src_id AS tx_id, f.flow_id FROM flows f JOIN {v} s ON s.address_id = f.dst_id
                WHERE f.chain = ? AND f.src_id < 0
                UNION
                SELECT DISTINCT -f.src_id, f.flow_id FROM ad_payments p JOIN flows f
                  ON f.chain = p.chain AND f.txid = p.txid AND f.idx = p.n AND f.src_id < 0
                WHERE p.chain = ?)
            WHERE tx_id NOT IN (SELECT tx_id FROM own)""", [chain, chain, chain])


def detect_ad_fees(ctx: Context, p: AdFeeParams) -> pa.Table:
    pay = fee_payments(ctx, p.chain)
    if pay.num_rows == 0:
        return found([])
    has_clusters = bool(ctx.store.scalar("SELECT count(*) > 0 FROM clusters WHERE chain = ?", [p.chain]))
    payer = "coalesce(c.cluster_id, i.address_id)" if has_clusters else "i.address_id"
    cl_join = "LEFT JOIN clusters c ON c.chain = i.chain AND c.address_id = i.address_id" if has_clusters else ""
    txs = pa.table({"tx_id": pa.array(np.unique(pay.column("tx_id").to_numpy(zero_copy_only=False)), pa.int64())})
    with ctx.store.view("_fee_txs", txs) as v:
        # who pays (input clusters or addresses), and payments that spend an earlier payment's output
        links = ctx.store.arrow(f"""
            SELECT t.tx_id, {payer} AS payer, o.tx_id AS prev_tx, i.address_id
            FROM {v} t JOIN inputs i ON i.chain = ? AND i.tx_id = t.tx_id {cl_join}
            LEFT JOIN outputs o ON o.chain = i.chain AND o.txkey = i.prev_txkey AND o.n = i.prev_n
              AND o.tx_id IN (SELECT tx_id FROM {v})""", [p.chain])
    tx = txs.column("tx_id").to_numpy(zero_copy_only=False).astype(np.int64)
    l_tx = np.searchsorted(tx, links.column("tx_id").to_numpy(zero_copy_only=False).astype(np.int64))
    payer = np.nan_to_num(links.column("payer").to_numpy(zero_copy_only=False).astype(np.float64), nan=-1).astype(np.int64)
    prev = np.nan_to_num(links.column("prev_tx").to_numpy(zero_copy_only=False).astype(np.float64), nan=-1).astype(np.int64)
    in_addr = np.nan_to_num(links.column("address_id").to_numpy(zero_copy_only=False).astype(np.float64), nan=-1).astype(np.int64)
    # graph over payments + payer nodes: payment -- payer, payment -- the payment whose change it spends
    _, payer_node = np.unique(payer, return_inverse=True)
    n = tx.size + int(payer_node.max()) + 1
    a = np.concatenate([l_tx, l_tx[prev >= 0]])
    b = np.concatenate([tx.size + payer_node, np.searchsorted(tx, prev[prev >= 0])])
    _, comp = connected_components(coo_matrix((np.ones(a.size), (a, b)), shape=(n, n)), directed=False)
    group = comp[:tx.size]
    counts = np.bincount(group)
    lab = labelled(ctx)
    f = ctx.flows((p.chain,))
    pay_tx = pay.column("tx_id").to_numpy(zero_copy_only=False).astype(np.int64)
    pay_flow = pay.column("flow_id").to_numpy(zero_copy_only=False).astype(np.int64)
    pay_group = group[np.searchsorted(tx, pay_tx)]
    fid_order = np.argsort(f["flow_id"])
    rows = []
    for g in np.flatnonzero(counts >= p.min_payments):
        sel = pay_group == g
        flows = np.sort(pay_flow[sel])
        idx = fid_order[np.searchsorted(f["flow_id"][fid_order], flows)]
        idx = idx[np.lexsort((f["flow_id"][idx], f["time"][idx]))]
        members = np.isin(l_tx, np.flatnonzero(group == g))
        ins = np.unique(in_addr[members & (in_addr > 0)])
        exch = float(member(ins, lab["exchange"]).mean()) if ins.size else 0.0
        k = int(counts[g])
        boost, flagged = flag_boost(ctx, np.concatenate([ins, f["dst_id"][idx]]), p.flag_boost)
        score = min(1.0, (1 - 0.5 ** (k - p.min_payments + 1)) * (1 - p.exchange_discount * exch) * boost)
        focal = int(ins[0]) if ins.size else int(f["dst_id"][idx[0]])
        sites = np.unique(f["dst_id"][idx])
        usd = float(f["usd"][idx].sum())
        rows.append({
            "focal_id": focal, "anchor": int(f["flow_id"][idx[0]]), "score": float(score),
            "subjects": [focal] + [int(x) for x in np.concatenate([ins, sites]) if x != focal],
            "evidence": f["flow_id"][idx].tolist(), "usd": usd,
            "first_time": int(f["time"][idx[0]]), "last_time": int(f["time"][idx[-1]]),
            "summary": f"one payer ({ins.size} input addresses) paid {k} ad fees to {sites.size} ad-site addresses, "
                       f"{usd:,.2f} USD" + (f"; flagged addresses {flagged}" if flagged else ""),
        })
    return found(rows)


register(Typology("ad_fee_payer", "Ad-fee payer (a wallet paying many online-ad fees)", AdFeeParams, detect_ad_fees,
                  "Portnoff et al., Backpage and Bitcoin (KDD 2017); FinCEN FIN-2020-A008"))
