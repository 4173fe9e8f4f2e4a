"""The simulated Bitcoin ledger: integer rows staged in DuckDB, turned into the canonical tables at the end.

The generators (background wallets, CoinJoins, the trafficking operation) only ever deal in integers:
a transaction is a dense index, an output is ``(tx, n)``, an address is a dense local id with a script
type. They hand those integers here in numpy columns; :class:`Ledger` appends them to TEMP staging
tables in Arrow batches and, at the end, one set-based SQL pass per table produces exactly the rows the
Bitcoin block ingester writes (``blocks``, ``transactions``, ``outputs``, ``inputs``, ``addresses``):

- txids are ``sha256("<seed>:tx:<index>")`` in hex — 64 lowercase hex characters like a real txid,
  reproducible from the seed (:func:`txid_of`), and with no chance of meeting a real mainnet txid;
- block heights start at 1,000,000 (far above the real chain when this was written), block hashes are
  ``sha256("<seed>:block:<height>")`` and each block's ``prev_hash`` is the hash of the one before;
- ``spent_by_txid`` / ``spent_by_n`` of an output and ``address`` / ``value`` of an input are resolved by
  joins, as the ingester resolves them;
- address ids are dense, continuing from the store's ``max(address_id) + 1``, and assigned in order of
  first sight (block, position, output index), as the ingester assigns them.

Addresses are real mainnet encodings with valid checksums (``tracer.codecs.bitcoin_address``): P2PKH and
P2SH by Base58Check (versions 0x00 and 0x05), P2WPKH / P2WSH by Bech32 (BIP173) and P2TR by Bech32m
(BIP350). Their 20- or 32-byte payloads come from a seeded Philox stream, so they are random points
with no known key — nobody can spend from them on the real chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tracer.codecs.bitcoin_address import base58check_arrow, segwit_arrow
from tracer.store import Store, graph

# script type codes used by every generator; names are those the ingester writes
P2PKH, P2SH, P2WPKH, P2WSH, P2TR, NULLDATA = 0, 1, 2, 3, 4, 5
SCRIPT_NAMES = ["p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "nulldata"]

# Serialized sizes (bytes) per input and output of each script type, for size/weight/fee. Input sizes
# are the usual wallet estimates: P2PKH 148 B; P2SH-P2WPKH 64 B + 108 B witness (vsize 91); P2WPKH 41 B
# + 108 B witness (vsize 68); P2WSH 2-of-3 multisig 41 B + 253 B witness (vsize ~104); P2TR key path
# 41 B + 66 B witness (vsize 57.5). Outputs: 8 B value + script length + script.
IN_BASE = np.array([148, 64, 41, 41, 41, 0], dtype=np.int64)
IN_WIT = np.array([0, 108, 108, 253, 66, 0], dtype=np.int64)
OUT_SIZE = np.array([34, 32, 31, 43, 43, 43], dtype=np.int64)
TX_OVERHEAD = 10  # version 4 + locktime 4 + two 1-byte counts
DUST = 546  # Bitcoin Core's dust limit for P2PKH outputs at the default relay fee

FIRST_HEIGHT = 1_000_000


def subsidy(height: int) -> int:
    """Block subsidy in satoshi at a height (50 BTC halved every 210,000 blocks; BIP42 caps at 64)."""
    halvings = height // 210_000
    return 0 if halvings >= 64 else (50 * 100_000_000) >> halvings


def txid_of(seed: int, index: int) -> str:
    """The txid the simulator gives transaction ``index`` of world ``seed`` (same formula as the SQL)."""
    return hashlib.sha256(f"{seed}:tx:{index}".encode()).hexdigest()


def block_hash_of(seed: int, height: int) -> str:
    return hashlib.sha256(f"{seed}:block:{height}".encode()).hexdigest()


class Grow:
    """An append-only numpy column that doubles its capacity (amortised O(1) appends of whole arrays)."""

    def __init__(self, dtype: type | np.dtype, fill: int = 0):
        self.a = np.full(1024, fill, dtype=dtype)
        self.n = 0
        self.fill = fill

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.a):
            cap = max(need, 2 * len(self.a))
            bigger = np.full(cap, self.fill, dtype=self.a.dtype)
            bigger[: self.n] = self.a[: self.n]
            self.a = bigger
        self.a[self.n : need] = values
        self.n = need

    @property
    def view(self) -> np.ndarray:
        return self.a[: self.n]


@dataclass
class Buffer:
    """Columns waiting to be flushed to one staging table."""

    cols: dict[str, list[np.ndarray]] = field(default_factory=dict)
    rows: int = 0

    def add(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.cols.setdefault(k, []).append(np.asarray(v))
        self.rows += len(next(iter(cols.values())))

    def take(self) -> pa.Table | None:
        if not self.rows:
            return None
        table = pa.table({k: np.concatenate(v) for k, v in self.cols.items()})
        self.cols, self.rows = {}, 0
        return table


STAGING_SQL = """
CREATE OR REPLACE TEMP TABLE _sim_tx(tx BIGINT, block INTEGER, seq BIGINT, fee BIGINT, nin INTEGER,
    nout INTEGER, size INTEGER, weight INTEGER, version INTEGER, locktime BIGINT, kind SMALLINT, owner INTEGER);
