"""`tracer query` and other store-level commands."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum

import typer

from tracer.store import open_store


class Format(str, Enum):
    csv = "csv"
    json = "json"


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @app.command()
    def query(
        ctx: typer.Context,
        sql: str = typer.Argument(..., help="SQL to run against the store."),
        format: Format = typer.Option(Format.csv, "--format", "-f", help="csv or json"),
    ) -> None:
        """Run SQL against the store and print the result as CSV or JSON."""
        store = open_store(ctx.obj["db"])
        cur = store.con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchall()
        if format is Format.json:
            json.dump([dict(zip(cols, r)) for r in rows], sys.stdout, default=str, indent=None)
            sys.stdout.write("\n")
        else:
            w = csv.writer(sys.stdout, lineterminator="\n")
            w.writerow(cols)
            w.writerows(rows)

    @app.command()
    def info(ctx: typer.Context) -> None:
        """Schema version, chains and row counts of the store."""
        store = open_store(ctx.obj["db"])
        print(f"store {store.path}, schema version {store.schema_version}")
        for chain, kind, network, chain_id in store.query("SELECT chain, kind, network, chain_id FROM chains"):
            print(f"chain {chain}: {kind} {network}" + (f" (chain id {chain_id})" if chain_id else ""))
        for table in ("blocks", "transactions", "outputs", "inputs", "addresses", "transfers",
                      "labels", "ads", "reports", "prices", "quarantine"):
            print(f"{table:>13}: {store.count(table):,}")
