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
