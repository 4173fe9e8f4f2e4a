"""Ad ↔ payment linking: which on-chain payment bought which ad.

Portnoff et al. ("Tools for Automated Analysis of Cybercriminal Markets" / "Backpage and Bitcoin:
Uncovering Human Traffickers", KDD 2017): a site posts an ad once its fee is paid, so the ad's posting
time and the fee (USD, converted to BTC at the rate of the moment) single out a payment to the site's
addresses; the paying wallet then ties the ad to everything else that wallet did. Steps, each set-based:

1. **Fees.** ``ads.fee_usd`` where the scrape shows it, else a fee schedule (``site,location,fee_usd``
   with optional ``valid_from``/``valid_to``; location ``*`` is the site's default).
2. **The site's addresses.** Labels naming the site (its domain in the label, or the site's name as the
   label's actor), expanded to (a) their clusters (``clusters``, if clustering ran) and (b) receiving
   addresses *swept* into them — processors take each payment on a fresh address and sweep it into a
   labelled hot wallet: an address spent together with a labelled one, or spent by a transaction of two
   or more inputs whose every output pays the site's labelled addresses (a customer's payment has
   change; a sweep has none).
3. **Candidates.** UTXO outputs (``flows`` kind ``utxo`` leg ``out``) to those addresses, mined within
   ``window_minutes`` of the posting time (before: the site waited for a confirmation; after: it posted
   on the unconfirmed payment), whose USD value at the price of the payment's time (``flows.usd``) is
   within ``tolerance`` of the fee (the processor's BTC rate is not the market's).
4. **Scores.** ``amount_score = 1 − |rel. error| / tolerance``, ``time_score = 1 − |minutes| / window``,
   ``base_score = amount_score × time_score``.
   Plus the **posting order** (``order_weight``): where two candidate payments of an ad's component are
   ordered on chain (one spends, maybe through others, the other's change), the ad posted first should
   take the payment made first — a site posts the ads paid in one block as its processor walks the
   block, and a block lists a payment before the one spending it.
5. **One payment per ad, one ad per payment**: a maximum-weight assignment
   (``scipy.optimize.linear_sum_assignment``) per connected component of the ad–payment graph. Ties go
   to the earlier ad and the earlier payment ((site, ad_id) and (txid, n) order).
6. **Consistency** (second pass): ads of one author group (``ad_groups``, else ads sharing a phone,
   e-mail or photo) are paid from the same wallets more often than not. A candidate whose payer (input
   cluster, merged along spent change: a wallet that pays again from its own change is one payer) pays
   other ads of the group in the first pass gets ``group_boost × share`` added, and the assignment runs
   again. Only links outside the candidate's own component count (the competing ads cannot vouch for
   each other). Links scoring below ``min_score`` stay candidates only.
7. **Abstention**: a link whose *regret* (how much its component's best total score drops without it)
   is below ``margin`` is not separable from an alternative and stays a candidate.

Known failure modes: a payment for an ad the scrape missed can take the place of the true one when it
matches as well (same site, fee tier and minutes); an ad paid by other means (card, credits) may be
linked to an unrelated payment of the same amount; a shared processor address (several sites behind
one processor) mixes sites' payments; the boost follows a group's majority wallet, so one wrongly
linked first-pass payer can pull its group's ambiguous ads with it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tracer.errors import IngestError, MoneytrailError
from tracer.store import Store

METHOD = "fee_match"


@dataclass(frozen=True)
class LinkParams:
    """The named parameters of the linker (docs/heuristics.md, "Ads and payments")."""

    window_minutes: float = 180.0  # the payment's block time within this many minutes of the posting
    tolerance: float = 0.01  # |usd − fee| / fee: the processor's rate and the price's granularity
    min_score: float = 0.05  # below this a best candidate is not accepted as a link
    group_boost: float = 0.5  # added × the share of the group's other links paid by the same payer
    margin: float = 0.05  # a link's regret (the best assignment's loss without it) must reach this
    order_weight: float = 0.1  # added × the share of on-chain-ordered rival payments in posting order
    chain: str = "bitcoin"

    def check(self) -> None:
        if not self.window_minutes > 0:
            raise MoneytrailError(f"--window {self.window_minutes:g}: must be a positive number of minutes")
        if not 0 < self.tolerance < 1:
            raise MoneytrailError(f"--tolerance {self.tolerance:g}: must be a share between 0 and 1 (e.g. 0.01)")
        if not 0 <= self.min_score <= 1:
            raise MoneytrailError(f"--min-score {self.min_score:g}: must be between 0 and 1")
        if not 0 <= self.margin <= 1:
            raise MoneytrailError(f"--margin {self.margin:g}: must be between 0 and 1")
        if not 0 <= self.order_weight <= 1:
            raise MoneytrailError(f"--order-weight {self.order_weight:g}: must be between 0 and 1")
        if self.group_boost < 0:
            raise MoneytrailError(f"--group-boost {self.group_boost:g}: must not be negative")


@dataclass
class LinkResult:
    run_id: int
    ads: int = 0
    ads_with_fee: int = 0
    site_addresses: dict[str, int] = field(default_factory=dict)  # basis -> addresses
    candidates: int = 0
    ads_with_candidates: int = 0
    linked: int = 0
    changed_by_groups: int = 0  # links the consistency pass changed
    abstained: int = 0  # best links not separable from an alternative (regret below --margin): not linked
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- fee schedule -------------------------------------------------------------------------------------
FEE_COLUMNS = ("site", "location", "fee_usd", "valid_from", "valid_to")


def read_fee_schedule(path: str | Path) -> pa.Table:
    """A fee schedule CSV (docs/formats.md, "Fee schedule") as a table; a bad row is refused with its line."""
    from tracer.ingest.csvread import parse_time

    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(source, f"byte {exc.start}", "not UTF-8 text") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in FEE_COLUMNS[:3] if c not in header]
    if missing:
        raise IngestError(source, "line 1", f"a fee schedule needs the columns site,location,fee_usd[,valid_from,"
                                            f"valid_to]; missing: {', '.join(missing)}")
    rows: list[dict[str, Any]] = []
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise IngestError(source, f"line {line}", f"{len(values)} fields, the header has {len(header)}")
        rec = {h: v.strip() for h, v in zip(header, values)}
        if not rec["site"] or not rec["location"]:
            raise IngestError(source, f"line {line}", "site and location must not be empty (location * is the "
                                                      "site's default)")
        try:
            fee = float(rec["fee_usd"])
        except ValueError:
            raise IngestError(source, f"line {line}", f"fee_usd is not a number: {rec['fee_usd']!r}") from None
        if not np.isfinite(fee) or fee <= 0:
            raise IngestError(source, f"line {line}", f"fee_usd must be a positive amount: {rec['fee_usd']!r}")
        when = {}
        for key in ("valid_from", "valid_to"):
            value = rec.get(key) or ""
            try:
                when[key] = parse_time(value, "UTC")[0] if value else None
            except ValueError as exc:
                raise IngestError(source, f"line {line}", f"{key}: {exc}") from None
        if when["valid_from"] and when["valid_to"] and when["valid_to"] <= when["valid_from"]:
            raise IngestError(source, f"line {line}", "valid_to is not after valid_from")
        rows.append({"site": rec["site"].lower(), "location": rec["location"].lower(), "fee_usd": fee, **when,
                     "line": line})
    if not rows:
        raise IngestError(source, "whole file", "no fees in the schedule")
    lo, hi = dt.datetime.min, dt.datetime.max
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if (a["site"], a["location"]) == (b["site"], b["location"]) and \
                    (a["valid_from"] or lo) < (b["valid_to"] or hi) and (b["valid_from"] or lo) < (a["valid_to"] or hi):
                raise IngestError(source, f"line {b['line']}", f"{b['site']} {b['location']}: overlaps the fee of "
                                                               f"line {a['line']}")
    return pa.Table.from_pylist(rows, pa.schema([
        ("site", pa.string()), ("location", pa.string()), ("fee_usd", pa.float64()),
        ("valid_from", pa.timestamp("us")), ("valid_to", pa.timestamp("us")), ("line", pa.int64())]))


def ad_fees(store: Store, schedule: pa.Table | None) -> pa.Table:
    """Every ad with the fee to look for: ``ads.fee_usd``, else the schedule's row for its site and
    location, else the site's default (``*``), valid at the posting time; NULL when neither knows."""
    if schedule is None:
        return store.arrow("""SELECT site, ad_id, posted_at, CAST(fee_usd AS DOUBLE) AS fee_usd,
                                     CASE WHEN fee_usd IS NOT NULL THEN 'ad' END AS fee_source
                              FROM ads ORDER BY site, ad_id""")
    with store.view("_fee_schedule", schedule):
        return store.arrow("""
            WITH matches AS (
                SELECT a.site, a.ad_id, s.fee_usd, s.location,
                       row_number() OVER (PARTITION BY a.site, a.ad_id
                                          ORDER BY CASE WHEN s.location = '*' THEN 1 ELSE 0 END) AS pick
                FROM ads a JOIN _fee_schedule s
                  ON s.site = lower(a.site) AND (s.location = lower(trim(a.location)) OR s.location = '*')
                 AND (s.valid_from IS NULL OR s.valid_from <= a.posted_at)
                 AND (s.valid_to IS NULL OR a.posted_at < s.valid_to))
            SELECT a.site, a.ad_id, a.posted_at,
                   coalesce(CAST(a.fee_usd AS DOUBLE), m.fee_usd) AS fee_usd,
                   CASE WHEN a.fee_usd IS NOT NULL THEN 'ad'
                        WHEN m.fee_usd IS NOT NULL THEN 'schedule:' || m.location END AS fee_source
            FROM ads a LEFT JOIN matches m ON m.site = a.site AND m.ad_id = a.ad_id AND m.pick = 1
            ORDER BY a.site, a.ad_id""")


