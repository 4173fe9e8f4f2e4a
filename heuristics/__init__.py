"""Heuristics over the store: address clustering (clustering/: multi-input with CoinJoin detection, composable
change heuristics, EVM deposit addresses) and ads (ads/: ad ↔ payment linking, ad author grouping). Each reads
the canonical tables and writes its own (`clusters`, `cluster_links`, `tx_flags`, `ad_payments`, `ad_groups`),
with its citation and failure modes in docs/heuristics.md; typology alerts are in heuristics.typologies."""
