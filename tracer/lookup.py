"""Read-side questions an analyst asks of the store, and the one write the dashboard makes.

The dashboard (and any script) calls these functions instead of writing SQL itself: "what does this
store hold?" (:func:`store_overview`), "what did this address receive and send, with whom?"
(:func:`address_activity`, :func:`find_address`), and "keep this address in my case"
(:func:`add_to_case`, which also writes the ``audit_log`` row ARCHITECTURE.md asks for).

Every value that comes from a user (an address typed in a search box, a chain name in a URL, a case
title) reaches DuckDB as a bound parameter, never inside the SQL text. Table names in SQL text come
only from constants in this module.

Amounts stay exact integers in base units (satoshi, wei, token units, cents), as the store holds them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tracer.store import Store, graph
from tracer.store.store import utcnow

# The canonical tables of ARCHITECTURE.md whose size an analyst wants to see first.
CANONICAL_TABLES: tuple[str, ...] = (
    "blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "clusters",
    "cluster_links", "labels", "ads", "ad_payments", "reports", "prices", "alerts", "cases",
    "case_items", "quarantine",
)

# Tables whose rows carry run_id: counting rows per run_id across them is the provenance view of a run.
_PROVENANCE_TABLES: tuple[str, ...] = (
    "blocks", "transactions", "outputs", "inputs", "addresses", "transfers", "clusters",
    "cluster_links", "labels", "ads", "ad_payments", "reports", "report_identifiers", "prices", "alerts",
)

# Native asset of the UTXO chains, as flows name them (the chain registry, tracer/chains.py).
UTXO_ASSETS: dict[str, str] = graph.UTXO_ASSET
UTXO_DECIMALS = 8

MAX_ADDRESS_LENGTH = 256          # longer than any address or "bank:account" party the store holds
MAX_COUNTERPARTIES_PER_TX = 25    # a payout transaction can have thousands of outputs


# -- overview ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainHeld:
    chain: str
    kind: str
    network: str
    chain_id: int | None


@dataclass(frozen=True)
class IngestRunSummary:
    run_id: int
    source: str
    target: str | None
    status: str
    started: dt.datetime | None
    finished: dt.datetime | None
    rows_stored: int              # rows in the canonical tables that carry this run_id (provenance)
    quarantined: int              # quarantine rows of this run
    reported: dict[str, int]      # the run's own row_counts as the ingester recorded them
    error: str | None


@dataclass(frozen=True)
class DailyActivity:
    day: dt.date
    chain: str
    transactions: int             # distinct txids with a movement that day, from the `flows` view


@dataclass(frozen=True)
class Overview:
    chains: list[ChainHeld]
    table_counts: dict[str, int]
    runs: list[IngestRunSummary]
    quarantined: int
    activity: list[DailyActivity]
    schema_version: int


def store_overview(store: Store, max_runs: int = 50) -> Overview:
    """What the store holds: chains, rows per canonical table, ingest runs, quarantine, daily activity."""
    chains = [ChainHeld(c, k, n, None if cid is None else int(cid)) for c, k, n, cid in store.query(
        "SELECT chain, kind, network, chain_id FROM chains ORDER BY chain")]
    existing = _existing_relations(store)
    tables = [t for t in CANONICAL_TABLES if t in existing]
    counts: dict[str, int] = {}
    if tables:
        union = " UNION ALL ".join(f"SELECT '{t}' AS name, count(*) AS n FROM {t}" for t in tables)
        counts = {name: int(n) for name, n in store.query(union)}
    table_counts = {t: counts[t] for t in tables}

    stored: dict[int, int] = {}
    prov = [t for t in _PROVENANCE_TABLES if t in existing]
    if prov:
        union = " UNION ALL ".join(f"SELECT run_id FROM {t}" for t in prov)
        stored = {int(r): int(n) for r, n in store.query(
            f"SELECT run_id, count(*) FROM ({union}) AS p WHERE run_id IS NOT NULL GROUP BY run_id")}
    quarantined_by_run = {int(r): int(n) for r, n in store.query(
        "SELECT run_id, count(*) FROM quarantine WHERE run_id IS NOT NULL GROUP BY run_id")}
    runs = []
    for run_id, source, target, status, started, finished, row_counts, error in store.query(
        "SELECT run_id, source, target, status, started, finished, row_counts, error "
        "FROM ingest_runs ORDER BY run_id DESC LIMIT ?", [max_runs]
    ):
        reported = json.loads(row_counts) if row_counts else {}
        runs.append(IngestRunSummary(
            int(run_id), source, target, status, started, finished, stored.get(int(run_id), 0),
            quarantined_by_run.get(int(run_id), 0),
            {k: int(v) for k, v in reported.items() if isinstance(v, (int, float))}, error))

    activity: list[DailyActivity] = []
    if "flows" in existing:
        activity = [DailyActivity(day, chain, int(n)) for day, chain, n in store.query(
            "SELECT CAST(time AS DATE) AS day, chain, count(DISTINCT txid) FROM flows "
            "WHERE time IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2")]
    return Overview(chains, table_counts, runs, int(store.scalar("SELECT count(*) FROM quarantine")),
                    activity, store.schema_version)


def _existing_relations(store: Store) -> set[str]:
    return {r[0] for r in store.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")}


# -- one address ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddressLabel:
    label: str
    category: str | None
    source: str | None
    confidence: float | None
    actor: str | None


@dataclass(frozen=True)
class AssetTotals:
    asset: str                    # BTC, ETH, a token contract, a currency code
    symbol: str
    decimals: int
    received: int                 # base units
    sent: int
    received_count: int           # movements in (outputs to / transfers to the address)
    sent_count: int

    @property
    def balance(self) -> int:
        return self.received - self.sent


@dataclass(frozen=True)
class Counterparty:
    address: str | None           # None for the coinbase or an output without an address
    note: str | None = None       # "coinbase", "op_return", "input not in store", ...
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddressTx:
    txid: str
    time: dt.datetime | None
    block_height: int | None
    asset: str
    symbol: str
    decimals: int
    received: int                 # base units this tx paid to the address
    sent: int                     # base units this tx took from the address
    counterparties: list[Counterparty] = field(default_factory=list)
    counterparty_total: int = 0   # before the MAX_COUNTERPARTIES_PER_TX cut

    @property
    def direction(self) -> str:
        if self.received and self.sent:
            return "both"
        return "in" if self.received else "out"

    @property
    def net(self) -> int:
        return self.received - self.sent


@dataclass(frozen=True)
class AddressActivity:
    chain: str
    address: str
    chain_known: bool             # the store holds this chain (table `chains`)
    totals: list[AssetTotals]
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    labels: list[AddressLabel]
    transactions: list[AddressTx]
    transaction_count: int        # all (txid, asset) rows, before the `limit` cut

    @property
    def found(self) -> bool:
        return bool(self.totals)


def normalise_address(chain: str, address: str) -> str:
    """Trim; EVM addresses are stored lowercase (ethereum-etl convention), so look them up lowercase."""
    address = address.strip()
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        return address.lower()
    return address


def _moves_sql() -> str:
    # Each output and input meets its own transaction by tx_id: a txid stored twice (BIP30's duplicate
    # coinbases) would otherwise pair every row with both transactions and count it twice.
    # Parameters, in order: asset, chain, address (outputs); asset, chain, address (inputs);
    # chain, address (transfers in); chain, address (transfers out).
    return """
        SELECT o.txid, ? AS asset, ? AS symbol, 8 AS decimals, CAST(o.value AS HUGEINT) AS received,
               CAST(0 AS HUGEINT) AS sent, NULL AS raw_in, NULL AS raw_out, 1 AS n_in, 0 AS n_out,
               tx.block_time AS time, tx.block_height AS block_height
        FROM outputs o LEFT JOIN transactions tx ON tx.chain = o.chain AND tx.tx_id = o.tx_id
        WHERE o.chain = ? AND o.address = ?
        UNION ALL
        SELECT i.txid, ?, ?, 8, CAST(0 AS HUGEINT), CAST(i.value AS HUGEINT), NULL, NULL, 0, 1,
               tx.block_time, tx.block_height
        FROM inputs i LEFT JOIN transactions tx ON tx.chain = i.chain AND tx.tx_id = i.tx_id
        WHERE i.chain = ? AND i.address = ? AND i.value IS NOT NULL
        UNION ALL
        SELECT t.txid, t.asset, coalesce(t.symbol, t.asset), coalesce(t.decimals, 0),
               coalesce(CAST(t.amount AS HUGEINT), 0), CAST(0 AS HUGEINT),
               CASE WHEN t.amount IS NULL THEN t.amount_raw END, NULL, 1, 0, t.time, t.block_height
        FROM transfers t WHERE t.chain = ? AND t.to_address = ?
        UNION ALL
        SELECT t.txid, t.asset, coalesce(t.symbol, t.asset), coalesce(t.decimals, 0),
               CAST(0 AS HUGEINT), coalesce(CAST(t.amount AS HUGEINT), 0),
               NULL, CASE WHEN t.amount IS NULL THEN t.amount_raw END, 0, 1, t.time, t.block_height
        FROM transfers t WHERE t.chain = ? AND t.from_address = ?
    """


def address_activity(store: Store, chain: str, address: str, limit: int = 200) -> AddressActivity:
    """Everything the store knows about one address: totals per asset, labels, transactions, counterparties.

    UTXO chains (Bitcoin): received = the outputs paying the address, sent = the inputs spending them
    (inputs are resolved to the spent output's address and value at ingest; an input whose funding
    transaction is not in the store has no address and counts nowhere). Account chains and fiat: the
    `transfers` rows to and from the address. A transaction appears once per asset, newest first;
    `limit` cuts the list, `transaction_count` says how many there are.
    """
    chain = chain.strip().lower()
    address = normalise_address(chain, address)
    if not address or len(address) > MAX_ADDRESS_LENGTH:
        raise ValueError(f"not an address: {address[:40]!r}")
    chain_known = store.scalar("SELECT count(*) FROM chains WHERE chain = ?", [chain]) > 0
    asset = UTXO_ASSETS.get(chain, chain.upper())
    params = [asset, asset, chain, address, asset, asset, chain, address, chain, address, chain, address]
    moves = f"WITH moves AS ({_moves_sql()})"

    # Amounts that did not fit DECIMAL(38,0) are NULL in `amount`; their exact text is added in Python.
    big = store.query(f"{moves} SELECT txid, asset, raw_in, raw_out FROM moves "
                      "WHERE raw_in IS NOT NULL OR raw_out IS NOT NULL", params)
    extra: dict[tuple[str, str], list[int]] = {}
    for txid, a, raw_in, raw_out in big:
        e = extra.setdefault((txid, a), [0, 0])
        e[0] += int(raw_in or 0)
        e[1] += int(raw_out or 0)

    totals = []
    for a, symbol, decimals, received, sent, n_in, n_out in store.query(
        f"{moves} SELECT asset, symbol, decimals, sum(received), sum(sent), sum(n_in), sum(n_out) "
        "FROM moves GROUP BY asset, symbol, decimals ORDER BY asset", params
    ):
        add_in = sum(v[0] for (_, ea), v in extra.items() if ea == a)
        add_out = sum(v[1] for (_, ea), v in extra.items() if ea == a)
        totals.append(AssetTotals(a, symbol, int(decimals), int(received) + add_in, int(sent) + add_out,
                                  int(n_in), int(n_out)))
    first_seen, last_seen = store.con.execute(f"{moves} SELECT min(time), max(time) FROM moves", params).fetchone()
    count = int(store.scalar(f"{moves} SELECT count(*) FROM (SELECT DISTINCT txid, asset FROM moves) AS d", params))
    rows = store.query(
        f"{moves} SELECT txid, asset, symbol, decimals, sum(received), sum(sent), max(time), max(block_height) "
        "FROM moves GROUP BY txid, asset, symbol, decimals "
        "ORDER BY max(time) DESC NULLS LAST, max(block_height) DESC NULLS LAST, txid LIMIT ?",
        [*params, limit])
    cps = _counterparties(store, chain, address, [r[0] for r in rows])
    txs = []
    for txid, a, symbol, decimals, received, sent, time, height in rows:
        e = extra.get((txid, a), [0, 0])
        every = cps.get((txid, a), [])
        txs.append(AddressTx(txid, time, None if height is None else int(height), a, symbol, int(decimals),
                             int(received) + e[0], int(sent) + e[1], every[:MAX_COUNTERPARTIES_PER_TX], len(every)))
    labels = address_labels(store, chain, address)
    return AddressActivity(chain, address, chain_known, totals, first_seen, last_seen, labels, txs, count)


def _counterparties(store: Store, chain: str, address: str, txids: list[str]) -> dict[tuple[str, str], list[Counterparty]]:
    """The other side of each listed transaction, with the labels the store holds for them.

    Bitcoin has no "from → to" per coin: when the address spent in a transaction its counterparties are
    that transaction's other outputs' addresses (the payees; its own change is left out); when it only
    received, they are the input addresses (the payers), or the coinbase.
    """
    if not txids:
        return {}
    marks = ", ".join("?" for _ in txids)
    asset = UTXO_ASSETS.get(chain, chain.upper())
    rows = store.query(
        f"""
        WITH spent AS (
            SELECT DISTINCT txid FROM inputs WHERE chain = ? AND address = ? AND txid IN ({marks})
        ),
        utxo AS (
            SELECT o.txid, o.address AS party, CASE WHEN o.address IS NULL THEN o.script_type END AS note,
                   o.n AS pos
            FROM outputs o JOIN spent s ON s.txid = o.txid
            WHERE o.chain = ? AND (o.address IS NULL OR o.address <> ?)
            UNION ALL
            SELECT i.txid, i.address,
                   CASE WHEN i.prev_txid IS NULL THEN 'coinbase'
                        WHEN i.address IS NULL THEN 'input not in store' END, i.n
            FROM inputs i
            WHERE i.chain = ? AND i.txid IN ({marks}) AND i.txid NOT IN (SELECT txid FROM spent)
              AND (i.address IS NULL OR i.address <> ?)
        )
        SELECT txid, ? AS asset, party, note, min(pos) FROM utxo GROUP BY txid, party, note
        UNION ALL
        SELECT txid, asset, party, NULL, min(idx) FROM (
            SELECT txid, asset, idx, CASE WHEN to_address = ? THEN from_address ELSE to_address END AS party
            FROM transfers WHERE chain = ? AND (from_address = ? OR to_address = ?) AND txid IN ({marks})
        ) AS t GROUP BY txid, asset, party
        ORDER BY 1, 2, 5
        """,
        [chain, address, *txids, chain, address, chain, *txids, address, asset,
         address, chain, address, address, *txids],
    )
    parties = sorted({r[2] for r in rows if r[2] is not None})
    labels = labels_for(store, chain, parties)
    out: dict[tuple[str, str], list[Counterparty]] = {}
    for txid, a, party, note, _pos in rows:
        out.setdefault((txid, a), []).append(Counterparty(party, note, tuple(labels.get(party, ())) if party else ()))
    return out


def address_labels(store: Store, chain: str, address: str) -> list[AddressLabel]:
    return [AddressLabel(label, category, source, confidence, actor) for label, category, source, confidence, actor
            in store.query(
                "SELECT label, category, source, confidence, actor FROM labels WHERE chain = ? AND address = ? "
                "ORDER BY confidence DESC NULLS LAST, label", [chain, normalise_address(chain, address)])]


def labels_for(store: Store, chain: str, addresses: list[str], chunk: int = 500) -> dict[str, list[str]]:
    """Distinct label names per address, for many addresses at once (bound parameters, in chunks)."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(addresses), chunk):
        part = addresses[start:start + chunk]
        marks = ", ".join("?" for _ in part)
        for address, label in store.query(
            f"SELECT DISTINCT address, label FROM labels WHERE chain = ? AND address IN ({marks}) ORDER BY 1, 2",
            [chain, *part],
        ):
            found.setdefault(address, []).append(label)
    return found