# -- the sites' addresses ---------------------------------------------------------------------------
def site_addresses(store: Store, chain: str = "bitcoin") -> pa.Table:
    """(site, address_id, address, basis): labelled addresses of each site of ``ads`` (basis ``label``),
    the rest of their clusters (``cluster``, if clustering ran) and receiving addresses swept into them
    (``sweep``); see the module docstring."""
    has_clusters = bool(store.scalar("SELECT count(*) > 0 FROM clusters WHERE chain = ?", [chain]))
    cluster_part = """
        UNION ALL
        SELECT l.site, c2.address_id, c2.address, 2 FROM labelled l
        JOIN clusters c1 ON c1.chain = ? AND c1.address_id = l.address_id
        JOIN clusters c2 ON c2.chain = c1.chain AND c2.cluster_id = c1.cluster_id""" if has_clusters else ""
    params: list[Any] = [chain] * (5 if has_clusters else 4)
    return store.arrow(f"""
        WITH sites AS (SELECT DISTINCT site, lower(site) AS domain, lower(split_part(site, '.', 1)) AS stem FROM ads),
        labelled AS (
            SELECT DISTINCT s.site, a.address_id, l.address
            FROM sites s JOIN labels l ON l.chain = ?
              AND (strpos(lower(l.label), s.domain) > 0 OR lower(l.actor) IN (s.domain, s.stem)
                   OR (length(s.stem) >= 4 AND lower(l.actor) LIKE '%-' || s.stem))
            JOIN addresses a ON a.chain = l.chain AND a.address = l.address),
        swept AS (
            -- spent together with a labelled address: the site spends its receiving addresses
            SELECT DISTINCT l.site, i2.address_id, i2.address FROM labelled l
            JOIN inputs i1 ON i1.chain = ? AND i1.address_id = l.address_id
            JOIN inputs i2 ON i2.chain = i1.chain AND i2.tx_id = i1.tx_id
            UNION
            -- swept: two or more inputs, every output to the site's labelled addresses (a payment has change)
            SELECT DISTINCT t.site, i.address_id, i.address FROM (
                SELECT any_value(l.site) AS site, o.tx_id FROM outputs o JOIN transactions x ON x.chain = o.chain AND x.tx_id = o.tx_id
                LEFT JOIN labelled l ON l.address_id = o.address_id
                WHERE o.chain = ? AND x.input_count >= 2
                GROUP BY o.tx_id, x.output_count
                HAVING count(l.site) = x.output_count AND count(DISTINCT l.site) = 1) t
            JOIN inputs i ON i.chain = ? AND i.tx_id = t.tx_id),
        every AS (SELECT site, address_id, address, 1 AS r FROM labelled
                  UNION ALL SELECT site, address_id, address, 3 FROM swept {cluster_part})
        SELECT site, address_id, any_value(address) AS address,
               CASE min(r) WHEN 1 THEN 'label' WHEN 2 THEN 'cluster' ELSE 'sweep' END AS basis
        FROM every WHERE address_id IS NOT NULL
        GROUP BY site, address_id ORDER BY site, address_id""", params)


