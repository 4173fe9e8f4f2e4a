"""`tracer ingest bank|reports|ads|labels|prices` and `tracer labels export` (TagPacks).

Thin: each command parses its options, calls the ingester, and prints the run summary (``--json`` for
scripts). A run that quarantined anything exits with code 2 after loading the good rows, so a script
notices refused input; ``--allow-quarantine`` makes that exit 0.
"""

from __future__ import annotations

import json
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from tracer.errors import MoneytrailError
from tracer.store import open_store

console = Console(stderr=True)


class BankFormat(str, Enum):
    amlworld = "amlworld"
    amlsim = "amlsim"
    mapped = "mapped"


class LabelFormat(str, Enum):
    ofac = "ofac"
    tagpack = "tagpack"
    csv = "csv"
    sdn_xml = "sdn-xml"


def _report(kind: str, summary: dict[str, Any], started: float, json_out: bool, allow_quarantine: bool) -> None:
    elapsed = time.perf_counter() - started
    if json_out:
        print(json.dumps({**summary, "seconds": round(elapsed, 3)}, default=str))
    else:
        rate = summary.get("read", 0) / max(elapsed, 1e-9)
        console.print(
            f"{kind} run {summary['run_id']}: {summary.get('read', 0):,} read, {summary.get('loaded', 0):,} loaded, "
            f"{summary.get('already_stored', 0):,} already stored, {summary.get('quarantined', 0):,} quarantined "
            f"in {elapsed:.2f} s ({rate:,.0f} rows/s)", highlight=False)
        for reason, n in (summary.get("reasons") or {}).items():
            console.print(f"  quarantined: {reason}: {n:,}", highlight=False)
    if summary.get("quarantined") and not allow_quarantine:
        console.print(f"{summary['quarantined']:,} item(s) refused; see: tracer query "
                      f"\"SELECT position, reason FROM quarantine WHERE run_id = {summary['run_id']}\"",
                      highlight=False)
        # sys.exit, not typer.Exit: `tracer.cli.main` runs click with standalone_mode=False, where an
        # Exit's code is returned and dropped
        sys.exit(2)


