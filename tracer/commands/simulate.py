"""`tracer simulate`: generate a seeded trafficking-finance world with ground truth into the store."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tracer.commands.checks import open_store_at, output_file


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @app.command()
    def simulate(
        ctx: typer.Context,
        seed: int = typer.Option(..., "--seed", help="Random seed: the same seed and scale give the same store."),
        scale: str = typer.Option("demo", "--scale",
                                  help="test (~3k), demo (~10k), 1e5, 1e6, 1e7 or a number of Bitcoin transactions."),
        truth: Path = typer.Option(..., "--truth", help="Ground-truth JSON to write (Parquet companions go beside it)."),
        sources: Path = typer.Option(None, "--sources",
                                     help="Also write the world as the source files the ingesters read (Bitcoin Core "
                                          "blk files, ethereum-etl NDJSON, AMLworld CSV, ads, reports, prices, "
                                          "TagPack) with manifest.json and ingest.sh, into this new or empty folder; "
                                          "the Bitcoin chain is then a regtest chain (regtest addresses)."),
        ad_fees_known: bool = typer.Option(False, "--ad-fees-known",
                                           help="Store each ad's fee payment (fee_txid, fee_amount) as if the "
                                                "scrape knew it; by default only the truth files know it."),
        plant: int = typer.Option(0, "--plant",
                                  help="Plant N instances of each typology (structuring, peeling_chain, "
                                       "pass_through, off_ramp, fan_in, fan_out, cycle, scatter_gather, "
                                       "gather_scatter) and of benign look-alikes (payroll, merchant, bills, "
                                       "spending chains, payday bills) for scoring alerts; 0 (default) leaves "
                                       "the world as it was."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Simulate ads, Bitcoin, USDT and bank flows of a trafficking operation, with ground truth."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from tracer.simulate import simulate as run

        output_file(truth, "--truth")
        store = open_store_at(ctx.obj["db"])
        err = Console(stderr=True)
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err,
                          disable=as_json or not err.is_terminal) as bar:
                task = bar.add_task("simulate", total=1.0)
                summary = run(store, seed=seed, scale=scale, truth_path=truth, sources_dir=sources,
                              ad_fees_known=ad_fees_known, plant=plant,
                              progress=lambda stage, frac: bar.update(task, description=stage, completed=frac))
        finally:
            store.close()
        if as_json:
            print(json.dumps(summary.as_dict()))
            return
        c = summary.counts
        print(f"simulated world seed {summary.seed} (run {summary.run_id}) in {summary.seconds:.1f} s: "
              f"{c['blocks']:,} blocks, {c['transactions']:,} Bitcoin transactions, "
              f"{c['sim-evm transfers']:,} USDT transfers, {c['fiat transfers']:,} bank transfers, "
              f"{c['ads']:,} ads, {c['labels']:,} labels, {c['reports']:,} reports")
        print(f"ground truth: {', '.join(str(p) for p in summary.truth_files)}")
        if summary.sources is not None:
            print(f"sources: {summary.sources} (ingest in order into an empty store: "
                  f"sh {summary.sources.parent / 'ingest.sh'} NEW.duckdb)")
