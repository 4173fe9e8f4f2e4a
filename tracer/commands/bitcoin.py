"""`tracer ingest bitcoin`: blk files, raw blocks and Bitcoin Core JSON-RPC."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tracer.commands.checks import naming, open_store_at, source_paths
from tracer.errors import MoneytrailError
from tracer.ingest.bitcoin.network import NETWORKS

if TYPE_CHECKING:
    from rich.progress import ProgressColumn


def rate_column() -> ProgressColumn:
    """Blocks/s and tx/s since the start of the ingest (the class is built on first use: rich loads
    only when blocks are ingested, not for ``--help``)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            elapsed = max(task.elapsed or 0.0, 1e-9)
            blocks, txs = task.fields.get("blocks", 0), task.fields.get("txs", 0)
            return Text(f"{blocks:,} blocks {blocks / elapsed:,.0f} blocks/s · {txs:,} tx {txs / elapsed:,.0f} tx/s")

    return RateColumn()


@contextlib.contextmanager
def progress_bar(show: bool) -> Iterator[tuple[Callable | None, Callable | None]]:
    """(on_units, on_progress) callbacks driving a rich progress bar on stderr, or (None, None) without
    one: rich is imported only when the bar is shown."""
    if not show:
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]bitcoin"), BarColumn(), TextColumn("{task.completed}/{task.total} units"),
                  rate_column(), TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("ingest", total=None, blocks=0, txs=0)

        def on_units(total: int, done: int) -> None:
            bar.update(task, total=total, completed=done)

        def on_progress(units: int, blocks: int, txs: int) -> None:
            f = bar.tasks[0].fields
            bar.update(task, advance=units, blocks=f["blocks"] + blocks, txs=f["txs"] + txs)

        yield on_units, on_progress


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @ingest_app.command("bitcoin")
    def bitcoin(
        ctx: typer.Context,
        paths: list[Path] = typer.Argument(None, help="Bitcoin Core blocks/ directory, blk*.dat files, raw block files (binary or hex)."),
        rpc: str = typer.Option(None, "--rpc", help="Bitcoin Core JSON-RPC URL, e.g. http://127.0.0.1:8332"),
        rpc_cookie: Path = typer.Option(None, "--rpc-cookie", help="Cookie file (<datadir>/.cookie)."),
        rpc_user: str = typer.Option(None, "--rpc-user"),
        rpc_password: str = typer.Option(None, "--rpc-password", envvar="BITCOIN_RPC_PASSWORD"),
        from_height: int = typer.Option(None, "--from-height"),
        to_height: int = typer.Option(None, "--to-height"),
        confirmations: int = typer.Option(6, "--confirmations", min=0,
                                          help="RPC: stay this many blocks below the node's tip (default 6)."),
        network: str = typer.Option("mainnet", "--network", help="mainnet, testnet, signet or regtest"),
        progress: bool = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
        json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    ) -> None:
        """Ingest Bitcoin blocks, verified (merkle root, proof of work, chaining), into the store."""
        from tracer.ingest.bitcoin.blocks import ingest_bitcoin

        if network not in NETWORKS:
            raise MoneytrailError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
        if not paths and not rpc:
            raise MoneytrailError("give block files/directories or --rpc URL")
        source_paths(paths or [])
        if rpc_cookie is not None:
            source_paths([rpc_cookie])
        client = None
        if rpc:
            from tracer.ingest.bitcoin.rpc import BitcoinRPC  # requests loads only for an RPC ingest

            client = BitcoinRPC(rpc, user=rpc_user, password=rpc_password, cookie=rpc_cookie)
        store = open_store_at(ctx.obj["db"])
        show = sys.stderr.isatty() if progress is None else progress
        started = time.perf_counter()
        source = ", ".join(map(str, paths or [])) or rpc
        with progress_bar(show) as (on_units, on_progress), naming(source):
            summary = ingest_bitcoin(store, paths or [], rpc=client, from_height=from_height, to_height=to_height,
                                     confirmations=confirmations, network_name=network, progress=on_progress,
                                     on_units=on_units)
        if paths and not rpc and not (summary.blocks or summary.blocks_skipped or summary.units_skipped):
            raise MoneytrailError(f"{source}: no blocks found: nothing was ingested")
        elapsed = time.perf_counter() - started
        if json_out:
            import json

            print(json.dumps({"run_id": summary.run_id, **summary.counts, "inputs_resolved": summary.inputs_resolved,
                              "seconds": round(elapsed, 3)}))
        else:
            from rich.console import Console

            Console(stderr=True).print(
                f"run {summary.run_id}: {summary.blocks:,} blocks, {summary.transactions:,} transactions, "
                f"{summary.inputs:,} inputs, {summary.outputs:,} outputs loaded; {summary.blocks_skipped:,} blocks "
                f"already stored; {summary.inputs_resolved:,} inputs resolved; {elapsed:.2f} s "
                f"({summary.transactions / max(elapsed, 1e-9):,.0f} tx/s)",
                highlight=False,
            )
