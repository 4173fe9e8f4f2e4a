"""The simulated world as source files: what the real ingesters read, in the order they must read them.

``simulate(..., sources_dir=DIR)`` (``tracer simulate --sources DIR``) writes, beside the store it fills:

==========================  =====================================  ==========================================
file                        format                                 read by
==========================  =====================================  ==========================================
``blocks/blk*.dat``         Bitcoin Core blk files (regtest magic  ``tracer ingest bitcoin --network regtest``
                            ``fabfb5da``, files of <= 128 MiB)
``ads.jsonl``               the ads format (docs/formats.md)       ``tracer ingest ads``
``evm/*.json``              ethereum-etl NDJSON (``type`` per      ``tracer ingest etl --chain sim-evm
                            line; receipt fields on transactions,  --chain-id 1337 --token-price
                            as ``ethereum-etl stream`` writes)     0xdac1…=USDT``
``bank/simulate-<seed>.csv``  AMLworld CSV                         ``tracer ingest bank``
``prices.csv``              ``asset,time,usd``                     ``tracer ingest prices``
``labels/<pack>.yaml``      the world's GraphSense TagPack         ``tracer ingest labels --chain-as
                                                                   ethereum=sim-evm``
``reports.jsonl``           the reports format                     ``tracer ingest reports``
==========================  =====================================  ==========================================

plus ``manifest.json`` (each step: the file, the ``tracer`` arguments, what it fills) and ``ingest.sh``
(the same steps as a script: ``sh ingest.sh new.duckdb``). The steps run in the order the simulator writes
the store, because party ids, transaction ids and flow ids are handed out in order of ingest: followed in
that order into an empty store, they give the same rows, table by table, as simulating into it
(``tests/simulate/test_sources.py`` lists the columns that differ and why).

Files are written from the rows the simulator has just stored (inside its transaction), so they hold
exactly the world of the store; each writer is one pass over its table.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from tracer.export.etl import export_rows
from tracer.simulate import evm as evm_mod
from tracer.store import Store

MANIFEST = "manifest.json"
FORMAT = "moneytrail-simulated-sources/1"
AMLWORLD_HEADER = ["Timestamp", "From Bank", "Account", "To Bank", "Account", "Amount Received",
                   "Receiving Currency", "Amount Paid", "Payment Currency", "Payment Format", "Is Laundering"]


def _offset(text: str) -> dt.timedelta:
    sign = -1 if text.startswith("-") else 1
    hours, _, minutes = text.lstrip("+-").partition(":")
    return sign * dt.timedelta(hours=int(hours), minutes=int(minutes or 0))


def write_ads(store: Store, run_id: int, path: Path) -> int:
    """The ads as JSON Lines with local posting times and their offsets (what an ads scrape holds)."""
    cols = ["ad_id", "site", "posted_at", "posted_offset", "title", "body", "price", "currency", "phones",
            "emails", "location", "lat", "lon", "image_hashes", "fee_chain", "fee_txid", "fee_amount", "fee_asset"]
    rows = store.query(f"SELECT {', '.join(cols)} FROM ads WHERE run_id = ? ORDER BY source_line", [run_id])
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            rec = dict(zip(cols, row, strict=True))
            off = rec.pop("posted_offset")
            rec["posted_at"] = (rec["posted_at"] + _offset(off)).isoformat() + off
            rec["price"] = None if rec["price"] is None else str(rec["price"])
            rec["fee_amount"] = None if rec["fee_amount"] is None else str(rec["fee_amount"])
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return len(rows)


def write_reports(store: Store, run_id: int, path: Path) -> int:
    """The reports as JSON Lines; identifiers that came from fields go back into fields (the ingester
    finds the narrative's again)."""
    reports = store.query("""SELECT report_id, kind, filer, filed_at, subjects, amount, currency, narrative
                             FROM reports WHERE run_id = ? ORDER BY source_line""", [run_id])
    fields: dict[str, dict[str, list[str]]] = {}
    for rid, kind, value in store.query("""SELECT report_id, kind, value FROM report_identifiers
                                           WHERE run_id = ? AND origin = 'field' ORDER BY rowid""", [run_id]):
        fields.setdefault(rid, {}).setdefault(kind, []).append(value)
    with path.open("w", encoding="utf-8") as f:
        for rid, kind, filer, filed, subjects, amount, currency, narrative in reports:
            f.write(json.dumps({
                "report_id": rid, "kind": kind, "filer": filer,
                "filed_at": None if filed is None else filed.isoformat() + "Z", "subjects": subjects,
                "identifiers": fields.get(rid, {}), "amount": None if amount is None else str(amount),
                "currency": currency, "narrative": narrative}, ensure_ascii=False) + "\n")
    return len(reports)


def write_amlworld(store: Store, run_id: int, path: Path) -> int:
    """The fiat transfers as an AMLworld file (Altman et al., NeurIPS 2023), one row per line in
    ``source_line`` order, so line numbers (and hence the ``<dataset>:<line>`` ids) come back the same."""
    rows = store.query("""SELECT time, from_address, to_address, amount_received, received_asset, amount, asset,
                                 payment_format, is_laundering, source_line
                          FROM transfers WHERE chain = 'fiat' AND run_id = ? ORDER BY source_line""", [run_id])

    def money(cents: Any) -> str:
        c = int(cents)
        return f"{c // 100}.{c % 100:02d}"

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(AMLWORLD_HEADER)
        for k, (time, frm, to, received, rasset, amount, asset, fmt, laundering, line) in enumerate(rows):
            if line != k + 2:
                raise ValueError(f"fiat transfer lines are not contiguous from 2 (row {k}: line {line})")
            if time.second or time.microsecond:
                raise ValueError(f"AMLworld times are to the minute: {time}")
            fbank, _, facct = frm.partition(":")
            tbank, _, tacct = to.partition(":")
            w.writerow([time.strftime("%Y/%m/%d %H:%M"), fbank, facct, tbank, tacct, money(received), rasset,
                        money(amount), asset, fmt, "1" if laundering else "0"])
    return len(rows)


def write_prices(store: Store, run_id: int, path: Path) -> int:
    rows = store.query("SELECT asset, time, usd FROM prices WHERE run_id = ? ORDER BY asset, time", [run_id])
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["asset", "time", "usd"])
        for asset, time, usd in rows:
            w.writerow([asset, time.isoformat(), repr(float(usd))])
    return len(rows)


