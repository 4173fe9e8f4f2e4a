"""The alerts framework: typologies, their parameters, one run over ``flows``, idempotent storage.

A *typology* is a named detector (:class:`Typology`) with a frozen dataclass of parameters whose
defaults are documented in docs/heuristics.md ("Typology alerts"). A detector reads the money graph
through a :class:`Context` — ``flows`` as numpy columns, loaded once per run and shared by every
typology — and returns the patterns it found as an Arrow table of :data:`FOUND_SCHEMA`: the focal
node, the flow that anchors the pattern, a score in [0, 1], the subjects (address ids), the evidence
(flow ids), the value, the time span and a one-line summary.

:func:`run_alerts` runs the chosen typologies as one provenance run (``ingest_runs`` source
``alerts``) and writes ``alerts`` in one transaction. An alert's identity is
``md5(typology:focal_id:anchor)``: finding the same pattern again — a rerun, or a run over a store
that has grown — updates its row (score, evidence, last run) and keeps its ``alert_id``, ``first_run``
and the analyst's ``status``; nothing is duplicated.

Detectors never read answers: ``transfers.is_laundering``, SAR flags and the simulator's truth files
are for scoring only (:mod:`heuristics.typologies.scoring`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tracer.errors import MoneytrailError
from tracer.store import Store
from tracer.store.store import utcnow

FOUND_SCHEMA = pa.schema([
    ("focal_id", pa.int64()),
    ("anchor", pa.int64()),
    ("score", pa.float64()),
    ("subjects", pa.list_(pa.int64())),
    ("evidence", pa.list_(pa.int64())),
    ("usd", pa.float64()),
    ("first_time", pa.timestamp("us")),
    ("last_time", pa.timestamp("us")),
    ("summary", pa.string()),
])


class AlertsError(MoneytrailError):
    """A typology or parameter that does not exist, or a value it cannot take."""


@dataclass(frozen=True)
class Typology:
    """A detector: ``detect(ctx, params) -> Arrow table of FOUND_SCHEMA``."""

    name: str
    title: str
    params: type  # a frozen dataclass with defaults; each field's ``metadata["help"]`` documents it
    detect: Callable[[Context, Any], pa.Table]
    source: str  # where the typology comes from (FATF, FinCEN advisory, AMLSim, paper)


REGISTRY: dict[str, Typology] = {}


def register(typology: Typology) -> Typology:
    REGISTRY[typology.name] = typology
    return typology


def param(default: Any, help: str) -> Any:  # noqa: A002 - the documentation of a parameter
    """A typology parameter with its documentation (shown by ``tracer alerts typologies``)."""
    return field(default=default, metadata={"help": help})


def found(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """The detector's result from dicts with FOUND_SCHEMA's keys (a few per alert: fine in Python)."""
    rows = list(rows)
    if not rows:
        return FOUND_SCHEMA.empty_table()
    cols = {name: [r[name] for r in rows] for name in FOUND_SCHEMA.names}
    for t in ("first_time", "last_time"):
        cols[t] = [int(v) for v in cols[t]]
    cols["subjects"] = [[int(x) for x in s] for s in cols["subjects"]]
    cols["evidence"] = [[int(x) for x in s] for s in cols["evidence"]]
    return pa.table(cols, schema=FOUND_SCHEMA)


class Context:
    """What detectors read: the store, and ``flows`` as numpy columns loaded once per run.

    ``flows(chains)`` gives ``flow_id, src_id, dst_id, usd, time`` (microseconds since the epoch),
    ``kind`` and ``chain`` (as small integer codes with ``chain_names``/``kind_names``), sorted by
    ``(time, flow_id)``. USD is 0 where no price values a flow (it then counts for no threshold).
    """

    def __init__(self, store: Store, chains: Sequence[str] | None = None):
        self.store = store
        self.chains = tuple(chains) if chains else None
        self._flows: dict[tuple, dict[str, np.ndarray]] = {}

    def flows(self, chains: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        chains = tuple(chains) if chains else self.chains
        kinds = tuple(kinds) if kinds else None
        key = (chains, kinds)
        if key not in self._flows:
            where, args = [], []
            if chains:
                where.append(f"chain IN ({', '.join('?' * len(chains))})")
                args += list(chains)
            if kinds:
                where.append(f"kind IN ({', '.join('?' * len(kinds))})")
                args += list(kinds)
            sql = ("SELECT flow_id, src_id, dst_id, coalesce(usd, 0)::DOUBLE AS usd, epoch_us(time) AS time, "
                   "chain, kind FROM flows" + (" WHERE " + " AND ".join(where) if where else "")
                   + " ORDER BY time, flow_id")
            t = self.store.arrow(sql, args)
            cols = {n: t.column(n).to_numpy(zero_copy_only=False) for n in ("flow_id", "src_id", "dst_id", "usd", "time")}
            for n in ("src_id", "dst_id"):
                cols[n] = np.nan_to_num(cols[n].astype(np.float64), nan=0).astype(np.int64) \
                    if cols[n].dtype != np.int64 else cols[n]
            for n in ("chain", "kind"):
                d = t.column(n).combine_chunks().dictionary_encode()
                cols[n] = d.indices.to_numpy(zero_copy_only=False).astype(np.int16)
                cols[f"{n}_names"] = np.asarray(d.dictionary.to_pylist(), dtype=object)
            self._flows[key] = cols
        return self._flows[key]

    def chain_of(self, address_ids: Sequence[int]) -> dict[int, str]:
        """The chain of each address id."""
        ids = [int(a) for a in address_ids if a is not None and a > 0]
        if not ids:
            return {}
        with self.store.view("_alert_ids", pa.table({"address_id": pa.array(ids, pa.int64())})) as v:
            return dict(self.store.query(f"SELECT a.address_id, a.chain FROM addresses a JOIN {v} USING (address_id)"))


@dataclass
class AlertsResult:
    run_id: int
    typologies: list[str]
    found: dict[str, int] = field(default_factory=dict)
    new: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def typology(name: str) -> Typology:
    _load()
    if name not in REGISTRY:
        raise AlertsError(f"unknown typology {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def make_params(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The typology's parameters with ``overrides`` (strings from the command line are converted to the
    field's type); an unknown name or a value of the wrong type is an :class:`AlertsError`."""
    typ = typology(name)
    fields = {f.name: f for f in dataclasses.fields(typ.params)}
    values: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise AlertsError(f"typology {name} has no parameter {key!r}; it has: {', '.join(fields)}")
        default = fields[key].default
        if isinstance(value, str) and not isinstance(default, str):
            try:
                value = _convert(value, default)
            except ValueError as exc:
                raise AlertsError(f"{name}.{key}={value!r}: {exc}") from None
        values[key] = value
    return typ.params(**values)


