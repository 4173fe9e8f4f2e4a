"""Errors that name the source and the position of what went wrong."""

from __future__ import annotations


class MoneytrailError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""


class IngestError(MoneytrailError):
    """A source item was refused. ``source`` is the file or URL, ``position`` where in it."""

    def __init__(self, source: str, position: str, reason: str, item: str | None = None):
        self.source, self.position, self.reason, self.item = source, position, reason, item
        where = f"{source} at {position}"
        if item:
            where += f" ({item})"
        super().__init__(f"{where}: {reason}")


def one_line(exc: BaseException | str) -> str:
    """An error message on one line: DuckDB's and others' multi-line texts joined with "; ".

    DuckDB puts the failing SQL and a caret under it on lines of their own; the caret line says
    nothing without its column alignment, so it is left out.
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    return "; ".join(line for line in lines if line and set(line) != {"^"})
