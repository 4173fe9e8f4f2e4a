"""Bitcoin ingestion: Bitcoin Core ``blocks/`` directories and ``blk*.dat`` files, raw block files
(binary or hex) and a Bitcoin Core JSON-RPC endpoint, into blocks / transactions / outputs / inputs /
addresses.

Each source unit (one blk file, one raw block file, one range of RPC heights) is a batch: it is read
and framed, every block parsed and verified, and only then loaded in one transaction. A unit that
fails loads nothing; the refused item goes to ``quarantine`` and the error names the file and byte
offset (or the RPC call and height) and the block hash. Blocks already in the store are skipped, so
re-running adds nothing; ``checkpoints`` lets a rerun skip units already done.

After the units are loaded, inputs are resolved in SQL to the output they spend (also when the funding
block arrived later), ``spent_by_txid`` is set, and fees are computed where every input is known.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from decimal import Decimal
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tracer.columns import array, select, take, to_numpy
from tracer.errors import IngestError
from tracer.ingest.bitcoin.network import MAGICS, Network, network
from tracer.ingest.bitcoin.parse import BlockBatch, BlockError, bits_to_target, parse_blocks
from tracer.store import Run, Store, graph
from tracer.store.store import utcnow

if TYPE_CHECKING:  # the RPC client (and requests) loads only when --rpc is given
    from tracer.ingest.bitcoin.rpc import BitcoinRPC

CHAIN = "bitcoin"
_BLK_NAME = re.compile(r"^blk(\d+)\.dat$")
_HEX_CHARS = frozenset(b"0123456789abcdefABCDEF \t\r\n")


@dataclass
class Unit:
    """One batch of the source: a file (blk or raw) or a range of RPC heights."""

    kind: str  # blk, raw, rpc
    name: str
    path: Path | None = None
    heights: range | None = None


@dataclass
class IngestSummary:
    run_id: int
    units: int = 0
    units_skipped: int = 0
    blocks: int = 0
    blocks_skipped: int = 0
    transactions: int = 0
    inputs: int = 0
    outputs: int = 0
    inputs_resolved: int = 0
    blocks_stale: int = 0          # blocks that left the best chain in this run (stored stale, or reorged out)
    blocks_rolled_back: int = 0    # RPC: best-chain blocks above the fork point marked stale
    to_height: int | None = None   # RPC: the last height read
    notes: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)   # files refused while the others loaded


Progress = Callable[[int, int, int], None]  # (units, blocks, transactions) just loaded


# -- source framing ----------------------------------------------------------------------------------
def file_units(paths: Iterable[str | Path]) -> list[Unit]:
    """Expand directories (Bitcoin Core ``blocks/``: blk*.dat in file-number order) and files."""
    units: list[Unit] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            blks = sorted((p for p in path.iterdir() if _BLK_NAME.match(p.name)), key=lambda p: int(_BLK_NAME.match(p.name).group(1)))
            if not blks:
                raise IngestError(str(path), "directory", "no blk*.dat files in this directory")
            units.extend(Unit("blk", str(p), p) for p in blks)
        elif path.is_file():
            units.append(Unit("file", str(path), path))
        else:
            raise IngestError(str(path), "path", "no such file or directory")
    return units


def frame_blk(data: bytes, net: Network, source: str) -> list[tuple[int, int]]:
    """Split a blk*.dat file into (offset, size) spans: [magic][size LE u32][block] repeated.

    Bitcoin Core pre-allocates blk files, so zero bytes after the last block mark the end of data.
    A wrong magic or a block running past the end of the file is an error naming the byte offset.
    """
    spans: list[tuple[int, int]] = []
    pos, total = 0, len(data)
    while pos < total:
        magic = data[pos : pos + 4]
        if magic == b"\x00\x00\x00\x00" or (len(magic) < 4 and not magic.strip(b"\x00")):
            if data[pos:].strip(b"\x00"):
                raise IngestError(source, f"byte offset {pos}", "non-zero data after the zero padding that ends the block data")
            break
        if magic != net.magic:
            other = MAGICS.get(bytes(magic))
            hint = f" (that is {other.name}'s magic)" if other else ""
            raise IngestError(
                source, f"byte offset {pos}",
                f"wrong magic {bytes(magic).hex()}{hint}; expected {net.magic.hex()} for {net.name}",
            )
        if pos + 8 > total:
            raise IngestError(source, f"byte offset {pos}", "truncated blk file: the size field is cut off")
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + size > total:
            raise IngestError(
                source, f"byte offset {pos}",
                f"truncated blk file: block declares {size} bytes but only {total - pos - 8} remain",
            )
        spans.append((pos + 8, size))
        pos += 8 + size
    return spans


def read_unit(unit: Unit, net: Network) -> tuple[bytes, list[tuple[int, int]]]:
    """Bytes of a file unit and the spans of its blocks (blk framing, raw binary or raw hex)."""
    assert unit.path is not None
    try:
        data = unit.path.read_bytes()
    except OSError as exc:
        raise IngestError(unit.name, "file", f"cannot read: {exc}") from None
    if not data.strip():
        raise IngestError(unit.name, "byte offset 0", "empty file")
    head = data[:4]
    if unit.kind == "blk" or head in MAGICS or head == net.magic:
        return data, frame_blk(data, net, unit.name)
    if all(c in _HEX_CHARS for c in data[:160]):  # a header is 160 hex digits; binary headers never are
        text = data.decode("ascii", errors="replace")
        compact = "".join(text.split())
        try:
            raw = bytes.fromhex(compact)
        except ValueError:
            bad = next((i for i, c in enumerate(compact) if c not in "0123456789abcdefABCDEF"), len(compact) - 1)
            raise IngestError(unit.name, f"hex character {bad}", f"not valid hex ({compact[bad:bad + 8]!r}…)") from None
        if len(raw) < 81:
            raise IngestError(unit.name, "byte offset 0", f"{len(raw)} bytes of hex are too short to be a block")
        return raw, [(0, len(raw))]
    return data, [(0, len(data))]


# -- loading -------------------------------------------------------------------------------------------
def ingest_bitcoin(
    store: Store,
    paths: Iterable[str | Path] = (),
    *,
    rpc: BitcoinRPC | None = None,
    from_height: int | None = None,
    to_height: int | None = None,
    confirmations: int = 6,
    network_name: str = "mainnet",
    rpc_batch: int = 50,
    batch_bytes: int = 64 << 20,
    progress: Progress | None = None,
    on_units: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest Bitcoin blocks from files/directories and/or a JSON-RPC node into the store.

    Over RPC, heights run from ``from_height`` (default 0) to ``to_height``, never above the node's tip
    minus ``confirmations``; a stored best chain that the node no longer has is rolled back to the fork
    point first (its blocks stay, marked stale) and the node's branch is read from there.
    """
    net = network(network_name)
    units = file_units(paths)
    params: dict = {"network": net.name, "paths": [u.name for u in units]}
    start = 0 if from_height is None else from_height
    notes: list[str] = []
    tip = None
    if rpc is not None:
        if confirmations < 0:
            raise IngestError(rpc.url, "--confirmations", "must be 0 or more")
        tip = int(rpc.call("getblockchaininfo")["blocks"])
        safe = tip - confirmations
        if to_height is None or to_height > safe:
            if to_height is not None:
                notes.append(f"stopped at height {safe}: {to_height} is within {confirmations} confirmations of the tip {tip}")
            to_height = safe
        params.update(rpc=rpc.url, from_height=start, to_height=to_height, confirmations=confirmations, tip=tip)
        for lo in range(start, to_height + 1, rpc_batch):
            units.append(Unit("rpc", f"{rpc.url} heights {lo}-{min(lo + rpc_batch, to_height + 1) - 1}"))
    target = ", ".join(u.name for u in units[:3]) + (f" (+{len(units) - 3} more)" if len(units) > 3 else "")
    run = store.begin_run("bitcoin", target or None, params)
    summary = IngestSummary(run.run_id, to_height=to_height if rpc is not None else None, notes=notes)
    if on_units:
        on_units(len(units), 0)
    try:
        store.claim_chain(CHAIN, "utxo", net.name, None, run.run_id)
        with store.transaction():
            summary.blocks_stale += _fill_chainwork(store)
        refused: list[IngestError] = []
        files = [u for u in units if u.kind != "rpc"]
        for group in _batches(files, batch_bytes):
            try:
                _ingest_batch(store, run, group, net, None, summary, progress)
            except IngestError as exc:
                if len(group) == 1:
                    refused.append(exc)
                    continue
                # a group of small files is one transaction: load its files one by one, so the good ones
                # beside a bad one go in (the bad one's quarantine row is not repeated: Store.quarantine)
                for unit in group:
                    try:
                        _ingest_batch(store, run, [unit], net, None, summary, progress)
                    except IngestError as one:
                        refused.append(one)
        if refused and not (summary.units or summary.units_skipped):
            raise refused[0]  # nothing loaded: the run failed, with the first refusal's own message
        if rpc is not None and to_height is not None and start <= to_height:
            _ingest_rpc(store, run, rpc, start, to_height, tip, net, rpc_batch, summary, progress)
    except Exception as exc:
        run.fail(exc)
        raise
    run.add(blocks=summary.blocks, transactions=summary.transactions, inputs=summary.inputs,
            outputs=summary.outputs, blocks_skipped=summary.blocks_skipped, units_skipped=summary.units_skipped,
            blocks_stale=summary.blocks_stale, blocks_rolled_back=summary.blocks_rolled_back)
    run.finish()
    # The WAL this ingest wrote goes into the store file now, in this run's time, not in a later command's
    # first commit (DuckDB checkpoints on its own once the WAL passes checkpoint_threshold).
    store.con.execute("CHECKPOINT")
    summary.counts = dict(run.counts)
    if refused:
        first = refused[0]
        summary.refused = [str(e) for e in refused]
        raise IngestError(first.source, first.position,
                          f"{first.reason}; {len(refused)} of {len(files)} file(s) refused, the others loaded",
                          item=first.item)
    return summary


