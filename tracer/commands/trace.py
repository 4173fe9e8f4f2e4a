"""`tracer trace` and `tracer path`: follow the money from seeds, find the paths between two parties."""

from __future__ import annotations

import datetime as dt
import json

import typer

from tracer.commands.checks import open_workspace_at
from tracer.errors import MoneytrailError


def _time(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise MoneytrailError(f"{option} {text}: not a date or time (YYYY-MM-DD[THH:MM[:SS]])") from None


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    @app.command("trace")
    def trace_cmd(
        ctx: typer.Context,
        seeds: list[str] = typer.Argument(..., help="Addresses (any chain), bank accounts, txids or cluster:N."),
        forward: bool = typer.Option(False, "--forward", help="Where the money went (the default)."),
        backward: bool = typer.Option(False, "--backward", help="Where the money came from."),
        both: bool = typer.Option(False, "--both", help="Both ways."),
        hops: int = typer.Option(3, "--hops", min=1, max=50, help="Hops at the level asked (address → tx → address is one)."),
        min_value: float = typer.Option(None, "--min-value", help="Skip movements below this, in whole units (BTC, USDT, USD)."),
        min_usd: float = typer.Option(None, "--min-usd", help="Skip movements worth less than this many USD."),
        since: str = typer.Option(None, "--since", help="Only movements at or after this time (ISO 8601, UTC)."),
        until: str = typer.Option(None, "--until", help="Only movements at or before this time."),
        chain: str = typer.Option(None, "--chain", help="Look the seeds up on this chain only."),
        stop_at: str = typer.Option(None, "--stop-at", help="Label categories reached but not walked through, e.g. exchange,mixer."),
        level: str = typer.Option("address", "--level", help="address, or cluster (reaching an address reaches its cluster)."),
        fmt: str = typer.Option("json", "--format", help="json or table."),
        through_exchanges: bool = typer.Option(False, "--through-exchanges", help="Where money reaches an exchange "
                                               "labelled on several chains (same actor), continue from its "
                                               "withdrawals on the other chains that match the arrival in value "
                                               "and time (backward: from the deposits on the other chains that match "
                                               "its withdrawals): an inferred step, with its basis."),
        exchange_window: float = typer.Option(72.0, "--exchange-window", min=0.0,
                                              help="Hours after the arrival a matching withdrawal may come "
                                                   "(backward: hours either side of the withdrawal for deposits)."),
        exchange_tolerance: float = typer.Option(0.03, "--exchange-tolerance", min=0.0, max=1.0,
                                                 help="Largest |withdrawn - arrived| USD, as a share of the arrival."),
    ) -> None:
        """Follow the money from SEEDS, hop by hop, across Bitcoin, EVM chains and bank accounts."""
        from tracer.trace import SeedError

        if sum((forward, backward, both)) > 1:
            raise MoneytrailError("--forward, --backward and --both: give one")
        if level not in ("address", "cluster"):
            raise MoneytrailError(f"--level {level}: address or cluster")
        if fmt not in ("json", "table"):
            raise MoneytrailError(f"--format {fmt}: json or table")
        direction = "both" if both else "backward" if backward else "forward"
        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            try:
                result = ws.trace(seeds, direction=direction, hops=hops, min_value=min_value, min_usd=min_usd,
                                  since=_time(since, "--since"), until=_time(until, "--until"), chain=chain,
                                  stop_at=tuple(s.strip() for s in (stop_at or "").split(",") if s.strip()),
                                  level=level, through_exchanges=through_exchanges,
                                  exchange_window_hours=exchange_window, exchange_tolerance=exchange_tolerance)
            except SeedError as exc:
                raise MoneytrailError(str(exc)) from None
        if fmt == "json":
            print(json.dumps(result.as_json(), default=str))
            return
        print(f"{len(result.nodes)} nodes, {len(result.edges)} movements from {', '.join(seeds)} ({direction}, "
              f"{hops} hops){' — truncated' if result.truncated else ''}")
        for e in result.edges:
            usd = f"{e['usd']:,.2f} USD" if e["usd"] is not None else "-"
            if e["kind"] == "inferred":
                b = e["basis"]
                print(f"  hop {e['hop']}  {e['time']}  {e['src']} => {e['dst']}  inferred through {b['actor']} "
                      f"({b['from_chain']} -> {b['to_chain']}): {b['arrival_usd']:,.2f} USD in, "
                      f"{b['withdrawal_usd']:,.2f} out ({b['rule']})")
                continue
            print(f"  hop {e['hop']}  {e['time']}  {e['src']} -> {e['dst']}  {e['amount']} {e['asset']} ({usd})  "
                  f"{e['kind']} {e['txid']}")

    @app.command("path")
    def path_cmd(
        ctx: typer.Context,
        a: str = typer.Argument(..., help="Where the money starts."),
        b: str = typer.Argument(..., help="Where it ends."),
        hops: int = typer.Option(6, "--hops", min=1, max=20),
        max_degree: int = typer.Option(1000, "--max-degree", help="Do not walk through nodes with more movements "
                                       "(exchange hot wallets); 0 walks through everything."),
        limit: int = typer.Option(5, "--limit", min=1, help="At most this many shortest paths."),
    ) -> None:
        """The shortest value-carrying paths from A to B (JSON: a list of paths, each a list of movements)."""
        from tracer.trace import SeedError

        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            try:
                routes = ws.find_paths(a, b, hops=hops, max_degree=max_degree or None, limit=limit)
            except SeedError as exc:
                raise MoneytrailError(str(exc)) from None
        print(json.dumps(routes, default=str))
        if not routes:
            raise MoneytrailError(f"no path from {a} to {b} within {hops} hops")

    @app.command("taint")
    def taint_cmd(
        ctx: typer.Context,
        sources: list[str] = typer.Argument(..., help="Source outputs as txid:n."),
        model: str = typer.Option("haircut", "--model", help="poison, haircut or fifo."),
        hops: int = typer.Option(6, "--hops", min=1, max=50, help="How many spends deep."),
        chain: str = typer.Option("bitcoin", "--chain"),
        backward: bool = typer.Option(False, "--backward", help="The outputs given are targets: the share of "
                                      "each one's value that came from each source output HOPS spends back."),
    ) -> None:
        """Forward taint from source outputs: each reached output's tainted value per source (JSON); with
        --backward, each target's sources and their shares."""
        if model not in ("poison", "haircut", "fifo"):
            raise MoneytrailError(f"--model {model}: poison, haircut or fifo")
        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            try:
                result = ws.taint(sources, model=model, hops=hops, chain=chain, backward=backward)
            except ValueError as exc:
                raise MoneytrailError(str(exc)) from None
        print(json.dumps(result))

    @app.command("exposure")
    def exposure_cmd(
        ctx: typer.Context,
        seeds: list[str] = typer.Argument(..., help="An address, bank account or cluster:N (several: one subject)."),
        hops: int = typer.Option(3, "--hops", min=1, max=10, help="Direct (1) and indirect exposure within N hops."),
        fmt: str = typer.Option("json", "--format", help="json or table."),
    ) -> None:
        """Exposure to label categories, received and sent, direct and within N hops, and a risk level."""
        from tracer.trace import SeedError

        if fmt not in ("json", "table"):
            raise MoneytrailError(f"--format {fmt}: json or table")
        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            try:
                result = ws.exposure(seeds, hops=hops).as_json()
            except SeedError as exc:
                raise MoneytrailError(str(exc)) from None
        if fmt == "json":
            print(json.dumps(result, default=str))
            return
        print(f"{', '.join(seeds)}: risk {result['risk']['level']} — {result['risk']['rule']}")
        print(f"  received {result['received_total']:,.2f}, sent {result['sent_total']:,.2f} (USD where priced)")
        for c in result["categories"]:
            print(f"  {c['category']:<16} {c['class']:<7} received {c['direct_received']:,.2f} direct, "
                  f"{c['indirect_received']:,.2f} indirect ({c['share_received']:.1%}); sent {c['direct_sent']:,.2f} "
                  f"direct, {c['indirect_sent']:,.2f} indirect ({c['share_sent']:.1%})")
