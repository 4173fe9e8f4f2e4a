"""A store built from real fixtures for the dashboard tests: Bitcoin blocks, a TagPack, a bank sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tracer
from tracer.ingest.human.bank import ingest_bank
from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.ingest.labels.sources import ingest_labels

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BTC = FIXTURES / "bitcoin"


@pytest.fixture(scope="session")
def built_store(tmp_path_factory) -> Path:
    """Path of a closed store: every real block, the WalletExplorer TagPack and the AMLworld sample."""
    path = tmp_path_factory.mktemp("dash") / "case.duckdb"
    with tracer.open_store(path) as s:
        ingest_bitcoin(s, [BTC / "blk-heights-0-438.dat", *sorted(BTC.glob("block-*.raw"))])
        ingest_labels(s, FIXTURES / "labels" / "tagpacks" / "walletexplorer.yaml")
        ingest_bank(s, FIXTURES / "aml" / "amlworld-small.csv", fmt="amlworld")
    return path


@pytest.fixture()
def store_copy(built_store, tmp_path) -> Path:
    """A private copy of the built store, for tests that write (cases) or serve it."""
    path = tmp_path / "case.duckdb"
    shutil.copyfile(built_store, path)
    return path
