-- moneytrail store, migration 004: the human side (bank transfers, reports, ads, labels, prices)
-- and the `flows` view that puts Bitcoin, account-model chains and fiat in one edge list.
-- Documented in docs/data-model.md.

-- Bank transfers (AMLworld pays in one currency and credits in another): the credited side.
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS amount_received DECIMAL(38,0);
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS received_asset TEXT;      -- currency as given (e.g. 'Euro')
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS received_symbol TEXT;     -- ISO 4217 / ticker (e.g. 'EUR')
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS received_decimals INTEGER;

-- Labels: what a round trip through a GraphSense TagPack needs, and where the label was filed.
ALTER TABLE labels ADD COLUMN IF NOT EXISTS source_asset TEXT;           -- OFAC asset code or TagPack currency as given
ALTER TABLE labels ADD COLUMN IF NOT EXISTS source_network TEXT;         -- TagPack `network` as given
ALTER TABLE labels ADD COLUMN IF NOT EXISTS confidence_level TEXT;       -- TagPack confidence id (e.g. 'forensic')
ALTER TABLE labels ADD COLUMN IF NOT EXISTS is_cluster_definer BOOLEAN;
ALTER TABLE labels ADD COLUMN IF NOT EXISTS pack TEXT;                   -- TagPack file stem, 'ofac-sdn', or the CSV stem
ALTER TABLE labels ADD COLUMN IF NOT EXISTS pack_header JSON;            -- TagPack header fields not held per tag
ALTER TABLE labels ADD COLUMN IF NOT EXISTS tag_extra JSON;              -- tag fields without a column of their own
ALTER TABLE labels ADD COLUMN IF NOT EXISTS source_file TEXT;

-- Ads: where personal data was hashed, and the posting fee if the source knows it.
ALTER TABLE ads ADD COLUMN IF NOT EXISTS pii_hashed BOOLEAN;
ALTER TABLE ads ADD COLUMN IF NOT EXISTS posted_offset TEXT;             -- the time zone offset the ad was posted in
ALTER TABLE ads ADD COLUMN IF NOT EXISTS fee_amount DECIMAL(38,0);       -- base units of fee_asset
ALTER TABLE ads ADD COLUMN IF NOT EXISTS fee_asset TEXT;

ALTER TABLE reports ADD COLUMN IF NOT EXISTS accounts TEXT[];
ALTER TABLE report_identifiers ADD COLUMN IF NOT EXISTS source_line BIGINT;
ALTER TABLE prices ADD COLUMN IF NOT EXISTS source_line BIGINT;

-- Prices as validity intervals: each price holds from its time until the next price of the asset.
-- A range join against this view is the portable form of "latest price at or before t" (no ASOF JOIN).
CREATE VIEW price_intervals AS
SELECT upper(asset) AS asset,
       time AS valid_from,
       lead(time) OVER (PARTITION BY upper(asset) ORDER BY time, usd) AS valid_to,
       usd
FROM prices;

-- One row per value movement. Account-model and fiat rows come from `transfers`; Bitcoin (and other
-- UTXO chains) in exact bipartite form: input address -> 'tx:<txid>' and 'tx:<txid>' -> output
-- address, so value is never split by guesswork. usd = amount / 10^decimals × the latest price at or
-- before the movement's time (USD itself at 1).
CREATE VIEW flows AS
WITH moves AS (
    SELECT t.from_address AS src, t.to_address AS dst, t.chain, t.asset,
           upper(coalesce(t.symbol, t.asset)) AS symbol,
           CAST(t.amount AS DECIMAL(38,0)) AS amount, t.amount_raw, coalesce(t.decimals, 0) AS decimals,
           t.time, t.txid, t.idx, coalesce(t.kind, 'transfer') AS kind, t.run_id
    FROM transfers t
    UNION ALL
    SELECT i.address, 'tx:' || i.txid, i.chain,
           CASE i.chain WHEN 'litecoin' THEN 'LTC' WHEN 'bitcoin-cash' THEN 'BCH' ELSE 'BTC' END,
           CASE i.chain WHEN 'litecoin' THEN 'LTC' WHEN 'bitcoin-cash' THEN 'BCH' ELSE 'BTC' END,
           CAST(i.value AS DECIMAL(38,0)), CAST(i.value AS TEXT), 8,
           tx.block_time, i.txid, i.n, 'input', i.run_id
    FROM inputs i
    LEFT JOIN transactions tx ON tx.chain = i.chain AND tx.txid = i.txid
    WHERE i.value IS NOT NULL AND i.prev_txid IS NOT NULL
    UNION ALL
    SELECT 'tx:' || o.txid, o.address, o.chain,
           CASE o.chain WHEN 'litecoin' THEN 'LTC' WHEN 'bitcoin-cash' THEN 'BCH' ELSE 'BTC' END,
           CASE o.chain WHEN 'litecoin' THEN 'LTC' WHEN 'bitcoin-cash' THEN 'BCH' ELSE 'BTC' END,
           CAST(o.value AS DECIMAL(38,0)), CAST(o.value AS TEXT), 8,
           tx.block_time, o.txid, o.n, 'output', o.run_id
    FROM outputs o
    LEFT JOIN transactions tx ON tx.chain = o.chain AND tx.txid = o.txid
)
SELECT m.src, m.dst, m.chain, m.asset, m.symbol, m.amount, m.amount_raw, m.decimals,
       CASE WHEN m.symbol = 'USD' THEN CAST(m.amount AS DOUBLE) / power(10, m.decimals)
            ELSE CAST(m.amount AS DOUBLE) / power(10, m.decimals) * p.usd END AS usd,
       m.time, m.txid, m.idx, m.kind, m.run_id
FROM moves m
LEFT JOIN price_intervals p
       ON m.symbol <> 'USD' AND p.asset = m.symbol AND m.time >= p.valid_from
      AND (p.valid_to IS NULL OR m.time < p.valid_to);
