"""The workspace: the one API the CLI, the dashboard and batch scripts call.

``tracer.open(path)`` returns a :class:`Workspace` over one store. Ingest, query and (as they land)
cluster, trace, alerts, report and export are its methods. Every ingest returns an
:class:`IngestResult`, whatever the source; the DuckDB connection stays inside ``tracer.store``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from tracer.store import Store

# source name -> (module, function): the registry the CLI and scripts ingest through
INGESTERS: dict[str, tuple[str, str]] = {
    "bitcoin": ("tracer.ingest.bitcoin.blocks", "ingest_bitcoin"),
    "evm": ("tracer.ingest.evm.node", "ingest_evm"),
    "etl": ("tracer.ingest.evm.etl", "ingest_etl"),
    "bank": ("tracer.ingest.human.bank", "ingest_bank"),
    "reports": ("tracer.ingest.human.reports", "ingest_reports"),
    "ads": ("tracer.ingest.human.ads", "ingest_ads"),
    "labels": ("tracer.ingest.labels.sources", "ingest_labels"),
    "prices": ("tracer.ingest.prices", "ingest_prices"),
}

_COMMON = ("run_id", "read", "loaded", "already_stored", "quarantined", "reasons")


@dataclass
class IngestResult:
    """What one ingest did, the same shape for every source.

    ``read`` = ``loaded`` + ``already_stored`` + ``quarantined`` where the source counts rows;
    ``counts`` holds the source's own figures (transactions, inputs resolved, identifiers, …).
    """

    source: str
    run_id: int | None = None
    read: int | None = None
    loaded: int | None = None
    already_stored: int | None = None
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, source: str, raw: Any) -> IngestResult:
        """Map an ingester's own summary (a dataclass or a dict) onto the common shape."""
        data = dataclasses.asdict(raw) if dataclasses.is_dataclass(raw) else dict(raw or {})
        result = cls(source, **{k: data.pop(k) for k in _COMMON if k in data and data[k] is not None})
        nested = data.pop("counts", None)
        if isinstance(nested, dict):
            data = {**nested, **data}
        if source == "bitcoin":  # the unit of a Bitcoin ingest is the block
            result.loaded = data.get("blocks", 0)
            result.already_stored = data.get("blocks_skipped", 0)
            result.read = result.loaded + result.already_stored
        elif result.loaded is None and "blocks" in data:  # EVM: a block range
            result.loaded = data["blocks"]
        result.counts = data
        return result

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Workspace:
    """One store and everything done to it. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path, read_only: bool = False):
        from tracer.store import Store

        self.path = Path(path)
        self.store: Store = Store(path, read_only=read_only)
        self._adjacency: Any = None
        self._names: Any = None
        self._clusters: dict[str, Any] = {}  # chain -> heuristics.clustering.cluster.ClusterMemory

    @classmethod
    def of(cls, store: Store) -> Workspace:
        """A workspace over a store that is already open."""
        ws = cls.__new__(cls)
        ws.path, ws.store, ws._adjacency, ws._names, ws._clusters = Path(store.path), store, None, None, {}
        return ws

    # -- ingest ---------------------------------------------------------------------------------------
    def ingest(self, source: str, *args: Any, **kwargs: Any) -> IngestResult:
        """Ingest from ``source`` (a key of :data:`INGESTERS`); arguments go to that source's ingester."""
        if source not in INGESTERS:
            raise ValueError(f"unknown source {source!r}; one of {', '.join(sorted(INGESTERS))}")
        module, name = INGESTERS[source]
        ingester = getattr(importlib.import_module(module), name)
        return IngestResult.of(source, ingester(self.store, *args, **kwargs))

    def simulate(self, **kwargs: Any) -> Any:
        """Write a synthetic world with ground truth (see :func:`tracer.simulate.simulate`)."""
        from tracer.simulate import simulate

        return simulate(self.store, **kwargs)

    # -- analyses ---------------------------------------------------------------------------------------
    def cluster(self, chain: str = "bitcoin", full: bool = False, rules: Any = None, links: Any = None,
                summary: bool = True) -> Any:
        """Address clustering (heuristics.clustering): multi-input with CoinJoin detection unless ``links``
        names other evidence sources; incremental unless ``full``. The clusters stay in this workspace's
        memory, so the next incremental run touches only what its new transactions change."""
        from heuristics.clustering import cluster

        return cluster(self.store, chain=chain, full=full, rules=rules, links=links, summary=summary,
                       memory=self._clusters)

    def explain(self, a: str, b: str, chain: str = "bitcoin") -> Any:
        """The chain of evidence putting addresses ``a`` and ``b`` in one cluster (None if they are not)."""
        from heuristics.clustering import explain

        return explain(self.store, a, b, chain=chain)

    def trace(self, seeds: list[str], **params: Any) -> Any:
        """Follow the money from ``seeds`` (addresses, accounts, txids, ``cluster:N``, ``ad:[<site>:]<ad_id>``):
        a :class:`tracer.trace.Trace` whose ``as_json()`` is the form the dashboard, reports and exports read.
        ``params``: the fields of :class:`tracer.trace.TraceParams` (direction, hops, min_value, min_usd,
        since, until, chain, stop_at, level, through_exchanges, exchange_window_hours, exchange_tolerance)."""
        from tracer.trace import TraceParams, trace

        return trace(self, list(seeds), TraceParams(**params))

    def taint(self, sources: list[str], model: str = "haircut", hops: int = 6, chain: str = "bitcoin",
              backward: bool = False) -> dict:
        """Forward taint from source outputs (``txid:n``) under ``model`` (poison, haircut, fifo): the
        tainted value per source on every output reached (``txid:-1`` is a transaction's fee). With
        ``backward``, ``sources`` are targets: the share of each one's value that came from each source
        output ``hops`` spends back (poison: the support, each as 1)."""
        from tracer.trace.taint import backward_taint, forward_taint

        if backward:
            return backward_taint(self.store, sources, model=model, hops=hops, chain=chain)
        return forward_taint(self.store, sources, model=model, hops=hops, chain=chain)

    def exposure(self, seeds: list[str], hops: int = 3) -> Any:
        """How much of the seeds' money came from and went to each label category, direct and within
        ``hops`` (haircut-weighted), and the risk level with its rule (:mod:`tracer.trace.exposure`)."""
        from tracer.trace.exposure import exposure

        return exposure(self, list(seeds), hops=hops)

    def find_paths(self, a: str, b: str, hops: int = 6, max_degree: int | None = 1000, limit: int = 5) -> list[list[dict]]:
        """The shortest value-carrying paths from ``a`` to ``b``."""
        from tracer.trace import path

        return path(self, a, b, hops=hops, max_degree=max_degree, limit=limit)

    def cluster_labels(self, chain: str = "bitcoin", conflicts: bool = False) -> pa.Table:
        """Labels carried by clusters (through any member address), or only the clusters whose labels name
        more than one actor."""
        view = "cluster_label_conflicts" if conflicts else "cluster_labels"
        return self.store.arrow(f"SELECT * FROM {view} WHERE chain = ? ORDER BY cluster_id", [chain])

    def super_clusters(self, min_size: int = 1000, chain: str = "bitcoin") -> list[dict]:
        from heuristics.clustering import super_clusters

        return super_clusters(self.store, min_size=min_size, chain=chain)

    def link_ads(self, fees: Any = None, **params: Any) -> Any:
        """Link ads to their fee payments (heuristics.ads.linking): ``fees`` a fee schedule CSV (or None:
        the ads' own ``fee_usd``); ``params`` the fields of :class:`heuristics.ads.LinkParams`."""
        from heuristics.ads import LinkParams, link_ads

        return link_ads(self.store, fees, LinkParams(**params))

    def group_ads(self, **params: Any) -> Any:
        """Group ads into operations by shared phones, e-mails, photos and writing (heuristics.ads.grouping)."""
        from heuristics.ads import GroupParams, group_ads

        return group_ads(self.store, GroupParams(**params))

    def explain_ad(self, ad_id: str, site: str | None = None) -> Any:
        """An ad's fee, the price used, its candidate payments with their scores and why the chosen one won."""
        from heuristics.ads import explain_ad

        return explain_ad(self.store, ad_id, site)

    def alerts(self, typologies: list[str] | None = None, chains: list[str] | None = None,
               **overrides: dict[str, Any]) -> Any:
        """Run typology detectors over ``flows`` and store their alerts (heuristics.typologies): e.g.
        ``ws.alerts(["structuring"], structuring={"min_count": 4})``. Returns an AlertsResult."""
        from heuristics.typologies import run_alerts

        return run_alerts(self.store, typologies, overrides, chains)

    def alert_queue(self, typology: str | None = None, top: int | None = 50) -> list[dict[str, Any]]:
        """Stored alerts, highest score first."""
        from heuristics.typologies import list_alerts

        return list_alerts(self.store, typology, top)

    def explain_alert(self, alert_id: int) -> dict[str, Any]:
        """One alert with its subjects and evidence flows."""
        from heuristics.typologies import explain_alert

        return explain_alert(self.store, alert_id)

    # -- read -------------------------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run SQL; the whole result as an Arrow table."""
        return self.store.arrow(sql, params)

    def hop(self, nodes: Any, direction: str = "out") -> pa.Table:
        """One hop on the money graph: the flows leaving (``out``) or entering (``in``) the integer node
        ids ``nodes`` (address ids, or ``-tx_id`` for UTXO transaction nodes), with flow_id, src_id,
        dst_id, amount, usd and time (microseconds). Served from sorted in-memory arrays kept current
        with ``flows`` (:mod:`tracer.store.adjacency`)."""
        return self.adjacency().hop_table(nodes, direction)

    def adjacency(self) -> Any:
        """The in-memory graph arrays (:class:`tracer.store.adjacency.Adjacency`), built on first use."""
        if self._adjacency is None:
            from tracer.store.adjacency import Adjacency

            self._adjacency = Adjacency(self.store)
        return self._adjacency

    def names(self) -> Any:
        """Addresses' and transactions' text by id, in memory (:class:`tracer.store.names.Names`), loaded on
        first use and kept current with the store: what names a trace's nodes."""
        if self._names is None:
            from tracer.store.names import Names

            self._names = Names(self.store)
        return self._names

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        return self.store.query(sql, params)

    def counts(self) -> dict[str, int]:
        """Rows per canonical table (what `tracer info` shows)."""
        from tracer.store.store import CANONICAL_TABLES

        existing = {r[0] for r in self.store.query("SELECT table_name FROM information_schema.tables")}
        return {t: self.store.count(t) for t in CANONICAL_TABLES if t in existing}

    # -- the analyst's read-side questions (tracer.lookup) and the case write ------------------------------
    def overview(self, max_runs: int = 50) -> Any:
        """What the store holds: chains, table sizes, ingest runs, daily activity."""
        from tracer import lookup

        return lookup.store_overview(self.store, max_runs)

    def address_activity(self, chain: str, address: str, limit: int = 200) -> Any:
        """What an address received and sent, with whom, and its labels."""
        from tracer import lookup

        return lookup.address_activity(self.store, chain, address, limit)

    def find_address(self, text: str) -> list[str]:
        """The chains on which the store knows ``text`` as an address or account."""
        from tracer import lookup

        return lookup.find_address(self.store, text)

    def recent_case_titles(self, limit: int = 20) -> list[str]:
        from tracer import lookup

        return lookup.recent_case_titles(self.store, limit)

    def add_to_case(self, title: str, kind: str, ref: str, actor: str | None = None, note: str | None = None) -> Any:
        """Put an item into a case (created on first use) and record the action in ``audit_log``."""
        from tracer import lookup

        return lookup.add_to_case(self.store, title, kind, ref, actor=actor, note=note)

    # -- lifetime -------------------------------------------------------------------------------------
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"