def _parse_map(items: list[str] | None, option: str = "--map", shape: str = "field=column") -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MoneytrailError(f"{option} takes {shape}, not {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    allow_opt = typer.Option(False, "--allow-quarantine", help="Exit 0 even if rows were quarantined.")
    json_opt = typer.Option(False, "--json", help="Print the run summary as JSON.")

    @ingest_app.command("bank")
    def bank(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="CSV of bank transfers."),
        fmt: BankFormat = typer.Option(None, "--format", help="amlworld, amlsim or mapped (default: from the header)."),
        mapping: Path = typer.Option(None, "--mapping", help="YAML column mapping (docs/formats.md)."),
        map_: list[str] = typer.Option(None, "--map", help="field=column, repeatable (e.g. --map amount=Betrag)."),
        dataset: str = typer.Option(None, "--dataset", help="Name used in transfer ids (default: file stem)."),
        accounts: Path = typer.Option(None, "--accounts", help="AMLSim accounts.csv (bank and currency)."),
        progress: bool = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load bank transfers (AMLworld, AMLSim or a mapped CSV) into transfers, chain 'fiat'."""
        from tracer.ingest.human.bank import ColumnMap, ingest_bank

        cmap = None
        flags = _parse_map(map_)
        if mapping is not None:
            cmap = ColumnMap.from_yaml(mapping)
            if flags:
                cmap = ColumnMap.from_dict({**{k: v for k, v in vars(cmap).items() if v is not None}, **flags})
        elif flags:
            cmap = ColumnMap.from_dict(flags, "--map")
        store = open_store(ctx.obj["db"])
        show = sys.stderr.isatty() if progress is None else progress
        started = time.perf_counter()
        with Progress(TextColumn("[bold]bank"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rows]:,} rows"),
                      TimeElapsedColumn(), console=console, disable=not show) as bar:
            task = bar.add_task("bank", total=path.stat().st_size if path.is_file() else None, rows=0)

            def on_chunk(done: int, total: int, rows: int) -> None:
                bar.update(task, completed=done, total=total, rows=rows)

            summary = ingest_bank(store, path, fmt=fmt.value if fmt else None,
                                  mapping=cmap, dataset=dataset, accounts=accounts, progress=on_chunk)
        _report("bank", summary, started, json_out, allow_quarantine)

    @ingest_app.command("reports")
    def reports(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="SAR/STR/tip records: CSV, JSON Lines or JSON array."),
        region: str = typer.Option("US", "--region", help="Default country of phone numbers without +code."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load suspicious-activity reports and tips; extract identifiers from fields and narratives."""
        from tracer.ingest.human.reports import ingest_reports

        started = time.perf_counter()
        summary = ingest_reports(open_store(ctx.obj["db"]), path, region=region)
        _report("reports", summary, started, json_out, allow_quarantine)

    @ingest_app.command("ads")
    def ads(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="Ads: CSV, JSON Lines or JSON array."),
        region: str = typer.Option("US", "--region", help="Default country of phone numbers without +code."),
        timezone: str = typer.Option(None, "--timezone", help="IANA zone for posting times without an offset."),
        hash_pii: bool = typer.Option(False, "--hash-pii", help="Store phones and e-mails only as salted SHA-256."),
        salt: str = typer.Option(None, "--salt", envvar="MONEYTRAIL_PII_SALT", help="Salt for --hash-pii."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load online ads: phones normalised (E.164), crypto addresses in the text extracted."""
        from tracer.ingest.human.ads import ingest_ads

        started = time.perf_counter()
        summary = ingest_ads(open_store(ctx.obj["db"]), path, region=region, default_tz=timezone,
                             hash_pii=hash_pii, salt=salt)
        _report("ads", summary, started, json_out, allow_quarantine)

    @ingest_app.command("labels")
    def labels(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="OFAC list folder/file, sdn_advanced.xml, TagPack YAML (file or folder), or CSV."),
        fmt: LabelFormat = typer.Option(None, "--format", help="ofac, tagpack, csv or sdn-xml (default: from the path)."),
        chain_as: list[str] = typer.Option(None, "--chain-as",
                                           help="FROM=TO: store tags filed under chain FROM under chain TO "
                                                "(e.g. ethereum=sim-evm for a simulated EVM chain); repeatable."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load address labels; each address is validated for the chain it is filed under."""
        from tracer.ingest.labels.sources import ingest_labels

        started = time.perf_counter()
        summary = ingest_labels(open_store(ctx.obj["db"]), path, fmt.value if fmt else None,
                                chain_map=_parse_map(chain_as, "--chain-as", "FROM=TO") or None)
        _report("labels", summary, started, json_out, allow_quarantine)

    @ingest_app.command("prices")
    def prices(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="CSV with asset, time, usd columns."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load USD prices; every flow is valued at the latest price at or before its time."""
        from tracer.ingest.prices import ingest_prices

        started = time.perf_counter()
        summary = ingest_prices(open_store(ctx.obj["db"]), path)
        _report("prices", summary, started, json_out, allow_quarantine)

    labels_app = typer.Typer(no_args_is_help=True, help="Address labels: export as GraphSense TagPacks.")
    app.add_typer(labels_app, name="labels")

    def _export(db: Path, out: Path, pack: str | None, creator: str) -> None:
        from tracer.ingest.labels.sources import export_tagpacks

        written = export_tagpacks(open_store(db), out, pack=pack, creator=creator)
        if not written:
            raise MoneytrailError(f"no labels{' in pack ' + pack if pack else ''} to export")
        for path in written:
            print(os.fspath(path))

    @labels_app.command("export")
    def labels_export(
        ctx: typer.Context,
        out: Path = typer.Argument(..., help="Folder to write one TagPack YAML per pack into."),
        pack: str = typer.Option(None, "--pack", help="Only this pack (file stem, 'ofac-sdn', ...)."),
        creator: str = typer.Option("moneytrail", "--creator", help="TagPack creator for packs without one."),
    ) -> None:
        """Write the stored labels as GraphSense TagPacks (confidence, category, actor kept)."""
        _export(ctx.obj["db"], out, pack, creator)

    app.command("export-labels", help="Same as `tracer labels export`.")(labels_export)
