"""Building blocks shared by the dashboard's pages: header, cards, tables, links, amounts.

Presentation only: they format what the `tracer` API returns and hold no queries of their own.
Amounts arrive as exact integers in base units and are shown with integer arithmetic, so a displayed
balance is exactly the stored one (no float rounding of satoshi or wei).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from dash import dcc, html

APP_NAME = "moneytrail"


def format_amount(value: int, decimals: int, symbol: str | None = None) -> str:
    """Exact decimal rendering of a base-unit integer: 19500000000, 8 → "195.00000000"."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), 10 ** decimals) if decimals else (abs(int(value)), 0)
    text = f"{sign}{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "")
    return f"{text} {symbol}" if symbol else text


def format_count(n: int) -> str:
    return f"{n:,}"


def format_time(t: dt.datetime | None) -> str:
    return "—" if t is None else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def short_hash(h: str, keep: int = 10) -> str:
    return h if len(h) <= 2 * keep + 1 else f"{h[:keep]}…{h[-keep:]}"


def address_href(chain: str, address: str) -> str:
    return f"/address/{quote(chain, safe='')}/{quote(address, safe=':')}"


def address_link(chain: str, address: str, labels: Sequence[str] = ()) -> html.Span:
    parts: list[Any] = [dcc.Link(address, href=address_href(chain, address), className="mt-address")]
    parts += [label_badge(label) for label in labels]
    return html.Span(parts)


def label_badge(text: str, kind: str = "label") -> html.Span:
    return html.Span(text, className=f"mt-badge mt-badge-{kind}")


def header(subtitle: str, title: str | None = None) -> html.Header:
    return html.Header(className="mt-header", children=[
        dcc.Link(className="mt-brand", href="/", children=[
            html.Span("◆", className="mt-logo"), html.Span(APP_NAME, className="mt-title")]),
        html.Span("follow the money", className="mt-tagline"),
        html.Span(["store ", html.B(subtitle)], className="mt-store", title=title or subtitle),
    ])


def stat_card(label: str, value: str, id: str | None = None, hint: str | None = None,
              small: bool = False) -> html.Div:
    value_props = {"id": id} if id else {}
    return html.Div(className="mt-stat mt-stat-small" if small else "mt-stat", children=[
        html.Div(label, className="mt-stat-label"),
        html.Div(value, className="mt-stat-value", **value_props),
        html.Div(hint, className="mt-stat-hint") if hint else None,
    ])


def panel(title: str, *children: Any, className: str = "", actions: Any = None) -> html.Section:
    return html.Section(className=f"mt-panel {className}".strip(), children=[
        html.Div(className="mt-panel-head", children=[html.H2(title), actions]),
        *children,
    ])


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], id: str | None = None,
          numeric: Sequence[int] = (), empty: str = "Nothing stored yet.") -> html.Div:
    """A plain, readable HTML table; `numeric` column positions are right-aligned."""
    right = set(numeric)
    head = html.Thead(html.Tr([html.Th(c, className="num" if i in right else None) for i, c in enumerate(columns)]))
    body = html.Tbody([
        html.Tr([html.Td(cell, className="num" if i in right else None) for i, cell in enumerate(row)])
        for row in rows
    ] or [html.Tr(html.Td(empty, colSpan=len(columns), className="mt-empty"))])
    props = {"id": id} if id else {}
    return html.Div(html.Table([head, body], className="mt-table"), className="mt-table-wrap", **props)


def alert(text: str, kind: str = "warning", id: str | None = None) -> html.Div:
    props = {"id": id} if id else {}
    return html.Div(text, className=f"mt-alert mt-alert-{kind}", role="alert", **props)


def status_pill(status: str) -> html.Span:
    kind = {"ok": "ok", "failed": "bad", "running": "busy"}.get(status, "busy")
    return html.Span(status, className=f"mt-pill mt-pill-{kind}")
