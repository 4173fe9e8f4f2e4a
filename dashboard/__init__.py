"""The analysts' Dash dashboard over a moneytrail store (`tracer dashboard --db FILE`)."""

from dashboard.app import create_app

__all__ = ["create_app"]
