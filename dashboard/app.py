"""The Dash app factory: one shell (header + page container), a router, and one module per page.

Pages live in ``dashboard/pages/<page>.py``, each holding its layout and its callbacks, as Dash's pages
apps do. We route ourselves instead of using ``dash.register_page``: that registry and ``dash.callback``
are process-global (the first app created takes the global callbacks), which does not fit an app
factory that tests and the screenshot script call more than once. Each page exposes ``layout(...)``
and ``register_callbacks(app, ...)``; callbacks only call the ``tracer`` API (:mod:`tracer.lookup`).

How the store is opened (read-only per request, a short write for case actions) is explained in
:mod:`dashboard.access`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from dash import Dash, Input, Output, dcc, html

from dashboard import components as c
from dashboard.access import StoreAccess, StoreBusy
from dashboard.pages import address, overview
from tracer.lookup import default_actor

ASSETS = Path(__file__).resolve().parent / "assets"


def create_app(db_path: str | Path, actor: str | None = None) -> Dash:
    """A Dash app over the store at `db_path`; `actor` names the analyst in audit_log (default: OS user)."""
    access = StoreAccess(db_path)
    access.prepare()
    actor = actor or default_actor()
    app = Dash(__name__, assets_folder=str(ASSETS), title=c.APP_NAME, update_title=None,
               suppress_callback_exceptions=True, serve_locally=True)
    app.layout = html.Div(className="mt-app", children=[
        dcc.Location(id="url"),
        c.header(access.path.name, title=str(access.path)),
        html.Main(id="page", className="mt-main"),
    ])

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def route(pathname: str | None, search: str | None) -> Any:
        return render(access, pathname or "/", search or "", actor)

    overview.register_callbacks(app, access)
    address.register_callbacks(app, access, actor)
    app.server.config["MONEYTRAIL_DB"] = str(access.path)
    return app


def render(access: StoreAccess, pathname: str, search: str, actor: str) -> Any:
    try:
        if pathname in ("/", overview.PATH, ""):
            return overview.layout(access)
        if pathname.rstrip("/") == "/address":
            q = parse_qs(search.lstrip("?"))
            chain, addr = q.get("chain", [""])[0], q.get("address", [""])[0]
            if chain and addr:
                return address.layout(access, chain, addr, actor)
        elif pathname.startswith(address.PATH_PREFIX):
            chain, _, addr = pathname[len(address.PATH_PREFIX):].partition("/")
            if chain and addr:
                return address.layout(access, unquote(chain), unquote(addr), actor)
    except StoreBusy as exc:
        return html.Div(c.alert(str(exc), "warning", id="store-busy"), className="mt-page")
    return html.Div(className="mt-page", children=[
        c.alert(f"No page at {pathname}.", "info"), dcc.Link("Back to the overview", href="/")])