class _Reorg(IngestError):
    """The node's block names a parent other than the stored best block below it: the node reorganised."""


def _ingest_rpc(store: Store, run: Run, rpc: BitcoinRPC, start: int, to_height: int, tip: int, net: Network,
                rpc_batch: int, summary: IngestSummary, progress: Progress | None) -> None:
    """Read heights [start, to_height] from the node, 50 per batch, following its best chain: where the
    stored best chain leaves the node's, roll back to the fork point and read on from there."""
    fork = _rpc_fork_point(store, rpc, min(to_height, tip))
    if fork is not None:
        summary.blocks_rolled_back += _rollback_above(store, fork)
        summary.notes.append(f"reorg: rolled back to height {fork}, the last block the node and the store share")
        start = min(start, fork + 1)
    lo, reorgs = start, 0
    while lo <= to_height:
        hi = min(lo + rpc_batch, to_height + 1)
        unit = Unit("rpc", f"{rpc.url} heights {lo}-{hi - 1}", heights=range(lo, hi))
        try:
            _ingest_batch(store, run, [unit], net, rpc, summary, progress)
        except _Reorg:
            reorgs += 1
            fork = _rpc_fork_point(store, rpc, lo - 1)
            if reorgs > 3 or fork is None:
                raise
            summary.blocks_rolled_back += _rollback_above(store, fork)
            summary.notes.append(f"reorg during the run: rolled back to height {fork}")
            lo = fork + 1
            continue
        lo = hi


def _rpc_fork_point(store: Store, rpc: BitcoinRPC, top: int) -> int | None:
    """None when the store's best block at its highest height ≤ ``top`` is the node's; otherwise the
    highest height where the two agree (−1 when they share nothing). Reads the node 50 heights at a time."""
    row = store.one("SELECT max(height) FROM blocks WHERE chain = ? AND in_best_chain AND height <= ?", [CHAIN, top])
    if row is None or row[0] is None:
        return None
    h, differed = int(row[0]), False
    while h >= 0:
        lo = max(0, h - (1 if not differed else 49))
        heights = list(range(lo, h + 1))
        node = dict(zip(heights, rpc.batch([("getblockhash", [x]) for x in heights])))
        stored = dict(store.query(
            "SELECT height, hash FROM blocks WHERE chain = ? AND in_best_chain AND height BETWEEN ? AND ?", [CHAIN, lo, h]))
        for x in reversed(heights):
            if x not in stored:
                continue
            if stored[x] == node[x]:
                return x if differed else None
            differed = True
        h = lo - 1
    return -1


def _rollback_above(store: Store, fork_height: int) -> int:
    """Mark the best-chain blocks above ``fork_height`` stale (kept; their transactions leave flows)."""
    with store.transaction():
        hashes = [r[0] for r in store.query(
            "SELECT hash FROM blocks WHERE chain = ? AND in_best_chain AND height > ?", [CHAIN, fork_height])]
        _switch(store, [], hashes)
    return len(hashes)


def _checkpoint_done(store: Store, unit: Unit) -> bool:
    if unit.kind == "rpc" or unit.path is None:
        return False
    row = store.one(
        "SELECT position FROM checkpoints WHERE source = 'bitcoin' AND unit = ? AND done ORDER BY updated DESC LIMIT 1",
        [str(unit.path.resolve())],
    )
    return row is not None and row[0] == str(unit.path.stat().st_size)


@dataclass
class _Part:
    """Where a stretch of the batch buffer came from: a file, or one block of an RPC call."""

    start: int
    unit: Unit
    source: str
    rpc_height: int | None = None


def _batches(units: list[Unit], target_bytes: int) -> Iterable[list[Unit]]:
    """Group consecutive small file units (raw blocks) so they load in one transaction."""
    group: list[Unit] = []
    size = 0
    for unit in units:
        unit_size = unit.path.stat().st_size if unit.path is not None else target_bytes
        if group and (unit.kind == "rpc" or size + unit_size > target_bytes):
            yield group
            group, size = [], 0
        group.append(unit)
        size += unit_size
        if unit.kind == "rpc":
            yield group
            group, size = [], 0
    if group:
        yield group


