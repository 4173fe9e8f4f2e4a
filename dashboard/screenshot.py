"""Take the README screenshot: build a store from the real fixtures, serve the dashboard, photograph it.

    .venv/bin/python -m dashboard.screenshot [--out docs/img/dashboard.png] [--page /]

The store holds the real Bitcoin blocks of fixtures/bitcoin, the real labels of fixtures/labels (GraphSense
TagPacks, OFAC SDN), the AMLworld bank sample and the price sample, so the picture shows what a user gets.
Chromium is Debian's (`make browser`), driven by Playwright without downloading a browser.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from werkzeug.serving import make_server

import tracer
from dashboard.app import create_app

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking"]


def build_fixture_store(path: Path) -> Path:
    """A store from the shipped real data: Bitcoin blocks, labels, a bank sample and prices."""
    from tracer.ingest.human.bank import ingest_bank
    from tracer.ingest.bitcoin.blocks import ingest_bitcoin
    from tracer.ingest.labels.sources import ingest_labels
    from tracer.ingest.prices import ingest_prices

    fixtures = FIXTURES.relative_to(Path.cwd()) if FIXTURES.is_relative_to(Path.cwd()) else FIXTURES
    btc = fixtures / "bitcoin"
    with tracer.open(path) as store:
        ingest_bitcoin(store, [btc / "blk-heights-0-438.dat", *sorted(btc.glob("block-*.raw"))])
        ingest_labels(store, fixtures / "labels" / "tagpacks")
        ingest_labels(store, fixtures / "labels" / "ofac-sdn")
        ingest_prices(store, fixtures / "human" / "prices.csv")
        ingest_bank(store, fixtures / "aml" / "amlworld-small.csv", fmt="amlworld")
    return path


@contextlib.contextmanager
def serving(db_path: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the dashboard in a thread on a free port; yields its base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server(host, 0, create_app(db_path, actor="analyst").server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def take(url: str, out: Path, width: int = 1280, height: int = 800) -> Path:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            page.wait_for_selector("#overview-runs td, #address-transactions td")
            page.wait_for_selector(".main-svg", timeout=15000) if "/address/" not in url else None
            page.wait_for_timeout(500)  # let plotly finish its first draw
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "dashboard.png")
    ap.add_argument("--page", default="/", help="path to photograph, e.g. /address/bitcoin/<address>")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = build_fixture_store(Path(tmp) / "case.duckdb")
        with serving(db) as base:
            print(take(base + args.page, args.out))


if __name__ == "__main__":
    main()
