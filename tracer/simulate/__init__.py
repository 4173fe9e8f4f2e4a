"""Synthetic trafficking-finance worlds with ground truth (see docs/simulator.md).

``simulate(store, seed=..., scale=..., truth_path=...)`` writes a seeded, deterministic world into a
store — Bitcoin blocks, an EVM stablecoin chain, bank transfers, ads, prices, labels and reports, in
the same tables and formats the real ingesters write — and a ground-truth file naming every actor and
every planted pattern.
"""

from tracer.simulate.world import SCALES, SimulationError, SimulationSummary, resolve_scale, simulate

__all__ = ["SCALES", "SimulationError", "SimulationSummary", "resolve_scale", "simulate"]