def _read_batch(run: Run, units: list[Unit], net: Network, rpc: BitcoinRPC | None):
    """Concatenate the units' block bytes into one buffer; return it, the block spans and the parts."""
    chunks: list[bytes] = []
    spans: list[tuple[int, int]] = []
    parts: list[_Part] = []
    pos = 0
    for unit in units:
        if unit.kind == "rpc":
            assert rpc is not None and unit.heights is not None
            for height, raw in _fetch_rpc(rpc, unit.heights):
                parts.append(_Part(pos, unit, f"{rpc.url} getblock", height))
                spans.append((pos, len(raw)))
                chunks.append(raw)
                pos += len(raw)
            continue
        try:
            data, unit_spans = read_unit(unit, net)
        except IngestError as exc:
            run.quarantine(exc.position, None, exc.reason, source=unit.name)
            raise
        parts.append(_Part(pos, unit, unit.name))
        spans.extend((pos + o, size) for o, size in unit_spans)
        chunks.append(data)
        pos += len(data)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return data, spans, parts


def _locate(parts: list[_Part], offset: int) -> tuple[_Part, str, int | None]:
    """The part holding a batch offset, the investigator-facing position, and the offset in its file."""
    part = parts[bisect_right([p.start for p in parts], offset) - 1]
    if part.rpc_height is not None:
        return part, f"block height {part.rpc_height}", None
    local = offset - part.start
    return part, f"byte offset {local}", local


def _ingest_batch(store: Store, run: Run, units: list[Unit], net: Network, rpc: BitcoinRPC | None,
                  summary: IngestSummary, progress: Progress | None) -> None:
    todo = [u for u in units if not _checkpoint_done(store, u)]
    summary.units_skipped += len(units) - len(todo)
    if not todo:
        return
    data, spans, parts = _read_batch(run, todo, net, rpc)
    try:
        batch, _ = parse_blocks(data, spans, net, "batch")
    except BlockError as exc:
        part, position, _ = _locate(parts, exc.offset)
        size = next((sz for o, sz in spans if o == exc.offset), 0)
        run.quarantine(position, memoryview(data)[exc.offset : exc.offset + min(size, 4096)], exc.reason, source=part.source)
        raise IngestError(part.source, position, exc.reason, item=f"block {exc.block_hash}" if exc.block_hash else None) from None
    for b in batch.blocks:
        part, position, local = _locate(parts, b["source_offset"])
        b.update(_source=part.source, _position=position, _unit=part.unit.name, _rpc_height=part.rpc_height,
                 source_offset=local)
    with store.transaction():
        loaded = load_batch(store, run, batch, net)
        for unit in todo:
            if unit.kind != "rpc" and unit.path is not None:
                store.con.execute(
                    "INSERT INTO checkpoints VALUES ('bitcoin', ?, ?, true, ?, now())",
                    [str(unit.path.resolve()), str(unit.path.stat().st_size), run.run_id],
                )
    summary.units += len(todo)
    summary.blocks += loaded[0]
    summary.blocks_skipped += len(batch.blocks) - loaded[0]
    summary.transactions += loaded[1]
    summary.inputs += loaded[2]
    summary.outputs += loaded[3]
    summary.inputs_resolved += loaded[4]
    summary.blocks_stale += loaded[5]
    if progress:
        progress(len(todo), len(batch.blocks), loaded[1])


def _fetch_rpc(rpc: BitcoinRPC, heights: range) -> list[tuple[int, bytes]]:
    """Two JSON-RPC batches per range: every getblockhash, then every getblock <hash> 0 (raw hex)."""
    hashes = rpc.batch([("getblockhash", [h]) for h in heights])
    hexes = rpc.batch([("getblock", [h, 0]) for h in hashes])
    blocks = []
    for height, block_hash, hx in zip(heights, hashes, hexes):
        try:
            blocks.append((height, bytes.fromhex(hx)))
        except (TypeError, ValueError):
            raise IngestError(rpc.url, f"block height {height}", f"getblock({block_hash}, 0) did not return hex") from None
    return blocks


def _block_heights(store: Store, blocks: list[dict], net: Network, rpc_heights: list[int | None]) -> list[tuple[int | None, str | None]]:
    """Heights from the node (RPC), the genesis hash, BIP34 and chaining (parent +1, child −1)."""
    hashes = [b["hash"] for b in blocks]
    in_batch = {h: i for i, h in enumerate(hashes)}
    relatives = store.con.execute(
        "SELECT hash, prev_hash, height FROM blocks WHERE chain = ? AND height IS NOT NULL AND "
        "(hash IN (SELECT unnest(?)) OR prev_hash IN (SELECT unnest(?)))",
        [CHAIN, [b["prev_hash"] for b in blocks], hashes],
    ).fetchall()
    heights: dict[str, tuple[int, str]] = {}
    queue: list[str] = []

    def seed(h: str, height: int, how: str) -> None:
        if h not in heights:
            heights[h] = (height, how)
            queue.append(h)

    stored = {h: height for h, _, height in relatives}
    for i, b in enumerate(blocks):
        if rpc_heights[i] is not None:
            seed(b["hash"], rpc_heights[i], "rpc")
        elif b["hash"] == net.genesis:
            seed(b["hash"], 0, "genesis")
        elif b["prev_hash"] in stored:
            seed(b["hash"], stored[b["prev_hash"]] + 1, "chain")
    for _hash, prev, height in relatives:
        if prev in in_batch:
            seed(prev, height - 1, "chain")
    for b in blocks:
        if b["bip34_height"] is not None:
            seed(b["hash"], b["bip34_height"], "bip34")
    children: dict[str, list[str]] = defaultdict(list)
    for b in blocks:
        children[b["prev_hash"]].append(b["hash"])
    while queue:
        h = queue.pop()
        height = heights[h][0]
        for c in children.get(h, ()):
            _agree(heights, c, height + 1, blocks[in_batch[c]], net, queue)
        prev = blocks[in_batch[h]]["prev_hash"] if h in in_batch else None
        if prev in in_batch:
            _agree(heights, prev, height - 1, blocks[in_batch[prev]], net, queue)
    return [heights.get(h, (None, None)) for h in hashes]


def _agree(heights: dict, h: str, height: int, block: dict, net: Network, queue: list[str]) -> None:
    if h not in heights:
        heights[h] = (height, "chain")
        queue.append(h)
    elif heights[h][0] != height and height >= net.bip34_height:
        raise IngestError(block["_source"], block["_position"],
                          f"height {heights[h][0]} ({heights[h][1]}) disagrees with prev-hash chaining ({height})",
                          item=f"block {h}")


