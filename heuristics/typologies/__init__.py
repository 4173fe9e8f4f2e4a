"""Typology alerts over ``flows`` (`tracer alerts`): the framework in :mod:`heuristics.typologies.base`,
one module per family of detectors. Thresholds, sources and failure modes in docs/heuristics.md
("Typology alerts")."""

from heuristics.typologies.base import (REGISTRY, AlertsError, AlertsResult, Context, Typology, explain_alert,
                                        list_alerts, make_params, run_alerts, typology)

#: the modules that register typologies (imported on first use, so `tracer --help` stays light)
DETECTOR_MODULES = [
    "heuristics.typologies.structuring",
    "heuristics.typologies.peeling",
    "heuristics.typologies.passthrough",
    "heuristics.typologies.adfees",
    "heuristics.typologies.labelled",
    "heuristics.typologies.graph",
]

__all__ = ["DETECTOR_MODULES", "REGISTRY", "AlertsError", "AlertsResult", "Context", "Typology", "explain_alert",
           "list_alerts", "make_params", "run_alerts", "typology"]