def write_etl(store: Store, chain: str, folder: Path) -> dict[str, int]:
    """The chain's rows as ethereum-etl NDJSON: blocks, transactions (receipt fields on them, as
    ``ethereum-etl stream`` writes), logs, token_transfers and tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for kind, item in (("blocks", "block"), ("transactions", "transaction"), ("logs", "log"),
                       ("token_transfers", "token_transfer")):
        rows = export_rows(store, chain, kind)
        with (folder / f"{kind}.json").open("w", encoding="utf-8") as f:
            for r in rows:
                if kind == "blocks" and r.get("withdrawals") is None:
                    del r["withdrawals"]  # absent, not an empty list: the block predates withdrawals
                f.write(json.dumps({"type": item, **r}) + "\n")
        counts[kind] = len(rows)
    tokens = store.query("SELECT address, symbol, name, decimals FROM evm_tokens WHERE chain = ? ORDER BY address",
                         [chain])
    with (folder / "tokens.json").open("w", encoding="utf-8") as f:
        for address, symbol, name, decimals in tokens:
            f.write(json.dumps({"type": "token", "address": address, "symbol": symbol, "name": name,
                                "decimals": decimals}) + "\n")
    counts["tokens"] = len(tokens)
    return counts


def write_sources(store: Store, run_id: int, seed: int, out: Path, tagpack: Path) -> Path:
    """Write the world of simulate run ``run_id`` as source files under ``out``; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():
        raise FileExistsError(f"{out} already holds simulated sources ({MANIFEST}); use an empty folder")
    steps: list[dict[str, Any]] = []

    def step(path: str, argv: list[str], fills: list[str], rows: int | dict[str, int]) -> None:
        steps.append({"path": path, "argv": argv, "fills": fills, "rows": rows})

    # the blk files were written when the Bitcoin tables were (Ledger.materialise): they come first
    blk = sorted(p.name for p in (out / "blocks").glob("blk*.dat"))
    if not blk:
        raise FileNotFoundError(f"{out / 'blocks'} holds no blk files")
    step("blocks", ["ingest", "bitcoin", "blocks", "--network", "regtest"],
         ["blocks", "transactions", "outputs", "inputs", "addresses", "flows"],
         {"blk_files": len(blk), "blocks": int(store.scalar(
             "SELECT count(*) FROM blocks WHERE chain = 'bitcoin' AND run_id = ?", [run_id]))})

    n = write_ads(store, run_id, out / "ads.jsonl")
    step("ads.jsonl", ["ingest", "ads", "ads.jsonl"], ["ads"], n)
    counts = write_etl(store, evm_mod.CHAIN, out / "evm")
    step("evm", ["ingest", "etl", "evm", "--chain", evm_mod.CHAIN, "--chain-id", str(evm_mod.CHAIN_ID),
                 "--token-price", f"{evm_mod.USDT}=USDT"],
         ["blocks", "transactions", "logs", "transfers", "evm_tokens", "addresses", "flows"], counts)
    bank = f"bank/simulate-{seed}.csv"
    (out / "bank").mkdir(exist_ok=True)
    n = write_amlworld(store, run_id, out / bank)
    step(bank, ["ingest", "bank", bank, "--format", "amlworld", "--dataset", f"simulate-{seed}"],
         ["transfers", "addresses", "flows"], n)
    n = write_prices(store, run_id, out / "prices.csv")
    step("prices.csv", ["ingest", "prices", "prices.csv"], ["prices", "flows (usd)"], n)
    (out / "labels").mkdir(exist_ok=True)
    pack = f"labels/{tagpack.name}"
    shutil.copyfile(tagpack, out / pack)
    step(pack, ["ingest", "labels", pack, "--chain-as", f"ethereum={evm_mod.CHAIN}"], ["labels"],
         int(store.scalar("SELECT count(*) FROM labels WHERE run_id = ?", [run_id])))
    n = write_reports(store, run_id, out / "reports.jsonl")
    step("reports.jsonl", ["ingest", "reports", "reports.jsonl"], ["reports", "report_identifiers"], n)
    manifest = {
        "format": FORMAT, "seed": seed,
        "note": "Run the steps in this order, from this folder, into an empty store (ids follow ingest order).",
        "steps": steps,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    lines = ["#!/bin/sh", "# ingest the simulated world's sources into the store named by $1, in order", "set -eu",
             'db="$(realpath "$1")"', 'cd "$(dirname "$0")"']
    lines += [" ".join(["tracer", "--db", '"$db"', *map(shlex.quote, s["argv"])]) for s in steps]
    (out / "ingest.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out / MANIFEST