def find_address(store: Store, text: str) -> list[str]:
    """The chains on which the store has seen this address (outputs, inputs, transfers or labels)."""
    text = text.strip()
    if not text or len(text) > MAX_ADDRESS_LENGTH:
        return []
    address = normalise_address("", text)
    rows = store.query(
        """
        SELECT chain FROM addresses WHERE address = ?
        UNION SELECT chain FROM outputs WHERE address = ?
        UNION SELECT chain FROM transfers WHERE to_address = ? OR from_address = ?
        UNION SELECT chain FROM labels WHERE address = ?
        """,
        [address] * 5,
    )
    held = [r[0] for r in store.query("SELECT chain FROM chains ORDER BY chain")]
    chains = {r[0] for r in rows}
    # Chains that hold movements first (in the order of `chains`), label-only chains after.
    return [c for c in held if c in chains] + sorted(chains - set(held))


# -- cases (the one thing the dashboard writes) ----------------------------------------------------------
@dataclass(frozen=True)
class CaseItemAdded:
    case_id: str
    title: str
    kind: str
    ref: str
    case_created: bool
    already_in_case: bool
    items_in_case: int


def default_actor() -> str:
    """Who is acting: the OS user running the dashboard, or "analyst" where the OS cannot say."""
    try:
        return getpass.getuser() or "analyst"
    except Exception:  # no login name (containers without a passwd entry)
        return "analyst"


