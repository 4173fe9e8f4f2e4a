"""`tracer cluster`: group addresses into entities, explain a link, list super-clusters."""

from __future__ import annotations

import dataclasses
import json

import typer

from tracer.commands.checks import open_workspace_at
from tracer.errors import MoneytrailError


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    cluster_app = typer.Typer(help="Address clustering: run it, explain a link, list super-clusters.",
                              invoke_without_command=True)
    app.add_typer(cluster_app, name="cluster")

    @cluster_app.callback()
    def run(
        ctx: typer.Context,
        chain: str = typer.Option("bitcoin", "--chain",
                                  help="Chain to cluster: a UTXO chain (multi-input) or an account-model (EVM) chain "
                                       "(exchange deposit addresses)."),
        full: bool = typer.Option(False, "--full", help="Start over instead of continuing from the last run."),
        change: str = typer.Option(None, "--change", metavar="EXPR",
                                   help="Also link change outputs named by EXPR, e.g. 'consensus', "
                                        "'(one_time | reuse).unique()', 'optimal & type' (UTXO chains; off by default)."),
        deposit_window: int = typer.Option(3_200, "--deposit-window", metavar="BLOCKS",
                                           help="EVM chains: deposits forwarded within this many blocks."),
        deposit_tolerance: float = typer.Option(0.01, "--deposit-tolerance",
                                                help="EVM chains: the forward may fall short of the deposits by this share."),
        with_deposit_address: bool = typer.Option(False, "--with-deposit-address",
                                                  help="EVM chains: put the deposit address in its customers' cluster."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Multi-input clustering with CoinJoin detection (plus change with --change) on UTXO chains, the
        deposit-address heuristic on EVM chains; incremental unless --full."""
        if ctx.invoked_subcommand is not None:
            return
        from heuristics.clustering import ChangeExpressionError, ChangeLinks, EvmDeposit, MultiInput

        with open_workspace_at(ctx.obj["db"]) as ws:
            account = ws.store.scalar("SELECT kind FROM chains WHERE chain = ?", [chain]) == "account"
            links = None
            if account:
                if change:
                    raise MoneytrailError(f"--change applies to UTXO chains; {chain} is an account-model chain")
                links = [EvmDeposit(deposit_window, deposit_tolerance, with_deposit_address)]
            elif change:
                try:
                    links = [MultiInput(), ChangeLinks.of(change)]
                except ChangeExpressionError as exc:
                    raise MoneytrailError(f"--change {change}: {exc}") from None
            result = ws.cluster(chain=chain, full=full, links=links)
        if as_json:
            print(json.dumps(dataclasses.asdict(result)))
            return
        cj = ", ".join(f"{k} {v:,}" for k, v in result.coinjoins.items()) or "none"
        print(f"cluster run {result.run_id} ({'full' if result.full else 'incremental'}) on {chain}: "
              f"{result.transactions:,} transactions read, flagged: {cj}; {result.pairs:,} address pairs, "
              f"{result.merges:,} merges; {result.addresses:,} addresses in {result.clusters:,} clusters "
              f"(largest {result.largest:,})")
        if result.unresolved_inputs:
            print(f"note: {result.unresolved_inputs:,} inputs spend outputs not in the store; their addresses are "
                  "unknown and were not clustered (ingest the funding blocks, then run `tracer cluster --full`)")

    @cluster_app.command("explain")
    def explain_cmd(
        ctx: typer.Context,
        a: str = typer.Argument(..., help="An address."),
        b: str = typer.Argument(..., help="Another address."),
        chain: str = typer.Option("bitcoin", "--chain"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """The shortest chain of evidence that puts A and B in one cluster."""
        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            path = ws.explain(a, b, chain=chain)
        if path is None:
            print(f"{a} and {b} are not in one cluster")
            raise typer.Exit(1)
        if as_json:
            print(json.dumps([dataclasses.asdict(link) for link in path]))
            return
        print(f"{a} and {b}: {len(path)} link(s)")
        for i, link in enumerate(path, 1):
            print(f"  {i}. {link.address_a} — {link.address_b}: {link.heuristic} in tx {link.txid} "
                  f"(confidence {link.confidence:g})")

    @cluster_app.command("big")
    def big(
        ctx: typer.Context,
        min_size: int = typer.Option(1000, "--min-size", help="List clusters of at least this many addresses."),
        chain: str = typer.Option("bitcoin", "--chain"),
    ) -> None:
        """Super-clusters, each with the merges that joined its biggest pieces."""
        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            report = ws.super_clusters(min_size=min_size, chain=chain)
        print(json.dumps(report, default=str, indent=1))

    @cluster_app.command("labels")
    def labels(
        ctx: typer.Context,
        chain: str = typer.Option("bitcoin", "--chain"),
        conflicts: bool = typer.Option(False, "--conflicts", help="Only clusters whose labels name several actors."),
    ) -> None:
        """Labels propagated to clusters (CSV), or the clusters with conflicting labels."""
        import csv
        import sys

        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            table = ws.cluster_labels(chain=chain, conflicts=conflicts)
        out = csv.writer(sys.stdout)
        out.writerow(table.column_names)
        for row in table.to_pylist():
            out.writerow(row.values())
