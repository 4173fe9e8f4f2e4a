"""`tracer demo`: the first five minutes — a store built from fixtures/, summarised."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.demo import run_demo
from tracer.store import open_store


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @app.command()
    def demo(
        ctx: typer.Context,
        out: Path = typer.Option(Path("out"), "--out", help="Folder for reports and charts."),
    ) -> None:
        """Build the demo store from fixtures/ and print what it holds."""
        run_demo(open_store(ctx.obj["db"]), out)