def _convert(text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, tuple):
        return tuple(s.strip() for s in text.split(",") if s.strip())
    return text


def _load() -> None:
    """Import the detector modules (each registers its typologies)."""
    from heuristics.typologies import DETECTOR_MODULES

    import importlib

    for module in DETECTOR_MODULES:
        importlib.import_module(module)


def run_alerts(store: Store, typologies: Sequence[str] | None = None,
               overrides: dict[str, dict[str, Any]] | None = None, chains: Sequence[str] | None = None) -> AlertsResult:
    """Run ``typologies`` (all by default) over ``flows`` and store their alerts; see the module doc."""
    _load()
    names = list(typologies) if typologies else sorted(REGISTRY)
    overrides = overrides or {}
    for key in overrides:
        typology(key)
    params = {n: make_params(n, overrides.get(n)) for n in names}
    as_json = {n: _jsonable(dataclasses.asdict(p)) for n, p in params.items()}
    run = store.begin_run("alerts", ",".join(names), {"typologies": as_json, "chains": list(chains or [])})
    result = AlertsResult(run.run_id, names, params=as_json)
    try:
        ctx = Context(store, chains)
        tables = {n: REGISTRY[n].detect(ctx, params[n]) for n in names}
        with store.transaction():
            for n in names:
                t = tables[n]
                result.found[n] = t.num_rows
                new, updated = _write(store, n, t, json.dumps(as_json[n], sort_keys=True), run.run_id)
                result.new[n], result.updated[n] = new, updated
        run.add(alerts=sum(result.found.values()), new=sum(result.new.values()))
        run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    return result


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _write(store: Store, name: str, t: pa.Table, params: str, run_id: int) -> tuple[int, int]:
    """Insert the new alerts and update the ones found before (by alert_key); returns (new, updated)."""
    if t.num_rows == 0:
        return 0, 0
    con = store.con
    now = utcnow()
    with store.view("_alerts_found", t) as v:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _alerts_batch AS
            SELECT md5(? || ':' || focal_id || ':' || anchor) AS alert_key, f.*,
                   (SELECT chain FROM addresses a WHERE a.address_id = f.focal_id) AS chain
            FROM {v} f""", [name])
    updated = con.execute("""
        SELECT count(*) FROM alerts a JOIN _alerts_batch b USING (alert_key)""").fetchall()[0][0]
    con.execute("""
        UPDATE alerts SET score = b.score, subjects = b.subjects, evidence = b.evidence, usd = b.usd,
               first_time = b.first_time, last_time = b.last_time, summary = b.summary, params = ?, run_id = ?,
               updated = ?
        FROM _alerts_batch b WHERE alerts.alert_key = b.alert_key""", [params, run_id, now])
    base = con.execute("SELECT coalesce(max(alert_id), 0) FROM alerts").fetchall()[0][0]
    new = con.execute(f"""
        INSERT INTO alerts (alert_id, alert_key, typology, score, focal_id, anchor, chain, subjects, evidence, usd,
                            first_time, last_time, summary, params, first_run, run_id, created, updated)
        SELECT {int(base)} + row_number() OVER (ORDER BY b.score DESC, b.anchor, b.focal_id), b.alert_key, ?,
               b.score, b.focal_id, b.anchor, coalesce(b.chain, 'multi'), b.subjects, b.evidence, b.usd,
               b.first_time, b.last_time, b.summary, ?, ?, ?, ?, ?
        FROM _alerts_batch b WHERE b.alert_key NOT IN (SELECT alert_key FROM alerts)""",
                      [name, params, run_id, run_id, now, now]).fetchall()[0][0]
    con.execute("DROP TABLE _alerts_batch")
    return int(new), int(updated)


# -- reading -------------------------------------------------------------------------------------------
def list_alerts(store: Store, typology_name: str | None = None, top: int | None = 50,
                status: str | None = None) -> list[dict[str, Any]]:
    """Alerts, highest score first (ties by alert_id)."""
    where, args = [], []
    if typology_name:
        where.append("typology = ?")
        args.append(typology_name)
    if status:
        where.append("status = ?")
        args.append(status)
    sql = ("SELECT alert_id, typology, score, chain, focal_id, (SELECT address FROM addresses a "
           "WHERE a.address_id = al.focal_id) AS focal, len(subjects) AS subjects, len(evidence) AS flows, usd, "
           "first_time, last_time, summary, status FROM alerts al"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY score DESC, alert_id"
           + (f" LIMIT {int(top)}" if top else ""))
    cols = ["alert_id", "typology", "score", "chain", "focal_id", "focal", "subjects", "flows", "usd",
            "first_time", "last_time", "summary", "status"]
    return [dict(zip(cols, r, strict=True)) for r in store.query(sql, args)]


def explain_alert(store: Store, alert_id: int) -> dict[str, Any]:
    """One alert with its subjects (address, chain, labels) and its evidence flows, in time order."""
    row = store.one("SELECT alert_id, typology, score, chain, focal_id, subjects, evidence, usd, first_time, "
                    "last_time, summary, params, first_run, run_id, status FROM alerts WHERE alert_id = ?",
                    [int(alert_id)])
    if row is None:
        raise AlertsError(f"no alert {alert_id} in {store.path}")
    keys = ["alert_id", "typology", "score", "chain", "focal_id", "subjects", "evidence", "usd", "first_time",
            "last_time", "summary", "params", "first_run", "run_id", "status"]
    alert = dict(zip(keys, row, strict=True))
    alert["params"] = json.loads(alert["params"] or "{}")
    subjects = store.query("""
        SELECT s.address_id, a.chain, a.address,
               (SELECT string_agg(DISTINCT l.label, ', ') FROM labels l
                 WHERE l.chain = a.chain AND l.address = a.address) AS labels
        FROM (SELECT unnest(subjects) AS address_id, generate_subscripts(subjects, 1) AS k FROM alerts
              WHERE alert_id = ?) s
        LEFT JOIN addresses a USING (address_id) ORDER BY s.k""", [int(alert_id)])
    alert["subjects"] = [dict(zip(["address_id", "chain", "address", "labels"], r, strict=True)) for r in subjects]
    flows = store.query("""
        SELECT f.flow_id, f.src, f.dst, f.chain, f.asset, f.symbol, f.amount::DOUBLE / 10 ^ coalesce(f.decimals, 0),
               f.usd, f.time, f.txid, f.kind
        FROM (SELECT unnest(evidence) AS flow_id FROM alerts WHERE alert_id = ?) e
        JOIN flows f USING (flow_id) ORDER BY f.time, f.flow_id""", [int(alert_id)])
    alert["flows"] = [dict(zip(["flow_id", "src", "dst", "chain", "asset", "symbol", "amount", "usd", "time", "txid",
                                "kind"], r, strict=True)) for r in flows]
    return alert


# -- shared building blocks for detectors ------------------------------------------------------------
def group_sort(group: np.ndarray, time: np.ndarray) -> np.ndarray:
    """The order that sorts events by (group, time)."""
    return np.lexsort((time, group))


def window_ends(group: np.ndarray, time_s: np.ndarray, width_s: int) -> np.ndarray:
    """For events sorted by (group, time) with times in seconds: for each event i, the index one past the
    last event of the same group at or before ``time_s[i] + width_s`` (so ``end - i`` events fall in the
    window opened by event i). One searchsorted over a composite key: group rank x span + time."""
    if group.size == 0:
        return np.zeros(0, np.int64)
    _, rank = np.unique(group, return_inverse=True)
    t0 = int(time_s.min())
    span = int(time_s.max()) - t0 + width_s + 1
    if (rank.max() + 1) * span >= 2**62:
        raise AlertsError("time span too wide for the window index")
    key = rank.astype(np.int64) * span + (time_s - t0)
    return np.searchsorted(key, key + width_s, side="right").astype(np.int64)


def greedy_windows(group: np.ndarray, end: np.ndarray, ok: np.ndarray) -> list[tuple[int, int]]:
    """Non-overlapping windows per group: scanning events in order, take the window opened by each event
    ``ok`` marks unless an earlier taken window of the same group already covers it. Returns
    ``(start, end)`` index pairs. The loop runs over candidate windows only (events where ``ok``)."""
    taken: list[tuple[int, int]] = []
    covered_until, current = -1, None
    for i in np.flatnonzero(ok):
        g = group[i]
        if g != current:
            current, covered_until = g, -1
        if i < covered_until:
            continue
        taken.append((int(i), int(end[i])))
        covered_until = int(end[i])
    return taken