def case_id_for(title: str) -> str:
    """A stable id from a case title: the same title always reaches the same case."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.strip().lower()).strip("-")
    if not slug:
        raise ValueError("a case needs a title")
    return slug[:80]


def add_to_case(store: Store, title: str, kind: str, ref: str, actor: str | None = None,
                note: str | None = None) -> CaseItemAdded:
    """Put an item (an address as "<chain>:<address>", a txid, ...) into a case, and log who did it.

    Creates the case on first use. Adding an item twice keeps one `case_items` row, but every request
    is an analyst action and gets its own `audit_log` row. All three writes commit together.
    """
    title = title.strip()
    case_id = case_id_for(title)
    actor = actor or default_actor()
    now = utcnow()
    with store.transaction():
        created = store.scalar("SELECT count(*) FROM cases WHERE case_id = ?", [case_id]) == 0
        if created:
            store.con.execute("INSERT INTO cases (case_id, title, created, created_by) VALUES (?, ?, ?, ?)",
                              [case_id, title, now, actor])
        present = store.scalar("SELECT count(*) FROM case_items WHERE case_id = ? AND kind = ? AND ref = ?",
                               [case_id, kind, ref]) > 0
        if not present:
            store.con.execute("INSERT INTO case_items (case_id, kind, ref, added, note) VALUES (?, ?, ?, ?, ?)",
                              [case_id, kind, ref, now, note])
        detail: dict[str, Any] = {"case_id": case_id, "kind": kind, "ref": ref, "case_created": created,
                                  "already_in_case": present}
        store.con.execute("INSERT INTO audit_log (time, actor, action, detail) VALUES (?, ?, ?, ?)",
                          [now, actor, "case.add_item", json.dumps(detail)])
        items = int(store.scalar("SELECT count(*) FROM case_items WHERE case_id = ?", [case_id]))
        stored_title = store.scalar("SELECT title FROM cases WHERE case_id = ?", [case_id])
    return CaseItemAdded(case_id, stored_title, kind, ref, created, present, items)


def recent_case_titles(store: Store, limit: int = 20) -> list[str]:
    return [r[0] for r in store.query(
        "SELECT coalesce(title, case_id) FROM cases ORDER BY created DESC NULLS LAST LIMIT ?", [limit])]
