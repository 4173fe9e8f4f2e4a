"""Address clustering: CoinJoin detection (coinjoin.py), union-find over integer ids (unionfind.py), the
run with its evidence, explanations and super-cluster report (cluster.py), composable change heuristics
(change.py) and exchange deposit addresses on account-model chains (evm_deposit.py)."""

from heuristics.clustering.change import ChangeExpressionError, ChangeLinks, ChangeRule, candidates, parse
from heuristics.clustering.cluster import (
    ClusterResult,
    Link,
    LinkHeuristic,
    MultiInput,
    cluster,
    explain,
    super_clusters,
)
from heuristics.clustering.coinjoin import CoinJoinRules
from heuristics.clustering.evm_deposit import EvmDeposit

__all__ = ["ChangeExpressionError", "ChangeLinks", "ChangeRule", "ClusterResult", "CoinJoinRules", "EvmDeposit",
           "Link", "LinkHeuristic", "MultiInput", "candidates", "cluster", "explain", "parse", "super_clusters"]
