"""The flows graph as sorted integer arrays: one hop is a binary search, not a table scan.

A columnar store answers "every flow whose src_id is one of these 1,000 ids" by reading the whole
src_id column: on 10^7 flows that is hundreds of milliseconds whatever the layout, because 1,000
random ids touch every row group (measured in docs/benchmarks.md, "Money graph at scale"). Tracing
asks that question once per hop. So the workspace keeps the graph's integer columns in memory, sorted
both ways (a CSR by src_id and one by dst_id): a hop is two ``searchsorted`` calls and a gather.

The arrays are a cache of ``flows``, never the record: built on first use, brought up to date before
each lookup by reading only the flows appended since (``flow_id`` above the last one read; flow ids only
grow), and rebuilt when rows were deleted (``id_counters.graph_epoch`` moves whenever a writer deletes
flows, e.g. an EVM reorg).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from tracer.store.store import Store

COLUMNS = ("flow_id", "src_id", "dst_id", "amount", "decimals", "usd", "time")
# kept too, for naming a trace's movements without reading flows again: the exact amount in base units
# where it fits in 64 bits (-1 where it does not: wei), and a code for the movement's (chain, asset, kind)
EXTRA = ("units", "code")


@dataclass
class _Part:
    """Edges in flow_id order, and their order by src_id and by dst_id."""

    cols: dict[str, np.ndarray]
    by_src: np.ndarray
    src_sorted: np.ndarray
    by_dst: np.ndarray
    dst_sorted: np.ndarray

    @classmethod
    def of(cls, cols: dict[str, np.ndarray]) -> _Part:
        by_src = np.argsort(cols["src_id"])
        by_dst = np.argsort(cols["dst_id"])
        return cls(cols, by_src, cols["src_id"][by_src], by_dst, cols["dst_id"][by_dst])

    def edges(self, nodes: np.ndarray, direction: str) -> np.ndarray:
        """Positions of the edges leaving (``out``) or entering (``in``) any of ``nodes`` (sorted, unique)."""
        order, keys = (self.by_src, self.src_sorted) if direction == "out" else (self.by_dst, self.dst_sorted)
        lo = np.searchsorted(keys, nodes, "left")
        hi = np.searchsorted(keys, nodes, "right")
        counts = hi - lo
        total = int(counts.sum())
        if not total:
            return np.zeros(0, np.int64)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        return order[starts + np.arange(total)]


class Adjacency:
    """Out- and in-edges of every node of ``flows``, kept current with the store."""

    def __init__(self, store: Store):
        self.store = store
        self._parts: list[_Part] = []
        self._top = 0          # the highest flow_id read
        self._epoch = None     # graph_epoch when built
        self.codes: list[tuple[str, str, str]] = []  # (chain, asset, kind) of each ``code``

    def _counters(self) -> tuple[int, int]:
        """(graph_epoch, the last flow id), in one round trip."""
        rows = dict(self.store.query("SELECT name, last FROM id_counters WHERE name IN ('graph_epoch', 'flow')"))
        return int(rows.get("graph_epoch", 0)), int(rows.get("flow", 0))

    def _read(self, above: int) -> dict[str, np.ndarray] | None:
        import pyarrow as pa

        kinds = self.store.query("SELECT DISTINCT chain, asset, kind FROM flows WHERE flow_id > ? ORDER BY ALL", [above])
        for k in kinds:
            if k not in self.codes:
                self.codes.append(k)
        codes = pa.table({n: [k[i] for k in self.codes] for i, n in enumerate(("chain", "asset", "kind"))}
                         | {"code": pa.array(range(len(self.codes)), pa.int16())})
        with self.store.view("_adjacency_codes", codes):
            t = self.store.arrow(
                """SELECT flow_id, coalesce(src_id, 0) AS src_id, coalesce(dst_id, 0) AS dst_id,
                          CAST(amount AS DOUBLE) AS amount, CAST(coalesce(decimals, 0) AS INTEGER) AS decimals,
                          usd, epoch_us(time) AS time, coalesce(TRY_CAST(amount AS BIGINT), -1) AS units, c.code
                   FROM flows f JOIN _adjacency_codes c USING (chain, asset, kind)
                   WHERE flow_id > ? ORDER BY flow_id""", [above])
        if not len(t):
            return None
        return {c: t[c].to_numpy(zero_copy_only=False) for c in COLUMNS + EXTRA}

    def refresh(self) -> None:
        """Read what was appended since the last refresh; rebuild if flows were deleted."""
        epoch, top = self._counters()
        if epoch != self._epoch:
            self._parts, self._top, self._epoch, self.codes = [], 0, epoch, []
        if top <= self._top:
            return
        cols = self._read(self._top)
        self._top = top
        if cols is None:
            return
        if len(self._parts) >= 8:  # fold the small deltas back into one sorted part
            merged = {c: np.concatenate([p.cols[c] for p in self._parts] + [cols[c]]) for c in COLUMNS + EXTRA}
            self._parts = [_Part.of(merged)]
        else:
            self._parts.append(_Part.of(cols))

    def hop(self, nodes: np.ndarray | list[int], direction: str = "out", refresh: bool = True) -> dict[str, np.ndarray]:
        """The flows leaving (``out``) or entering (``in``) ``nodes``: columns of :data:`COLUMNS`. ``refresh``
        False: as of the last refresh (a walk of many hops checks the store once)."""
        if direction not in ("out", "in"):
            raise ValueError("direction is 'out' or 'in'")
        if refresh:
            self.refresh()
        wanted = np.unique(np.asarray(nodes, dtype=np.int64))
        pieces = []
        for part in self._parts:
            at = part.edges(wanted, direction)
            if at.size:
                pieces.append({c: part.cols[c][at] for c in COLUMNS})
        if not pieces:
            return {c: np.zeros(0, np.float64 if c in ("amount", "usd") else np.int32 if c == "decimals" else np.int64)
                    for c in COLUMNS}
        out = {c: np.concatenate([p[c] for p in pieces]) for c in COLUMNS}
        order = np.argsort(out["flow_id"])  # a stable answer: flows in the order they were stored
        return {c: v[order] for c, v in out.items()}

    def columns(self, flow_ids: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Columns (of :data:`COLUMNS` and :data:`EXTRA`) of the flows ``flow_ids`` (sorted, unique, every one
        read already: ids a hop returned), in that order."""
        flow_ids = np.asarray(flow_ids, np.int64)
        out = {c: None for c in names}
        for part in self._parts:
            ids = part.cols["flow_id"]
            at = np.minimum(np.searchsorted(ids, flow_ids), max(ids.size - 1, 0))
            hit = ids[at] == flow_ids if ids.size else np.zeros(flow_ids.size, bool)
            for c in names:
                if out[c] is None:
                    out[c] = np.zeros(flow_ids.size, part.cols[c].dtype)
                out[c][hit] = part.cols[c][at[hit]]
        return {c: v if v is not None else np.zeros(0) for c, v in out.items()}

    def hop_table(self, nodes: np.ndarray | list[int], direction: str = "out") -> pa.Table:
        import pyarrow as pa

        return pa.table(self.hop(nodes, direction))

    @property
    def edges(self) -> int:
        return sum(len(p.cols["flow_id"]) for p in self._parts)