# -- candidates ---------------------------------------------------------------------------------------
def candidates(store: Store, fees: pa.Table, sites: pa.Table, params: LinkParams) -> pa.Table:
    """Every (ad, payment output) pair within the window and the tolerance, with its base score."""
    w = params.window_minutes
    known = fees.filter(pa.compute.is_valid(fees["fee_usd"]))
    posted = known["posted_at"].cast(pa.timestamp("us"))
    span = pa.scalar(int(w * 60e6), pa.duration("us"))
    ads = known.append_column("lo", pa.compute.subtract(posted, span)).append_column("hi", pa.compute.add(posted, span))
    with store.view("_ad_fees", ads), store.view("_site_addrs", sites):
        return store.arrow(f"""
            SELECT a.site, a.ad_id, f.chain, f.txid, CAST(f.idx AS INTEGER) AS n, s.address, s.basis AS address_basis,
                   f.amount, f.usd, f.time AS payment_time, a.posted_at, a.fee_usd, a.fee_source,
                   (f.usd - a.fee_usd) / a.fee_usd AS rel_error,
                   date_diff('second', a.posted_at, f.time) / 60.0 AS minutes,
                   -f.src_id AS tx_id
            FROM _ad_fees a
            JOIN _site_addrs s ON s.site = a.site
            JOIN flows f ON f.dst_id = s.address_id AND f.chain = ? AND f.kind = 'utxo' AND f.leg = 'out'
             AND f.time >= a.lo AND f.time <= a.hi
            WHERE f.usd IS NOT NULL AND abs(f.usd - a.fee_usd) <= {params.tolerance!r} * a.fee_usd
            ORDER BY a.site, a.ad_id, f.txid, f.idx""", [params.chain])


