"""Heuristics over the store: address clustering (multi-input with a CoinJoin guard, change detection,
EVM deposit addresses), typologies (peeling chains, fan-in/out, cycles, structuring, rapid pass-through)
and ad ↔ payment linking. Each heuristic will read the canonical tables and write `clusters`,
`cluster_links`, `alerts` or `ad_payments`, with its citation and failure modes in docs/heuristics.md.
None has landed yet: the simulator's ground truth (docs/simulator.md) is ready to score them."""
