"""The money graph: dense integer ids for every party, and the ``flows`` table kept in step with ingest.

Identity. Every party on every chain — a Bitcoin address (or multisig/non-standard id), an EVM address,
a bank account — gets a dense ``address_id`` the first time a batch names it. A batch finds its known
parties by an integer join on ``party_key`` (a 64-bit hash of chain and address) and checks the text on
the rows found, so it never hashes the text of the whole table; new parties are numbered in order of
first sight from the ``party`` counter of ``id_counters``, which moves inside the batch's transaction.

Flows. One row per value movement (see migration 005 for the columns). A UTXO transaction is a node:
its inputs are edges address -> tx node and its outputs edges tx node -> address, so a CoinJoin of m
inputs and n outputs is m + n edges, not m x n guesses; the node's id is ``-tx_id``. Account-model and
fiat transfers are one edge each. Writers call the functions here inside their batch transaction: the
Bitcoin loader and the simulator through :func:`append_utxo_flows`, every ``transfers`` writer through
:func:`link_transfers` (``Store.append`` does it), and deletions through :func:`delete_transfers`.

USD. ``price_asset`` says which price series values a movement: the native coin's symbol for UTXO and
native/internal rows and the ISO code for fiat (both set by moneytrail, not self-declared), and for
tokens only a ``price_assets`` entry for that (chain, contract) — a token that merely calls itself
"USDT" gets no USD value. :func:`reprice` refreshes ``usd`` when prices arrive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracer.chains import CHAINS

if TYPE_CHECKING:
    from tracer.store.store import Store

# md5 is stable across DuckDB versions (hash() is not): the keys stay valid when DuckDB is upgraded.
_KEY = "CAST(CAST(md5_number_lower({}) AS HUGEINT) - 9223372036854775808 AS BIGINT)"
# the native coin of every UTXO chain of the registry (tracer/chains.py)
UTXO_ASSET = {c.name: c.native for c in CHAINS if c.kind == "utxo" and c.native}


#: The natural key of a ``transfers`` row (and of its flow): a transaction's native transfer (idx 0), its
#: ERC-20 transfers (idx = log index) and its internal transfers (idx = trace frame number) number their
#: idx independently, so the kind is part of the key.
TRANSFER_KEY = ("chain", "txid", "kind", "idx")


def transfer_key_match(a: str, b: str) -> str:
    """SQL: rows ``a`` and ``b`` (table aliases) have the same transfer key."""
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in TRANSFER_KEY)


def party_key(chain: str, address: str) -> str:
    """SQL for the 64-bit key of a party, given SQL expressions for its chain and address."""
    return _KEY.format(f"{chain} || ':' || {address}")


def txid_key(txid: str) -> str:
    """SQL for the 64-bit key of a UTXO transaction id (an expression giving the hex txid)."""
    return _KEY.format(txid)


def utxo_asset(chain: str) -> str:
    """SQL CASE giving the native coin of a UTXO chain column."""
    whens = " ".join(f"WHEN '{c}' THEN '{a}'" for c, a in UTXO_ASSET.items())
    return f"CASE {chain} {whens} ELSE 'BTC' END"


def next_ids(store: Store, name: str, count: int) -> int:
    """Reserve ``count`` dense ids of counter ``name``; return the first (ids start at 1)."""
    con = store.con
    rows = con.execute("SELECT last FROM id_counters WHERE name = ?", [name]).fetchall()
    last = int(rows[0][0]) if rows else 0
    if count:
        if rows:
            con.execute("UPDATE id_counters SET last = ? WHERE name = ?", [last + count, name])
        else:
            con.execute("INSERT INTO id_counters VALUES (?, ?)", [name, last + count])
    return last + 1


def assign_parties(store: Store, source_sql: str) -> int:
    """Give every party named by ``source_sql`` an address_id; leave them in temp table ``_parties``.

    ``source_sql`` is a SELECT with columns chain, address, seq (order of first sight in the batch),
    seen (timestamp), script_type and run_id (the run that names it). Returns how many parties were new.
    """
    from tracer.store.store import StoreError

    con = store.con
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _party_batch AS
            SELECT chain, address, {party_key('chain', 'address')} AS party_key, min(seq) AS first_seq,
                   min(seen) AS first_seen, arg_min(script_type, seq) AS script_type, arg_min(run_id, seq) AS run_id
            FROM ({source_sql}) s WHERE address IS NOT NULL GROUP BY chain, address"""
    )
    # the integer join reads only party_key (and the row id) of the stored rows; the other columns, and
    # the text compared against the batch's, are read for the matched rows only
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _party_known AS
           WITH hit AS (SELECT b.party_key, a.rowid AS arow FROM _party_batch b JOIN addresses a ON a.party_key = b.party_key)
           SELECT h.party_key, a.address_id, a.chain AS known_chain, a.address AS known_address,
                  a.first_seen AS known_first_seen
           FROM hit h JOIN addresses a ON a.rowid = h.arow"""
    )
    clash = con.execute(
        """SELECT b.chain, b.address, k.known_chain, k.known_address FROM _party_known k
           JOIN _party_batch b USING (party_key)
           WHERE k.known_chain <> b.chain OR k.known_address <> b.address LIMIT 1"""
    ).fetchall()
    if clash:
        raise StoreError(f"party key collision between {clash[0][0]}:{clash[0][1]} and {clash[0][2]}:{clash[0][3]}")
    new = int(con.execute(
        "SELECT count(*) FROM _party_batch b WHERE NOT EXISTS (SELECT 1 FROM _party_known k WHERE k.party_key = b.party_key)"
    ).fetchall()[0][0])
    base = next_ids(store, "party", new)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _party_new AS
            SELECT b.*, {base} - 1 + row_number() OVER (ORDER BY b.first_seq, b.chain, b.address) AS address_id
            FROM _party_batch b
            WHERE NOT EXISTS (SELECT 1 FROM _party_known k WHERE k.party_key = b.party_key)"""
    )
    if new:
        con.execute(
            """INSERT INTO addresses (chain, address, address_id, first_seen, script_type, run_id, party_key)
               SELECT chain, address, address_id, first_seen, script_type, run_id, party_key
               FROM _party_new ORDER BY address_id"""
        )
    earlier = con.execute(
        """SELECT count(*) FROM _party_known k JOIN _party_batch b USING (party_key)
           WHERE b.first_seen < k.known_first_seen OR (k.known_first_seen IS NULL AND b.first_seen IS NOT NULL)"""
    ).fetchall()[0][0]
    if earlier:  # a block or file older than what the store held: first sight moves back
        con.execute(
            """UPDATE addresses SET first_seen = u.first_seen
               FROM (SELECT b.party_key, k.address_id, b.first_seen FROM _party_known k JOIN _party_batch b USING (party_key)
                     WHERE b.first_seen < k.known_first_seen OR (k.known_first_seen IS NULL AND b.first_seen IS NOT NULL)) u
               WHERE addresses.party_key = u.party_key AND addresses.address_id = u.address_id"""
        )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _parties AS
           SELECT b.chain, b.address, coalesce(k.address_id, n.address_id) AS address_id
           FROM _party_batch b LEFT JOIN _party_known k USING (party_key)
           LEFT JOIN _party_new n ON n.party_key = b.party_key"""
    )
    return new


# -- USD ---------------------------------------------------------------------------------------------
_TOKEN_PRICES = "(SELECT chain, lower(asset) AS asset, max(price_asset) AS price_asset FROM price_assets GROUP BY ALL)"
# the latest price at or before the movement: a range join on validity intervals (portable; no ASOF JOIN)
_PRICE_JOIN = ("LEFT JOIN price_intervals p ON p.asset = {a}.price_asset AND {a}.time >= p.valid_from "
               "AND (p.valid_to IS NULL OR {a}.time < p.valid_to)")


def _price_asset_sql(alias: str, tokens: str) -> str:
    """SQL for a flow's price series: set by moneytrail for native coins and fiat, else price_assets."""
    return (f"CASE WHEN {alias}.kind IN ('utxo', 'native', 'internal') OR {alias}.chain = 'fiat' "
            f"THEN upper({alias}.symbol) ELSE {tokens}.price_asset END")


