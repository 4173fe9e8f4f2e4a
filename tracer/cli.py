"""The `tracer` command: thin — parses arguments and calls the library.

Each area registers its commands from ``tracer/commands/<area>.py`` (a ``register(app, ingest_app)``
function), so the CLI stays one small file and each area owns its own commands.

Start-up is kept short: this module and the command modules import only typer at the top; DuckDB,
pyarrow, numpy, web3, Dash and rich's progress bars are imported inside the commands that use them, so
``tracer --help`` and ``tracer <command> --help`` do not pay for them (docs/benchmarks.md, "CLI start-up").

Exit codes: 0 done; 1 an error, printed as one line ``error: …`` on stderr naming the source and
position where there is one (never a traceback; ``MONEYTRAIL_DEBUG=1`` re-raises for one); 2 a usage
error (click's message), or an ingest that loaded its good rows but quarantined others; 130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer

from tracer.errors import MoneytrailError, one_line

#: Same as ``tracer.store.DEFAULT_DB``, spelled out so that parsing the command line needs no DuckDB.
DEFAULT_DB = "moneytrail.duckdb"

app = typer.Typer(no_args_is_help=True, add_completion=False, help="moneytrail: follow the money.")
ingest_app = typer.Typer(no_args_is_help=True, help="Load a source into the store.")
app.add_typer(ingest_app, name="ingest")

COMMAND_MODULES = [
    "tracer.commands.store",
    "tracer.commands.bitcoin",
    "tracer.commands.evm",
    "tracer.commands.human",
    "tracer.commands.simulate",
    "tracer.commands.cluster",
    "tracer.commands.trace",
    "tracer.commands.ads",
    "tracer.commands.alerts",
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


def _loaded_error_types() -> tuple[type[BaseException], ...]:
    """Error types of the libraries a command has loaded (not importing them only to catch them)."""
    found: list[type[BaseException]] = []
    for module, name in (("tracer.store.store", "StoreError"), ("duckdb", "Error"),
                         ("pyarrow.lib", "ArrowException"), ("yaml", "YAMLError")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(getattr(loaded, name, None), type):
            found.append(getattr(loaded, name))
    return tuple(found)


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, naming the file where the error carries one."""
    if isinstance(exc, MoneytrailError):
        return one_line(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        where = os.fsdecode(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {os.fsdecode(exc.filename2)}"
        return f"{where}: {exc.strerror or one_line(exc)}"
    text = one_line(exc) or type(exc).__name__
    if isinstance(exc, (OSError, ValueError, LookupError, *_loaded_error_types())):
        return text
    return (f"unexpected {type(exc).__name__}: {text} (a moneytrail bug: please report it; "
            "MONEYTRAIL_DEBUG=1 shows the traceback)")


def fail(message: str, code: int = 1) -> None:
    # plain text, not rich: one line that scripts can grep, and no rich import on the error path
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def main() -> None:
    try:
        # standalone_mode=False lets moneytrail's own errors reach the handler below; a command's
        # typer.Exit(code) then comes back as the return value
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except Exception as exc:
        # usage errors (bad option, unknown command): typer vendors click, so match by behaviour
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        if os.environ.get("MONEYTRAIL_DEBUG"):
            raise
        fail(describe(exc))


if __name__ == "__main__":
    main()
