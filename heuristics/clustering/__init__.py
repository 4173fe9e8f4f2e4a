"""Address clustering: CoinJoin detection (coinjoin.py), union-find over integer ids (unionfind.py) and the
multi-input run with its evidence, explanations and super-cluster report (cluster.py)."""

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

__all__ = ["ClusterResult", "CoinJoinRules", "Link", "LinkHeuristic", "MultiInput", "cluster", "explain",
           "super_clusters"]