def _usd_sql(alias: str) -> str:
    """SQL for the USD value of flow rows ``alias`` joined to price interval ``p``."""
    units = f"CAST({alias}.amount AS DOUBLE) / power(10, coalesce({alias}.decimals, 0))"
    return f"CASE WHEN {alias}.price_asset = 'USD' THEN {units} ELSE {units} * p.usd END"


def _insert_flows(store: Store, staged: str) -> tuple[int, int]:
    """Append flow rows from ``staged`` (a table name, or a parenthesised SELECT: all columns but flow_id,
    price_asset and usd, plus ``ord``), numbered in ``ord`` order; return (rows, first flow_id).

    One INSERT reads ``staged`` once, prices it and numbers it, and the counter is moved by the rows it
    wrote: no staging table. (A temporary table dropped inside a transaction keeps its disk space until the
    commit, so a simulator writing tens of millions of flows in slices ran out of disk with staging tables.)"""
    con = store.con
    base = next_ids(store, "flow", 0)  # the next id, not yet reserved
    n = int(con.execute(
        f"""INSERT INTO flows BY NAME
            SELECT f.* EXCLUDE (ord), {base} - 1 + row_number() OVER (ORDER BY f.ord) AS flow_id, {_usd_sql('f')} AS usd
            FROM (SELECT s.*, {_price_asset_sql('s', 'tp')} AS price_asset FROM {staged} s
                  LEFT JOIN {_TOKEN_PRICES} tp ON s.kind NOT IN ('utxo', 'native', 'internal') AND s.chain <> 'fiat'
                       AND tp.chain = s.chain AND tp.asset = lower(s.asset)) f
            {_PRICE_JOIN.format(a='f')}"""
    ).fetchall()[0][0])
    if not n:
        return 0, 0
    next_ids(store, "flow", n)
    return n, base