def load_batch(store: Store, run: Run, batch: BlockBatch, net: Network) -> tuple[int, int, int, int, int, int]:
    """Load one verified batch; skip blocks already stored; keep the best chain (most work) in the
    canonical tables and flows, and stale blocks' transactions in the stale_* tables.

    Returns (blocks, transactions, inputs, outputs, inputs resolved, blocks that left the best chain)."""
    blocks = batch.blocks
    if not blocks:
        return 0, 0, 0, 0, 0, 0
    hashes = [b["hash"] for b in blocks]
    present = {r[0] for r in store.con.execute(
        "SELECT hash FROM blocks WHERE chain = ? AND hash IN (SELECT unnest(?))", [CHAIN, hashes]).fetchall()}
    keep = np.array([h not in present for h in hashes])
    # the same block twice in one batch (Core can write a block again after a crash) counts once
    seen: set[str] = set()
    for i, h in enumerate(hashes):
        if keep[i] and h in seen:
            keep[i] = False
        seen.add(h)
    if not keep.any():
        return 0, 0, 0, 0, 0, 0
    try:
        heights = _block_heights(store, blocks, net, [b["_rpc_height"] for b in blocks])
        if any(b["_rpc_height"] is not None for b in blocks):
            _check_rpc_chaining(store, blocks, heights)
    except _Reorg:
        raise
    except IngestError as exc:
        run.quarantine(exc.position, None, exc.reason, source=exc.source)
        raise
    kept_blocks = [b for b, k in zip(blocks, keep) if k]
    work = _chainwork(store, kept_blocks)
    first_arrival = graph.next_ids(store, "block", len(kept_blocks))
    arrival = np.zeros(len(blocks), dtype=np.int64)
    arrival[keep] = np.arange(first_arrival, first_arrival + len(kept_blocks))
    height_arr = array([h for h, _ in heights], pa.int64())
    time_arr = array([b["time"] for b in blocks], pa.timestamp("s"))
    hash_arr = array(hashes, pa.string())
    block_table = pa.table({
        "chain": array([CHAIN] * len(blocks)),
        "height": height_arr,
        "hash": hash_arr,
        "prev_hash": array([b["prev_hash"] for b in blocks]),
        "time": time_arr,
        "tx_count": array([b["tx_count"] for b in blocks], pa.int32()),
        "size": array([b["size"] for b in blocks], pa.int32()),
        "version": array([b["version"] for b in blocks], pa.int64()),
        "merkle_root": array([b["merkle_root"] for b in blocks]),
        "bits": array([b["bits"] for b in blocks], pa.int64()),
        "nonce": array([b["nonce"] for b in blocks], pa.int64()),
        "height_source": array([s for _, s in heights], pa.string()),
        "source": array([b["_source"] for b in blocks], pa.string()),
        "source_offset": array([b["source_offset"] for b in blocks], pa.int64()),
        "run_id": array([run.run_id] * len(blocks), pa.int64()),
        "in_best_chain": array([False] * len(blocks)),
        "chainwork": array([Decimal(work[h][0]) if h in work else None for h in hashes], pa.decimal128(38, 0)),
        "work_root": array([work[h][1] if h in work else None for h in hashes], pa.string()),
        "arrival": array(arrival),
    })
    block_table = select(block_table, keep)
    store.append("blocks", block_table)
    new = set(work)
    untrusted = _reroot(store, work)
    to_best, to_stale = _choose_best(store, {r for _, r in work.values()}, untrusted)
    _switch(store, [h for h in to_best if h not in new], to_stale)

    txs, outs, ins = batch.transactions, batch.outputs, batch.inputs
    tx_block = to_numpy(txs["block_index"])
    best_block = np.array([h in to_best for h in hashes])
    tx_keep = keep[tx_block]
    tx_best = best_block[tx_block]
    tx_height = take(height_arr, tx_block)
    tx_time = take(time_arr, tx_block)
    # dense transaction ids for the kept transactions; -tx_id is the transaction's node in flows
    n = int(tx_keep.sum())
    first_tx = graph.next_ids(store, "utxo_tx", n)
    tx_id_all = np.full(len(tx_keep), -1, dtype=np.int64)
    tx_id_all[tx_keep] = np.arange(first_tx, first_tx + n, dtype=np.int64)
    txs = txs.append_column("block_hash", take(hash_arr, tx_block)).append_column("block_height", tx_height) \
             .append_column("block_time", tx_time).append_column("tx_id", array(tx_id_all))
    txs = txs.append_column("chain", array([CHAIN] * len(txs))).append_column("run_id", array([run.run_id] * len(txs), pa.int64()))
    txs = txs.drop_columns(["block_index"])

    def per_row(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
        at = to_numpy(table["tx_index"])
        kept = tx_keep[at]
        ti = at[kept]
        table = select(table, kept).drop_columns(["tx_index"])
        rows = len(table)
        tx_of = array(tx_id_all[at[kept]])
        ord_ = array(tx_id_all[at[kept]] * 2097152 + to_numpy(table["n"]).astype(np.int64))
        return (table.append_column("block_height", take(tx_height, ti)).append_column("time", take(tx_time, ti))
                .append_column("tx_id", tx_of).append_column("ord", ord_)
                .append_column("chain", array([CHAIN] * rows)).append_column("run_id", array([run.run_id] * rows, pa.int64())),
                tx_best[at[kept]])

    (outs, out_best), (ins, in_best) = per_row(outs), per_row(ins)
    n_in, n_out = len(ins), len(outs)
    new_best = [h for h in to_best if h in new]
    if new_best:
        store.con.execute("UPDATE blocks SET in_best_chain = true WHERE chain = ? AND hash IN (SELECT unnest(?))", [CHAIN, new_best])
    stale = tx_keep & ~tx_best
    if stale.any():  # blocks off the best chain: their transactions wait in the stale tables, out of flows
        store.append("stale_transactions", select(txs, stale))
        store.append("stale_outputs", select(outs, ~out_best))
        store.append("stale_inputs", select(ins, ~in_best))
    resolved = 0
    if stale.any() or not tx_keep.all():
        txs, outs, ins = select(txs, tx_keep & tx_best), select(outs, out_best), select(ins, in_best)
    if len(txs):
        with store.view("_b_tx", txs), store.view("_b_out", outs), store.view("_b_in", ins):
            resolved = _load_utxo(store)
    if store.scalar("SELECT count(*) FROM blocks WHERE chain = ? AND height IS NULL", [CHAIN]):
        _propagate_heights(store)
    return len(block_table), n, n_in, n_out, resolved, len(to_stale) + len(new) - len(new_best)


def _load_utxo(store: Store) -> int:
    """Write the best-chain transactions, outputs and inputs of views _b_tx, _b_out, _b_in with party
    ids, resolved inputs, spent marks, fees and flows. Everything joins the batch against integer keys;
    returns how many inputs were resolved (the batch's and earlier ones waiting for these outputs)."""
    con = store.con
    graph.assign_parties(store, "SELECT chain, address, ord AS seq, time AS seen, script_type, run_id FROM _b_out")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _b_out_ids AS
            SELECT o.*, p.address_id, {graph.txid_key('o.txid')} AS txkey
            FROM _b_out o LEFT JOIN _parties p ON p.chain = o.chain AND p.address = o.address"""
    )
    con.execute("INSERT INTO outputs BY NAME SELECT * EXCLUDE (time, ord) FROM _b_out_ids")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _b_in_k AS
            SELECT i.*, CASE WHEN i.prev_txid IS NULL THEN NULL ELSE {graph.txid_key('i.prev_txid')} END AS prev_txkey
            FROM _b_in i"""
    )
    # One integer join against the stored outputs finds both the outputs the inputs spend and, for the
    # coinbases, an earlier output with the same outpoint (BIP30). It reads only the two integer columns
    # (txkey, n) of the stored rows and keeps their row ids; the other columns — the txid text confirmed
    # here, address, value — are then read for the matched rows only, so the big table's wide columns
    # cost the batch's matches, not the store's size (docs/benchmarks.md, "Money graph at scale"). Text
    # read at scattered rows is dear (a dictionary-compressed vector decoded per row), so "unspent" is
    # told by spent_by_n, which is set and cleared with spent_by_txid, and not by the txid text.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _b_hit AS
           WITH probe AS (
               SELECT ord, false AS cb, prev_txkey AS k, prev_n AS pn, prev_txid AS ptxid, tx_id, block_height
               FROM _b_in_k WHERE prev_txkey IS NOT NULL
               UNION ALL
               SELECT o.ord, true, o.txkey, o.n, o.txid, o.tx_id, o.block_height
               FROM _b_out_ids o JOIN _b_tx t ON t.tx_id = o.tx_id WHERE t.is_coinbase)
           SELECT p.*, o.rowid AS orow FROM probe p JOIN outputs o ON o.txkey = p.k AND o.n = p.pn"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _b_cand AS
           SELECT h.ord, h.cb, h.ptxid AS prev_txid, h.tx_id AS probe_tx, h.block_height AS probe_height,
                  o.txid AS out_txid, h.orow, o.tx_id AS out_tx, o.n AS out_n, o.block_height AS out_height,
                  o.spent_by_n, o.address, o.address_id, o.value
           FROM _b_hit h JOIN outputs o ON o.rowid = h.orow
           WHERE o.chain = ? AND o.txid = h.ptxid""",
        [CHAIN],
    )
    _bip30_overwrite(store)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _b_res AS
           SELECT ord, orow, address, address_id, value FROM (
               SELECT c.*, row_number() OVER (PARTITION BY c.ord ORDER BY c.orow) AS k
               FROM _b_cand c WHERE NOT c.cb) WHERE k = 1"""
    )
    # the spent output's address where it is stored, else the one derived from the spending script
    # (spending.py; value stays NULL), which then becomes a party; a script address the output contradicts
    # is quarantined and dropped
    _quarantine_disagreements(store, "_b_in_k i JOIN _b_res r USING (ord) JOIN _b_tx t ON t.tx_id = i.tx_id")
    graph.assign_parties(store, SCRIPT_ADDRESS_PARTIES)
    con.execute(
        """INSERT INTO inputs BY NAME
           SELECT i.* EXCLUDE (time, ord, script_address, spend_type),
                  CASE WHEN r.ord IS NULL THEN i.script_address ELSE r.address END AS address, r.value,
                  CASE WHEN r.ord IS NULL THEN p.address_id ELSE r.address_id END AS address_id,
                  CASE WHEN r.ord IS NOT NULL THEN 'prevout' WHEN i.script_address IS NOT NULL THEN 'script' END
                      AS address_source,
                  CASE WHEN r.ord IS NULL OR i.script_address = r.address THEN i.spend_type END AS spend_type
           FROM _b_in_k i LEFT JOIN _b_res r USING (ord)
           LEFT JOIN _parties p ON p.chain = i.chain AND p.address = i.script_address
           WHERE i.tx_id NOT IN (SELECT tx_id FROM _b_gone)"""
    )
    con.execute(
        """UPDATE outputs SET spent_by_txid = u.txid, spent_by_n = u.n
           FROM (SELECT r.orow, i.txid, i.n FROM _b_res r JOIN _b_in_k i USING (ord)) u
           WHERE outputs.rowid = u.orow"""
    )
    con.execute(
        """INSERT INTO transactions BY NAME
           WITH vin AS (SELECT i.tx_id, count(*) AS inputs, count(r.ord) AS known, sum(r.value) AS vin
                        FROM _b_in_k i LEFT JOIN _b_res r USING (ord) WHERE i.prev_txid IS NOT NULL GROUP BY i.tx_id),
                vout AS (SELECT tx_id, sum(value) AS vout FROM _b_out GROUP BY tx_id)
           SELECT t.*, CASE WHEN vin.inputs = vin.known THEN vin.vin - coalesce(vout.vout, 0) END AS fee
           FROM _b_tx t LEFT JOIN vin USING (tx_id) LEFT JOIN vout USING (tx_id)
           WHERE t.tx_id NOT IN (SELECT tx_id FROM _b_gone)"""
    )
    graph.append_utxo_flows(
        store,
        "SELECT chain, txid, n, tx_id, address, address_id, value, time, block_height AS height, run_id, ord FROM _b_out_ids",
        """SELECT i.chain, i.txid, i.n, i.tx_id, r.address, r.address_id, r.value, i.time, i.block_height AS height,
                  i.run_id, i.ord FROM _b_in_k i JOIN _b_res r USING (ord)""",
    )
    resolved = int(con.execute("SELECT count(*) FROM _b_res").fetchall()[0][0])
    resolved += _resolve_pending(store)
    con.execute(
        """INSERT INTO utxo_pending
           SELECT i.chain, i.txid, i.tx_id, i.n, i.prev_txid, i.prev_n, i.prev_txkey FROM _b_in_k i
           WHERE i.prev_txid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM _b_res r WHERE r.ord = i.ord)"""
    )
    for t in ("_b_out_ids", "_b_in_k", "_b_hit", "_b_cand", "_b_res", "_b_gone"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return resolved


# The parties named by the script-derived addresses of inputs whose spent output is not stored (the script
# type as an output paying the address would have it).
SCRIPT_ADDRESS_PARTIES = """SELECT chain, script_address AS address, ord AS seq, time AS seen,
    CASE WHEN spend_type LIKE 'p2sh-%' THEN 'p2sh' ELSE spend_type END AS script_type, run_id
    FROM _b_in_k i WHERE script_address IS NOT NULL AND NOT EXISTS (SELECT 1 FROM _b_res r WHERE r.ord = i.ord)"""


def _quarantine_disagreements(store: Store, joined: str) -> None:
    """Quarantine every input whose script-derived address differs from its spent output's. ``joined``: a
    FROM clause naming the input ``i`` (script_address, spend_type, txid, n, run_id), its transaction ``t``
    (block_hash) and the resolution ``r`` (address). A disagreement means a misread script or a hash collision."""
    store.con.execute(
        f"""INSERT INTO quarantine
            SELECT i.run_id, coalesce(b.source, '{CHAIN}'),
                   'block ' || t.block_hash || ' tx ' || i.txid || ' input ' || i.n, i.script_address,
                   'address derived from the ' || i.spend_type || ' spending script (' || i.script_address
                   || ') differs from the spent output''s address (' || r.address || ')', ?
            FROM {joined} LEFT JOIN blocks b ON b.chain = '{CHAIN}' AND b.hash = t.block_hash
            WHERE i.script_address IS NOT NULL AND i.script_address <> r.address""", [utcnow()])


def _bip30_overwrite(store: Store) -> None:
    """A coinbase repeating the txid of an earlier best-chain transaction (mainnet 91842 and 91880, before
    BIP30/BIP34) overwrites that transaction's unspent outputs, as in Bitcoin Core's UTXO set: the
    earlier outputs can never be spent, so their rows and flows go and the later ones stand alone; an
    earlier transaction left without outputs leaves transactions and inputs too (the later replaces it)."""
    con = store.con
    con.execute("CREATE OR REPLACE TEMP TABLE _b_gone (tx_id BIGINT)")
    if not con.execute("SELECT count(*) FROM _b_cand WHERE cb AND out_tx <> probe_tx").fetchall()[0][0]:
        return  # the usual case: no coinbase repeats a stored txid
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _b_over AS SELECT orow, out_tx, out_n FROM _b_cand
           WHERE cb AND out_tx <> probe_tx AND spent_by_n IS NULL
             AND CASE WHEN out_height IS NOT NULL AND probe_height IS NOT NULL THEN out_height < probe_height
                      ELSE out_tx < probe_tx END""")
    if con.execute("SELECT count(*) FROM _b_over").fetchall()[0][0]:
        con.execute(
            """DELETE FROM flows WHERE chain = ? AND kind = 'utxo' AND leg = 'out'
               AND EXISTS (SELECT 1 FROM _b_over v WHERE flows.src_id = -v.out_tx AND flows.idx = v.out_n)""", [CHAIN])
        graph.flows_deleted(store)
        con.execute("DELETE FROM outputs WHERE rowid IN (SELECT orow FROM _b_over)")
        # an earlier transaction left with no output is replaced whole, as in Core's transaction index
        # (stored: deleted here; in this batch: not inserted, see _load_utxo)
        con.execute(
            """INSERT INTO _b_gone SELECT DISTINCT out_tx FROM _b_over v
               WHERE NOT EXISTS (SELECT 1 FROM outputs o WHERE o.chain = ? AND o.tx_id = v.out_tx)""", [CHAIN])
        for table in ("inputs", "transactions"):
            con.execute(f"DELETE FROM {table} WHERE chain = ? AND tx_id IN (SELECT tx_id FROM _b_gone)", [CHAIN])
        con.execute("DELETE FROM _b_out_ids WHERE EXISTS "
                    "(SELECT 1 FROM _b_over v WHERE v.out_tx = _b_out_ids.tx_id AND v.out_n = _b_out_ids.n)")
        con.execute("DELETE FROM _b_cand WHERE orow IN (SELECT orow FROM _b_over)")
    con.execute("DROP TABLE _b_over")


def _resolve_pending(store: Store) -> int:
    """Inputs stored earlier whose funding transaction is in this batch (files out of order)."""
    con = store.con
    if not con.execute("SELECT count(*) FROM utxo_pending WHERE chain = ?", [CHAIN]).fetchall()[0][0]:
        return 0
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _p_res AS
           SELECT p.chain, p.txid, p.tx_id, p.n, o.tx_id AS out_tx, o.n AS out_n, o.address, o.address_id, o.value
           FROM utxo_pending p JOIN _b_out_ids o ON o.txkey = p.prev_txkey AND o.n = p.prev_n AND o.chain = p.chain
           WHERE p.chain = ? AND o.txid = p.prev_txid""",
        [CHAIN],
    )
    found = int(con.execute("SELECT count(*) FROM _p_res").fetchall()[0][0])
    if found:
        _quarantine_disagreements(
            store, """_p_res r JOIN (SELECT *, address AS script_address FROM inputs WHERE address_source = 'script') i
                      ON i.chain = r.chain AND i.tx_id = r.tx_id AND i.n = r.n
                      JOIN transactions t ON t.chain = i.chain AND t.tx_id = i.tx_id""")
        con.execute(
            """UPDATE inputs SET address = r.address, value = r.value, address_id = r.address_id, address_source = 'prevout',
                      spend_type = CASE WHEN inputs.address = r.address THEN inputs.spend_type END
               FROM _p_res r WHERE inputs.tx_id = r.tx_id AND inputs.n = r.n AND inputs.chain = r.chain""")
        con.execute(
            """UPDATE outputs SET spent_by_txid = r.txid, spent_by_n = r.n FROM _p_res r
               WHERE outputs.chain = r.chain AND outputs.tx_id = r.out_tx AND outputs.n = r.out_n""")
        con.execute(
            """UPDATE transactions SET fee = f.vin - f.vout
               FROM (
                   WITH touched AS (SELECT DISTINCT tx_id FROM _p_res),
                   vin AS (SELECT tx_id, sum(value) AS vin FROM inputs WHERE tx_id IN (SELECT tx_id FROM touched)
                           AND chain = ? GROUP BY tx_id HAVING count(*) = count(value)),
                   vout AS (SELECT tx_id, sum(value) AS vout FROM outputs WHERE tx_id IN (SELECT tx_id FROM vin)
                            AND chain = ? GROUP BY tx_id)
                   SELECT vin.tx_id, vin.vin, coalesce(vout.vout, 0) AS vout FROM vin LEFT JOIN vout USING (tx_id)
               ) f
               WHERE transactions.chain = ? AND transactions.tx_id = f.tx_id""", [CHAIN, CHAIN, CHAIN])
        graph.append_utxo_flows(
            store, None,
            """SELECT r.chain, r.txid, r.n, r.tx_id, r.address, r.address_id, r.value, t.block_time AS time,
                      t.block_height AS height, t.run_id, r.tx_id * 2097152 + r.n AS ord
               FROM _p_res r JOIN transactions t ON t.chain = r.chain AND t.tx_id = r.tx_id""")
        con.execute(
            """DELETE FROM utxo_pending WHERE chain = ? AND EXISTS
               (SELECT 1 FROM _p_res r WHERE r.tx_id = utxo_pending.tx_id AND r.n = utxo_pending.n)""", [CHAIN])
    con.execute("DROP TABLE IF EXISTS _p_res")
    return found


