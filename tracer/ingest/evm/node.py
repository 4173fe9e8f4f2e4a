"""``tracer ingest evm``: blocks, transactions, token and internal transfers from an Ethereum node.

fetch (:mod:`tracer.ingest.evm.rpc`) → map (:mod:`tracer.ingest.evm.mapper`) → load
(:mod:`tracer.ingest.evm.load`). Batches of blocks are fetched ahead by a small thread pool
(bounded concurrency: at most ``workers + 1`` batches in flight) and committed strictly in order,
one transaction per batch, each followed by a checkpoint. So:

* a crash or kill leaves the store as it was after the last committed batch, and the next run of
  the same command resumes after the checkpoint;
* every batch *replaces* its block range, so a rerun adds nothing and a resumed run ends with the
  same rows as one clean run;
* before a batch is loaded, its first block's ``parentHash`` must equal the stored hash of the
  block below it; if not, the node has switched to another fork: the store is rolled back to the
  highest block both agree on (the fork point) and ingest continues from there. Blocks within
  ``confirmations`` of the tip are not read at all (12 by default on public chains: deep reorgs
  on post-Merge Ethereum are bounded by finality, ~64 blocks; 12 is the customary exchange depth).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


from tracer import chains
from tracer.errors import IngestError
from tracer.ingest.evm import load as evm_load
from tracer.ingest.evm.load import Scope
from tracer.ingest.evm.mapper import EvmBatch, map_blocks
from tracer.ingest.evm.rpc import TRANSFER_TOPIC, MethodNotSupported, RpcClient, RpcError
from tracer.ingest.evm.tokens import KNOWN_TOKENS, fetch_metadata
from tracer.store import Store

DEV_CHAIN_IDS = chains.DEV_CHAIN_IDS


def default_chain_name(chain_id: int) -> str:
    """The chain registry's name for ``chain_id`` (1 ethereum, 56 bsc, 31337 anvil, ...; see
    :mod:`tracer.chains`), ``evm-<id>`` for an id it does not know (override with --chain)."""
    return chains.chain_name(chain_id)


def network_name(chain_id: int) -> str:
    """The network the ``chains`` table records for ``chain_id`` (``mainnet``, ``sepolia``, ...)."""
    return chains.network_of(chain_id)


def default_confirmations(chain_id: int) -> int:
    return 0 if chain_id in DEV_CHAIN_IDS else 12


@dataclass
class EvmIngestResult:
    run_id: int
    chain: str
    chain_id: int
    from_block: int
    to_block: int
    blocks: int = 0
    transactions: int = 0
    transfers: int = 0
    logs: int = 0
    reorgs: int = 0
    rolled_back: int = 0
    resumed_from: int | None = None
    receipts_mode: str = "block"
    transport: str = "web3"
    tokens: list[str] | None = None  # --tokens as EIP-55 checksummed addresses (for display)
    notes: list[str] = field(default_factory=list)


class _Reorg(Exception):
    def __init__(self, lo: int, inside: bool):
        self.lo, self.inside = lo, inside


def resolve_tokens(tokens: Sequence[str] | None, chain_id: int) -> frozenset[str] | None:
    """Token contract addresses, lowercase as stored; well-known symbols (USDT, ...) on mainnet too.

    Validated with web3: ``Web3.is_address`` (0x + 40 hex digits) and, for an address written in
    mixed case, ``Web3.is_checksum_address`` — mixed case is an EIP-55 checksum
    (https://eips.ethereum.org/EIPS/eip-55), so a mistyped checksummed address is refused instead of
    silently matching nothing. All-lowercase and all-uppercase addresses carry no checksum.
    """
    if tokens is None:
        return None
    from web3 import Web3  # imported when used (~1 s): `tracer ingest etl` imports this module too

    known = KNOWN_TOKENS.get(chain_id, {})
    out = set()
    for t in tokens:
        a = known.get(t.strip().upper(), t.strip())
        a = "0x" + a[2:] if a[:2] in ("0x", "0X") else a
        if not (a.startswith("0x") and Web3.is_address(a)):
            raise IngestError("--tokens", t, "not a token contract address (0x + 40 hex digits)")
        digits = a[2:]
        if digits not in (digits.lower(), digits.upper()) and not Web3.is_checksum_address(a):
            raise IngestError("--tokens", t, "EIP-55 checksum does not match (mistyped?): expected "
                              f"{Web3.to_checksum_address(a)} if the digits are right")
        out.add(a.lower())
    return frozenset(out)


def checksummed(addresses: Sequence[str] | frozenset[str] | None) -> list[str] | None:
    """EIP-55 display form of stored (lowercase) addresses, sorted, via ``Web3.to_checksum_address``."""
    if addresses is None:
        return None
    from web3 import Web3

    return sorted(Web3.to_checksum_address(a) for a in addresses)


def ingest_evm(
    store: Store,
    rpc: str | RpcClient,
    from_block: int = 0,
    to_block: int | None = None,
    *,
    tokens: Sequence[str] | None = None,
    traces: bool = False,
    receipts: str = "block",
    chain: str | None = None,
    confirmations: int | None = None,
    batch_size: int = 100,
    workers: int = 2,
    native_asset: str | None = None,
    max_reorg_depth: int = 256,
    progress: Callable[[int, int, int], None] | None = None,
    trace_api: str = "call",
    transport: str = "web3",
) -> EvmIngestResult:
    """Ingest blocks [from_block, to_block] (to_block None: the tip minus ``confirmations``).

    ``receipts``: ``block`` (eth_getBlockReceipts; falls back to ``tx`` if the node lacks it),
    ``tx`` (batched eth_getTransactionReceipt) or ``none`` (no status/fees; token transfers from
    eth_getLogs over shrinking ranges). ``tokens``: only these ERC-20 contracts (default: all).
    ``trace_api`` (with ``traces``): ``call`` (geth's debug_traceBlockByNumber with callTracer; falls
    back to ``parity`` if the node lacks it) or ``parity`` (``trace_block``: erigon, nethermind).
    ``transport`` (when ``rpc`` is a URL): ``web3`` (web3.py's HTTPProvider) or ``raw`` (requests).
    ``chain`` and ``native_asset`` default to the chain registry's name and coin for the node's chain id.
    """
    if receipts not in ("block", "tx", "none"):
        raise ValueError(f"receipts must be block, tx or none, not {receipts!r}")
    if trace_api not in ("call", "parity"):
        raise ValueError(f"trace_api must be call or parity, not {trace_api!r}")
    client = rpc if isinstance(rpc, RpcClient) else RpcClient(rpc, transport=transport)
    url = client.url
    chain_id = client.chain_id()
    chain = chain or default_chain_name(chain_id)
    # the chain id's native coin (56: BNB), else the named chain's, else ETH
    native_asset = native_asset or chains.native_symbol(chain_id, chains.native_symbol(chain))
    token_set = resolve_tokens(tokens, chain_id)
    confirmations = default_confirmations(chain_id) if confirmations is None else confirmations
    tip = client.block_number()
    safe_tip = tip - confirmations
    end = safe_tip if to_block is None else min(to_block, safe_tip)
    if from_block < 0:
        raise IngestError(url, f"block {from_block}", "--from-block must be ≥ 0")
    params = {"from_block": from_block, "to_block": to_block, "resolved_to_block": end, "tokens":
              sorted(token_set) if token_set else None, "traces": traces, "receipts": receipts,
              "chain_id": chain_id, "confirmations": confirmations, "batch_size": batch_size,
              "transport": client.transport, "native_asset": native_asset}
    run = store.begin_run("evm", url, params)
    result = EvmIngestResult(run.run_id, chain, chain_id, from_block, end, receipts_mode=receipts,
                             transport=client.transport, tokens=checksummed(token_set))
    try:
        with store.transaction():
            store.claim_chain(chain, "account", network_name(chain_id), chain_id, run.run_id)
            # claim_chain reads with fetchone(); DuckDB 2.0 keeps that result open and then
            # refuses to register Arrow views on the connection. Finish it.
            store.con.execute("SELECT 1").fetchall()
        if to_block is not None and to_block > safe_tip:
            result.notes.append(f"stopped at block {end}: {to_block} is within {confirmations} "
                                f"confirmations of the tip {tip}")
        scope = Scope(tokens=token_set, all_logs=receipts != "none", traces=traces)
        # Following the tip (no --to-block) keeps one checkpoint per start block, so each run
        # continues where the last one stopped; a fixed range has its own.
        unit = (f"{chain} {from_block}-{'tip' if to_block is None else end} receipts={receipts} "
                f"traces={int(traces)} tokens=" + (",".join(sorted(token_set)) if token_set else "all"))
        start = from_block
        done_pos, _ = evm_load.load_checkpoint(store, unit)
        if done_pos is not None and done_pos >= from_block:
            start = done_pos + 1
            result.resumed_from = start
        if end >= start:
            _run(store, client, run.run_id, chain, start, end, scope, traces, receipts, batch_size,
                 workers, native_asset, max_reorg_depth, unit, result, progress, trace_api)
        with store.transaction():
            evm_load.save_checkpoint(store, unit, max(end, (done_pos or -1)), done=True, run_id=run.run_id)
        run.add(blocks=result.blocks, transactions=result.transactions, transfers=result.transfers,
                logs=result.logs, reorgs=result.reorgs)
        run.finish()
    except BaseException as exc:
        raw = getattr(exc, "raw", None)
        if isinstance(exc, IngestError) and raw is not None:
            run.quarantine(exc.position, raw, exc.reason, source=exc.source)
        run.add(blocks=result.blocks, transactions=result.transactions, transfers=result.transfers)
        run.fail(exc)
        raise
    return result


def _run(store, client, run_id, chain, start, end, scope, traces, receipts, batch_size, workers,
         native_asset, max_reorg_depth, unit, result, progress, trace_api="call") -> None:
    mode = [receipts]  # may switch block -> tx on the first batch
    tracer = [trace_api]  # may switch call (debug_traceBlockByNumber) -> parity (trace_block)
    token_cache = evm_load.cached_tokens(store, chain)
    known_tokens = set(token_cache["address"].to_pylist())
    total = end - start + 1
    done_blocks = 0
    inside_retries = 0

    def fetch(lo: int, hi: int) -> EvmBatch:
        heights = list(range(lo, hi + 1))
        recs = logs = trs = None
        blocks = None
        if mode[0] == "block":
            try:
                # Blocks and their receipts in one HTTP batch: one round trip, served in parallel.
                blocks, recs = client.get_blocks_and_receipts(heights)
            except MethodNotSupported:
                if mode[0] == "block":  # another fetch thread may have found out first
                    result.notes.append("node has no eth_getBlockReceipts: receipts read one by one")
                mode[0] = "tx"
                result.receipts_mode = "tx"
        if blocks is None:
            blocks = client.get_blocks(heights, full=True)
        if mode[0] == "tx":
            hashes, hts = [], []
            for h, b in zip(heights, blocks, strict=True):
                for t in b.get("transactions") or []:
                    hashes.append(t["hash"] if isinstance(t, dict) else t)
                    hts.append(h)
            flat = client.get_receipts(hashes, hts)
            recs, k = [], 0
            for b in blocks:
                n = len(b.get("transactions") or [])
                recs.append(flat[k : k + n])
                k += n
        if mode[0] == "none":
            logs = client.get_logs(lo, hi, address=sorted(scope.tokens) if scope.tokens else None,
                                   topics=[TRANSFER_TOPIC])
        if traces:
            if tracer[0] == "call":
                try:
                    trs = client.trace_blocks(heights)
                except MethodNotSupported:
                    if tracer[0] == "call":
                        result.notes.append("node has no debug_traceBlockByNumber: internal transfers "
                                            "from trace_block")
                    tracer[0] = "parity"
            if tracer[0] == "parity":
                trs = client.trace_blocks_parity(heights)
        try:
            return map_blocks(blocks, chain, client.url, run_id, recs, trs, logs,
                              set(scope.tokens) if scope.tokens is not None else None, native_asset,
                              trace_kind=tracer[0])
        except IngestError as exc:
            exc.raw = _raw_for(exc.position, blocks)  # type: ignore[attr-defined]
            raise

    above = evm_load.highest_height(store, chain)
    next_lo = start
    pool = cf.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="evm-fetch")
    pending: deque[tuple[int, int, cf.Future]] = deque()
    try:
        while next_lo <= end or pending:
            while next_lo <= end and len(pending) < max(1, workers) + 1:
                hi = min(next_lo + batch_size - 1, end)
                pending.append((next_lo, hi, pool.submit(fetch, next_lo, hi)))
                next_lo = hi + 1
            lo, hi, fut = pending.popleft()
            batch = fut.result()
            try:
                _check_links(store, chain, batch)
            except _Reorg as r:
                for _, _, f in pending:
                    f.cancel()
                # Wait for fetches already running; their results belong to a discarded fork.
                cf.wait([f for _, _, f in pending])
                pending.clear()
                if r.inside:
                    inside_retries += 1
                    if inside_retries > 5:
                        raise IngestError(client.url, f"blocks {lo}-{hi}",
                                          "blocks keep changing while read (node reorganising)") from None
                    next_lo = lo
                    continue
                fork = _fork_point(store, client, chain, lo - 1, max_reorg_depth)
                removed = evm_load.rollback_above(store, chain, fork)
                above = evm_load.highest_height(store, chain)
                result.reorgs += 1
                result.rolled_back += removed
                result.notes.append(f"reorg: block {lo} does not extend the stored chain; "
                                    f"rolled back {removed} blocks to fork point {fork}")
                done_blocks -= max(0, min(lo - 1, end) - max(fork, start - 1))
                next_lo = fork + 1
                continue
            new_tokens = batch.tokens_seen - known_tokens
            if new_tokens:
                evm_load.save_tokens(store, fetch_metadata(client, chain, new_tokens), run_id)
                known_tokens |= new_tokens
                token_cache = evm_load.cached_tokens(store, chain)
            counts = evm_load.load_batch(store, chain, batch, scope, token_cache, (unit, hi), run_id, above)
            above = max(above, hi)
            result.blocks += counts["blocks"]
            result.transactions += counts["transactions"]
            result.transfers += counts["transfers"]
            result.logs += counts["logs"]
            done_blocks += hi - lo + 1
            if progress:
                progress(min(done_blocks, total), total, result.transfers)
    finally:
        for _, _, f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _check_links(store: Store, chain: str, batch: EvmBatch) -> None:
    """Raise _Reorg unless the batch chains to itself and to the stored block below it."""
    b = batch.blocks
    if len(b) == 0:
        return
    hashes = b["hash"].to_pylist()
    prevs = b["prev_hash"].to_pylist()
    if any(p != h for p, h in zip(prevs[1:], hashes[:-1], strict=True)):
        raise _Reorg(batch.heights[0], inside=True)
    lo = batch.heights[0]
    if lo > 0:
        below = evm_load.one(store, "SELECT hash FROM blocks WHERE chain = ? AND height = ?", [chain, lo - 1])
        if below is not None and below != prevs[0]:
            raise _Reorg(lo, inside=False)


def _fork_point(store: Store, client: RpcClient, chain: str, top: int, max_depth: int) -> int:
    """Highest height ≤ top where the store and the node hold the same block hash."""
    lo = max(0, top - max_depth)
    stored = evm_load.stored_hashes(store, chain, lo, top)
    heights = sorted(stored, reverse=True)
    for start in range(0, len(heights), 64):
        chunk = heights[start : start + 64]
        node = client.get_blocks(chunk, full=False)
        for h, blk in zip(chunk, node, strict=True):
            if blk["hash"] == stored[h]:
                return h
    if lo == 0 and len(stored) == top + 1:
        return -1  # even the genesis differs: a different chain
    raise IngestError(client.url, f"block {top}",
                      f"reorg deeper than {max_depth} blocks (no common block with the store)")


def _raw_for(position: str, blocks: list[dict]) -> str:
    for b in blocks:
        if isinstance(b, dict) and position == f"block {int(b.get('number', '0x0'), 16)}":
            return json.dumps(b)
    return json.dumps(blocks)[:8192]


# -- reading back ---------------------------------------------------------------------------------


__all__ = ["EvmIngestResult", "RpcClient", "RpcError", "default_chain_name", "ingest_evm"]
