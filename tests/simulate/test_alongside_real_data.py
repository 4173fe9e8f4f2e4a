"""A simulated world joins a store that already holds real mainnet blocks without colliding with them."""

from __future__ import annotations

from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.simulate import simulate


def test_simulated_world_continues_address_ids_after_real_blocks(store, fixtures_dir, tmp_path):
    ingest_bitcoin(store, [fixtures_dir / "bitcoin" / "block-227836.raw"])
    real_max = store.scalar("SELECT max(address_id) FROM addresses")
    real_tx = store.count("transactions")
    summary = simulate(store, seed=3, scale=1_000, truth_path=tmp_path / "t.json")
    lo, hi, n, distinct = store.query("""SELECT min(address_id), max(address_id), count(*), count(DISTINCT address_id)
                                         FROM addresses WHERE run_id = ?""", [summary.run_id])[0]
    assert lo == real_max + 1 and hi == real_max + n and distinct == n
    assert store.count("transactions") == real_tx + summary.counts["transactions"] + summary.counts[
        "sim-evm transactions"]
    # the real block is untouched: its outputs are still spent or unspent exactly as before
    assert store.scalar("SELECT count(*) FROM transactions WHERE chain = 'bitcoin' AND block_height = 227836") == 100
    assert store.query("SELECT network FROM chains WHERE chain = 'bitcoin'") == [("mainnet",)]
