"""Names by id: the text of addresses and transactions, in memory, for answers that name thousands of nodes.

A trace reaches nodes as integer ids (:mod:`tracer.store.adjacency`); its answer names them. Asking
``addresses`` for 10^5 ids costs a DuckDB round trip that reads the text columns of millions of rows
(docs/benchmarks.md, "Tracing"); here each table's ``id → (chain, text)`` is kept as Arrow string arrays
and a position per id, so naming them is a gather.

Like the adjacency, this is a cache, never the record: loaded on a workspace's second lookup (the first
reads only the ids it asks for: a one-off trace, such as one `tracer trace` process, does not pay for
loading every name, 6–10 s on a 12 M-flow store), brought up to date before each lookup by reading only the
rows whose id is above the highest read (ids only grow), and reloaded when a table lost rows (its count of
ids fell short of what was read plus what was added).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from tracer.store.store import Store


@dataclass
class Named:
    """What :meth:`IdIndex.take` found for each id asked: whether it is known, its chain and its text (None
    where unknown)."""

    found: np.ndarray       # bool
    chain: np.ndarray       # object: str or None
    text: pa.Array          # string, null where unknown


class IdIndex:
    """``id → (chain, text)`` of one table (``SELECT id, text, chain FROM table``), kept current."""

    def __init__(self, store: Store, table: str, id_col: str, text_col: str):
        self.store, self.table, self.id_col, self.text_col = store, table, id_col, text_col
        self._key: tuple[int, int] | None = None   # (count of ids, highest id) when read
        self._pos = np.full(1, -1, np.int64)       # id -> row, -1 where none
        self._text: pa.Array | None = None          # the text, row by row, in the order read
        self._chain = np.zeros(0, np.int16)         # each row's chain, a code into _chains
        self._chains: list[str] = []
        self._asked = False                         # a first lookup was answered from the store

    def refresh(self) -> None:
        import pyarrow as pa

        # count(*) and max(id) come from the table's statistics: a refresh that finds nothing new is cheap
        count, top = self.store.query(f"SELECT count(*), coalesce(max({self.id_col}), 0) FROM {self.table}")[0]
        key = (int(count), int(top))
        if key == self._key:
            return
        above = self._key[1] if self._key is not None and key[0] > self._key[0] and key[1] > self._key[1] else None
        t = self.store.arrow(
            f"""SELECT {self.id_col} AS id, {self.text_col} AS text, chain FROM {self.table}
                WHERE {self.id_col} > ? ORDER BY 1""", [above if above is not None else 0])
        if above is not None and self._key is not None and self._key[0] + len(t) != key[0]:
            above = None  # rows were deleted, or added without an id: read it all again
            t = self.store.arrow(f"""SELECT {self.id_col} AS id, {self.text_col} AS text, chain FROM {self.table}
                                     WHERE {self.id_col} > 0 ORDER BY 1""")
        if above is None:
            self._pos, self._text, self._chain, self._chains = np.full(1, -1, np.int64), None, np.zeros(0, np.int16), []
        ids = t["id"].to_numpy().astype(np.int64)
        rows = self._chain.size + np.arange(ids.size, dtype=np.int64)
        if key[1] + 1 > self._pos.size:
            self._pos = np.concatenate([self._pos, np.full(key[1] + 1 - self._pos.size, -1, np.int64)])
        self._pos[ids] = rows
        # one contiguous array (a gather from many chunks is slow); 64-bit offsets: no 2 GB limit
        text = t["text"].cast(pa.large_string()).combine_chunks()
        self._text = text if self._text is None else pa.concat_arrays([self._text, text])
        self._chain = np.concatenate([self._chain, self._codes(t["chain"])])
        self._key = key

    def _codes(self, column: pa.ChunkedArray) -> np.ndarray:
        import pyarrow.compute as pc

        if not len(column):
            return np.zeros(0, np.int16)
        enc = pc.dictionary_encode(column).combine_chunks()
        known = {c: i for i, c in enumerate(self._chains)}
        for c in enc.dictionary.to_pylist():
            if c not in known:
                known[c] = len(self._chains)
                self._chains.append(c)
        remap = np.asarray([known[c] for c in enc.dictionary.to_pylist()], np.int16)
        return remap[enc.indices.to_numpy(zero_copy_only=False)]

    def take(self, ids: np.ndarray) -> Named:
        """Chain and text of each id in ``ids`` (any order, repeats allowed)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = np.asarray(ids, np.int64)
        if self._key is None and not self._asked:
            self._asked = True
            return self._from_store(ids)
        self.refresh()
        inside = (ids > 0) & (ids < self._pos.size)
        row = np.where(inside, self._pos[np.where(inside, ids, 0)], -1)
        found = row >= 0
        chains = np.asarray(self._chains + [None], dtype=object)
        chain = chains[np.where(found, self._chain[np.where(found, row, 0)] if self._chain.size else -1, -1)]
        rows = pa.array(np.where(found, row, 0), mask=~found)
        text = pc.take(self._text, rows) if self._text is not None and len(self._text) else \
            pa.nulls(ids.size, pa.large_string())
        return Named(found, chain, text)


    def _from_store(self, ids: np.ndarray) -> Named:
        """:meth:`take` answered by reading only the rows of ``ids`` from the table."""
        import pyarrow as pa
        import pyarrow.compute as pc

        with self.store.view("_names_ids", pa.table({"id": np.unique(ids[ids > 0])})):
            t = self.store.arrow(f"""SELECT {self.id_col} AS id, {self.text_col} AS text, chain FROM {self.table}
                                     WHERE {self.id_col} IN (SELECT id FROM _names_ids) ORDER BY 1""")
        got = t["id"].to_numpy().astype(np.int64)
        at = np.minimum(np.searchsorted(got, ids), max(got.size - 1, 0))
        found = (got[at] == ids) if got.size else np.zeros(ids.size, bool)
        chain = np.asarray(t["chain"].to_pylist() + [None], dtype=object)[np.where(found, at, got.size)]
        text = pc.take(t["text"].cast(pa.large_string()).combine_chunks(), pa.array(at, mask=~found)) \
            if got.size else pa.nulls(ids.size, pa.large_string())
        return Named(found, chain, text)


class Names:
    """The id → text indexes of a workspace: parties (``addresses``) and UTXO transactions."""

    def __init__(self, store: Store):
        self.addresses = IdIndex(store, "addresses", "address_id", "address")
        self.transactions = IdIndex(store, "transactions", "tx_id", "txid")
