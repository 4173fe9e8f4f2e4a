"""The dashboard end to end: `tracer dashboard` in a subprocess, driven by Playwright in Debian's chromium.

No browser is downloaded: Playwright launches /usr/bin/chromium (`make browser` installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import tracer
from tests.dashboard.known import HAL, SATOSHI
from tracer.store.store import Store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking"]

# The real `tracer` CLI. Until tracer/cli.py lists tracer.commands.dashboard, register it the same way.
CLI = """
import tracer.cli as cli
if "tracer.commands.dashboard" not in cli.COMMAND_MODULES:
    from tracer.commands import dashboard
    dashboard.register(cli.app, cli.ingest_app)
cli.main()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tracer_cli(*args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=stdout, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@contextlib.contextmanager
def dashboard_process(db: Path, *extra: str) -> Iterator[tuple[str, int, subprocess.Popen]]:
    port = free_port()
    log = open(db.with_suffix(".log"), "w+")  # a file, not a pipe: a full pipe would stall the server
    proc = tracer_cli("dashboard", "--db", str(db), "--port", str(port), "--actor", "maria", *extra, stdout=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"dashboard did not start: {log.read()}") from None
                time.sleep(0.2)
        yield url, port, proc
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, built_store):
    db = tmp_path_factory.mktemp("served") / "case.duckdb"
    shutil.copyfile(built_store, db)
    with dashboard_process(db) as (url, port, proc):
        yield db, url, port


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser) -> Iterator[Page]:
    p = browser.new_page(viewport={"width": 1280, "height": 800})
    p.set_default_timeout(15000)
    yield p
    p.close()


