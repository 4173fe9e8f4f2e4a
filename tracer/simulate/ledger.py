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
- a regtest world (``materialise(..., blk_dir)``, the sources mode) is instead serialised into blk files
  (:mod:`tracer.simulate.serialise`): txids, wtxids and block hashes are the double SHA-256 of the bytes,
  and :meth:`Ledger.txids` is how the rest of the simulator learns them;
- ``spent_by_txid`` / ``spent_by_n`` of an output and ``address`` / ``value`` of an input are resolved by
  joins, as the ingester resolves them;
- address ids are dense, continuing from the store's ``max(address_id) + 1``, and assigned in order of
  first sight (block, position, output index), as the ingester assigns them.

Addresses are real mainnet encodings with valid checksums (``tracer.codecs.bitcoin_address``): P2PKH and
P2SH by Base58Check (versions 0x00 and 0x05; regtest 0x6f and 0xc4), P2WPKH / P2WSH by Bech32 (BIP173) and
P2TR by Bech32m (BIP350), HRP ``bc`` (regtest ``bcrt``). Their 20- or 32-byte payloads come from a seeded Philox stream, so they are random points
with no known key — nobody can spend from them on the real chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from tracer.codecs.bitcoin_address import base58check_arrow, segwit_arrow
from tracer.ingest.bitcoin.network import network
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
COMMITMENT_OUT = 8 + 1 + 38  # the coinbase's witness commitment: value, length, OP_RETURN 0x24 aa21a9ed <32>
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
    # materialise writes transactions, outputs, inputs and flows in slices of about this many transactions
    # (whole blocks, ascending): each statement's joins, sort and flow staging then hold one slice, not the
    # world (a 7e6 world's flows staged at once are ~28 M wide rows, copied twice and sorted: tens of GB of
    # DuckDB temporary files). The rows, their order and their ids are the same for any slice size.
    SLICE_TX = 1_000_000

    def __init__(self, store: Store, seed: int, network_name: str = "mainnet"):
        self.store, self.seed = store, seed
        self.net = network(network_name)
        self.next_tx = 0
        self.addr_script = Grow(np.int8)
        self.addr_owner = Grow(np.int32)
        self._addr_flushed = 0
        # a regtest world is serialised into blk files: its scripts need the addresses' payloads
        self._payloads: list[np.ndarray] | None = [] if self.net.name == "regtest" else None
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
        if self._payloads is not None:  # written as blocks: the scripts must hash to the addresses
            from tracer.simulate.serialise import script_material

            material = script_material(payload, scripts)
            self._payloads.append(material)
            payload = material[:, :32]
        net = self.net
        parts = []
        for code, encode in (
            (P2PKH, lambda p: base58check_arrow(net.p2pkh_version, p[:, :20])),
            (P2SH, lambda p: base58check_arrow(net.p2sh_version, p[:, :20])),
            (P2WPKH, lambda p: segwit_arrow(net.hrp, 0, p[:, :20])),
            (P2WSH, lambda p: segwit_arrow(net.hrp, 0, p)),
            (P2TR, lambda p: segwit_arrow(net.hrp, 1, p)),
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
    def materialise(self, run_id: int, block_times: np.ndarray, blk_dir: Path | None = None,
                    stage: Callable[[str], None] | None = None) -> dict[str, int]:
        """Write blocks, transactions, outputs, inputs and addresses from the staging tables.

        With ``blk_dir`` (a regtest world) the chain is first serialised into Bitcoin Core blk files there
        (:mod:`tracer.simulate.serialise`): txids, wtxids, merkle roots and block hashes are then the
        real double SHA-256 of those bytes, and the headers carry nBits, nonce and chain work."""
        self.flush()
        con = self.store.con
        seed = self.seed
        n_blocks = len(block_times)
        heights = FIRST_HEIGHT + np.arange(n_blocks)
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _sim_pos AS
               SELECT t.*, CAST(row_number() OVER (PARTITION BY t.block ORDER BY t.seq) - 1 AS INTEGER) AS position
               FROM _sim_tx t"""
        )
        header = {"merkle_root": pa.nulls(n_blocks, pa.string()), "bits": pa.nulls(n_blocks, pa.int64()),
                  "nonce": pa.nulls(n_blocks, pa.int64()), "chainwork": pa.nulls(n_blocks, pa.decimal128(38, 0)),
                  "work_root": pa.nulls(n_blocks, pa.string()), "arrival": pa.nulls(n_blocks, pa.int64())}
        if blk_dir is None:
            hashes = [block_hash_of(seed, int(h)) for h in heights]
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _sim_txid AS
                    SELECT t.*, sha256('{seed}:tx:' || t.tx) AS txid,
                           CASE WHEN t.weight = 4 * t.size THEN sha256('{seed}:tx:' || t.tx)
                                ELSE sha256('{seed}:wtx:' || t.tx) END AS wtxid
                    FROM _sim_pos t"""
            )
        else:
            if stage is not None:
                stage("serialising blk files")
            hashes, header = self._serialise(block_times, blk_dir)
            if stage is not None:
                stage("writing Bitcoin tables")
        blocks = pa.table(
            {
                "block": pa.array(np.arange(n_blocks), pa.int32()),
                "height": pa.array(heights, pa.int64()),
                "hash": hashes,
                "prev_hash": [block_hash_of(seed, FIRST_HEIGHT - 1)] + hashes[:-1],
                "time": pa.array(block_times.astype("datetime64[us]")),
                **header,
            }
        )
        con.register("_sim_block_arrow", blocks)
        con.execute("CREATE OR REPLACE TEMP TABLE _sim_block AS SELECT * FROM _sim_block_arrow")
        con.unregister("_sim_block_arrow")
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
                   CAST(80 + CASE WHEN count(t.tx) < 253 THEN 1 ELSE 3 END + sum(t.size) AS INTEGER) AS size,
                   CAST(536870912 AS BIGINT) AS version, b.merkle_root, b.bits, b.nonce, b.chainwork, b.work_root,
                   b.arrival, 'simulate' AS height_source, 'simulate' AS source, {run_id} AS run_id
            FROM _sim_block b JOIN _sim_txid t ON t.block = b.block
            GROUP BY ALL ORDER BY b.height
            """
        )
        # a world written as blocks carries the spending scripts (serialise.py): the form the ingester reads
        spend_type = (f"""CASE o.script WHEN {P2PKH} THEN 'p2pkh' WHEN {P2SH} THEN 'p2sh-p2wpkh' WHEN {P2WPKH} THEN 'p2wpkh'
                         WHEN {P2WSH} THEN 'p2wsh' END""" if blk_dir is not None else "NULL")
        # slices of whole blocks, ~SLICE_TX transactions each, in order: each table gets the same rows in the
        # same order as from one statement, and the flows the same ids (they are numbered in tx_id order)
        per_block = np.bincount(con.execute("SELECT block FROM _sim_txid").fetchnumpy()["block"].astype(np.int64),
                                minlength=n_blocks)
        ends = np.cumsum(per_block)
        cuts = np.unique(np.r_[0, np.searchsorted(ends, np.arange(self.SLICE_TX, n_tx, self.SLICE_TX)) + 1, n_blocks])
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            sl = {"lo": int(lo), "hi": int(hi)}
            t0 = first_tx + (int(ends[lo - 1]) if lo else 0)
            t1 = first_tx + int(ends[hi - 1]) - 1
            con.execute(
                f"""
                INSERT INTO transactions BY NAME
                SELECT 'bitcoin' AS chain, t.txid, t.wtxid, b.hash AS block_hash, b.height AS block_height, b.time AS block_time, t.position,
                       t.version, t.locktime, t.size, t.weight,
                       CASE WHEN t.kind = 0 THEN NULL ELSE t.fee END AS fee, t.kind = 0 AS is_coinbase,
                       t.nin AS input_count, t.nout AS output_count, {run_id} AS run_id, t.tx_id
                FROM _sim_txid t JOIN _sim_block b ON b.block = t.block
                WHERE t.block >= $lo AND t.block < $hi
                ORDER BY b.height, t.position
                """,
                sl,
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
                WHERE t.block >= $lo AND t.block < $hi
                ORDER BY t.block, t.position, o.n
                """,
                sl,
            )
            con.execute(
                f"""
                INSERT INTO inputs BY NAME
                SELECT 'bitcoin' AS chain, t.txid, i.n, p.txid AS prev_txid,
                       CASE WHEN i.prev_tx < 0 THEN NULL ELSE i.prev_n END AS prev_n, a.address, o.value,
                       i.sequence, {FIRST_HEIGHT} + t.block AS block_height, {run_id} AS run_id,
                       t.tx_id, CASE WHEN p.txid IS NULL THEN NULL ELSE {graph.txid_key('p.txid')} END AS prev_txkey,
                       ai.address_id, CASE WHEN a.address IS NOT NULL THEN 'prevout' END AS address_source,
                       {spend_type} AS spend_type
                FROM _sim_in i JOIN _sim_txid t ON t.tx = i.tx
                LEFT JOIN _sim_txid p ON p.tx = i.prev_tx
                LEFT JOIN _sim_out o ON o.tx = i.prev_tx AND o.n = i.prev_n
                LEFT JOIN _sim_addr a ON a.addr = o.addr
                LEFT JOIN _sim_addr_id ai ON ai.addr = o.addr
                WHERE t.block >= $lo AND t.block < $hi
                ORDER BY t.block, t.position, i.n
                """,
                sl,
            )
            graph.append_utxo_flows(
                self.store,
                f"""SELECT o.chain, o.txid, o.n, o.tx_id, o.address, o.address_id, o.value, t.block_time AS time,
                           o.block_height AS height, o.run_id, o.tx_id * 2097152 + o.n AS ord
                    FROM outputs o JOIN transactions t ON t.chain = o.chain AND t.tx_id = o.tx_id
                    WHERE o.run_id = {run_id} AND t.run_id = {run_id}
                          AND o.tx_id BETWEEN {t0} AND {t1} AND t.tx_id BETWEEN {t0} AND {t1}""",
                f"""SELECT i.chain, i.txid, i.n, i.tx_id, i.address, i.address_id, i.value, t.block_time AS time,
                           i.block_height AS height, i.run_id, i.tx_id * 2097152 + i.n AS ord
                    FROM inputs i JOIN transactions t ON t.chain = i.chain AND t.tx_id = i.tx_id
                    WHERE i.run_id = {run_id} AND t.run_id = {run_id} AND i.prev_txid IS NOT NULL
                          AND i.tx_id BETWEEN {t0} AND {t1} AND t.tx_id BETWEEN {t0} AND {t1}""",
            )
        return {
            "blocks": len(block_times),
            "transactions": self.counts["transactions"],
            "outputs": self.counts["outputs"],
            "inputs": self.counts["inputs"],
            "addresses": self.n_addresses,
        }

    def _serialise(self, block_times: np.ndarray, blk_dir: Path) -> tuple[list[str], dict[str, pa.Array]]:
        """Serialise the staged chain into blk files; leave txids in ``_sim_txid``; return the block hashes
        and header columns. Columns come out of DuckDB once, in block and position order; the
        serialiser is one compiled pass (no Python loop over transactions)."""
        from tracer.ingest.bitcoin.blocks import block_work
        from tracer.ingest.bitcoin.parse import hex_rows
        from tracer.simulate.serialise import REGTEST_BITS, Chain, write_blk_files

        con = self.store.con
        tx = con.execute("SELECT tx, block, version, locktime, nin, nout, size, weight FROM _sim_pos "
                         "ORDER BY block, position").fetchnumpy()
        rows = tx["tx"].size
        row_of = np.full(self.next_tx, -1, np.int64)
        row_of[tx["tx"]] = np.arange(rows)
        ins = con.execute("SELECT tx, n, prev_tx, prev_n, sequence FROM _sim_in").fetchnumpy()
        outs = con.execute("SELECT tx, n, addr, script, value FROM _sim_out").fetchnumpy()
        io = np.lexsort((ins["n"], row_of[ins["tx"]]))
        oo = np.lexsort((outs["n"], row_of[outs["tx"]]))
        in_row, out_row = row_of[ins["tx"]][io], row_of[outs["tx"]][oo]
        tx_in0 = np.searchsorted(in_row, np.arange(rows + 1)).astype(np.int64)
        tx_out0 = np.searchsorted(out_row, np.arange(rows + 1)).astype(np.int64)
        if not (np.array_equal(np.diff(tx_in0), tx["nin"]) and np.array_equal(np.diff(tx_out0), tx["nout"])):
            raise ValueError("staged inputs or outputs do not match their transactions' counts")
        prev_tx = ins["prev_tx"][io]
        prev_row = np.where(prev_tx < 0, -1, row_of[np.maximum(prev_tx, 0)])
        prev_n = ins["prev_n"][io].astype(np.int64)
        # the serialiser names each parent's txid, computed earlier in the same pass: a parent must come
        # earlier in block and position order (as consensus requires), and not be the coinbase of the
        # spender's own block (a coinbase commits to the other transactions' wtxids: it is serialised last)
        blk_of_row = tx["block"].astype(np.int64)
        parent = np.maximum(prev_row, 0)
        first_of_block = np.r_[True, np.diff(blk_of_row) != 0]
        own_coinbase = (prev_row >= 0) & first_of_block[parent] & (blk_of_row[parent] == blk_of_row[in_row])
        late = np.flatnonzero((prev_row >= in_row) | own_coinbase)
        if late.size:
            k = int(late[0])
            raise ValueError(f"{late.size} input(s) spend an output of a transaction that is not earlier in the "
                             f"chain or is their block's coinbase (first: transaction {int(ins['tx'][io][k])} input {int(ins['n'][io][k])} spends "
                             f"{int(prev_tx[k])}:{int(prev_n[k])}, rows {int(in_row[k])} and {int(prev_row[k])})")
        spent = np.where(prev_row < 0, 0, tx_out0[np.maximum(prev_row, 0)] + prev_n)
        out_script = outs["script"][oo].astype(np.int8)
        out_addr = outs["addr"][oo].astype(np.int64)
        block = tx["block"].astype(np.int64)
        chain = Chain(
            blk_tx0=np.searchsorted(block, np.arange(len(block_times) + 1)).astype(np.int64),
            blk_height=FIRST_HEIGHT + np.arange(len(block_times), dtype=np.int64),
            blk_time=block_times.astype("datetime64[s]").astype(np.int64),
            tx_version=tx["version"].astype(np.int64), tx_lock=tx["locktime"].astype(np.int64),
            tx_seg=tx["weight"] != 4 * tx["size"], tx_size=tx["size"].astype(np.int64),
            tx_in0=tx_in0, tx_out0=tx_out0, in_prev_row=prev_row, in_prev_n=np.where(prev_row < 0, 0xFFFFFFFF, prev_n),
            in_seq=ins["sequence"][io].astype(np.int64),
            in_script=np.where(prev_row < 0, -1, out_script[spent]).astype(np.int8),
            in_addr=np.where(prev_row < 0, -1, out_addr[spent]),
            out_value=outs["value"][oo].astype(np.int64), out_script=out_script, out_addr=out_addr,
            payload=np.concatenate(self._payloads) if self._payloads else np.zeros((0, 84), np.uint8),
        )
        first_prev = bytes.fromhex(block_hash_of(self.seed, FIRST_HEIGHT - 1))[::-1]
        h = write_blk_files(chain, self.net.magic, first_prev, self.seed, blk_dir)
        hashes = pa.table({"tx": tx["tx"], "txid": hex_rows(h.txid, reverse=True), "wtxid": hex_rows(h.wtxid, reverse=True)})
        with self.store.view("_sim_hash", hashes):
            con.execute("CREATE OR REPLACE TEMP TABLE _sim_txid AS SELECT t.*, h.txid, h.wtxid FROM _sim_pos t "
                        "JOIN _sim_hash h USING (tx)")
        nb = len(block_times)
        work = block_work(REGTEST_BITS)
        root = block_hash_of(self.seed, FIRST_HEIGHT - 1)
        first_arrival = graph.next_ids(self.store, "block", nb)
        header = {
            "merkle_root": hex_rows(h.merkle_root, reverse=True),
            "bits": pa.array(np.full(nb, REGTEST_BITS, np.int64)),
            "nonce": pa.array(h.nonce),
            "chainwork": pa.array([work * (k + 1) for k in range(nb)], pa.decimal128(38, 0)),
            "work_root": pa.array([root] * nb, pa.string()),
            "arrival": pa.array(np.arange(first_arrival, first_arrival + nb, dtype=np.int64)),
        }
        return hex_rows(h.block_hash, reverse=True).to_pylist(), header

    def txids(self, ids) -> dict[int, str]:
        """The txids of the given transaction indices (after :meth:`materialise`)."""
        wanted = np.unique(np.asarray([int(i) for i in ids], np.int64))
        if wanted.size == 0:
            return {}
        with self.store.view("_sim_want", pa.table({"tx": wanted})):
            rows = self.store.query("SELECT t.tx, t.txid FROM _sim_txid t JOIN _sim_want USING (tx)")
        return {int(t): x for t, x in rows}

    def drop_staging(self) -> None:
        for t in ("_sim_tx", "_sim_out", "_sim_in", "_sim_addr", "_sim_pos", "_sim_txid", "_sim_block", "_sim_first",
                  "_sim_addr_id"):
            self.store.con.execute(f"DROP TABLE IF EXISTS {t}")