def payers(store: Store, cands: pa.Table, chain: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The paying wallet of each candidate: the smallest cluster id of its transaction's inputs (the
    input's own address id where clustering has not run), with wallets merged when one candidate
    transaction spends an output of another (a wallet paying again from its own change); and those
    spends, as (child tx_id, parent tx_id) pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(cands) == 0:
        return np.zeros(0, np.int64), []
    tx = pa.table({"tx_id": cands["tx_id"]})
    with store.view("_cand_tx", tx):
        keys = store.arrow("""
            WITH t AS (SELECT DISTINCT tx_id FROM _cand_tx)
            SELECT t.tx_id, min(coalesce(c.cluster_id, i.address_id)) AS payer
            FROM t JOIN inputs i ON i.chain = ? AND i.tx_id = t.tx_id
            LEFT JOIN clusters c ON c.chain = i.chain AND c.address_id = i.address_id
            GROUP BY t.tx_id ORDER BY t.tx_id""", [chain])
        spends = store.arrow("""
            WITH t AS (SELECT DISTINCT tx_id FROM _cand_tx)
            SELECT DISTINCT i.tx_id AS child, o.tx_id AS parent
            FROM t JOIN inputs i ON i.chain = ? AND i.tx_id = t.tx_id
            JOIN outputs o ON o.chain = i.chain AND o.txkey = i.prev_txkey AND o.n = i.prev_n AND o.txid = i.prev_txid
            WHERE o.tx_id IN (SELECT tx_id FROM t)""", [chain])
    tx_ids = keys["tx_id"].to_numpy()
    payer = keys["payer"].to_numpy(zero_copy_only=False).astype(np.int64)
    # merge payers along spent change: components over the payer keys
    uniq, key_of_tx = np.unique(payer, return_inverse=True)
    if len(spends):
        pos = {int(t): k for k, t in enumerate(tx_ids)}
        a = np.array([key_of_tx[pos[int(t)]] for t in spends["child"].to_pylist()], np.int64)
        b = np.array([key_of_tx[pos[int(t)]] for t in spends["parent"].to_pylist()], np.int64)
        graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(uniq), len(uniq)))
        _, comp = connected_components(graph, directed=False)
        # a component is named by its smallest payer key
        smallest = np.full(comp.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(smallest, comp, uniq)
        merged = smallest[comp][key_of_tx]
    else:
        merged = payer
    out = dict(zip(tx_ids.tolist(), merged.tolist()))
    return (np.array([out.get(int(t), -int(t)) for t in cands["tx_id"].to_pylist()], np.int64),
            list(zip(spends["child"].to_pylist(), spends["parent"].to_pylist())))


def _order_bonus(ad_index: np.ndarray, pay_tx: np.ndarray, posted: np.ndarray, comp: np.ndarray,
                 spends: list[tuple[int, int]], weight: float) -> np.ndarray:
    """Per candidate: ``weight`` × (agreeing − disagreeing) / (agreeing + disagreeing) over the other
    candidates of its component that pay another ad with a payment *ordered on chain* against this one
    (one spends, directly or through other candidates, the other's change). A pair agrees when the ad
    posted first takes the payment made first: a site posts the ads paid in one block as its processor
    walks the block, and a block lists a payment before the one spending its change. Payments not
    ordered on chain (different wallets) say nothing."""
    bonus = np.zeros(len(ad_index))
    if not spends or weight == 0:
        return bonus
    parents: dict[int, set[int]] = {}
    for child, parent in spends:
        parents.setdefault(int(child), set()).add(int(parent))

    memo: dict[int, set[int]] = {}
    for tx in sorted(parents):
        stack, found = [tx], set()
        while stack:
            for p in parents.get(stack.pop(), ()):
                if p not in found:
                    found.add(p)
                    stack.append(p)
        memo[tx] = found
    # only candidates whose payment has an on-chain order with another candidate payment take part
    ordered = set(memo) | {p for found in memo.values() for p in found}
    take = np.flatnonzero(np.isin(pay_tx, np.fromiter(ordered, np.int64, len(ordered))))
    order = take[np.argsort(comp[take], kind="stable")]
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    for edges in np.split(order, bounds):
        if len(edges) < 2:
            continue
        agree = np.zeros(len(edges))
        disagree = np.zeros(len(edges))
        for i, e in enumerate(edges):
            for f in edges:
                if ad_index[e] == ad_index[f] or pay_tx[e] == pay_tx[f] or posted[e] == posted[f]:
                    continue
                if pay_tx[f] in memo.get(int(pay_tx[e]), ()):  # f's payment came first
                    first = True
                elif pay_tx[e] in memo.get(int(pay_tx[f]), ()):
                    first = False
                else:
                    continue
                if (posted[f] < posted[e]) == first:
                    agree[i] += 1
                else:
                    disagree[i] += 1
        seen = agree + disagree > 0
        bonus[edges[seen]] = weight * (agree[seen] - disagree[seen]) / (agree[seen] + disagree[seen])
    return bonus


def components(ad_index: np.ndarray, pay_index: np.ndarray) -> np.ndarray:
    """The connected component of the ad–payment graph each candidate edge belongs to (numbered from 0):
    the ads that compete for payments, and the payments they compete for."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(ad_index) == 0:
        return np.zeros(0, np.int64)
    n_ads, n_pay = int(ad_index.max()) + 1, int(pay_index.max()) + 1
    graph = coo_matrix((np.ones(len(ad_index)), (ad_index, n_ads + pay_index)), shape=(n_ads + n_pay,) * 2)
    _, comp = connected_components(graph, directed=False)
    return comp[ad_index].astype(np.int64)


def _component_matrices(ad_index: np.ndarray, pay_index: np.ndarray, score: np.ndarray):
    """Per component: its edges, and the edges' rows and columns in the component's dense score matrix
    (rows and columns in (ad, payment) index order)."""
    comp = components(ad_index, pay_index)
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    for edges in np.split(order, bounds):
        rows, r = np.unique(ad_index[edges], return_inverse=True)
        cols, c = np.unique(pay_index[edges], return_inverse=True)
        m = np.zeros((len(rows), len(cols)))
        m[r, c] = np.maximum(score[edges], 0)
        yield edges, r, c, m


def _best(m: np.ndarray) -> tuple[float, set[tuple[int, int]]]:
    from scipy.optimize import linear_sum_assignment

    picked_r, picked_c = linear_sum_assignment(m, maximize=True)
    best = {(int(i), int(j)) for i, j in zip(picked_r, picked_c) if m[i, j] > 0}
    return float(sum(m[i, j] for i, j in best)), best


def assign(ad_index: np.ndarray, pay_index: np.ndarray, score: np.ndarray) -> np.ndarray:
    """A maximum-weight matching (at most one payment per ad and one ad per payment) of the candidate
    edges ``(ad_index[k], pay_index[k], score[k])``; returns a boolean mask of the chosen edges.

    Solved per connected component with ``scipy.optimize.linear_sum_assignment`` on the component's dense
    score matrix (components are small: the ads of one site within one window). Rows and columns are in
    (ad, payment) index order, so equal scores go to the earlier ad and the earlier payment."""
    chosen, _ = assign_with_regret(ad_index, pay_index, score)
    return chosen


def assign_with_regret(ad_index: np.ndarray, pay_index: np.ndarray, score: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`assign`, and for each chosen edge its *regret*: how much the component's best total score
    drops when that edge is forbidden (the best explanation of the same ads and payments without this
    link). A small regret means an alternative assignment fits the evidence as well: the link is not
    separable from it (NaN for edges not chosen)."""
    chosen = np.zeros(len(score), bool)
    regret = np.full(len(score), np.nan)
    if len(score) == 0:
        return chosen, regret
    for edges, r, c, m in _component_matrices(ad_index, pay_index, score):
        total, best = _best(m)
        for k, e in enumerate(edges):
            cell = (int(r[k]), int(c[k]))
            if cell not in best:
                continue
            chosen[e] = True
            if m.shape[0] > EXACT_REGRET_ADS:
                regret[e] = local_regret(m, cell)
                continue
            held, m[cell] = m[cell], 0.0
            regret[e] = total - _best(m)[0]
            m[cell] = held
    return chosen, regret


#: components with more ads than this (busy sites in big worlds, where overlapping windows chain a fee
#: tier's ads into one component) measure a link's regret on its neighbourhood: one assignment per link
#: on the whole component would cost links × component³
EXACT_REGRET_ADS = 40


def local_regret(m: np.ndarray, cell: tuple[int, int]) -> float:
    """The regret of link ``cell`` (row, column of the score matrix ``m``) measured on its neighbourhood:
    the ads with a candidate among the link's ad's payments, and all their payments. Equal to the
    component's regret when the component is that neighbourhood; a bounded look-ahead otherwise (a
    chain of swaps reaching further is not seen)."""
    r0, c0 = cell
    rows = np.flatnonzero((m[:, m[r0] > 0] > 0).any(axis=1))
    cols = np.flatnonzero((m[rows] > 0).any(axis=0))
    sub = m[np.ix_(rows, cols)].copy()
    total = _best(sub)[0]
    sub[int(np.searchsorted(rows, r0)), int(np.searchsorted(cols, c0))] = 0.0
    return total - _best(sub)[0]


def ad_group_of(store: Store) -> dict[tuple[str, str], int]:
    """(site, ad_id) -> group id: ``ad_groups`` when grouping has run, else ads sharing a phone, e-mail or
    photo (:func:`heuristics.ads.grouping.identifier_groups`)."""
    if store.scalar("SELECT count(*) FROM ad_groups"):
        return {(s, a): int(g) for s, a, g in store.query("SELECT site, ad_id, group_id FROM ad_groups")}
    from heuristics.ads.grouping import identifier_groups

    return identifier_groups(store)


PASSES = 4  # consistency passes at most (each re-scores from the links of the one before)


def _group_boost(links: np.ndarray, ad_index: np.ndarray, payer: np.ndarray, group_of_ad: np.ndarray,
                 comp: np.ndarray, weight: float) -> np.ndarray:
    """Per candidate: ``weight`` × (share of the group's other linked ads paid by this payer) minus
    ``weight`` × (share of this payer's links that pay ads of other groups), both counted over the links
    *outside the candidate's own component*: the ads competing for the same payments cannot vouch for or
    against each other (otherwise a swapped pair would confirm its own swap). A payer seen in no such
    link is neither boosted nor penalised."""
    from collections import Counter

    linked = np.flatnonzero(links)
    lg, lp, lc = group_of_ad[ad_index[linked]].tolist(), payer[linked].tolist(), comp[linked].tolist()
    per_group, per_pair, per_payer = Counter(lg), Counter(zip(lg, lp)), Counter(lp)
    in_group, in_pair, in_payer = Counter(zip(lc, lg)), Counter(zip(lc, lg, lp)), Counter(zip(lc, lp))
    boost = np.zeros(len(payer))
    for k, (g, p, c) in enumerate(zip(group_of_ad[ad_index].tolist(), payer.tolist(), comp.tolist())):
        others = per_group[g] - in_group[(c, g)]
        same = per_pair[(g, p)] - in_pair[(c, g, p)]
        paid = per_payer[p] - in_payer[(c, p)]
        if others > 0 and same > 0:
            boost[k] += weight * same / others
        if paid > 0:
            boost[k] -= weight * (paid - same) / paid
    return boost


# -- the whole step -----------------------------------------------------------------------------------
def link_ads(store: Store, fees: str | Path | pa.Table | None = None, params: LinkParams | None = None) -> LinkResult:
    """Link ads to their fee payments; replaces the previous ``fee_match`` links and all candidates."""
    params = params or LinkParams()
    params.check()
    schedule = read_fee_schedule(fees) if isinstance(fees, (str, Path)) else fees
    run = store.begin_run("ads-link", str(fees) if isinstance(fees, (str, Path)) else None,
                          {k: v for k, v in asdict(params).items()})
    try:
        with store.transaction():
            result = _link(store, schedule, params, run.run_id)
        run.add(candidates=result.candidates, linked=result.linked)
        run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    return result


def _link(store: Store, schedule: pa.Table | None, params: LinkParams, run_id: int) -> LinkResult:
    result = LinkResult(run_id, params=asdict(params))
    fees = ad_fees(store, schedule)
    result.ads = len(fees)
    result.ads_with_fee = len(fees) - fees["fee_usd"].null_count
    sites = site_addresses(store, params.chain)
    result.site_addresses = {b: int(n) for b, n in zip(*np.unique(sites["basis"].to_numpy(zero_copy_only=False),
                                                                   return_counts=True))} if len(sites) else {}
    cands = candidates(store, fees, sites, params)
    result.candidates = len(cands)
    store.con.execute("DELETE FROM ad_payment_candidates")
    store.con.execute("DELETE FROM ad_payments WHERE method = ?", [METHOD])
    if len(cands) == 0:
        return result
    rel = np.abs(cands["rel_error"].to_numpy())
    minutes = np.abs(cands["minutes"].to_numpy())
    amount_score = np.clip(1 - rel / params.tolerance, 0, 1)
    time_score = np.clip(1 - minutes / params.window_minutes, 0, 1)
    base = amount_score * time_score
    ad_keys = list(zip(cands["site"].to_pylist(), cands["ad_id"].to_pylist()))
    ad_uniq = sorted(set(ad_keys))
    ad_pos = {k: i for i, k in enumerate(ad_uniq)}
    ad_index = np.array([ad_pos[k] for k in ad_keys], np.int64)
    pay_keys = list(zip(cands["txid"].to_pylist(), cands["n"].to_pylist()))
    pay_uniq = sorted(set(pay_keys))
    pay_pos = {k: i for i, k in enumerate(pay_uniq)}
    pay_index = np.array([pay_pos[k] for k in pay_keys], np.int64)
    result.ads_with_candidates = len(ad_uniq)
    payer, spends = payers(store, cands, params.chain)
    comp = components(ad_index, pay_index)
    # the posting order against the payments' order on chain: a tie-breaker added before the group pass
    posted = cands["posted_at"].cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
    order_bonus = _order_bonus(ad_index, cands["tx_id"].to_numpy(), posted, comp, spends, params.order_weight)
    prior = base + order_bonus

    first = assign(ad_index, pay_index, prior) & (prior >= params.min_score)
    boost = np.zeros(len(base))
    chosen = first
    if params.group_boost > 0:
        groups = ad_group_of(store)
        group_of_ad = np.array([groups.get(k, -1 - i) for i, k in enumerate(ad_uniq)], np.int64)
        for _ in range(PASSES):
            boost = _group_boost(chosen, ad_index, payer, group_of_ad, comp, params.group_boost)
            again = assign(ad_index, pay_index, prior + boost) & (prior + boost >= params.min_score)
            if (again == chosen).all():
                break
            chosen = again
    score = prior + boost
    # abstain: a link whose component explains the evidence (almost) as well without it is not separable
    # from the alternative (two same-fee payments in one block, a decoy as close to the fee as the
    # payment): below --margin it stays a candidate
    chosen, regret = assign_with_regret(ad_index, pay_index, score)
    chosen &= (score >= params.min_score) & (regret >= params.margin)
    before = {int(ad_index[k]): int(pay_index[k]) for k in np.flatnonzero(first)}
    after = {int(ad_index[k]): int(pay_index[k]) for k in np.flatnonzero(chosen)}
    result.changed_by_groups = sum(1 for i in set(before) | set(after) if before.get(i) != after.get(i))
    result.linked = int(chosen.sum())
    result.abstained = int((~np.isnan(regret) & (regret < params.margin) & (score >= params.min_score)).sum())

    # rank per ad by final score (ties: payment order)
    order = np.lexsort((pay_index, -score, ad_index))
    rank = np.empty(len(score), np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(ad_index[order])) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts) + 1
    table = pa.table({
        "site": cands["site"], "ad_id": cands["ad_id"], "rank": pa.array(rank, pa.int32()), "chain": cands["chain"],
        "txid": cands["txid"], "n": cands["n"], "address": cands["address"], "address_basis": cands["address_basis"],
        "amount": cands["amount"], "usd": cands["usd"], "payment_time": cands["payment_time"],
        "posted_at": cands["posted_at"], "fee_usd": cands["fee_usd"], "fee_source": cands["fee_source"],
        "rel_error": cands["rel_error"], "minutes": cands["minutes"], "amount_score": amount_score,
        "time_score": time_score, "base_score": base, "order_bonus": order_bonus, "group_boost": boost, "score": score,
        "payer": payer, "chosen": chosen, "regret": pa.array(regret, pa.float64(), mask=np.isnan(regret)),
        "run_id": pa.array(np.full(len(score), run_id), pa.int64()),
    })
    with store.view("_cands", table):
        store.con.execute("""INSERT INTO ad_payment_candidates BY NAME SELECT * FROM _cands
                             ORDER BY site, ad_id, rank""")
        store.con.execute("""INSERT INTO ad_payments (ad_id, chain, txid, n, score, method, run_id, site, fee_usd, usd)
                             SELECT ad_id, chain, txid, n, score, ?, run_id, site, fee_usd, usd FROM _cands
                             WHERE chosen ORDER BY site, ad_id""", [METHOD])
    return result