def reprice(store: Store, assets: list[str] | None = None, since: object | None = None,
            token: tuple[str, str] | None = None) -> None:
    """Recompute ``usd`` of the flows valued by ``assets`` (all when None) from ``since`` on; only those of
    one ``(chain, asset)`` when ``token`` is given."""
    where = ["f.price_asset IS NOT NULL"]
    params: list = []
    if token is not None:
        where.append("f.chain = ? AND lower(f.asset) = lower(?)")
        params += list(token)
    if assets is not None:
        if not assets:
            return
        where.append("f.price_asset IN (SELECT unnest(?))")
        params.append(sorted({a.upper() for a in assets}))
    if since is not None:
        where.append("f.time >= ?")
        params.append(since)
    store.con.execute(
        f"""UPDATE flows SET usd = v.usd
            FROM (SELECT f.flow_id, {_usd_sql('f')} AS usd FROM flows f {_PRICE_JOIN.format(a='f')}
                  WHERE {' AND '.join(where)}) v
            WHERE flows.flow_id = v.flow_id AND flows.usd IS DISTINCT FROM v.usd""",
        params,
    )


def set_token_price_asset(store: Store, chain: str, asset: str, price_asset: str | None, source: str) -> None:
    """Declare (or, with None, withdraw) the price series that values token ``asset`` on ``chain``,
    and revalue its flows."""
    con = store.con
    con.execute("DELETE FROM price_assets WHERE chain = ? AND asset = lower(?)", [chain, asset])
    if price_asset is not None:
        con.execute("INSERT INTO price_assets VALUES (?, lower(?), upper(?), ?)", [chain, asset, price_asset, source])
    con.execute(
        "UPDATE flows SET price_asset = upper(?), usd = NULL WHERE chain = ? AND lower(asset) = lower(?) "
        "AND kind NOT IN ('utxo', 'native', 'internal') AND chain <> 'fiat'",
        [price_asset, chain, asset],
    )
    if price_asset is not None:
        reprice(store, [price_asset], token=(chain, asset))