def read_only(db: Path) -> Store:
    """The test reads the store while the dashboard runs: possible because it holds no lock between requests."""
    return tracer.open_store(db, read_only=True)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def listening_on(port: int) -> list[str]:
    """IPv4 addresses with a socket in LISTEN state on `port`, from the kernel's table."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:                  # 0A = LISTEN
            found.append(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
    return found


def test_dashboard_listens_on_loopback_only_by_default(served):
    _db, _url, port = served
    assert listening_on(port) == ["127.0.0.1"]
    assert not any(f":{port:04X} " in line for line in Path("/proc/net/tcp6").read_text().splitlines()[1:]
                   if line.split()[3] == "0A")
    # 127.0.0.2 is loopback too: a server bound to all interfaces would accept it, ours refuses
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", port), timeout=2):
        pass


def test_overview_shows_the_stores_counts(served, page):
    db, url, _port = served
    page.goto(url + "/")
    expect(page.locator("h1")).to_have_text("Store overview")
    expect(page.locator(".mt-title")).to_have_text("moneytrail")
    expect(page.locator("#overview-runs tbody tr")).to_have_count(3)
    with read_only(db) as s:
        expected = {t: s.count(t) for t in ("blocks", "transactions", "addresses", "transfers", "labels", "quarantine",
                                            "outputs", "inputs")}
        runs = s.query("SELECT run_id, source FROM ingest_runs ORDER BY run_id DESC")
    for table in ("blocks", "transactions", "addresses", "transfers", "labels", "quarantine"):
        assert number(page.locator(f"#stat-{table}").inner_text()) == expected[table], table
    shown = dict(r.split("\t") for r in page.locator("#overview-counts tbody tr").all_inner_texts())
    assert {t: number(n) for t, n in shown.items() if t in expected} == expected
    assert number(page.locator("#overview-quarantine").inner_text()) == expected["quarantine"]
    first_cells = [r.split("\t")[:2] for r in page.locator("#overview-runs tbody tr").all_inner_texts()]
    assert [(int(a), b) for a, b in first_cells] == runs
    expect(page.locator("#overview-chains")).to_have_text("bitcoin (mainnet), fiat (fiat)")
    expect(page.locator("#overview-activity .main-svg").first).to_be_visible()


def test_analyst_searches_satoshi_and_adds_him_to_a_case(served, page):
    db, url, _port = served
    page.goto(url + "/")
    page.locator("#address-search").fill(SATOSHI)
    page.locator("#address-search").press("Enter")
    page.wait_for_url(re.compile(rf"/address/bitcoin/{SATOSHI}$"))
    expect(page.locator("#address-title")).to_have_text(SATOSHI)
    with read_only(db) as s:
        received = s.scalar("SELECT sum(value) FROM outputs WHERE address = ?", [SATOSHI])
        sent = s.scalar("SELECT sum(value) FROM inputs WHERE address = ?", [SATOSHI])
    assert (received, sent) == (19_500_000_000, 17_700_000_000)
    expect(page.locator("#address-received")).to_have_text("195.00000000 BTC")
    expect(page.locator("#address-sent")).to_have_text("177.00000000 BTC")
    expect(page.locator("#address-balance")).to_have_text("18.00000000 BTC")
    expect(page.locator("#address-first-seen")).to_have_text("2009-01-09 03:54:39 UTC")
    rows = page.locator("#address-transactions tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.filter(has_text="f4184fc596")).to_contain_text(HAL)

    page.locator("#case-title").fill("Operation Nightingale")
    page.locator("#add-to-case").click()
    expect(page.locator("#case-message")).to_contain_text("added to case “Operation Nightingale” (1 items)")
    page.locator("#add-to-case").click()
    expect(page.locator("#case-message")).to_contain_text("already in case “Operation Nightingale”")
    with read_only(db) as s:
        assert s.query("SELECT case_id, kind, ref FROM case_items") == \
            [("operation-nightingale", "address", f"bitcoin:{SATOSHI}")]
        log = s.query("SELECT actor, action, detail FROM audit_log ORDER BY time")
    assert [(a, b) for a, b, _ in log] == [("maria", "case.add_item")] * 2
    assert [json.loads(d)["already_in_case"] for _, _, d in log] == [False, True]

    # follow Hal Finney, the counterparty of block 170, by his link
    rows.filter(has_text="f4184fc596").get_by_role("link", name=HAL).click()
    page.wait_for_url(re.compile(rf"/address/bitcoin/{HAL}$"))
    expect(page.locator("#address-title")).to_have_text(HAL)
    expect(page.locator("#case-title")).to_have_value("Operation Nightingale")   # the case just used


def test_labels_show_on_the_address_page(served, page):
    _db, url, _port = served
    page.goto(url + "/address/bitcoin/1VayNert3x1KzbpzMGt2qdqrAThiRovi8")
    expect(page.locator("#address-labels")).to_have_text("DeepBit.net")
    expect(page.locator("#address-label-table")).to_contain_text("deepbitnet")
    expect(page.locator("#address-received")).to_have_text("508.67877330 BTC")


def test_address_page_also_answers_the_query_string_form(served, page):
    _db, url, _port = served
    page.goto(url + f"/address?chain=bitcoin&address={HAL}")
    expect(page.locator("#address-title")).to_have_text(HAL)
    expect(page.locator("#address-received")).to_have_text("10.00000000 BTC")


def test_search_for_an_address_the_store_lacks_says_so(served, page):
    _db, url, _port = served
    page.goto(url + "/")
    page.locator("#address-search").fill("1BoatSLRHtKNngkdXEeobR76b53LETtpyT")
    page.locator("#address-search-go").click()
    expect(page.locator("#address-search-message")).to_contain_text("is not in this store")
    assert page.url == url + "/"


def test_dashboard_listens_elsewhere_only_when_told_and_warns(built_store, tmp_path):
    db = tmp_path / "case.duckdb"
    shutil.copyfile(built_store, db)
    with dashboard_process(db, "--host", "0.0.0.0") as (url, port, proc):
        assert listening_on(port) == ["0.0.0.0"]
    log = db.with_suffix(".log").read_text()
    assert "warning:" in log and "no authentication" in log


def test_ingest_can_write_while_the_dashboard_runs_and_the_dashboard_says_busy_meanwhile(served, page):
    db, url, _port = served
    page.goto(url + "/")
    expect(page.locator("#stat-blocks")).to_have_text("445")
    # the dashboard holds no lock between requests, so a writer (an ingest) can open the store now
    writer = tracer.open_store(db)
    try:
        page.goto(url + "/")
        expect(page.locator("#store-busy")).to_contain_text("being written by another process")
    finally:
        writer.close()
    page.reload()
    expect(page.locator("#stat-blocks")).to_have_text("445")


def test_dashboard_refuses_a_store_that_does_not_exist(tmp_path):
    proc = tracer_cli("dashboard", "--db", str(tmp_path / "typo.duckdb"), "--port", str(free_port()))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "no store at" in out and "typo.duckdb" in out
    assert not (tmp_path / "typo.duckdb").exists()
