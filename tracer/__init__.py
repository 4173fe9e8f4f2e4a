"""moneytrail: follow the money behind human trafficking.

Python API first: ``tracer.open(path)`` returns a :class:`~tracer.workspace.Workspace`, the one API the
CLI, the dashboard and scripts call (ingest, query, and the analyses as they land); underneath, every
stage is a function taking the :class:`~tracer.store.Store` as its first argument.
"""

import os
from pathlib import Path

# bitcoinlib writes ~/.bitcoinlib on import unless BCL_DATA_DIR is set: keep it out of the home directory.
os.environ.setdefault("BCL_DATA_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "moneytrail-bitcoinlib"))

from tracer.store import Store, StoreError, open_store  # noqa: E402
from tracer.workspace import IngestResult, Workspace  # noqa: E402

__version__ = "0.1.0"


def open(path: str | Path = "moneytrail.duckdb", read_only: bool = False) -> Workspace:  # noqa: A001
    """Open (or create) a moneytrail store as a workspace."""
    return Workspace(path, read_only=read_only)


__all__ = ["IngestResult", "Store", "StoreError", "Workspace", "open", "open_store", "__version__"]
