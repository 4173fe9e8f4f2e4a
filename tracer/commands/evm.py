"""`tracer ingest evm` (a node over JSON-RPC) and `tracer ingest etl` (ethereum-etl exports)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from tracer.commands.checks import naming, open_store_at, source_paths
from tracer.errors import MoneytrailError


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @ingest_app.command("evm")
    def ingest_evm_cmd(
        ctx: typer.Context,
        rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the node (http://...).")],
        from_block: Annotated[int, typer.Option("--from-block", help="First block.")] = 0,
        to_block: Annotated[
            int | None,
            typer.Option("--to-block", help="Last block (default: tip − confirmations)."),
        ] = None,
        tokens: Annotated[
            list[str] | None,
            typer.Option("--tokens", help="Only these ERC-20 contracts (repeat; USDT/USDC/DAI on mainnet)."),
        ] = None,
        all_tokens: Annotated[
            bool,
            typer.Option("--all-tokens", help="Every ERC-20 token (the default)."),
        ] = False,
        traces: Annotated[
            bool,
            typer.Option("--traces", help="Internal ETH transfers (debug_traceBlockByNumber)."),
        ] = False,
        receipts: Annotated[
            str,
            typer.Option("--receipts", help="block, tx or none (see docs/evm.md)."),
        ] = "block",
        chain: Annotated[
            str | None,
            typer.Option("--chain", help="Chain name (default: the registry's name for the node's chain id)."),
        ] = None,
        confirmations: Annotated[
            int | None,
            typer.Option("--confirmations", help="Stay this many blocks below the tip (default 12; 0 on dev chains)."),
        ] = None,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Blocks per JSON-RPC batch.")] = 100,
        workers: Annotated[int, typer.Option("--workers", help="Batches fetched concurrently.")] = 2,
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds per HTTP request.")] = 30.0,
        retries: Annotated[int, typer.Option("--retries", help="Retries per request (with backoff).")] = 4,
        transport: Annotated[
            str,
            typer.Option("--transport", help="web3 (web3.py's HTTPProvider) or raw (requests); see docs/evm.md."),
        ] = "web3",
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Ingest blocks, transactions, ERC-20 and (with --traces) internal transfers from a node."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from tracer.ingest.evm.node import ingest_evm
        from tracer.ingest.evm.rpc import TRANSPORTS, RpcClient

        tokens = [x for t in tokens or [] for x in t.split(",") if x] or None
        if all_tokens and tokens:
            raise typer.BadParameter("--tokens and --all-tokens exclude each other")
        if transport not in TRANSPORTS:
            raise typer.BadParameter(f"--transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        store = open_store_at(ctx.obj["db"])
        with naming(rpc):
            client = RpcClient(rpc, timeout=timeout, retries=retries, transport=transport)
        err = Console(stderr=True)
        with Progress(TextColumn("blocks"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=err, disable=as_json or not err.is_terminal, transient=True) as bar:
            task = bar.add_task("", total=None)

            started = time.perf_counter()

            def progress(done: int, total: int, transfers: int) -> None:
                secs = max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=done, total=total,
                           description=f"{transfers:,} transfers · {done / secs:,.0f} blocks/s "
                                       f"· {transfers / secs:,.0f} transfers/s")

            with naming(rpc):
                res = ingest_evm(store, client, from_block, to_block, tokens=tokens or None, traces=traces,
                                 receipts=receipts, chain=chain, confirmations=confirmations,
                                 batch_size=batch_size, workers=workers, progress=progress)
        _report(res.__dict__, as_json)

    @ingest_app.command("etl")
    def ingest_etl_cmd(
        ctx: typer.Context,
        paths: Annotated[
            list[Path],
            typer.Argument(help="ethereum-etl export files or directories (CSV, JSON)."),
        ],
        chain: Annotated[
            str | None,
            typer.Option("--chain", help="Chain name (default: the registry's name for --chain-id, e.g. 56 bsc)."),
        ] = None,
        chain_id: Annotated[int, typer.Option("--chain-id", help="Chain id of the export's network.")] = 1,
        token_price: Annotated[
            list[str] | None,
            typer.Option("--token-price", help="CONTRACT=ASSET: value this token with ASSET's prices "
                                               "(e.g. a fork's Tether as USDT); repeatable."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Import ethereum-etl exports (blocks, transactions, receipts, logs, token_transfers)."""
        from tracer.ingest.evm.etl import ingest_etl

        prices = {}
        for item in token_price or []:
            contract, sep, asset = item.partition("=")
            if not sep or not contract.strip() or not asset.strip():
                raise typer.BadParameter(f"--token-price takes CONTRACT=ASSET, not {item!r}")
            prices[contract.strip().lower()] = asset.strip().upper()
        source_paths(paths, text=True)
        store = open_store_at(ctx.obj["db"])
        source = ", ".join(map(str, paths))
        with naming(source):
            res = ingest_etl(store, paths, chain=chain, chain_id=chain_id, token_prices=prices or None)
        if not any(isinstance(v, int) and v for k, v in res.items() if k != "run_id"):
            raise MoneytrailError(f"{source}: no rows found (header only?): nothing was ingested")
        _report(res, as_json)


def _report(res: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(res, default=str))
        return
    notes = res.pop("notes", None) or []
    print(", ".join(f"{k} {v}" for k, v in res.items() if v not in (None, 0, [], {})))
    for n in notes:
        print(f"note: {n}")
