"""`tracer alerts`: run typology detectors over the money graph, list the queue, explain one alert."""

from __future__ import annotations

import json

import typer

from tracer.commands.checks import open_workspace_at
from tracer.errors import MoneytrailError


def _overrides(settings: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for s in settings or []:
        name, eq, value = s.partition("=")
        typ, dot, key = name.partition(".")
        if not eq or not dot or not typ or not key:
            raise MoneytrailError(f"--set {s!r}: expected TYPOLOGY.PARAMETER=VALUE (e.g. structuring.min_count=4)")
        out.setdefault(typ.strip(), {})[key.strip()] = value.strip()
    return out


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    alerts_app = typer.Typer(help="Typology alerts: structuring, fan-in/out, cycles, peeling chains, … with evidence.",
                             invoke_without_command=True)
    app.add_typer(alerts_app, name="alerts")

    @alerts_app.callback()
    def run(
        ctx: typer.Context,
        typology: str = typer.Option(None, "--typology", "-t", metavar="NAME[,NAME…]",
                                     help="Run only these typologies (default: all; see `tracer alerts typologies`)."),
        chain: list[str] = typer.Option(None, "--chain", help="Only flows of this chain (repeatable)."),
        settings: list[str] = typer.Option(None, "--set", metavar="TYPOLOGY.PARAM=VALUE",
                                           help="Override a parameter (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Run the typology detectors over `flows` and store their alerts (rerunning updates, never duplicates).
        Without a subcommand: detect. `list` shows the queue, `explain ID` one alert's evidence."""
        if ctx.invoked_subcommand is not None:
            return
        from heuristics.typologies import run_alerts, typology as lookup

        names = [t.strip() for t in typology.split(",") if t.strip()] if typology else None
        for n in names or []:
            lookup(n)
        overrides = _overrides(settings)
        with open_workspace_at(ctx.obj["db"]) as ws:
            result = run_alerts(ws.store, names, overrides, chain or None)
        if as_json:
            print(json.dumps(result.as_dict()))
            return
        parts = ", ".join(f"{n} {result.found[n]:,} ({result.new[n]:,} new)" for n in result.typologies)
        print(f"alerts run {result.run_id}: {parts}")

    @alerts_app.command("list")
    def list_(
        ctx: typer.Context,
        typology: str = typer.Option(None, "--typology", "-t"),
        top: int = typer.Option(50, "--top", help="How many, highest score first (0: all)."),
        status: str = typer.Option(None, "--status", help="open, escalated or dismissed."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """The alert queue, highest score first."""
        from heuristics.typologies import list_alerts

        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            rows = list_alerts(ws.store, typology, top or None, status)
        if as_json:
            print(json.dumps(rows, default=str))
            return
        for r in rows:
            print(f"{r['alert_id']:>6}  {r['score']:.3f}  {r['typology']:<16} {r['chain'] or '':<8} "
                  f"{r['focal'] or r['focal_id']}  {r['summary']}")
        if not rows:
            print("no alerts (run `tracer alerts` first)")

    @alerts_app.command("explain")
    def explain(
        ctx: typer.Context,
        alert_id: int = typer.Argument(..., help="An alert id from `tracer alerts list`."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """An alert's typology, score, parameters, subjects (with labels) and the flows behind it."""
        from heuristics.typologies import explain_alert

        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            a = explain_alert(ws.store, alert_id)
        if as_json:
            print(json.dumps(a, default=str))
            return
        print(f"alert {a['alert_id']}: {a['typology']}, score {a['score']:.3f}, {a['status']}; run {a['run_id']} "
              f"(first {a['first_run']})")
        print(f"  {a['summary']}")
        print(f"  parameters: {json.dumps(a['params'], sort_keys=True)}")
        print("  subjects:")
        for s in a["subjects"]:
            print(f"    {s['address_id']:>10}  {s['chain'] or '?':<8} {s['address'] or '?'}"
                  + (f"  [{s['labels']}]" if s["labels"] else ""))
        print(f"  evidence ({len(a['flows'])} flows):")
        for f in a["flows"]:
            usd = f" {f['usd']:,.2f} USD" if f["usd"] is not None else ""
            print(f"    {f['flow_id']:>10}  {f['time']}  {f['src']} -> {f['dst']}  {f['amount']:,.8g} {f['symbol'] or f['asset']}"
                  f"{usd}  {f['kind']} {f['txid']}")

    @alerts_app.command("typologies")
    def typologies(name: str = typer.Argument(None, help="One typology (default: all).")) -> None:
        """Every typology (or one) with its source, parameters and their defaults."""
        import dataclasses

        from heuristics.typologies import REGISTRY, typology as lookup

        lookup(name or "structuring")  # loads the detector modules; an unknown name is an error
        for shown in [name] if name else sorted(REGISTRY):
            t = REGISTRY[shown]
            print(f"{shown}: {t.title} ({t.source})")
            for f in dataclasses.fields(t.params):
                default = ",".join(f.default) if isinstance(f.default, tuple) else f.default
                print(f"    {f.name} = {default}  — {f.metadata.get('help', '')}")
