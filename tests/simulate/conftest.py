"""One small simulated world shared by the simulator's tests (scale "test": ~3,000 Bitcoin transactions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tracer
from tracer.simulate import simulate

SEED = 7


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory):
    """(store, summary, truth dict) of the seed-7 test world."""
    base = tmp_path_factory.mktemp("simworld")
    store = tracer.open_store(base / "world.duckdb")
    summary = simulate(store, seed=SEED, scale="test", truth_path=base / "truth.json")
    truth = json.loads(Path(summary.truth_path).read_text())
    yield store, summary, truth
    store.close()


@pytest.fixture(scope="session")
def con(world):
    return world[0].con