# -- the best chain --------------------------------------------------------------------------------------
def block_work(bits: int) -> int:
    """Expected hashes for a block of this nBits: 2^256 / (target + 1), as Bitcoin Core's GetBlockProof."""
    target = bits_to_target(bits)
    return (1 << 256) // (target + 1) if target > 0 else 0


def _chainwork(store: Store, blocks: list[dict]) -> dict[str, tuple[int, str]]:
    """Accumulated work and work root of each block: from a stored or batch parent, else the block
    starts a fragment rooted at its missing parent. Roots that are blocks of this batch are resolved
    (files out of order), so no returned root is a batch block."""
    by_hash = {b["hash"]: b for b in blocks}
    prevs = list({b["prev_hash"] for b in blocks} - by_hash.keys())
    stored = {h: (int(cw), r) for h, cw, r in store.con.execute(
        "SELECT hash, chainwork, work_root FROM blocks WHERE chain = ? AND chainwork IS NOT NULL "
        "AND hash IN (SELECT unnest(?))", [CHAIN, prevs]).fetchall()}
    rel: dict[str, tuple[int, str]] = {}
    for b in blocks:
        stack, h = [], b["hash"]
        while h in by_hash and h not in rel:
            stack.append(h)
            h = by_hash[h]["prev_hash"]
        base = rel[h] if h in rel else stored.get(h, (0, h))
        for x in reversed(stack):
            base = (base[0] + block_work(by_hash[x]["bits"]), base[1])
            rel[x] = base
    final = {}
    for h, (cw, r) in rel.items():
        while r in rel:  # a stored parent whose fragment is rooted at a block of this batch
            cw, r = cw + rel[r][0], rel[r][1]
        final[h] = (cw, r)
    return final


