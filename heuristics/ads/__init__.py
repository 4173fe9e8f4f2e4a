"""Ads: ad ↔ payment linking (:mod:`heuristics.ads.linking`) and ad author grouping
(:mod:`heuristics.ads.grouping`). Sources and failure modes in docs/heuristics.md ("Ads and payments")."""

from heuristics.ads.grouping import GroupParams, GroupResult, group_ads, identifier_groups
from heuristics.ads.linking import AdExplanation, LinkParams, LinkResult, explain_ad, link_ads, read_fee_schedule

__all__ = ["AdExplanation", "GroupParams", "GroupResult", "LinkParams", "LinkResult", "explain_ad", "group_ads",
           "identifier_groups", "link_ads", "read_fee_schedule"]
