"""The store: one DuckDB file holding every canonical table (see docs/data-model.md)."""

from tracer.store.store import DEFAULT_DB, Run, Store, StoreError, open_store

__all__ = ["DEFAULT_DB", "Run", "Store", "StoreError", "open_store"]
