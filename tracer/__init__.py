"""moneytrail: follow the money behind human trafficking.

Python API first: ``tracer.open(path)`` returns a :class:`~tracer.workspace.Workspace`, the one API the
CLI, the dashboard and scripts call (ingest, query, and the analyses as they land); underneath, every
stage is a function taking the :class:`~tracer.store.Store` as its first argument.

The store (DuckDB, pyarrow) is imported on first use, not here: ``tracer --help`` and every
subcommand's ``--help`` then start in a fraction of the time (docs/benchmarks.md, "CLI start-up").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

# bitcoinlib writes ~/.bitcoinlib on import unless BCL_DATA_DIR is set: keep it out of the home directory.
os.environ.setdefault("BCL_DATA_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "moneytrail-bitcoinlib"))

from tracer.workspace import IngestResult, Workspace  # noqa: E402  (imports nothing heavy)

if TYPE_CHECKING:
    from tracer.store import Store, StoreError, open_store

__version__ = "0.1.0"

_LAZY_FROM_STORE = ("Store", "StoreError", "open_store")


def open(path: str | Path = "moneytrail.duckdb", read_only: bool = False) -> Workspace:  # noqa: A001
    """Open (or create) a moneytrail store as a workspace."""
    return Workspace(path, read_only=read_only)


def __getattr__(name: str) -> Any:
    # PEP 562: `tracer.Store` and friends load the store module only when asked for
    if name in _LAZY_FROM_STORE:
        import tracer.store

        return getattr(tracer.store, name)
    raise AttributeError(f"module 'tracer' has no attribute {name!r}")


__all__ = ["IngestResult", "Store", "StoreError", "Workspace", "open", "open_store", "__version__"]
