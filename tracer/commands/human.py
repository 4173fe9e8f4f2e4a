"""Commands of this area (placeholder until the area lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    return None
