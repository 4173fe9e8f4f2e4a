"""Every `tracer` command, run as a user runs it (a real subprocess), on hostile input: paths that do not
exist, empty files, binary garbage, a folder where a file belongs, malformed CSV/JSON/YAML, a --db that
is a folder or not a DuckDB file. Each must fail with exit code != 0 and one line ``error: …`` naming
the offending file, never a Python traceback.

Each case runs `tracer.cli.main` in a process of its own, forked from a server that imported the CLI once,
several at a time, each on its own copy of one migrated store: the whole file takes well under a minute.
(tests/cli/test_store_and_sources.py runs the installed entry point as a plain subprocess.)
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

import tracer
from tracer.cli import app

ROOT = Path(__file__).resolve().parents[2]
AMLWORLD_HEADER = (ROOT / "fixtures" / "aml" / "amlworld-small.csv").read_text().splitlines()[0]
GARBAGE = random.Random(8).randbytes(4096)
GARBAGE_NUL = GARBAGE.find(b"\0")


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]  # after `tracer`; "{d}" is the folder of hostile files, "{db}" the case's store
    error: str  # the exact error line, with "{d}" and "{db}" filled in; "…" ends a prefix
    code: int = 1
    db_flag: bool = True  # pass --db {db} before the command


def cases() -> list[Case]:
    d = "{d}"
    nope, empty, junk = f"{d}/nope.csv", f"{d}/empty.csv", f"{d}/garbage.bin"
    folder, hollow = f"{d}/folder", f"{d}/hollow"
    binary = f"at byte {GARBAGE_NUL}: binary data (NUL byte), not a UTF-8 text"
    out: list[Case] = []
    # every ingest of files: missing, empty, binary garbage, a folder where the file belongs
    for cmd, what in (("bank", "CSV file"), ("reports", "file"), ("ads", "file"), ("prices", "CSV file")):
        out += [
            Case(f"{cmd}-missing", ("ingest", cmd, nope), f"{nope} at path: no such file or directory"),
            Case(f"{cmd}-empty", ("ingest", cmd, empty), f"{empty} at byte 0: empty file: nothing to ingest"),
            Case(f"{cmd}-garbage", ("ingest", cmd, junk), f"{junk} {binary} {what}"),
            Case(f"{cmd}-folder", ("ingest", cmd, folder), f"{folder} at path: is a directory; expected a {what}"),
        ]
    # sources that may be files or folders
    for cmd in ("labels", "etl", "bitcoin"):
        out += [
            Case(f"{cmd}-missing", ("ingest", cmd, nope), f"{nope} at path: no such file or directory"),
            Case(f"{cmd}-empty", ("ingest", cmd, empty), f"{empty} at byte 0: empty file: nothing to ingest"),
            Case(f"{cmd}-empty-folder", ("ingest", cmd, hollow),
                 f"{hollow} at directory: empty directory: nothing to ingest"),
        ]
    out += [
        Case("labels-garbage", ("ingest", "labels", junk), f"{junk} {binary} file"),
        Case("etl-garbage", ("ingest", "etl", junk), f"{junk} {binary} file"),
        Case("bitcoin-garbage", ("ingest", "bitcoin", junk), f"{junk} at byte offset 0 (block …"),
        Case("bitcoin-folder-without-blk-files", ("ingest", "bitcoin", folder),
             f"{folder} at directory: no blk*.dat files in this directory"),
        Case("bitcoin-missing-cookie", ("ingest", "bitcoin", "--rpc", "http://127.0.0.1:9", "--rpc-cookie", nope),
             f"{nope} at path: no such file or directory"),
        Case("etl-folder-without-exports", ("ingest", "etl", folder),
             f"{folder} at directory: no ethereum-etl export files (blocks, transactions, receipts, logs, "
             "token_transfers as .csv or .json)"),
        Case("etl-header-only", ("ingest", "etl", f"{d}/blocks.csv"),
             f"{d}/blocks.csv: no rows found (header only?): nothing was ingested"),
        Case("etl-malformed-json", ("ingest", "etl", f"{d}/blocks.json"),
             f"{d}/blocks.json at line 1 ({{\"number\": 1,): not JSON (Expecting property name enclosed in "
             "double quotes)"),
        Case("evm-node-down", ("ingest", "evm", "--rpc", "http://127.0.0.1:9", "--retries", "0"),
             "http://127.0.0.1:9 at node (eth_chainId): node unreachable (ConnectionError); gave up after 1 attempts"),
        Case("evm-not-a-url", ("ingest", "evm", "--rpc", "not-a-url", "--retries", "0"),
             "not-a-url at node (eth_chainId): cannot send the request: Invalid URL 'not-a-url': No scheme "
             "supplied. Perhaps you meant https://not-a-url?"),
        # header only, malformed rows
        Case("bank-header-only", ("ingest", "bank", f"{d}/bank.csv"),
             f"{d}/bank.csv at whole file: no rows found: nothing was ingested"),
        Case("bank-unknown-layout", ("ingest", "bank", f"{d}/prices-malformed.csv"),
             f"{d}/prices-malformed.csv at line 1: unknown CSV layout: give a column mapping (--mapping FILE or --map)"),
        Case("bank-mapping-is-garbage", ("ingest", "bank", f"{d}/bank.csv", "--mapping", junk),
             f"{junk} {binary} YAML file"),
        Case("prices-header-only", ("ingest", "prices", f"{d}/prices.csv"),
             f"{d}/prices.csv at whole file: no rows found: nothing was ingested"),
        Case("prices-malformed", ("ingest", "prices", f"{d}/prices-malformed.csv"),
             f"{d}/prices-malformed.csv: all 2 item(s) refused, nothing loaded (mostly: wrong number of fields); "
             "see: tracer query \"SELECT position, reason FROM quarantine WHERE run_id = 1\"", code=2),
        Case("reports-header-only", ("ingest", "reports", f"{d}/reports.csv"),
             f"{d}/reports.csv at whole file: no rows found: nothing was ingested"),
        Case("reports-malformed-json", ("ingest", "reports", f"{d}/reports.json"), f"{d}/reports.json at …"),
        Case("ads-header-only", ("ingest", "ads", f"{d}/ads.csv"),
             f"{d}/ads.csv at whole file: no rows found: nothing was ingested"),
        Case("ads-malformed-json", ("ingest", "ads", f"{d}/ads.json"), f"{d}/ads.json at …"),
        Case("labels-header-only", ("ingest", "labels", f"{d}/labels.csv"),
             f"{d}/labels.csv at whole file: no rows found: nothing was ingested"),
        Case("labels-malformed-yaml", ("ingest", "labels", f"{d}/pack.yaml"),
             f"{d}/pack.yaml at line 3: not valid YAML: while parsing a flow node; did not find expected node "
             "content; in \"<unicode string>\", line 3, column 3"),
        # outputs that are the wrong kind of thing
        Case("labels-export-into-a-file", ("labels", "export", junk), f"OUT {junk}: is a file; expected a folder"),
        Case("export-labels-into-a-file", ("export-labels", junk), f"OUT {junk}: is a file; expected a folder"),
        Case("simulate-truth-is-a-folder", ("simulate", "--seed", "1", "--truth", folder),
             f"--truth {folder}: is a directory; expected a file name"),
        Case("simulate-truth-inside-a-file", ("simulate", "--seed", "1", "--truth", f"{junk}/truth.json"),
             f"--truth {junk}/truth.json: {junk} is a file, not a folder"),
        Case("demo-out-is-a-file", ("demo", "--out", junk, "--no-serve"), f"--out {junk}: is a file; expected a folder"),
        # the store itself
        Case("query-nonexistent-table", ("query", "select * from nonexistent"),
             "query on {db}: Catalog Error: Table with name nonexistent does not exist!; …"),
        Case("query-missing-store", ("--db", nope, "query", "select 1"),
             f"--db {nope}: no store at this path; build one with `tracer ingest …` or `tracer demo`", db_flag=False),
        Case("trace-unknown-seed", ("trace", "1NotInTheStore"),
             "1NotInTheStore: not an address, account, cluster or transaction in this store"),
        Case("trace-bad-time", ("trace", "1A", "--since", "yesterday"),
             "--since yesterday: not a date or time (YYYY-MM-DD[THH:MM[:SS]])"),
        Case("taint-not-an-outpoint", ("taint", "notanoutput"), "notanoutput: a source is txid:n (an output)"),
        Case("taint-unknown-tx", ("taint", "ab:0"), "ab: not a transaction in this store"),
        Case("trace-unknown-ad", ("trace", "ad:nosuch-1"),
             "ad:nosuch-1: no such ad in this store (ad:<ad_id> or ad:<site>:<ad_id>)"),
        Case("taint-backward-not-an-outpoint", ("taint", "--backward", "nooutput"),
             "nooutput: a target is txid:n (an output)"),
        Case("exposure-unknown-seed", ("exposure", "1NotInTheStore"),
             "1NotInTheStore: not an address, account, cluster or transaction in this store"),
        Case("path-unknown-seed", ("path", "1NotInTheStore", "1B"),
             "1NotInTheStore: not an address, account, cluster or transaction in this store"),
        Case("cluster-explain-missing-store", ("--db", nope, "cluster", "explain", "1A", "1B"),
             f"--db {nope}: no store at this path; build one with `tracer ingest …` or `tracer demo`", db_flag=False),
        Case("ads-explain-missing-store", ("--db", nope, "ads", "explain", "ad-1"),
             f"--db {nope}: no store at this path; build one with `tracer ingest …` or `tracer demo`", db_flag=False),
        Case("ads-link-fees-missing", ("ads", "link", "--fees", nope), f"{nope} at path: no such file or directory"),
        Case("ads-link-fees-garbage", ("ads", "link", "--fees", junk), f"{junk} {binary} CSV file"),
        Case("ads-link-fees-folder", ("ads", "link", "--fees", folder),
             f"{folder} at path: is a directory; expected a CSV file"),
        Case("ads-link-fees-bad-row", ("ads", "link", "--fees", f"{d}/fees-bad.csv"),
             f"{d}/fees-bad.csv at line 2: fee_usd is not a number: 'ten'"),
        Case("ads-link-bad-tolerance", ("ads", "link", "--tolerance", "5"),
             "--tolerance 5: must be a share between 0 and 1 (e.g. 0.01)"),
        Case("ads-link-bad-margin", ("ads", "link", "--margin", "2"), "--margin 2: must be between 0 and 1"),
        Case("ads-link-bad-order-weight", ("ads", "link", "--order-weight", "-1"),
             "--order-weight -1: must be between 0 and 1"),
        Case("ads-explain-unknown-ad", ("ads", "explain", "no-such-ad"), "ad no-such-ad: not in the store"),
        Case("ads-group-bad-threshold", ("ads", "group", "--text-threshold", "0"), "--text-threshold 0: must be in (0, 1]"),
        Case("alerts-unknown-typology", ("alerts", "--typology", "bogus"), "unknown typology 'bogus'; known: …"),
        Case("alerts-bad-set", ("alerts", "--set", "min_count=4"),
             "--set 'min_count=4': expected TYPOLOGY.PARAMETER=VALUE (e.g. structuring.min_count=4)"),
        Case("alerts-bad-value", ("alerts", "--set", "structuring.min_count=many"),
             "structuring.min_count='many': invalid literal for int() with base 10: 'many'"),
        Case("alerts-explain-unknown", ("alerts", "explain", "99"), "no alert 99 in {db}"),
        Case("alerts-typologies-unknown", ("alerts", "typologies", "bogus"), "unknown typology 'bogus'; known: …"),
        Case("dashboard-missing-store", ("dashboard", "--db", nope, "--port", "9"),
             f"--db {nope}: no store at this path; build one with `tracer ingest …` or `tracer demo`", db_flag=False),
    ]
    # a --db that is a folder, or a file that is not a DuckDB store, for every command that opens one
    store_users = [("query", "select 1"), ("info",), ("labels", "export", f"{d}/packs"), ("export-labels", f"{d}/packs"),
                   ("simulate", "--seed", "1", "--truth", f"{d}/truth.json"), ("demo", "--out", f"{d}/demo", "--no-serve"),
                   ("ingest", "prices", f"{d}/prices-malformed.csv"), ("ingest", "bank", f"{d}/bank.csv"),
                   ("ingest", "reports", f"{d}/reports.csv"), ("ingest", "ads", f"{d}/ads.csv"),
                   ("ingest", "labels", f"{d}/labels.csv"), ("ingest", "etl", f"{d}/blocks.csv"),
                   ("ingest", "bitcoin", f"{d}/blk00000.dat"), ("ingest", "evm", "--rpc", "http://127.0.0.1:9"),
                   ("cluster",), ("cluster", "explain", "1A", "1B"), ("cluster", "big"), ("cluster", "labels"),
                   ("trace", "1A"), ("path", "1A", "1B"), ("taint", "ab:0"), ("exposure", "1A"),
                   ("ads", "link"), ("ads", "explain", "ad-1"), ("ads", "group"),
                   ("alerts",), ("alerts", "list"), ("alerts", "explain", "1")]
    for args in store_users:
        name = "-".join(args[:2]) if args[0] in ("ingest", "labels", "cluster", "ads", "alerts") else args[0]
        out += [
            Case(f"{name}-db-is-a-folder", ("--db", folder, *args), f"--db {folder}: is a directory, not a store file",
                 db_flag=False),
            Case(f"{name}-db-is-garbage", ("--db", junk, *args),
                 f"--db {junk}: not a DuckDB store file (no DuckDB header)", db_flag=False),
        ]
    out += [
        Case("dashboard-db-is-a-folder", ("dashboard", "--db", folder, "--port", "9"),
             f"--db {folder}: is a directory, not a store file", db_flag=False),
        Case("dashboard-db-is-garbage", ("dashboard", "--db", junk, "--port", "9"),
             f"--db {junk}: not a DuckDB store file (no DuckDB header)", db_flag=False),
    ]
    return out


CASES = cases()


def write_hostile_files(d: Path) -> None:
    (d / "empty.csv").write_bytes(b"")
    (d / "garbage.bin").write_bytes(GARBAGE)
    (d / "folder").mkdir()
    (d / "folder" / "README.txt").write_text("a folder, not a source\n")
    (d / "hollow").mkdir()
    (d / "blocks.csv").write_text("number,hash,parent_hash,timestamp\n")
    (d / "blocks.json").write_text('{"number": 1,\n')
    (d / "bank.csv").write_text(AMLWORLD_HEADER + "\n")
    (d / "prices.csv").write_text("asset,time,usd\n")
    (d / "prices-malformed.csv").write_text("asset,time,usd\nBTC,2024-01-01\n\"ETH,2024-01-01,\n")
    (d / "reports.csv").write_text("report_id,kind,narrative\n")
    (d / "reports.json").write_text('[{"report_id": "r1", "kind": "SAR",\n')
    (d / "ads.csv").write_text("ad_id,site,posted_at,title,body\n")
    (d / "ads.json").write_text('[{"ad_id": "a1",\n')
    (d / "labels.csv").write_text("chain,address,label\n")
    (d / "pack.yaml").write_text("title: broken\ntags: [\n  - address: 1\n")
    (d / "blk00000.dat").write_bytes(GARBAGE)
    (d / "fees-bad.csv").write_text("site,location,fee_usd\nnightlist.example,*,ten\n")


def fill(text: str, d: Path | str, db: Path | str) -> str:
    return text.replace("{db}", str(db)).replace("{d}", str(d))


def run_tracer(argv: list[str], cwd: str, out: str, err: str) -> int:
    """`tracer ARGV` in this (fresh, forked) process: stdout and stderr go to the files ``out``, ``err``."""
    os.chdir(cwd)
    os.environ["COLUMNS"] = "200"
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = ["tracer", *argv]
    from tracer.cli import main

    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # main() must not let anything through: show it the way Python would
        traceback.print_exc()
        code = 99
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[Case, str, Outcome]]:
    """Run every case, each in a process of its own forked from a server that has imported the CLI and
    its libraries once (a fresh interpreter per case costs ~0.7 s of imports, 75 times over)."""
    d = tmp_path_factory.mktemp("hostile")
    write_hostile_files(d)
    (d / "stores").mkdir()
    (d / "output").mkdir()
    template = d / "template.duckdb"
    tracer.open_store(template).close()  # one migrated store, copied for each case
    jobs = []
    for n, case in enumerate(CASES):
        db = d / "stores" / f"{n}.duckdb"
        shutil.copyfile(template, db)
        argv = [fill(a, d, db) for a in case.args]
        if case.db_flag:
            argv = ["--db", str(db), *argv]
        jobs.append((argv, str(d), str(d / "output" / f"{n}.out"), str(d / "output" / f"{n}.err")))
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tracer.cli", "duckdb", "pyarrow", "tracer.store", "tests.cli.test_hostile_input"])
    with ctx.Pool(processes=max(2, os.cpu_count() or 1), maxtasksperchild=1) as pool:
        codes = pool.starmap(run_tracer, jobs, chunksize=1)
    return {case.name: (case, str(d), Outcome(code, Path(out).read_text(), Path(err).read_text()))
            for case, code, (_, _, out, err) in zip(CASES, codes, jobs, strict=True)}


def commands_of(group, prefix: tuple[str, ...] = ()) -> set[str]:
    import click  # typer's click, through typer.main

    found = set()
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group) or hasattr(cmd, "commands"):
            found |= commands_of(cmd, (*prefix, name))
        else:
            found.add(" ".join((*prefix, name)))
    return found


def test_every_command_of_the_cli_is_tried_on_hostile_input():
    listed = commands_of(typer.main.get_command(app))
    tried = set()
    for case in CASES:
        words = [a for a in case.args if not a.startswith(("-", "{"))]
        for n in (1, 2):
            if " ".join(words[:n]) in listed:
                tried.add(" ".join(words[:n]))
    assert tried == listed == {
        "query", "info", "export-labels", "simulate", "demo", "dashboard", "labels export",
        "ingest bitcoin", "ingest evm", "ingest etl", "ingest bank", "ingest reports", "ingest ads",
        "ingest labels", "ingest prices", "cluster explain", "cluster big", "cluster labels", "trace", "path", "taint", "exposure",
        "ads link", "ads explain", "ads group", "alerts list", "alerts explain", "alerts typologies"}


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_hostile_input_fails_with_one_line_naming_the_source(outcomes, name):
    case, d, proc = outcomes[name]
    db = str(Path(d) / "stores" / f"{CASES.index(case)}.duckdb")
    assert proc.returncode == case.code, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    expected = "error: " + fill(case.error, d, db)
    if expected.endswith("…"):
        assert errors[0].startswith(expected[:-1]), errors[0]
    else:
        assert errors[0] == expected
    if case.code == 1:  # nothing else on stderr: the one line is the whole story
        assert proc.stderr == errors[0] + "\n"
