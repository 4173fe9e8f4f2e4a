"""Following the money: multi-hop traces and shortest paths over the flows graph (follow.py)."""

from tracer.trace.follow import SeedError, Trace, TraceParams, path, trace

__all__ = ["SeedError", "Trace", "TraceParams", "path", "trace"]