# -- UTXO chains --------------------------------------------------------------------------------------
def append_utxo_flows(store: Store, outputs_sql: str | None, inputs_sql: str | None) -> int:
    """Append flow rows for UTXO outputs and resolved inputs.

    Both are SELECTs with chain, txid, n, tx_id, address, address_id, value, time, height, run_id and
    ``ord`` = tx_id * 2^21 + n (flow ids follow transactions, inputs before outputs); inputs must be
    resolved (value known).
    """
    parts = []
    if outputs_sql:
        parts.append(
            f"""SELECT -o.tx_id AS src_id, o.address_id AS dst_id, 'tx:' || o.txid AS src, o.address AS dst,
                       o.chain, {utxo_asset('o.chain')} AS asset, {utxo_asset('o.chain')} AS symbol,
                       CAST(o.value AS DECIMAL(38,0)) AS amount, CAST(o.value AS TEXT) AS amount_raw, 8 AS decimals,
                       o.time, o.height, o.txid, CAST(o.n AS BIGINT) AS idx, 'utxo' AS kind, 'out' AS leg, o.run_id,
                       o.ord + 1048576 AS ord
                FROM ({outputs_sql}) o"""
        )
    if inputs_sql:
        parts.append(
            f"""SELECT i.address_id AS src_id, -i.tx_id AS dst_id, i.address AS src, 'tx:' || i.txid AS dst,
                       i.chain, {utxo_asset('i.chain')} AS asset, {utxo_asset('i.chain')} AS symbol,
                       CAST(i.value AS DECIMAL(38,0)) AS amount, CAST(i.value AS TEXT) AS amount_raw, 8 AS decimals,
                       i.time, i.height, i.txid, CAST(i.n AS BIGINT) AS idx, 'utxo' AS kind, 'in' AS leg, i.run_id,
                       i.ord AS ord
                FROM ({inputs_sql}) i"""
        )
    if not parts:
        return 0
    n, _ = _insert_flows(store, "(" + " UNION ALL ".join(parts) + ")")
    return n


