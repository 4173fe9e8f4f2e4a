"""Overview page (`/`): what the store holds, how it got there, and a search box for an address."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import components as c
from dashboard.access import StoreAccess, StoreBusy
from tracer import lookup

PATH = "/"

# The tables whose counts head the page, in the order an analyst reads a case.
HEADLINE = ("blocks", "transactions", "addresses", "transfers", "labels", "quarantine")
CHAIN_COLOURS = {"bitcoin": "#f2a900", "ethereum": "#627eea", "fiat": "#2e8b57"}


def layout(access: StoreAccess) -> html.Div:
    with access.reading() as ws:
        ov = ws.overview()
    chains_text = ", ".join(f"{ch.chain} ({ch.network})" for ch in ov.chains) or "none yet"
    return html.Div(className="mt-page", children=[
        html.Div(className="mt-toolbar", children=[
            html.Div([html.H1("Store overview"),
                      html.Div(["Chains held: ", html.Span(chains_text, id="overview-chains")],
                               className="mt-sub")]),
            search_box(),
        ]),
        html.Div(className="mt-stats", children=[
            c.stat_card(name.replace("_", " ").capitalize(), c.format_count(ov.table_counts.get(name, 0)),
                        id=f"stat-{name}")
            for name in HEADLINE
        ]),
        html.Div(className="mt-grid", children=[
            c.panel("Transactions per day, by chain", dcc.Graph(
                id="overview-activity", figure=activity_figure(ov.activity),
                config={"displayModeBar": False}, className="mt-chart"), className="mt-wide"),
            c.panel("Rows per canonical table", c.table(
                ["table", "rows"], [[name, c.format_count(n)] for name, n in ov.table_counts.items()],
                id="overview-counts", numeric=[1])),
        ]),
        c.panel("Ingest runs", runs_table(ov), actions=html.Span(
            [f"{len(ov.runs)} shown · quarantined rows: ", html.B(c.format_count(ov.quarantined), id="overview-quarantine")],
            className="mt-sub")),
        c.panel("Chains", c.table(
            ["chain", "kind", "network", "chain id"],
            [[ch.chain, ch.kind, ch.network, "" if ch.chain_id is None else str(ch.chain_id)] for ch in ov.chains],
            id="overview-chain-table", empty="No chain ingested yet.")),
    ])


def search_box() -> html.Div:
    return html.Div(className="mt-search", children=[
        dcc.Input(id="address-search", type="text", placeholder="Search an address (Bitcoin, 0x…, bank:account)",
                  debounce=False, maxLength=lookup.MAX_ADDRESS_LENGTH, className="mt-input", autoComplete="off"),
        html.Button("Open", id="address-search-go", className="mt-button"),
        html.Div(id="address-search-message", className="mt-search-message"),
    ])


def runs_table(ov: lookup.Overview) -> html.Div:
    def reported(counts: dict[str, int]) -> str:
        return " · ".join(f"{k} {v:,}" for k, v in counts.items() if v) or "—"

    rows = [[str(r.run_id), r.source, html.Span(r.target or "—", title=r.target or "", className="mt-clip"),
             c.status_pill(r.status), c.format_count(r.rows_stored), c.format_count(r.quarantined),
             html.Span(reported(r.reported), className="mt-wrap"), c.format_time(r.finished or r.started)]
            for r in ov.runs]
    return c.table(["run", "source", "target", "status", "rows stored", "quarantined", "reported by ingester",
                    "finished"], rows, id="overview-runs", numeric=[0, 4, 5], empty="No ingest run yet.")


def activity_figure(activity: list[lookup.DailyActivity]) -> go.Figure:
    """Bars per day and chain. Days without activity are left out (category axis): fixtures and cases
    hold bursts years apart, which a time axis would squeeze into invisible slivers."""
    fig = go.Figure()
    days = sorted({a.day for a in activity})
    for chain in sorted({a.chain for a in activity}):
        per_day = {a.day: a.transactions for a in activity if a.chain == chain}
        fig.add_bar(name=chain, x=[d.isoformat() for d in days], y=[per_day.get(d, 0) for d in days],
                    marker_color=CHAIN_COLOURS.get(chain))
    fig.update_layout(
        barmode="stack", template="plotly_white", height=240, margin={"l": 48, "r": 12, "t": 8, "b": 48},
        legend={"orientation": "h", "y": 1.08, "x": 0}, font={"family": "Liberation Sans, Arial, sans-serif", "size": 12},
        yaxis={"type": "log", "dtick": 1, "title": "transactions (log)"}, xaxis={"type": "category", "tickangle": -35},
    )
    if not activity:
        fig.add_annotation(text="no dated movements in the store yet", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    return fig


def register_callbacks(app: Dash, access: StoreAccess) -> None:
    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Output("address-search-message", "children"),
        Input("address-search", "n_submit"),
        Input("address-search-go", "n_clicks"),
        State("address-search", "value"),
        prevent_initial_call=True,
    )
    def open_address(_submit: int | None, _clicks: int | None, text: str | None) -> tuple[Any, Any]:
        if not _submit and not _clicks:  # the page was just drawn: nobody searched yet
            return no_update, no_update
        text = (text or "").strip()
        if not text:
            return no_update, "Type an address."
        try:
            with access.reading() as ws:
                chains = ws.find_address(text)
        except StoreBusy as exc:
            return no_update, str(exc)
        if not chains:
            return no_update, c.alert(f"{c.short_hash(text, 20)} is not in this store.", "info")
        return c.address_href(chains[0], lookup.normalise_address(chains[0], text)), None
