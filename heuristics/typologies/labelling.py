"""What the labels say about an address, for the flow typologies' scores (docs/heuristics.md, "Labels in
alert scores").

Three kinds of labelled address, by ``labels.category`` / ``labels.abuse`` / ``labels.source``:

- **exchange**: category ``exchange`` — a service that passes its customers' money through quickly;
- **service**: any other service category (``shop``, ``miner``, ``coinjoin``, ``payment_processor``,
  ``gambling``, ``defi``, …) — ordinary spending goes there;
- **flagged**: a label whose category or abuse names a crime (TagPack abuse categories: ransomware,
  sextortion, scam, darknet market, …), OFAC SDN labels (source ``ofac``/``sdn`` or a ``sanction``
  category) — flows to or from them raise a score.

The sets are computed once per alerts run (cached on the :class:`~heuristics.typologies.base.Context`).
"""

from __future__ import annotations

import numpy as np

from heuristics.typologies.base import Context

#: label categories or abuse values that flag an address (TagPack ``abuse`` vocabulary and OFAC)
FLAG_WORDS = ("sanction", "ofac", "sdn", "ransom", "sextortion", "scam", "darknet", "dark_market", "market_darknet",
              "hack", "theft", "terror", "phishing", "ponzi", "human_trafficking", "csam", "extortion", "mixer_abuse")
#: categories of ordinary services (money into them is ordinary spending)
EXCHANGE = ("exchange",)


def _cache(ctx: Context) -> dict:
    c = getattr(ctx, "_flow_typology_cache", None)
    if c is None:
        c = {}
        ctx._flow_typology_cache = c  # type: ignore[attr-defined]
    return c


def labelled(ctx: Context) -> dict[str, np.ndarray]:
    """Sorted address-id arrays ``exchange``, ``service`` (non-exchange services) and ``flagged``."""
    c = _cache(ctx)
    if "labels" not in c:
        words = " OR ".join(["strpos(t, ?) > 0"] * len(FLAG_WORDS))
        rows = ctx.store.arrow(f"""
            WITH l AS (SELECT chain, address,
                              lower(coalesce(category, '') || ' ' || coalesce(abuse, '') || ' ' || coalesce(source, '')
                                    || ' ' || coalesce(label, '')) AS t,
                              lower(coalesce(category, '')) AS category, abuse
                       FROM labels)
            SELECT a.address_id,
                   bool_or(l.category IN ('exchange')) AS exchange,
                   bool_or(l.category NOT IN ('', 'exchange') AND l.abuse IS NULL AND NOT ({words})) AS service,
                   bool_or(l.abuse IS NOT NULL OR {words}) AS flagged
            FROM l JOIN addresses a ON a.chain = l.chain AND a.address = l.address
            GROUP BY a.address_id""", list(FLAG_WORDS) * 2)
        ids = rows.column("address_id").to_numpy(zero_copy_only=False).astype(np.int64)
        out = {}
        for k in ("exchange", "service", "flagged"):
            m = rows.column(k).to_numpy(zero_copy_only=False).astype(bool)
            out[k] = np.sort(ids[m])
        c["labels"] = out
    return c["labels"]


def member(ids: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``ids`` that are in ``sorted_set`` (a boolean mask)."""
    if sorted_set.size == 0:
        return np.zeros(np.shape(ids), bool)
    pos = np.minimum(np.searchsorted(sorted_set, ids), sorted_set.size - 1)
    return sorted_set[pos] == ids


def label_names(ctx: Context, ids: list[int]) -> dict[int, str]:
    """The labels of a few addresses (for an alert's summary)."""
    ids = [int(i) for i in ids if i is not None and i > 0]
    if not ids:
        return {}
    import pyarrow as pa

    with ctx.store.view("_label_ids", pa.table({"address_id": pa.array(ids, pa.int64())})) as v:
        return dict(ctx.store.query(f"""
            SELECT a.address_id, string_agg(DISTINCT l.label, '; ' ORDER BY l.label)
            FROM {v} JOIN addresses a USING (address_id) JOIN labels l ON l.chain = a.chain AND l.address = a.address
            GROUP BY a.address_id"""))


def flag_boost(ctx: Context, address_ids: np.ndarray, boost: float) -> tuple[float, list[int]]:
    """The score factor for an alert whose subjects touch flagged addresses: ``1 + boost`` if any does
    (the score is then capped at 1 by the caller), with the flagged ids."""
    flagged = labelled(ctx)["flagged"]
    hit = np.unique(address_ids[member(address_ids, flagged)])
    return (1.0 + boost if hit.size else 1.0), [int(x) for x in hit]
