from __future__ import annotations

from pathlib import Path

import pytest

import tracer
from tracer.ingest.bitcoin.blocks import ingest_bitcoin

BTC = Path(__file__).resolve().parents[2] / "fixtures" / "bitcoin"
BLK = BTC / "blk-heights-0-438.dat"
RAW = sorted(BTC.glob("block-*.raw"))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A store holding every real block of fixtures/bitcoin (read-only use)."""
    path = tmp_path_factory.mktemp("btc") / "all.duckdb"
    s = tracer.open_store(path)
    summary = ingest_bitcoin(s, [BLK, *RAW])
    yield s, summary
    s.close()