# -- explain ------------------------------------------------------------------------------------------
@dataclass
class AdExplanation:
    site: str
    ad_id: str
    posted_at: dt.datetime | None
    location: str | None
    fee_usd: float | None
    fee_source: str | None
    link: dict[str, Any] | None
    price_btc_usd: float | None  # the BTC price the chosen payment was valued at
    candidates: list[dict[str, Any]]
    why: str

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


def explain_ad(store: Store, ad_id: str, site: str | None = None) -> AdExplanation:
    """The fee looked for, the price used, every candidate with its scores, and why the chosen one won."""
    where, args = ("ad_id = ? AND site = ?", [ad_id, site]) if site else ("ad_id = ?", [ad_id])
    ads = store.query(f"SELECT site, ad_id, posted_at, location, CAST(fee_usd AS DOUBLE) FROM ads WHERE {where} "
                      "ORDER BY site", args)
    if not ads:
        raise MoneytrailError(f"ad {ad_id}{' on ' + site if site else ''}: not in the store")
    if len(ads) > 1:
        raise MoneytrailError(f"ad {ad_id} is on several sites ({', '.join(a[0] for a in ads)}); give --site")
    site, ad_id, posted_at, location, fee_ad = ads[0]
    table = store.arrow("""SELECT * EXCLUDE (run_id) FROM ad_payment_candidates WHERE site = ? AND ad_id = ?
                           ORDER BY rank""", [site, ad_id])
    cands = table.to_pylist()
    link = store.one("SELECT chain, txid, n, score, method FROM ad_payments WHERE site = ? AND ad_id = ?",
                     [site, ad_id])
    fee_usd = cands[0]["fee_usd"] if cands else fee_ad
    fee_source = cands[0]["fee_source"] if cands else ("ad" if fee_ad is not None else None)
    # where the payment went instead, for candidates that lost to another ad
    for c in cands:
        c["taken_by"] = None
        if not c["chosen"]:
            other = store.one("SELECT site, ad_id FROM ad_payments WHERE chain = ? AND txid = ? AND n = ?",
                              [c["chain"], c["txid"], c["n"]])
            c["taken_by"] = f"{other[0]} {other[1]}" if other else None
    price = None
    chosen = next((c for c in cands if c["chosen"]), None)
    if chosen is not None and chosen["amount"]:
        price = float(chosen["usd"]) / (float(chosen["amount"]) / 1e8)
    margin = None
    if cands:
        run = store.one("""SELECT r.parameters FROM ingest_runs r WHERE r.run_id = (SELECT max(run_id) FROM
                               ad_payment_candidates WHERE site = ? AND ad_id = ?)""", [site, ad_id])
        params = run[0] if run else None
        margin = (json.loads(params) if isinstance(params, str) else params or {}).get("margin")
    why = _why(cands, chosen, fee_usd, link is not None, margin)
    return AdExplanation(site, ad_id, posted_at, location, fee_usd, fee_source,
                         None if link is None else dict(zip(("chain", "txid", "n", "score", "method"), link)),
                         price, cands, why)


