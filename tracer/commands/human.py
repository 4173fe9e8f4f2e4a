"""`tracer ingest bank|reports|ads|labels|prices` and `tracer labels export` (TagPacks).

Thin: each command parses its options, calls the ingester, and prints the run summary (``--json`` for
scripts). A run that quarantined anything exits with code 2 after loading the good rows, so a script
notices refused input; ``--allow-quarantine`` makes that exit 0 unless every row was refused. A source
that holds no rows at all (an empty file, a CSV with only its header) is an error: exit 1, saying so.
bank, reports, ads and prices take several files, each loaded on its own: a file that cannot be read is
refused (and quarantined), the others load, and the command exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tracer.commands.checks import naming, nothing_read, open_store_at, output_folder, source_paths, text_file
from tracer.errors import MoneytrailError

if TYPE_CHECKING:
    from rich.console import Console


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


class BankFormat(str, Enum):
    amlworld = "amlworld"
    amlsim = "amlsim"
    mapped = "mapped"


class LabelFormat(str, Enum):
    ofac = "ofac"
    tagpack = "tagpack"
    csv = "csv"
    sdn_xml = "sdn-xml"


def _report(kind: str, source: Path, summary: dict[str, Any], started: float, json_out: bool,
            allow_quarantine: bool) -> None:
    nothing_read(source, summary)
    console = _console()
    elapsed = time.perf_counter() - started
    runs = summary["run_id"] if isinstance(summary.get("run_id"), list) else [summary.get("run_id")]
    runs = [r for r in runs if r is not None]
    if json_out:
        print(json.dumps({**summary, "seconds": round(elapsed, 3)}, default=str))
    else:
        rate = summary.get("read", 0) / max(elapsed, 1e-9)
        console.print(
            f"{kind} run {', '.join(map(str, runs)) or '-'}: {summary.get('read', 0):,} read, "
            f"{summary.get('loaded', 0):,} loaded, {summary.get('already_stored', 0):,} already stored, "
            f"{summary.get('quarantined', 0):,} quarantined in {elapsed:.2f} s ({rate:,.0f} rows/s)", highlight=False)
        for reason, n in (summary.get("reasons") or {}).items():
            console.print(f"  quarantined: {reason}: {n:,}", highlight=False)
    files = summary.get("refused_files") or []
    for refused in files:
        console.print(f"file refused: {refused['source']} at {refused['position']}: {refused['reason']}",
                      highlight=False, soft_wrap=True)
    if files:
        sys.stderr.write(f"error: {len(files)} file(s) refused, the others loaded; see the lines above\n")
        sys.exit(1)
    refused = (summary.get("quarantined") or 0) + (summary.get("invalid_identifiers") or 0)
    where = f"run_id = {runs[0]}" if len(runs) == 1 else f"run_id IN ({', '.join(map(str, runs))})"
    see = f"see: tracer query \"SELECT position, reason FROM quarantine WHERE {where}\""
    if refused and not summary.get("loaded") and not summary.get("already_stored"):
        # every row refused: the source yielded nothing, which --allow-quarantine does not excuse
        reasons = summary.get("reasons") or {}
        top = max(reasons, key=reasons.get) if reasons else None
        sys.stderr.write(f"error: {source}: all {refused:,} item(s) refused, nothing loaded"
                         + (f" (mostly: {top})" if top else "") + f"; {see}\n")
        # sys.exit, not typer.Exit: `tracer.cli.main` runs click with standalone_mode=False, where an
        # Exit's code is returned and dropped
        sys.exit(2)
    if refused and not allow_quarantine:
        console.print(f"{source}: {refused:,} item(s) refused; {see}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _ingest(db: Path, ingest: Any, paths: list[Path], check: Any, **options: Any) -> tuple[Path, dict[str, Any]]:
    """One file: checked first, and its refusal is the command's one-line error. Several: each loaded on its
    own (``ingest_files``), a file that cannot be read refused and listed, the others loaded."""
    from tracer.ingest.csvread import ingest_files

    if len(paths) == 1:
        check(paths[0])
        store = open_store_at(db)
        with naming(paths[0]):
            return paths[0], ingest(store, paths[0], **options)
    store = open_store_at(db)
    return Path(", ".join(map(str, paths))), ingest_files(store, ingest, paths, **options)


def _parse_map(items: list[str] | None, option: str = "--map", shape: str = "field=column") -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MoneytrailError(f"{option} takes {shape}, not {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    allow_opt = typer.Option(False, "--allow-quarantine",
                             help="Exit 0 even if rows were quarantined (not if every row was).")
    json_opt = typer.Option(False, "--json", help="Print the run summary as JSON.")

    @ingest_app.command("bank")
    def bank(
        ctx: typer.Context,
        paths: list[Path] = typer.Argument(..., help="CSV files of bank transfers."),
        fmt: BankFormat = typer.Option(None, "--format", help="amlworld, amlsim or mapped (default: from the header)."),
        mapping: Path = typer.Option(None, "--mapping", help="YAML column mapping (docs/formats.md)."),
        map_: list[str] = typer.Option(None, "--map", help="field=column, repeatable (e.g. --map amount=Betrag)."),
        dataset: str = typer.Option(None, "--dataset", help="Namespace of the source's own transfer ids (AMLSim "
                                    "tran_id, a mapped txid column); default: the format."),
        accounts: Path = typer.Option(None, "--accounts", help="AMLSim accounts.csv (bank and currency)."),
        progress: bool = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load bank transfers (AMLworld, AMLSim or a mapped CSV) into transfers, chain 'fiat'."""
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        from tracer.ingest.human.bank import ColumnMap, ingest_bank

        if accounts is not None:
            text_file(accounts, "CSV file")
        cmap = None
        flags = _parse_map(map_)
        if mapping is not None:
            with naming(text_file(mapping, "YAML file")):
                cmap = ColumnMap.from_yaml(mapping)
            if flags:
                cmap = ColumnMap.from_dict({**{k: v for k, v in vars(cmap).items() if v is not None}, **flags})
        elif flags:
            cmap = ColumnMap.from_dict(flags, "--map")
        show = sys.stderr.isatty() if progress is None else progress
        started = time.perf_counter()
        with Progress(TextColumn("[bold]bank"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rows]:,} rows"),
                      TimeElapsedColumn(), console=_console(), disable=not show) as bar:
            sizes = [p.stat().st_size if p.is_file() else 0 for p in paths]
            task = bar.add_task("bank", total=sum(sizes), rows=0)
            before = {"files": 0, "bytes": 0, "rows": 0}  # what the files before this one read

            def on_chunk(done: int, total: int, rows: int) -> None:
                bar.update(task, completed=before["bytes"] + done, rows=before["rows"] + rows)

            def one_file(store: Any, path: Path, **options: Any) -> dict[str, Any]:
                before["bytes"] = sum(sizes[:before["files"]])
                before["files"] += 1
                summary = ingest_bank(store, path, **options)
                before["rows"] += summary["read"]
                return summary

            source, summary = _ingest(ctx.obj["db"], one_file, paths, lambda p: text_file(p, "CSV file"),
                                      fmt=fmt.value if fmt else None, mapping=cmap, dataset=dataset,
                                      accounts=accounts, progress=on_chunk)
        _report("bank", source, summary, started, json_out, allow_quarantine)

    @ingest_app.command("reports")
    def reports(
        ctx: typer.Context,
        paths: list[Path] = typer.Argument(..., help="SAR/STR/tip records: CSV, JSON Lines or JSON array files."),
        region: str = typer.Option("US", "--region", help="Default country of phone numbers without +code."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load suspicious-activity reports and tips; extract identifiers from fields and narratives."""
        from tracer.ingest.human.reports import ingest_reports

        started = time.perf_counter()
        source, summary = _ingest(ctx.obj["db"], ingest_reports, paths, text_file, region=region)
        _report("reports", source, summary, started, json_out, allow_quarantine)

    @ingest_app.command("ads")
    def ads(
        ctx: typer.Context,
        paths: list[Path] = typer.Argument(..., help="Ads: CSV, JSON Lines or JSON array files."),
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
        source, summary = _ingest(ctx.obj["db"], ingest_ads, paths, text_file, region=region, default_tz=timezone,
                                  hash_pii=hash_pii, salt=salt)
        _report("ads", source, summary, started, json_out, allow_quarantine)

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

        source_paths([path], text=True)
        store = open_store_at(ctx.obj["db"])
        started = time.perf_counter()
        with naming(path):
            summary = ingest_labels(store, path, fmt.value if fmt else None,
                                    chain_map=_parse_map(chain_as, "--chain-as", "FROM=TO") or None)
        _report("labels", path, summary, started, json_out, allow_quarantine)

    @ingest_app.command("prices")
    def prices(
        ctx: typer.Context,
        paths: list[Path] = typer.Argument(..., help="CSV files with asset, time, usd columns."),
        json_out: bool = json_opt,
        allow_quarantine: bool = allow_opt,
    ) -> None:
        """Load USD prices; every flow is valued at the latest price at or before its time."""
        from tracer.ingest.prices import ingest_prices

        started = time.perf_counter()
        source, summary = _ingest(ctx.obj["db"], ingest_prices, paths, lambda p: text_file(p, "CSV file"))
        _report("prices", source, summary, started, json_out, allow_quarantine)

    labels_app = typer.Typer(no_args_is_help=True, help="Address labels: export as GraphSense TagPacks.")
    app.add_typer(labels_app, name="labels")

    def _export(db: Path, out: Path, pack: str | None, creator: str) -> None:
        from tracer.ingest.labels.sources import export_tagpacks

        output_folder(out, "OUT")
        with naming(out):
            written = export_tagpacks(open_store_at(db, read_only=True), out, pack=pack, creator=creator)
        if not written:
            raise MoneytrailError(f"--db {db}: no labels{' in pack ' + pack if pack else ''} to export")
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