CREATE OR REPLACE TEMP TABLE _sim_out(tx BIGINT, n INTEGER, addr BIGINT, script SMALLINT, value BIGINT, owner INTEGER);
CREATE OR REPLACE TEMP TABLE _sim_in(tx BIGINT, n INTEGER, prev_tx BIGINT, prev_n INTEGER, sequence BIGINT);
CREATE OR REPLACE TEMP TABLE _sim_addr(addr BIGINT, address TEXT, script SMALLINT, owner INTEGER);
"""


class Ledger:
    """Allocates transaction and address ids and stages rows; :meth:`materialise` writes the store."""

    FLUSH_ROWS = 400_000

    def __init__(self, store: Store, seed: int):
        self.store, self.seed = store, seed
        self.next_tx = 0
        self.addr_script = Grow(np.int8)
        self.addr_owner = Grow(np.int32)
        self._addr_flushed = 0
        self._payload_rng = np.random.Generator(np.random.Philox(key=[seed, 0xADD5]))
        self.tx = Buffer()
        self.out = Buffer()
        self.inp = Buffer()
        self.counts = {"transactions": 0, "outputs": 0, "inputs": 0}
        store.con.execute(STAGING_SQL)

    # -- ids ----------------------------------------------------------------------------------------
    @property
    def n_addresses(self) -> int:
        return self.addr_script.n

    def new_addresses(self, owner: np.ndarray, script: np.ndarray) -> np.ndarray:
        """Fresh address ids for the given owners and script types."""
        owner = np.asarray(owner, dtype=np.int32)
        start = self.addr_script.n
        self.addr_script.extend(np.asarray(script, dtype=np.int8))
        self.addr_owner.extend(owner)
        return np.arange(start, start + len(owner), dtype=np.int64)

    def new_txs(self, count: int) -> np.ndarray:
        ids = np.arange(self.next_tx, self.next_tx + count, dtype=np.int64)
        self.next_tx += count
        return ids

    # -- rows ---------------------------------------------------------------------------------------
    def add(self, tx: dict[str, np.ndarray], out: dict[str, np.ndarray], inp: dict[str, np.ndarray]) -> None:
        if len(tx["tx"]):
            self.tx.add(**tx)
            self.counts["transactions"] += len(tx["tx"])
        if len(out["tx"]):
            self.out.add(**out)
            self.counts["outputs"] += len(out["tx"])
        if len(inp["tx"]):
            self.inp.add(**inp)
            self.counts["inputs"] += len(inp["tx"])
        if self.tx.rows + self.out.rows + self.inp.rows > self.FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        for name, buf in (("_sim_tx", self.tx), ("_sim_out", self.out), ("_sim_in", self.inp)):
            table = buf.take()
            if table is not None:
                self.store.append(name, table)
        self._flush_addresses()

    def _flush_addresses(self) -> None:
        lo, hi = self._addr_flushed, self.addr_script.n
        if hi == lo:
            return
        scripts = self.addr_script.a[lo:hi]
        owners = self.addr_owner.a[lo:hi]
        # payloads are drawn in id order so the same seed gives the same addresses however we chunk
        payload = self._payload_rng.integers(0, 256, size=(hi - lo, 32), dtype=np.uint8)
        parts = []
        for code, encode in (
            (P2PKH, lambda p: base58check_arrow(0x00, p[:, :20])),
            (P2SH, lambda p: base58check_arrow(0x05, p[:, :20])),
            (P2WPKH, lambda p: segwit_arrow("bc", 0, p[:, :20])),
            (P2WSH, lambda p: segwit_arrow("bc", 0, p)),
            (P2TR, lambda p: segwit_arrow("bc", 1, p)),
        ):
            idx = np.flatnonzero(scripts == code)
            if idx.size:
                parts.append(
                    pa.table(
                        {
                            "addr": pa.array(idx + lo, pa.int64()),
                            "address": encode(np.ascontiguousarray(payload[idx])),
                            "script": pa.array(np.full(idx.size, code, np.int16)),
                            "owner": pa.array(owners[idx], pa.int32()),
                        }
                    )
                )
        self.store.append("_sim_addr", pa.concat_tables(parts))
        self._addr_flushed = hi

    # -- the canonical tables -----------------------------------------------------------------------
    def materialise(self, run_id: int, block_times: np.ndarray) -> dict[str, int]:
        """Write blocks, transactions, outputs, inputs and addresses from the staging tables."""
        self.flush()
        con = self.store.con
        seed = self.seed
        heights = FIRST_HEIGHT + np.arange(len(block_times))
        blocks = pa.table(
            {
                "block": pa.array(np.arange(len(block_times)), pa.int32()),
                "height": pa.array(heights, pa.int64()),
                "hash": [block_hash_of(seed, int(h)) for h in heights],
                "prev_hash": [block_hash_of(seed, int(h) - 1) for h in heights],
                "time": pa.array(block_times.astype("datetime64[us]")),
            }
        )
        con.execute("CREATE OR REPLACE TEMP TABLE _sim_block AS SELECT * FROM blocks LIMIT 0")
        con.register("_sim_block_arrow", blocks)
        con.execute("CREATE OR REPLACE TEMP TABLE _sim_block AS SELECT * FROM _sim_block_arrow")
        con.unregister("_sim_block_arrow")
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _sim_txid AS
            SELECT t.*, sha256('{seed}:tx:' || t.tx) AS txid,
                   CAST(row_number() OVER (PARTITION BY t.block ORDER BY t.seq) - 1 AS INTEGER) AS position
            FROM _sim_tx t
            """
        )
        n_tx = int(con.execute("SELECT count(*) FROM _sim_txid").fetchone()[0])
        first_tx = graph.next_ids(self.store, "utxo_tx", n_tx)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sim_txid AS
                SELECT *, {first_tx} - 1 + row_number() OVER (ORDER BY block, position) AS tx_id FROM _sim_txid"""
        )
        # address ids in order of first sight, continuing the store's dense numbering
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _sim_first AS
            SELECT o.addr, min((t.block::BIGINT << 40) + (t.position::BIGINT << 16) + o.n) AS k
            FROM _sim_out o JOIN _sim_txid t USING (tx) WHERE o.addr >= 0 GROUP BY o.addr
            """
        )
        first_id = graph.next_ids(self.store, "party", int(con.execute("SELECT count(*) FROM _sim_first").fetchone()[0]))
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sim_addr_id AS
                SELECT f.addr, f.k, {first_id} - 1 + row_number() OVER (ORDER BY f.k) AS address_id FROM _sim_first f"""
        )
        con.execute(
            f"""
            INSERT INTO addresses BY NAME
            SELECT 'bitcoin' AS chain, a.address, i.address_id,
                   b.time AS first_seen,
                   CASE a.script WHEN 0 THEN 'p2pkh' WHEN 1 THEN 'p2sh' WHEN 2 THEN 'p2wpkh'
                        WHEN 3 THEN 'p2wsh' WHEN 4 THEN 'p2tr' END AS script_type,
                   {run_id} AS run_id, {graph.party_key("'bitcoin'", 'a.address')} AS party_key
            FROM _sim_addr a JOIN _sim_addr_id i USING (addr) JOIN _sim_block b ON b.block = (i.k >> 40)
            ORDER BY address_id
            """
        )
        con.execute(
            f"""
            INSERT INTO blocks BY NAME
            SELECT 'bitcoin' AS chain, b.height, b.hash, b.prev_hash, b.time,
                   CAST(count(t.tx) AS INTEGER) AS tx_count,
                   CAST(80 + 3 + sum(t.size) AS INTEGER) AS size,
                   CAST(536870912 AS BIGINT) AS version,
                   'simulate' AS height_source, 'simulate' AS source, {run_id} AS run_id
            FROM _sim_block b JOIN _sim_txid t ON t.block = b.block
            GROUP BY ALL ORDER BY b.height
            """
        )
        con.execute(
            f"""
            INSERT INTO transactions BY NAME
            SELECT 'bitcoin' AS chain, t.txid,
                   CASE WHEN t.weight = 4 * t.size THEN t.txid ELSE sha256('{seed}:wtx:' || t.tx) END AS wtxid,
                   b.hash AS block_hash, b.height AS block_height, b.time AS block_time, t.position,
                   t.version, t.locktime, t.size, t.weight,
                   CASE WHEN t.kind = 0 THEN NULL ELSE t.fee END AS fee, t.kind = 0 AS is_coinbase,
                   t.nin AS input_count, t.nout AS output_count, {run_id} AS run_id, t.tx_id
            FROM _sim_txid t JOIN _sim_block b ON b.block = t.block
            ORDER BY b.height, t.position
            """
        )
        con.execute(
            f"""
            INSERT INTO outputs BY NAME
            SELECT 'bitcoin' AS chain, t.txid, o.n, a.address,
                   CASE o.script WHEN 0 THEN 'p2pkh' WHEN 1 THEN 'p2sh' WHEN 2 THEN 'p2wpkh'
                        WHEN 3 THEN 'p2wsh' WHEN 4 THEN 'p2tr' ELSE 'nulldata' END AS script_type,
                   o.value, s.txid AS spent_by_txid, i.n AS spent_by_n,
                   {FIRST_HEIGHT} + t.block AS block_height, {run_id} AS run_id,
                   t.tx_id, {graph.txid_key('t.txid')} AS txkey, ai.address_id
            FROM _sim_out o JOIN _sim_txid t ON t.tx = o.tx
            LEFT JOIN _sim_addr a ON a.addr = o.addr
            LEFT JOIN _sim_addr_id ai ON ai.addr = o.addr
            LEFT JOIN _sim_in i ON i.prev_tx = o.tx AND i.prev_n = o.n
            LEFT JOIN _sim_txid s ON s.tx = i.tx
            ORDER BY t.block, t.position, o.n
            """
        )
        con.execute(
            f"""
            INSERT INTO inputs BY NAME
            SELECT 'bitcoin' AS chain, t.txid, i.n, p.txid AS prev_txid,
                   CASE WHEN i.prev_tx < 0 THEN NULL ELSE i.prev_n END AS prev_n, a.address, o.value,
                   i.sequence, {FIRST_HEIGHT} + t.block AS block_height, {run_id} AS run_id,
                   t.tx_id, CASE WHEN p.txid IS NULL THEN NULL ELSE {graph.txid_key('p.txid')} END AS prev_txkey,
                   ai.address_id
            FROM _sim_in i JOIN _sim_txid t ON t.tx = i.tx
            LEFT JOIN _sim_txid p ON p.tx = i.prev_tx
            LEFT JOIN _sim_out o ON o.tx = i.prev_tx AND o.n = i.prev_n
            LEFT JOIN _sim_addr a ON a.addr = o.addr
            LEFT JOIN _sim_addr_id ai ON ai.addr = o.addr
            ORDER BY t.block, t.position, i.n
            """
        )
        graph.append_utxo_flows(
            self.store,
            f"""SELECT o.chain, o.txid, o.n, o.tx_id, o.address, o.address_id, o.value, t.block_time AS time,
                       o.block_height AS height, o.run_id, o.tx_id * 2097152 + o.n AS ord
                FROM outputs o JOIN transactions t ON t.chain = o.chain AND t.tx_id = o.tx_id
                WHERE o.run_id = {run_id} AND t.run_id = {run_id}""",
            f"""SELECT i.chain, i.txid, i.n, i.tx_id, i.address, i.address_id, i.value, t.block_time AS time,
                       i.block_height AS height, i.run_id, i.tx_id * 2097152 + i.n AS ord
                FROM inputs i JOIN transactions t ON t.chain = i.chain AND t.tx_id = i.tx_id
                WHERE i.run_id = {run_id} AND t.run_id = {run_id} AND i.prev_txid IS NOT NULL""",
        )
        return {
            "blocks": len(block_times),
            "transactions": self.counts["transactions"],
            "outputs": self.counts["outputs"],
            "inputs": self.counts["inputs"],
            "addresses": self.n_addresses,
        }

    def drop_staging(self) -> None:
        for t in ("_sim_tx", "_sim_out", "_sim_in", "_sim_addr", "_sim_txid", "_sim_block", "_sim_first", "_sim_addr_id"):
            self.store.con.execute(f"DROP TABLE IF EXISTS {t}")
