-- moneytrail store, migration 013: the separability of each ad <-> payment link and the posting-order
-- tie-breaker (heuristics/ads/linking.py).
-- Documented in docs/data-model.md ("Ads and payments") and docs/heuristics.md.

-- For a candidate the assignment picked: how much the best total score of its component (the ads and
-- payments competing with it) drops when this link is forbidden. Below the run's --margin the link is
-- not separable from an alternative and stays a candidate (chosen false). NULL: the assignment did not
-- pick the candidate.
ALTER TABLE ad_payment_candidates ADD COLUMN IF NOT EXISTS regret DOUBLE;

-- The posting-order tie-breaker: + --order-weight x (agreeing - disagreeing) / (both) over the rival
-- candidates of the component whose payment is ordered on chain against this one (one spends the other's
-- change), agreeing when the ad posted first takes the payment made first; 0 where no rival is ordered.
-- score = base_score + order_bonus + group_boost.
ALTER TABLE ad_payment_candidates ADD COLUMN IF NOT EXISTS order_bonus DOUBLE;
