"""Whatever the seed, a small world is whole: balanced, resolvable, and its story is complete."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracer
from tracer.simulate import simulate


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**63 - 1))
def test_any_seed_gives_a_balanced_chain_with_every_pattern(seed):
    with tempfile.TemporaryDirectory() as tmp:
        store = tracer.open_store(Path(tmp) / "w.duckdb")
        try:
            summary = simulate(store, seed=seed, scale=1_000, truth_path=Path(tmp) / "t.json")
            con = store.con
            unbalanced = con.execute("""
                WITH i AS (SELECT txid, sum(value) v FROM inputs GROUP BY 1),
                     o AS (SELECT txid, sum(value) v FROM outputs GROUP BY 1)
                SELECT count(*) FROM transactions t JOIN i USING (txid) JOIN o USING (txid)
                WHERE t.chain = 'bitcoin' AND NOT t.is_coinbase AND (i.v IS NULL OR i.v <> o.v + t.fee)""").fetchall()
            assert unbalanced == [(0,)]
            twice = con.execute("""SELECT count(*) FROM (SELECT prev_txid, prev_n FROM inputs
                                   WHERE prev_txid IS NOT NULL GROUP BY ALL HAVING count(*) > 1)""").fetchall()
            assert twice == [(0,)]
            assert summary.counts["transactions"] >= 700
            types = {p["type"] for p in json.loads(summary.truth_path.read_text())["patterns"]}
            assert {"peeling_chain", "coinjoin", "structuring", "cycle", "layering"} <= types
        finally:
            store.close()
