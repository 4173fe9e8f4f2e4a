"""moneytrail: follow the money behind human trafficking.

Python API first: ``tracer.open(path)`` returns a :class:`~tracer.store.Store`; every stage
(ingest, heuristics, trace, report, export) is a function taking that store as its first argument.
"""

import os
from pathlib import Path

# bitcoinlib writes ~/.bitcoinlib on import unless BCL_DATA_DIR is set: keep it out of the home directory.
os.environ.setdefault("BCL_DATA_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "moneytrail-bitcoinlib"))

from tracer.store import Store, StoreError, open_store  # noqa: E402

__version__ = "0.1.0"


def open(path: str | Path = "moneytrail.duckdb", read_only: bool = False) -> Store:  # noqa: A001
    """Open (or create) a moneytrail store."""
    return open_store(path, read_only=read_only)


__all__ = ["Store", "StoreError", "open", "open_store", "__version__"]
