-- moneytrail store, migration 013: the separability of each ad <-> payment link (heuristics/ads/linking.py).
-- Documented in docs/data-model.md ("Ads and payments") and docs/heuristics.md.

-- For a candidate the assignment picked: how much the best total score of its component (the ads and
-- payments competing with it) drops when this link is forbidden. Below the run's --margin the link is
-- not separable from an alternative and stays a candidate (chosen false). NULL: the assignment did not
-- pick the candidate.
ALTER TABLE ad_payment_candidates ADD COLUMN IF NOT EXISTS regret DOUBLE;
