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
    "tracer.commands.cluster",
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
        # standalone_mode=False lets moneytrail's own errors reach the handler below; a command's
        # typer.Exit(code) then comes back as the return value
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except (MoneytrailError, StoreError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:
        # usage errors (bad option, unknown command): typer vendors click, so match by behaviour
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise


if __name__ == "__main__":
    main()
