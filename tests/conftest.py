"""Shared fixtures: the real-data folder and fresh stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("BCL_DATA_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "bitcoinlib"))

import tracer  # noqa: E402  (sets up bitcoinlib's data dir before any test imports it)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture()
def store(tmp_path: Path):
    s = tracer.open_store(tmp_path / "store.duckdb")
    yield s
    s.close()
