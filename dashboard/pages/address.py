"""Address page (`/address/<chain>/<address>`): totals, labels, transactions, counterparties, add to case."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import components as c
from dashboard.access import StoreAccess, StoreBusy
from tracer import lookup

PATH_PREFIX = "/address/"
DEFAULT_CASE = "Untitled case"


def layout(access: StoreAccess, chain: str, address: str, actor: str) -> html.Div:
    try:
        with access.reading() as ws:
            act = ws.address_activity(chain, address)
            cases = ws.recent_case_titles()
    except ValueError as exc:
        return html.Div(c.alert(str(exc), "bad"), className="mt-page")
    return html.Div(className="mt-page", children=[
        dcc.Store(id="address-context", data={"chain": act.chain, "address": act.address}),
        html.Div(className="mt-toolbar", children=[
            html.Div([
                html.Div([dcc.Link("← overview", href="/", className="mt-back"),
                          html.Span(act.chain, className="mt-badge mt-badge-chain")], className="mt-sub"),
                html.H1(act.address, id="address-title", className="mt-address-title"),
                html.Div([c.label_badge(lb.label) for lb in act.labels] or
                         [html.Span("no labels in the store", className="mt-muted")], id="address-labels"),
            ]),
            case_box(cases, actor),
        ]),
        None if act.chain_known else c.alert(f"This store holds no chain named {act.chain!r}.", "warning"),
        None if act.found else c.alert("No movements of this address are stored.", "info", id="address-empty"),
        html.Div(className="mt-stats", children=totals_cards(act)),
        c.panel("Labels", labels_table(act)) if act.labels else None,
        c.panel("Transactions", transactions_table(act), actions=html.Span(
            f"{min(len(act.transactions), act.transaction_count):,} of {act.transaction_count:,} shown, newest first",
            className="mt-sub")),
    ])


def totals_cards(act: lookup.AddressActivity) -> list[html.Div]:
    if not act.totals:
        return [c.stat_card("Received", "—", id="address-received"), c.stat_card("Sent", "—", id="address-sent")]
    cards: list[html.Div] = []
    for i, t in enumerate(act.totals):
        suffix = "" if i == 0 else f"-{i}"
        cards += [
            c.stat_card(f"Received ({t.symbol})", c.format_amount(t.received, t.decimals, t.symbol),
                        id=f"address-received{suffix}", hint=f"{t.received_count:,} movements in"),
            c.stat_card(f"Sent ({t.symbol})", c.format_amount(t.sent, t.decimals, t.symbol),
                        id=f"address-sent{suffix}", hint=f"{t.sent_count:,} movements out"),
            c.stat_card("Balance", c.format_amount(t.balance, t.decimals, t.symbol), id=f"address-balance{suffix}"),
        ]
    cards += [c.stat_card("First seen", c.format_time(act.first_seen), id="address-first-seen", small=True),
              c.stat_card("Last seen", c.format_time(act.last_seen), id="address-last-seen", small=True)]
    return cards


def labels_table(act: lookup.AddressActivity) -> html.Div:
    return c.table(["label", "category", "actor", "confidence", "source"], [
        [lb.label, lb.category or "", lb.actor or "", "" if lb.confidence is None else f"{lb.confidence:g}",
         lb.source or ""] for lb in act.labels], id="address-label-table")


def transactions_table(act: lookup.AddressActivity) -> html.Div:
    rows = []
    for tx in act.transactions:
        parties: list[Any] = []
        for p in tx.counterparties:
            parties.append(html.Div(c.address_link(act.chain, p.address, p.labels) if p.address
                                    else html.Span(p.note or "no address", className="mt-muted")))
        if tx.counterparty_total > len(tx.counterparties):
            parties.append(html.Div(f"+{tx.counterparty_total - len(tx.counterparties):,} more", className="mt-muted"))
        rows.append([
            c.format_time(tx.time), "" if tx.block_height is None else f"{tx.block_height:,}",
            html.Span(c.short_hash(tx.txid), title=tx.txid, className="mt-mono"),
            html.Span(tx.direction, className=f"mt-dir mt-dir-{tx.direction}"),
            c.format_amount(tx.received, tx.decimals) if tx.received else "",
            c.format_amount(tx.sent, tx.decimals) if tx.sent else "",
            tx.symbol, parties,
        ])
    return c.table(["time", "block", "txid", "dir", "received", "sent", "asset", "counterparties"], rows,
                   id="address-transactions", numeric=[1, 4, 5], empty="No transactions stored for this address.")


def case_box(cases: list[str], actor: str) -> html.Div:
    return html.Div(className="mt-case", children=[
        dcc.Input(id="case-title", type="text", value=cases[0] if cases else DEFAULT_CASE, list="case-titles",
                  className="mt-input", maxLength=120),
        html.Datalist(id="case-titles", children=[html.Option(value=t) for t in cases]),
        html.Button("Add to case", id="add-to-case", className="mt-button mt-button-primary"),
        html.Div(f"acting as {actor}", className="mt-muted mt-actor"),
        html.Div(id="case-message", className="mt-case-message"),
    ])


def register_callbacks(app: Dash, access: StoreAccess, actor: str) -> None:
    @app.callback(
        Output("case-message", "children"),
        Input("add-to-case", "n_clicks"),
        State("case-title", "value"),
        State("address-context", "data"),
        prevent_initial_call=True,
    )
    def add_to_case(clicks: int | None, title: str | None, context: dict | None) -> Any:
        if not clicks or not context:
            return no_update
        title = (title or "").strip() or DEFAULT_CASE
        try:
            with access.writing() as ws:
                added = ws.add_to_case(title, "address", f"{context['chain']}:{context['address']}",
                                           actor=actor)
        except StoreBusy as exc:
            return c.alert(str(exc), "warning")
        except ValueError as exc:
            return c.alert(str(exc), "bad")
        what = "already in" if added.already_in_case else "added to"
        return c.alert(f"{what} case “{added.title}” ({added.items_in_case:,} items) · logged as {actor}", "ok")
