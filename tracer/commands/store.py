"""`tracer query` and other store-level commands."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum

import typer

from tracer.commands.checks import open_store_at
from tracer.errors import MoneytrailError, one_line


class Format(str, Enum):
    csv = "csv"
    json = "json"


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @app.command()
    def query(
        ctx: typer.Context,
        sql: str = typer.Argument(..., help="SQL to run against the store."),
        format: Format = typer.Option(Format.csv, "--format", "-f", help="csv or json"),
        write: bool = typer.Option(False, "--write", help="Open the store for writing (default: read-only, so "
                                   "a query cannot change or drop what was ingested)."),
    ) -> None:
        """Run SQL against the store and print the result as CSV or JSON."""
        import duckdb

        db = ctx.obj["db"]
        store = open_store_at(db, read_only=not write)
        try:
            cur = store.con.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall()
        except duckdb.Error as exc:
            text = one_line(exc)
            if not write and "read-only" in text:
                raise MoneytrailError(f"--db {db} is opened read-only: {text}; add --write to change the store") from None
            raise MoneytrailError(f"query on {db}: {text}") from None
        finally:
            store.close()
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
        store = open_store_at(ctx.obj["db"])
        print(f"store {store.path}, schema version {store.schema_version}")
        for chain, kind, network, chain_id in store.query("SELECT chain, kind, network, chain_id FROM chains"):
            print(f"chain {chain}: {kind} {network}" + (f" (chain id {chain_id})" if chain_id else ""))
        for table in ("blocks", "transactions", "outputs", "inputs", "addresses", "transfers",
                      "labels", "ads", "reports", "prices", "quarantine"):
            print(f"{table:>13}: {store.count(table):,}")
