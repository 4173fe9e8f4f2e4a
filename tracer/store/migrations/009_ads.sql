-- moneytrail store, migration 009: ads <-> payments and ad author groups (heuristics/ads).
-- Documented in docs/data-model.md ("Ads and payments") and docs/heuristics.md.

-- The posting fee in USD where the scrape shows it (otherwise a fee schedule gives it).
ALTER TABLE ads ADD COLUMN IF NOT EXISTS fee_usd DECIMAL(18,2);

-- Accepted links (at most one row per ad, at most one per payment output): which site the ad is on,
-- the fee looked for, and how the link was scored.
ALTER TABLE ad_payments ADD COLUMN IF NOT EXISTS site TEXT;
ALTER TABLE ad_payments ADD COLUMN IF NOT EXISTS fee_usd DOUBLE;
ALTER TABLE ad_payments ADD COLUMN IF NOT EXISTS usd DOUBLE;

-- Every payment output that could have paid an ad, ranked per ad: the evidence behind ad_payments
-- and what `tracer ads explain` shows.
CREATE TABLE IF NOT EXISTS ad_payment_candidates (
    site          TEXT NOT NULL,
    ad_id         TEXT NOT NULL,
    rank          INTEGER NOT NULL,     -- 1 = best final score for this ad
    chain         TEXT NOT NULL,
    txid          TEXT NOT NULL,
    n             INTEGER NOT NULL,     -- the output paying the site
    address       TEXT,                 -- the site's receiving address
    address_basis TEXT,                 -- label, cluster or sweep: how the address is known to be the site's
    amount        DECIMAL(38,0),        -- base units
    usd           DOUBLE,               -- at the price at or before the payment's time
    payment_time  TIMESTAMP,
    posted_at     TIMESTAMP,
    fee_usd       DOUBLE,
    fee_source    TEXT,                 -- ad, or schedule:<location> / schedule:*
    rel_error     DOUBLE,               -- (usd - fee_usd) / fee_usd
    minutes       DOUBLE,               -- payment time - posting time
    amount_score  DOUBLE,
    time_score    DOUBLE,
    base_score    DOUBLE,               -- amount_score x time_score
    group_boost   DOUBLE,               -- second pass: the payer pays other ads of the ad's group
    score         DOUBLE,
    payer         BIGINT,               -- the paying wallet: input cluster, merged along spent change
    chosen        BOOLEAN,
    run_id        BIGINT
);

-- Ads grouped into operations (one row per ad in a group of two or more), with the basis of its group.
CREATE TABLE IF NOT EXISTS ad_groups (
    site      TEXT NOT NULL,
    ad_id     TEXT NOT NULL,
    group_id  BIGINT NOT NULL,          -- the group's first ad in (site, ad_id) order, numbered from 1
    size      INTEGER NOT NULL,
    basis     TEXT NOT NULL,            -- what joined the group: phone, email, image, text (comma list)
    run_id    BIGINT
);

-- The evidence of each merge of ad_groups: two ads, what they share and how strongly.
CREATE TABLE IF NOT EXISTS ad_group_links (
    site_a      TEXT NOT NULL,
    ad_a        TEXT NOT NULL,
    site_b      TEXT NOT NULL,
    ad_b        TEXT NOT NULL,
    basis       TEXT NOT NULL,          -- phone, email, image or text
    value       TEXT,                   -- the shared identifier (or the text similarity)
    similarity  DOUBLE,
    run_id      BIGINT
);
