"""`tracer dashboard`: serve the analysts' Dash dashboard over a store, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import typer

from tracer.commands.checks import store_path

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @app.command()
    def dashboard(
        ctx: typer.Context,
        db: Path | None = typer.Option(None, "--db", help="DuckDB store file (default: the global --db)."),
        host: str = typer.Option(LOOPBACK, "--host", help="Interface to listen on. The dashboard has no login: "
                                 "keep 127.0.0.1 unless a proxy in front of it authenticates analysts."),
        port: int = typer.Option(8050, "--port", min=0, max=65535, help="TCP port."),
        actor: str | None = typer.Option(None, "--actor", help="Analyst name for audit_log (default: OS user)."),
    ) -> None:
        """Serve the dashboard: store overview, address pages, add-to-case (logged in audit_log)."""
        path = store_path(db or (ctx.obj or {}).get("db"), must_exist=True)

        from rich.console import Console

        from dashboard.app import create_app  # Dash is heavy: import it only for this command

        err = Console(stderr=True)
        if not is_loopback(host):
            err.print(f"[bold yellow]warning:[/] serving on {host}: anyone who can reach it can read the store "
                      "and write cases; the dashboard has no authentication", highlight=False, soft_wrap=True)
        web = create_app(path, actor=actor)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # analyst actions go to audit_log, not a request log
        err.print(f"moneytrail dashboard on http://{host}:{port}/ (store {path}); Ctrl-C stops it", highlight=False, soft_wrap=True)
        web.run(host=host, port=port, debug=False)
