"""The demo store (what `make demo` builds), once per test session, for the money-graph tests."""

from __future__ import annotations

import pytest

import tracer
from tracer.demo import run_demo


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    store = tracer.open_store(folder / "demo.duckdb")
    run_demo(store, folder / "out", say=lambda _line: None)
    yield store
    store.close()