# -- account-model chains and fiat -----------------------------------------------------------------------
def link_transfers(store: Store) -> int:
    """Give the transfers rows not yet in the graph their party ids and a flow each; return how many.

    Rows without a flow_id are the ones the current batch wrote; the scan reads one integer column.
    """
    con = store.con
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _tnew AS
           SELECT rowid AS rid, chain, asset, symbol, kind, txid, idx, from_address, to_address, amount,
                  amount_raw, decimals, time, block_height, run_id
           FROM transfers WHERE flow_id IS NULL"""
    )
    n = int(con.execute("SELECT count(*) FROM _tnew").fetchall()[0][0])
    if not n:
        return 0
    assign_parties(
        store,
        """SELECT chain, from_address AS address, 2 * rid AS seq, time AS seen, NULL AS script_type, run_id FROM _tnew
           UNION ALL SELECT chain, to_address, 2 * rid + 1, time, NULL, run_id FROM _tnew""",
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _tflow AS
           SELECT pf.address_id AS src_id, pt.address_id AS dst_id, t.from_address AS src, t.to_address AS dst,
                  t.chain, t.asset, t.symbol, t.amount, t.amount_raw, t.decimals, t.time, t.block_height AS height,
                  t.txid, t.idx, CASE WHEN t.chain = 'fiat' THEN 'fiat' ELSE coalesce(t.kind, 'native') END AS kind,
                  CAST(NULL AS TEXT) AS leg, t.run_id, t.rid AS ord
           FROM _tnew t
           LEFT JOIN _parties pf ON pf.chain = t.chain AND pf.address = t.from_address
           LEFT JOIN _parties pt ON pt.chain = t.chain AND pt.address = t.to_address"""
    )
    _, first = _insert_flows(store, "_tflow")
    con.execute(
        f"""UPDATE transfers SET flow_id = u.flow_id, from_id = u.src_id, to_id = u.dst_id
            FROM (SELECT ord AS rid, src_id, dst_id, {first} - 1 + row_number() OVER (ORDER BY ord) AS flow_id FROM _tflow) u
            WHERE transfers.rowid = u.rid"""
    )
    for t in ("_tnew", "_tflow"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return n


def delete_transfers(store: Store, where_sql: str, params: list) -> None:
    """Delete the transfers matching ``where_sql`` (on table alias-free columns) and their flows."""
    gone = store.con.execute(
        f"DELETE FROM flows WHERE flow_id IN (SELECT flow_id FROM transfers WHERE ({where_sql}) AND flow_id IS NOT NULL)",
        params,
    ).fetchall()[0][0]
    if gone:
        flows_deleted(store)
    store.con.execute(f"DELETE FROM transfers WHERE {where_sql}", params)


def flows_deleted(store: Store) -> None:
    """Every writer that deletes flow rows calls this: in-memory graphs (tracer.store.adjacency) see the
    epoch move and rebuild instead of reading only what was appended."""
    next_ids(store, "graph_epoch", 1)


# -- schema 4 -> 5 ---------------------------------------------------------------------------------------------
def backfill(store: Store) -> None:
    """Convert a schema-4 store: keys and ids for every stored party, outpoint and transaction, then flows.

    Ids follow first sight: Bitcoin addresses keep the ids they had; account-model and fiat parties
    continue the numbering in the order the transfers were stored.
    """
    con = store.con
    con.execute(f"UPDATE addresses SET party_key = {party_key('chain', 'address')} WHERE party_key IS NULL")
    top = con.execute("SELECT coalesce(max(address_id), 0) FROM addresses").fetchall()[0][0]
    if top:
        next_ids(store, "party", int(top))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _utx AS
           SELECT rowid AS rid, row_number() OVER (ORDER BY chain, block_height NULLS LAST, position, txid) AS tx_id
           FROM transactions WHERE chain IN (SELECT chain FROM chains WHERE kind = 'utxo')
              OR chain IN (SELECT DISTINCT chain FROM outputs)"""
    )
    ntx = int(con.execute("SELECT count(*) FROM _utx").fetchall()[0][0])
    if ntx:
        next_ids(store, "utxo_tx", ntx)
        con.execute("UPDATE transactions SET tx_id = u.tx_id FROM _utx u WHERE transactions.rowid = u.rid")
    con.execute(
        f"""UPDATE outputs SET txkey = {txid_key('outputs.txid')}, tx_id = t.tx_id, address_id = a.address_id
            FROM transactions t, addresses a
            WHERE t.chain = outputs.chain AND t.txid = outputs.txid
              AND a.chain = outputs.chain AND a.address = outputs.address"""
    )
    con.execute(
        f"""UPDATE outputs SET txkey = {txid_key('outputs.txid')}, tx_id = t.tx_id
            FROM transactions t WHERE t.chain = outputs.chain AND t.txid = outputs.txid AND outputs.tx_id IS NULL"""
    )
    con.execute(
        f"""UPDATE inputs SET tx_id = t.tx_id,
                   prev_txkey = CASE WHEN inputs.prev_txid IS NULL THEN NULL ELSE {txid_key('inputs.prev_txid')} END
            FROM transactions t WHERE t.chain = inputs.chain AND t.txid = inputs.txid"""
    )
    con.execute(
        """UPDATE inputs SET address_id = a.address_id FROM addresses a
           WHERE a.chain = inputs.chain AND a.address = inputs.address"""
    )
    con.execute(
        """INSERT INTO utxo_pending SELECT chain, txid, tx_id, n, prev_txid, prev_n, prev_txkey FROM inputs
           WHERE prev_txid IS NOT NULL AND value IS NULL"""
    )
    append_utxo_flows(
        store,
        """SELECT o.chain, o.txid, o.n, o.tx_id, o.address, o.address_id, o.value, t.block_time AS time,
                  t.block_height AS height, o.run_id, t.tx_id * 2097152 + o.n AS ord
           FROM outputs o JOIN transactions t ON t.chain = o.chain AND t.txid = o.txid""",
        """SELECT i.chain, i.txid, i.n, i.tx_id, i.address, i.address_id, i.value, t.block_time AS time,
                  t.block_height AS height, i.run_id, t.tx_id * 2097152 + i.n AS ord
           FROM inputs i JOIN transactions t ON t.chain = i.chain AND t.txid = i.txid
           WHERE i.value IS NOT NULL AND i.prev_txid IS NOT NULL""",
    )
    link_transfers(store)
