"""Scoring clustering and CoinJoin detection against a simulated world's ground truth.

The truth lives in the simulator's truth files (``truth.addresses.parquet``: the entity behind every
address; ``truth.transactions.parquet``: the kind of every transaction), never in the store the
heuristics read. Cluster quality is pairwise: of the address pairs put in one cluster, the share that
truly share an entity (precision), and of the pairs that truly share one, the share put together
(recall) — the measure BlockSci's and GraphSense's evaluations use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from heuristics.clustering.coinjoin import COINJOIN_FLAGS
from tracer.store import Store

# truth kind -> the flags that count as detecting it
KINDS = {
    "coinjoin_whirlpool": ("coinjoin:whirlpool",),
    "coinjoin_wasabi": ("coinjoin:wasabi1", "coinjoin:wasabi11", "coinjoin:wasabi2"),
    "whirlpool_tx0": ("whirlpool-tx0",),
}


@dataclass
class PairScore:
    precision: float
    recall: float
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int
    addresses: int


@dataclass
class DetectionScore:
    kind: str
    precision: float
    recall: float
    truth: int
    flagged: int
    correct: int


def _companion(truth_json: Path, name: str) -> Path:
    return truth_json.parent / f"{truth_json.stem}.{name}.parquet"


def pairwise(store: Store, truth_json: Path, chain: str = "bitcoin") -> PairScore:
    """Pairwise precision and recall of the stored clusters against the truth's entities."""
    key = pq.read_table(_companion(Path(truth_json), "addresses"), columns=["chain", "address", "entity"])
    with store.view("_truth_addr", key):
        row = store.one(
            """WITH j AS (SELECT c.cluster_id, t.entity FROM clusters c JOIN _truth_addr t
                          ON t.chain = c.chain AND t.address = c.address WHERE c.chain = ?),
               cells AS (SELECT count(*) AS n FROM j GROUP BY cluster_id, entity),
               pred AS (SELECT count(*) AS n FROM j GROUP BY cluster_id),
               tru AS (SELECT count(*) AS n FROM j GROUP BY entity)
               SELECT (SELECT sum(n * (n - 1) / 2) FROM cells), (SELECT sum(n * (n - 1) / 2) FROM pred),
                      (SELECT sum(n * (n - 1) / 2) FROM tru), (SELECT count(*) FROM j)""", [chain])
    correct, predicted, true, n = (int(x or 0) for x in row)
    return PairScore(correct / predicted if predicted else 1.0, correct / true if true else 1.0,
                     predicted, true, correct, n)


def coinjoin_detection(store: Store, truth_json: Path, chain: str = "bitcoin") -> list[DetectionScore]:
    """Precision and recall of each CoinJoin detector family, and of 'any CoinJoin' (what multi-input skips)."""
    key = pq.read_table(_companion(Path(truth_json), "transactions"), columns=["chain", "txid", "kind"])
    scores = []
    families = dict(KINDS)
    families["any coinjoin"] = COINJOIN_FLAGS
    with store.view("_truth_tx", key):
        for kind, flags in families.items():
            kinds = list(KINDS) if kind == "any coinjoin" else [kind]
            if kind == "any coinjoin":
                kinds = ["coinjoin_whirlpool", "coinjoin_wasabi"]
            truth, flagged, correct = (int(x) for x in store.one(
                """WITH t AS (SELECT txid FROM _truth_tx WHERE chain = ? AND kind IN (SELECT unnest(?))),
                        f AS (SELECT txid FROM tx_flags WHERE chain = ? AND flag IN (SELECT unnest(?)))
                   SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM f),
                          (SELECT count(*) FROM t JOIN f USING (txid))""", [chain, kinds, chain, list(flags)]))
            scores.append(DetectionScore(kind, correct / flagged if flagged else 1.0,
                                         correct / truth if truth else 1.0, truth, flagged, correct))
    return scores
