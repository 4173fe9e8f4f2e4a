"""`tracer demo`: the first five minutes — a store built from fixtures/, summarised."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.commands.checks import open_store_at, output_folder


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @app.command()
    def demo(
        ctx: typer.Context,
        out: Path = typer.Option(Path("out"), "--out", help="Folder for the ground truth, reports and charts."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the dashboard afterwards."),
        port: int = typer.Option(8050, "--port", help="Dashboard port."),
    ) -> None:
        """Build the demo store (simulated case + real blocks and labels), then serve the dashboard."""
        from tracer.demo import run_demo

        output_folder(out, "--out")
        store = open_store_at(ctx.obj["db"])
        run_demo(store, out)
        store.close()
        if serve:
            from dashboard.app import create_app

            web = create_app(ctx.obj["db"])
            print(f"\ndashboard: http://127.0.0.1:{port}/  (Ctrl-C stops it)", flush=True)
            web.run(host="127.0.0.1", port=port, debug=False)