def _why(cands: list[dict], chosen: dict | None, fee_usd: float | None, linked: bool, margin: float | None) -> str:
    if fee_usd is None:
        return "no fee known for this ad (no fee_usd on the ad and no fee schedule row for its site): not linked"
    if not cands:
        return "no payment to the site's addresses within the window and the tolerance: not linked"
    if chosen is None:
        best = cands[0]
        if best["taken_by"]:
            return (f"the best candidate {best['txid']}:{best['n']} (score {best['score']:.3f}) went to ad "
                    f"{best['taken_by']}, which it fits better; no other candidate was left: not linked")
        picked = next((c for c in cands if c["regret"] is not None and c["regret"] < (margin or 0)), None)
        if picked is not None:
            rival = next((c for c in cands if c is not picked), None)
            alt = (f" (e.g. {rival['txid']}:{rival['n']}, score {rival['score']:.3f}, or the same payment for "
                   "another ad)") if rival else " (the same payment for another ad)"
            return (f"the assignment picked {picked['txid']}:{picked['n']} (score {picked['score']:.3f}), but without "
                    f"it the competing ads and payments are explained almost as well{alt}: regret "
                    f"{picked['regret']:.3f} below the margin {margin}: not linked "
                    "(not separable)")
        return f"the best candidate scores {best['score']:.3f}, below the minimum score: not linked"
    parts = [f"{chosen['txid']}:{chosen['n']} pays {chosen['usd']:.2f} USD for a {fee_usd:g} USD fee "
             f"({chosen['rel_error'] * 100:+.2f} %) {abs(chosen['minutes']):.0f} min "
             f"{'before' if chosen['minutes'] <= 0 else 'after'} the posting: score {chosen['score']:.3f}"]
    if chosen["order_bonus"] > 0:
        parts.append(f"including {chosen['order_bonus']:.3f} because the ad was posted in the order of its "
                     "payment among payments of one wallet (one spends the other's change)")
    if chosen["group_boost"] > 0:
        parts.append(f"including {chosen['group_boost']:.3f} because its payer pays other ads of the ad's group")
    rivals = [c for c in cands if not c["chosen"]]
    if rivals:
        r = rivals[0]
        if r["score"] > chosen["score"]:
            parts.append(f"{r['txid']}:{r['n']} scores higher ({r['score']:.3f}) but pays ad {r['taken_by']} in "
                         "the one-payment-per-ad assignment")
        else:
            parts.append(f"the next candidate {r['txid']}:{r['n']} scores {r['score']:.3f}")
    return "; ".join(parts)
