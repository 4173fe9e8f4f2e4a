"""Scoring typology alerts against a simulated world's ground truth (the truth JSON, never the store).

A truth pattern (``patterns`` in ``<truth>.json``: ``type``, ``chain``, ``txids`` or ``transfer_ids``) is
*found* by an alert of a matching typology whose evidence holds at least one of the pattern's movements
(flows of the same chain and txid). An alert is *true* when it finds some pattern of its typology.
Precision is reported over every alert of the typology and over the top of its ranking (the first
``k`` alerts by score, ``k`` the number of planted patterns: analysts work the queue from the top);
recall is the share of planted patterns found by any alert.

Truth types that are not laundering (``benign_*``: payroll runs, merchants' card takings, bill
payments) are planted to share a typology's shape; :func:`score_alerts` reports how many alerts land
on them, which count as false in the precision. An alert on a planted laundering pattern of *another*
typology only (a structuring instance's cash deposits into one account, passed on, found as a fan_in:
a funnel account by FinCEN's definition) is false in ``precision`` but counted in ``on_other`` and in
``laundering_precision`` (the share of alerts that are on laundering at all), reported beside it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracer.store import Store

#: truth pattern type -> the typology that should find it
TRUTH_TYPOLOGY = {
    "structuring": "structuring",
    "funnel_account": "fan_in",
    "fan_in": "fan_in",
    "fan_out": "fan_out",
    "cycle": "cycle",
    "scatter_gather": "scatter_gather",
    "gather_scatter": "gather_scatter",
    "peeling_chain": "peeling_chain",
    "pass_through": "pass_through",
    "off_ramp": "off_ramp",
    "exchange_deposit": "off_ramp",  # the operation's deposits at Kestrel: an off-ramp
    "ad_fee_payments": "ad_fee_payer",
}


@dataclass
class TypologyScore:
    typology: str
    planted: int
    alerts: int
    true_alerts: int
    found: int
    precision: float | None
    precision_at_k: float | None
    recall: float | None
    on_benign: int = 0
    on_other: int = 0  # alerts on planted laundering of another typology only (e.g. a structuring funnel as fan_in)
    laundering_precision: float | None = None  # (true + on_other) / alerts: the alert is on laundering
    laundering_precision_at_k: float | None = None
    missed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def truth_patterns(truth_path: str | Path) -> list[dict[str, Any]]:
    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    return list(truth.get("patterns", []))


def score_alerts(store: Store, truth_path: str | Path, typologies: list[str] | None = None) -> dict[str, TypologyScore]:
    """Per typology: planted patterns, alerts, precision (all and top-k), recall, alerts on benign look-alikes."""
    patterns = truth_patterns(truth_path)
    rows = []  # (pattern index, chain, txid)
    for i, p in enumerate(patterns):
        for txid in p.get("txids", []) + p.get("transfer_ids", []):
            rows.append((i, p.get("chain"), txid))
    movements = pa.table({"pattern": pa.array([r[0] for r in rows], pa.int64()),
                          "chain": [r[1] for r in rows], "txid": [r[2] for r in rows]})
    with store.view("_truth_movements", movements) as v:
        hits = store.query(f"""
            WITH ev AS (SELECT alert_id, typology, score, unnest(evidence) AS flow_id FROM alerts)
            SELECT DISTINCT ev.alert_id, ev.typology, m.pattern
            FROM ev JOIN flows f USING (flow_id) JOIN {v} m ON m.chain = f.chain AND m.txid = f.txid""")
    alerts = store.query("SELECT alert_id, typology, score FROM alerts ORDER BY score DESC, alert_id")
    names = typologies or sorted({t for _, t, _ in alerts} | {TRUTH_TYPOLOGY[p["type"]] for p in patterns
                                                                if p.get("type") in TRUTH_TYPOLOGY})
    out: dict[str, TypologyScore] = {}
    for name in names:
        planted = [i for i, p in enumerate(patterns) if TRUTH_TYPOLOGY.get(p.get("type")) == name]
        benign = {i for i, p in enumerate(patterns) if str(p.get("type", "")).startswith("benign")}
        mine = [a for a, t, _ in alerts if t == name]
        true_alerts = {a for a, t, i in hits if t == name and i in planted}
        found = {i for a, t, i in hits if t == name and i in planted}
        on_benign = len({a for a, t, i in hits if t == name and i in benign} - true_alerts)
        laundering = {a for a, t, i in hits if t == name and i not in benign}
        on_other = len(laundering - true_alerts)
        k = len(planted)
        top = mine[:k] if k else []
        out[name] = TypologyScore(
            typology=name, planted=k, alerts=len(mine), true_alerts=len(true_alerts), found=len(found),
            precision=len(true_alerts) / len(mine) if mine else None,
            precision_at_k=sum(a in true_alerts for a in top) / len(top) if top else None,
            recall=len(found) / k if k else None, on_benign=on_benign, on_other=on_other,
            laundering_precision=len(laundering) / len(mine) if mine else None,
            laundering_precision_at_k=sum(a in laundering for a in top) / len(top) if top else None,
            missed=[patterns[i].get("id", str(i)) for i in planted if i not in found])
    return out


def seed_list(text: str) -> list[int]:
    """Seeds from ``1-6`` or ``1,3,7-9`` (the benches' ``--seeds`` and ``--held-out``)."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def score_world(seed: int, scale: str, plant: int, folder: Path, typologies: list[str] | None,
                cluster: bool = False) -> dict[str, Any]:
    """Simulate one world (``plant`` instances per typology), optionally cluster it, run ``typologies`` and
    score them: ``{"seed", "seconds" (the alerts run), "scores": {typology: TypologyScore as a dict}}``."""
    import time

    import tracer
    from tracer.simulate import simulate

    truth = folder / f"truth-{seed}.json"
    with tracer.open(folder / f"w{seed}.duckdb") as ws:
        simulate(ws.store, seed=seed, scale=scale, truth_path=truth, plant=plant)
        if cluster:
            ws.cluster()
        t0 = time.perf_counter()
        ws.alerts(typologies)
        seconds = time.perf_counter() - t0
        scores = score_alerts(ws.store, truth, typologies)
    return {"seed": seed, "seconds": seconds, "scores": {k: v.as_dict() for k, v in scores.items()}}