def _reroot(store: Store, work: dict[str, tuple[int, str]]) -> set[str]:
    """Stored fragments rooted at a block of this batch join its chain: their work and root move on.
    Returns the hashes of the blocks moved (their best-chain marks are re-decided)."""
    con = store.con
    olds = list(work)
    moved = [r[0] for r in con.execute(
        "SELECT hash FROM blocks WHERE chain = ? AND work_root IN (SELECT unnest(?))", [CHAIN, olds]).fetchall()]
    if moved:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _reroot AS SELECT unnest(?) AS old,
                      CAST(unnest(?) AS DECIMAL(38,0)) AS add, unnest(?) AS root""",
            [olds, [str(work[h][0]) for h in olds], [work[h][1] for h in olds]])
        con.execute(
            """UPDATE blocks SET chainwork = blocks.chainwork + m.add, work_root = m.root FROM _reroot m
               WHERE blocks.chain = ? AND blocks.work_root = m.old""", [CHAIN])
        con.execute("DROP TABLE _reroot")
    return set(moved)


def _choose_best(store: Store, roots: set[str], untrusted: set[str]) -> tuple[list[str], list[str]]:
    """The best chain of every fragment named by ``roots``: the path to its most-work block (on equal
    work the one already best, then the one stored first). Returns (blocks to mark best, blocks to mark
    stale). Reads only the blocks table: the tips, the blocks not on the best chain, and ``untrusted``."""
    con = store.con
    roots_l = list(roots)
    tips: dict[str, tuple] = {}
    for root, h, best, arrival in con.execute(
        """WITH m AS (SELECT work_root, max(chainwork) AS cw FROM blocks
                      WHERE chain = ? AND work_root IN (SELECT unnest(?)) GROUP BY work_root)
           SELECT b.work_root, b.hash, b.in_best_chain, b.arrival FROM blocks b
           JOIN m ON b.work_root = m.work_root AND b.chainwork = m.cw WHERE b.chain = ?""",
        [CHAIN, roots_l, CHAIN],
    ).fetchall():
        rank = (not best, arrival if arrival is not None else 0, h)
        if root not in tips or rank < tips[root][0]:
            tips[root] = (rank, h)
    nodes = {h: (prev, root, best) for h, prev, root, best in con.execute(
        """SELECT hash, prev_hash, work_root, in_best_chain FROM blocks WHERE chain = ? AND work_root IN (SELECT unnest(?))
           AND (NOT in_best_chain OR hash IN (SELECT unnest(?)))""", [CHAIN, roots_l, list(untrusted) or [""]]).fetchall()}
    to_best: list[str] = []
    on_path: set[str] = set()
    forks: dict[str, str] = {}
    for root, (_, tip) in tips.items():
        h = tip
        while h in nodes:  # down to a block that was best before this batch (or the fragment's root)
            on_path.add(h)
            if not nodes[h][2]:
                to_best.append(h)
            h = nodes[h][0]
        forks[root] = h
    to_stale = [h for h, (_, _, best) in nodes.items() if best and h not in on_path]
    # the old best chain above each fork point (a path, so: more work than the fork block)
    to_stale += [r[0] for r in con.execute(
        """SELECT b.hash FROM (SELECT unnest(?) AS root, unnest(?) AS fork) f
           LEFT JOIN blocks fb ON fb.chain = ? AND fb.hash = f.fork AND fb.work_root = f.root
           JOIN blocks b ON b.chain = ? AND b.work_root = f.root AND b.in_best_chain
                AND b.chainwork > coalesce(fb.chainwork, 0)
           WHERE b.hash NOT IN (SELECT unnest(?))""",
        [list(forks), list(forks.values()), CHAIN, CHAIN, list(untrusted) or [""]]).fetchall()]
    return to_best, to_stale


def _switch(store: Store, promote: list[str], demote: list[str]) -> None:
    """Mark blocks best / stale and move their transactions: ``demote`` (best-chain blocks) out of the
    canonical tables and flows into the stale tables, then ``promote`` (stored stale blocks) back."""
    con = store.con
    if demote:
        con.execute("UPDATE blocks SET in_best_chain = false WHERE chain = ? AND hash IN (SELECT unnest(?))", [CHAIN, demote])
        _demote(store, demote)
    if promote:
        con.execute("UPDATE blocks SET in_best_chain = true WHERE chain = ? AND hash IN (SELECT unnest(?))", [CHAIN, promote])
        _promote(store, promote)


def _demote(store: Store, hashes: list[str]) -> None:
    con = store.con
    con.execute("CREATE OR REPLACE TEMP TABLE _dm_tx AS SELECT * FROM transactions WHERE chain = ? AND block_hash IN (SELECT unnest(?))",
                [CHAIN, hashes])
    con.execute(
        """INSERT INTO stale_transactions BY NAME
           SELECT chain, txid, wtxid, block_hash, block_height, block_time, position, version, locktime, size, weight,
                  is_coinbase, input_count, output_count, tx_id, run_id FROM _dm_tx""")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _dm_out AS SELECT o.rowid AS orow, o.*, t.block_time
           FROM outputs o JOIN _dm_tx t ON t.tx_id = o.tx_id WHERE o.chain = ?""", [CHAIN])
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _dm_in AS SELECT i.rowid AS irow, i.*, t.block_time
           FROM inputs i JOIN _dm_tx t ON t.tx_id = i.tx_id WHERE i.chain = ?""", [CHAIN])
    con.execute(
        """INSERT INTO stale_outputs BY NAME
           SELECT chain, txid, n, address, script_type, value, block_height, block_time AS time, tx_id,
                  tx_id * 2097152 + n AS ord, run_id FROM _dm_out""")
    con.execute(
        """INSERT INTO stale_inputs BY NAME
           SELECT chain, txid, n, prev_txid, prev_n, sequence, block_height, block_time AS time, tx_id,
                  tx_id * 2097152 + n AS ord, run_id, CASE WHEN spend_type IS NOT NULL THEN address END AS script_address,
                  spend_type FROM _dm_in""")
    # what the demoted inputs spent is unspent again on the best chain
    con.execute(
        """UPDATE outputs SET spent_by_txid = NULL, spent_by_n = NULL FROM _dm_in d
           WHERE outputs.chain = ? AND outputs.txkey = d.prev_txkey AND outputs.n = d.prev_n
             AND outputs.spent_by_txid = d.txid AND outputs.spent_by_n = d.n""", [CHAIN])
    # best-chain inputs that spent a demoted output wait for it again (only fragments not yet joined)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _dm_dep AS
           SELECT i.rowid AS irow, i.chain, i.txid, i.tx_id, i.n, i.prev_txid, i.prev_n, i.prev_txkey
           FROM inputs i JOIN _dm_out o ON i.prev_txkey = o.txkey AND i.prev_n = o.n AND i.prev_txid = o.txid
           WHERE i.chain = ? AND i.value IS NOT NULL AND i.tx_id NOT IN (SELECT tx_id FROM _dm_tx)""", [CHAIN])
    if con.execute("SELECT count(*) FROM _dm_dep").fetchall()[0][0]:
        # an address derived from the spending script stands without the output (it agreed with it)
        con.execute(
            """UPDATE inputs SET value = NULL, address = CASE WHEN spend_type IS NULL THEN NULL ELSE address END,
                      address_id = CASE WHEN spend_type IS NULL THEN NULL ELSE address_id END,
                      address_source = CASE WHEN spend_type IS NULL THEN NULL ELSE 'script' END
               WHERE rowid IN (SELECT irow FROM _dm_dep)""")
        con.execute(
            """DELETE FROM flows WHERE chain = ? AND kind = 'utxo' AND leg = 'in'
               AND EXISTS (SELECT 1 FROM _dm_dep d WHERE flows.dst_id = -d.tx_id AND flows.idx = d.n)""", [CHAIN])
        con.execute("INSERT INTO utxo_pending SELECT chain, txid, tx_id, n, prev_txid, prev_n, prev_txkey FROM _dm_dep")
        con.execute("UPDATE transactions SET fee = NULL WHERE chain = ? AND tx_id IN (SELECT tx_id FROM _dm_dep)", [CHAIN])
    con.execute(
        """DELETE FROM flows WHERE chain = ? AND kind = 'utxo'
           AND (src_id IN (SELECT -tx_id FROM _dm_tx) OR dst_id IN (SELECT -tx_id FROM _dm_tx))""", [CHAIN])
    graph.flows_deleted(store)
    con.execute("DELETE FROM utxo_pending WHERE chain = ? AND tx_id IN (SELECT tx_id FROM _dm_tx)", [CHAIN])
    con.execute("DELETE FROM outputs WHERE rowid IN (SELECT orow FROM _dm_out)")
    con.execute("DELETE FROM inputs WHERE rowid IN (SELECT irow FROM _dm_in)")
    con.execute("DELETE FROM transactions WHERE chain = ? AND tx_id IN (SELECT tx_id FROM _dm_tx)", [CHAIN])
    for t in ("_dm_tx", "_dm_out", "_dm_in", "_dm_dep"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _promote(store: Store, hashes: list[str]) -> int:
    """Load stale blocks' transactions into the canonical tables and flows (heights as now known)."""
    con = store.con
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _b_tx AS
           SELECT s.* EXCLUDE (block_height, block_time), b.height AS block_height, b.time AS block_time
           FROM stale_transactions s JOIN blocks b ON b.chain = s.chain AND b.hash = s.block_hash
           WHERE s.chain = ? AND s.block_hash IN (SELECT unnest(?))""", [CHAIN, hashes])
    for table, name in (("stale_outputs", "_b_out"), ("stale_inputs", "_b_in")):
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {name} AS
                SELECT s.* EXCLUDE (block_height, time), t.block_height, t.block_time AS time
                FROM {table} s JOIN _b_tx t ON t.tx_id = s.tx_id WHERE s.chain = ?""", [CHAIN])
    resolved = _load_utxo(store)
    for table in ("stale_outputs", "stale_inputs", "stale_transactions"):
        con.execute(f"DELETE FROM {table} WHERE chain = ? AND tx_id IN (SELECT tx_id FROM _b_tx)", [CHAIN])
    for t in ("_b_tx", "_b_out", "_b_in"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return resolved


def _fill_chainwork(store: Store) -> int:
    """Stores written before best-chain selection: give their Bitcoin blocks chainwork, work root and
    arrival, then decide the best chain over them (stale ones leave flows). Returns blocks made stale."""
    rows = store.query(
        "SELECT hash, prev_hash, bits FROM blocks WHERE chain = ? AND chainwork IS NULL AND bits IS NOT NULL "
        "ORDER BY run_id, source, source_offset, rowid", [CHAIN])
    if not rows:
        return 0
    blocks = [{"hash": h, "prev_hash": p, "bits": int(b)} for h, p, b in rows]
    work = _chainwork(store, blocks)
    first = graph.next_ids(store, "block", len(blocks))
    hashes = [b["hash"] for b in blocks]
    store.con.execute(
        """UPDATE blocks SET chainwork = w.cw, work_root = w.root, arrival = w.arrival
           FROM (SELECT unnest(?) AS hash, CAST(unnest(?) AS DECIMAL(38,0)) AS cw, unnest(?) AS root,
                        unnest(?) AS arrival) w
           WHERE blocks.chain = ? AND blocks.hash = w.hash""",
        [hashes, [str(work[h][0]) for h in hashes], [work[h][1] for h in hashes],
         list(range(first, first + len(hashes))), CHAIN])
    untrusted = _reroot(store, work) | set(hashes)
    to_best, to_stale = _choose_best(store, {r for _, r in work.values()}, untrusted)
    _switch(store, to_best, to_stale)
    return len(to_stale)


def _check_rpc_chaining(store: Store, blocks: list[dict], heights: list) -> None:
    """A node's block at height h must name the block at h−1 as its parent, where that is known."""
    by_height = {h: b["hash"] for b, (h, _) in zip(blocks, heights)}
    wanted = [h - 1 for h, _ in heights if h and h - 1 not in by_height]
    stored: dict[int, str] = {}
    if wanted:
        stored = dict(store.con.execute(
            "SELECT height, hash FROM blocks WHERE chain = ? AND in_best_chain AND height IN (SELECT unnest(?))", [CHAIN, wanted]
        ).fetchall())
    for b, (h, _) in zip(blocks, heights):
        parent = (by_height.get(h - 1) or stored.get(h - 1)) if h else None
        if parent is not None and parent != b["prev_hash"]:
            error = _Reorg if h - 1 not in by_height else IngestError
            raise error(b["_source"], f"block height {h}", f"prev-hash chaining broken: parent is {b['prev_hash']}, "
                              f"but the block at height {h - 1} is {parent}", item=f"block {b['hash']}")


def _propagate_heights(store: Store) -> None:
    """Blocks stored without a height get one once a relative's height is known (out-of-order files):
    a descendant of a known block is its height plus the distance, an ancestor its height minus it."""
    walks = {
        "forward": ("b.prev_hash = p.hash", "p.height + 1", "b.prev_hash = walk.hash", "walk.height + 1", "min"),
        "backward": ("p.prev_hash = b.hash", "p.height - 1", "walk.prev_hash = b.hash", "walk.height - 1", "max"),
    }
    for _ in range(4):
        before = store.scalar("SELECT count(*) FROM blocks WHERE chain = ? AND height IS NULL", [CHAIN])
        if not before:
            break
        for seed_join, seed_height, step_join, step_height, pick in walks.values():
            store.con.execute(
                f"""
                UPDATE blocks SET height = w.height, height_source = 'chain'
                FROM (
                    WITH RECURSIVE walk(hash, prev_hash, height) AS (
                        SELECT b.hash, b.prev_hash, {seed_height} FROM blocks b
                        JOIN blocks p ON {seed_join} AND p.chain = b.chain
                        WHERE b.chain = ? AND b.height IS NULL AND p.height IS NOT NULL
                        UNION ALL
                        SELECT b.hash, b.prev_hash, {step_height} FROM blocks b JOIN walk ON {step_join}
                        WHERE b.chain = ? AND b.height IS NULL
                    ) SELECT hash, {pick}(height) AS height FROM walk GROUP BY hash
                ) w
                WHERE blocks.chain = ? AND blocks.hash = w.hash
                """,
                [CHAIN, CHAIN, CHAIN],
            )
        if store.scalar("SELECT count(*) FROM blocks WHERE chain = ? AND height IS NULL", [CHAIN]) == before:
            break
    store.con.execute(
        """UPDATE transactions SET block_height = b.height FROM blocks b
           WHERE transactions.chain = ? AND transactions.block_height IS NULL AND b.chain = ?
             AND b.hash = transactions.block_hash AND b.height IS NOT NULL""", [CHAIN, CHAIN])
    for table, key in (("outputs", "tx_id"), ("inputs", "tx_id"), ("flows", "txid")):
        store.con.execute(
            f"""UPDATE {table} SET {"height" if table == "flows" else "block_height"} = t.block_height FROM transactions t
                WHERE {table}.chain = ? AND {table}.{"height" if table == "flows" else "block_height"} IS NULL AND t.chain = ?
                  AND t.{key} = {table}.{key} AND t.block_height IS NOT NULL""", [CHAIN, CHAIN])
