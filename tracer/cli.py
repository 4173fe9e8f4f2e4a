"""The `tracer` command: thin — parses arguments and calls the library.

Each area registers its commands from ``tracer/commands/<area>.py`` (a ``register(app, ingest_app)``
function), so the CLI stays one small file and each area owns its own commands.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer
from rich.console import Console

from tracer.errors import MoneytrailError
from tracer.store import DEFAULT_DB, StoreError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="moneytrail: follow the money.")
ingest_app = typer.Typer(no_args_is_help=True, help="Load a source into the store.")
app.add_typer(ingest_app, name="ingest")
err = Console(stderr=True)

COMMAND_MODULES = [
    "tracer.commands.store",
    "tracer.commands.bitcoin",
    "tracer.commands.evm",
    "tracer.commands.human",
    "tracer.commands.simulate",
    "tracer.commands.demo",
    "tracer.commands.dashboard",
]


@app.callback()
def _root(
    ctx: typer.Context,
    db: Path = typer.Option(Path(DEFAULT_DB), "--db", envvar="MONEYTRAIL_DB", help="DuckDB store file."),
) -> None:
    ctx.obj = {"db": db}


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app, ingest_app)


def main() -> None:
    try:
        app(standalone_mode=False)
    except (MoneytrailError, StoreError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
