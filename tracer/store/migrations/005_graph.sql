-- moneytrail store, migration 005: the money graph.
-- Every party on every chain gets a dense integer address_id at first sight; inputs, outputs and
-- transfers carry the ids; `flows` becomes a table maintained per ingest batch (the view of schema 4
-- stays as `flows_v4`). The existing rows are converted by tracer.store.graph.backfill, which runs
-- right after this file in the same transaction. Documented in docs/data-model.md ("The money graph").

-- Dense counters, updated inside each batch's transaction: a rolled-back batch leaves no gap.
CREATE TABLE IF NOT EXISTS id_counters (
    name  TEXT PRIMARY KEY,           -- party, utxo_tx, flow
    last  BIGINT NOT NULL             -- the last id handed out
);

-- party_key: a 64-bit hash of (chain, address) so a batch finds its known parties by an integer join
-- (the text is compared too, on the few rows the integer join returns).
ALTER TABLE addresses ADD COLUMN IF NOT EXISTS party_key BIGINT;

-- UTXO transactions are nodes of the graph: flows run address -> tx node -> address, and the tx node's
-- id in flows is -tx_id (negative, so it never meets an address_id).
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS tx_id BIGINT;

-- Outpoints as integers: txkey is a 64-bit hash of the txid; inputs find the output they spend by
-- (prev_txkey, prev_n) and confirm the txid text on the rows found.
ALTER TABLE outputs ADD COLUMN IF NOT EXISTS address_id BIGINT;
ALTER TABLE outputs ADD COLUMN IF NOT EXISTS tx_id BIGINT;
ALTER TABLE outputs ADD COLUMN IF NOT EXISTS txkey BIGINT;
ALTER TABLE inputs ADD COLUMN IF NOT EXISTS address_id BIGINT;
ALTER TABLE inputs ADD COLUMN IF NOT EXISTS tx_id BIGINT;
ALTER TABLE inputs ADD COLUMN IF NOT EXISTS prev_txkey BIGINT;

ALTER TABLE transfers ADD COLUMN IF NOT EXISTS from_id BIGINT;
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS to_id BIGINT;
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS flow_id BIGINT;

-- Inputs whose spent output is not in the store yet (the funding block arrives later): a small side
-- table, so resolving them costs the batch, not a scan of every input.
CREATE TABLE IF NOT EXISTS utxo_pending (
    chain       TEXT NOT NULL,
    txid        TEXT NOT NULL,        -- the spending transaction
    tx_id       BIGINT NOT NULL,
    n           INTEGER NOT NULL,     -- the input's index in it
    prev_txid   TEXT NOT NULL,
    prev_n      BIGINT NOT NULL,
    prev_txkey  BIGINT NOT NULL
);

-- Which price series values an asset. Keyed by (chain, asset): for tokens the contract address, so a
-- token that only calls itself "USDT" is not valued as Tether. Native coins and fiat currencies are
-- valued by their symbol, which the ingester sets (it is not self-declared); tokens only through here.
CREATE TABLE IF NOT EXISTS price_assets (
    chain        TEXT NOT NULL,
    asset        TEXT NOT NULL,       -- lowercase token contract
    price_asset  TEXT NOT NULL,       -- prices.asset
    source       TEXT
);
INSERT INTO price_assets VALUES
    ('ethereum', '0xdac17f958d2ee523a2206206994597c13d831ec7', 'USDT', 'Tether USDT (tether.to)'),
    ('ethereum', '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48', 'USDC', 'Circle USDC (circle.com)'),
    ('ethereum', '0x6b175474e89094c44da98b954eedeac495271d0f', 'DAI', 'MakerDAO DAI (makerdao.com)'),
    ('ethereum', '0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2', 'ETH', 'Wrapped Ether WETH9'),
    ('ethereum', '0x2260fac5e5542a773aa44fbcb7e3ef1c2e1db599', 'BTC', 'Wrapped BTC (wbtc.network)'),
    ('polygon', '0xc2132d05d31c914a87c6611c10748aeb04b58e8f', 'USDT', 'Tether USDT on Polygon (tether.to)'),
    ('polygon', '0x3c499c542cef5e3811e1192ce70d8cc03d5c3359', 'USDC', 'Circle USDC on Polygon (circle.com)'),
    ('bsc', '0x55d398326f99059ff775485246999027b3197955', 'USDT', 'Tether USDT on BNB Smart Chain (tether.to)'),
    ('arbitrum', '0xfd086bc7cd5c481dcc9c85ebe478a1c0b69fcbb9', 'USDT', 'Tether USDT on Arbitrum (tether.to)'),
    ('arbitrum', '0xaf88d065e77c8cc2239327c5edb3a432268e5831', 'USDC', 'Circle USDC on Arbitrum (circle.com)'),
    ('optimism', '0x94b008aa00579c1307b0ef2c499ad98a8ce58e58', 'USDT', 'Tether USDT on Optimism (tether.to)'),
    ('base', '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', 'USDC', 'Circle USDC on Base (circle.com)');

-- The schema-4 view keeps its shape under a new name (the old `flows`): a reference for tests and
-- benchmarks, and for scripts written against it.
ALTER VIEW flows RENAME TO flows_v4;

-- One row per value movement on every chain and in fiat: the graph every analysis walks.
--   utxo:     input leg  address (src_id = address_id) -> tx node (dst_id = -tx_id), amount = spent value
--             output leg tx node (src_id = -tx_id) -> address (dst_id = address_id; NULL for OP_RETURN)
--   native, internal, erc20, fiat: from (src_id) -> to (dst_id), one row per `transfers` row.
-- usd = amount / 10^decimals x the latest price of price_asset at or before `time` (NULL if unknown).
CREATE TABLE flows (
    flow_id      BIGINT NOT NULL,
    src_id       BIGINT,
    dst_id       BIGINT,
    src          TEXT,                -- address text, or 'tx:<txid>' for a UTXO transaction node
    dst          TEXT,
    chain        TEXT NOT NULL,
    asset        TEXT NOT NULL,       -- BTC, ETH, token contract, currency as given
    symbol       TEXT,
    amount       DECIMAL(38,0),
    amount_raw   TEXT,
    decimals     INTEGER,
    price_asset  TEXT,                -- the price series that values it (see price_assets)
    usd          DOUBLE,
    time         TIMESTAMP,
    height       BIGINT,
    txid         TEXT NOT NULL,
    idx          BIGINT,              -- output/input index, log index, CSV line
    kind         TEXT NOT NULL,       -- utxo, native, internal, erc20, fiat
    leg          TEXT,                -- in / out for utxo rows
    run_id       BIGINT
);
