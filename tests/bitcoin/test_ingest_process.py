"""`tracer ingest bitcoin` as a whole process: what it imports and what it leaves on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tracer
from tracer.ingest.bitcoin.blocks import ingest_bitcoin

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = ROOT / "fixtures" / "bitcoin"
FILES = sorted(BLOCKS.glob("*.dat")) + sorted(BLOCKS.glob("*.raw"))


def test_ingest_of_the_real_blocks_imports_neither_pandas_nor_requests_nor_rich(tmp_path):
    # pyarrow imports pandas on its first pa.array() or to_numpy(): the ingest path builds its columns from
    # buffers (tracer.columns) instead; requests is for --rpc only, rich for the progress bar only
    db = tmp_path / "s.duckdb"
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "tracer.cli", "--db", str(db), "ingest", "bitcoin",
                           *map(str, FILES), "--json", "--no-progress"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    top = {name.split(".")[0] for name in imported}
    assert {"duckdb", "pyarrow", "numpy", "tracer"} <= top and "tracer.ingest.bitcoin.parse" in imported
    assert top & {"pandas", "requests", "rich", "urllib3"} == set()
    summary = json.loads(done.stdout)
    assert (summary["blocks"], summary["transactions"], summary["inputs"], summary["outputs"]) == (445, 6975, 24585, 16082)
    # the library still hands out pandas frames on request
    with tracer.open_store(db, read_only=True) as store:
        frame = store.arrow("SELECT count(*) AS n FROM transactions").to_pandas()
        assert frame["n"].tolist() == [6975]


def test_ingest_ends_with_its_own_checkpoint(tmp_path):
    # the WAL is in the store file when ingest returns, so a later command's first commit does not pay for it
    db = tmp_path / "s.duckdb"
    with tracer.open_store(db) as store:
        store.con.execute("SET checkpoint_threshold = '1GB'")  # no automatic checkpoint can do it instead
        summary = ingest_bitcoin(store, FILES)
        wal = Path(f"{db}.wal")
        assert summary.transactions == 6975
        assert not wal.exists() or wal.stat().st_size == 0
        assert store.scalar("SELECT status FROM ingest_runs WHERE run_id = ?", [summary.run_id]) == "ok"
