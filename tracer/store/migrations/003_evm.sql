-- moneytrail store, migration 3: Ethereum / EVM chains (tracer ingest evm, tracer ingest etl).
-- Column names follow ethereum-etl's export schema (github.com/blockchain-etl/ethereum-etl,
-- docs/schema.md), the de-facto schema of public Ethereum data sets, so an export can be
-- rebuilt from the store field by field. Quantities that are uint256 on chain are DECIMAL(38,0)
-- (they fit in practice: gas prices, difficulty, fees); token amounts keep the exact text in
-- transfers.amount_raw as schema 1 says.

-- blocks: header fields of account-model chains. `nonce` of schema 1 is BIGINT (Bitcoin's
-- 32-bit nonce); the Ethereum PoW nonce is 64 bits and ethereum-etl keeps it as hex text.
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS nonce_hex TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS sha3_uncles TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS logs_bloom TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS transactions_root TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS state_root TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS receipts_root TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS miner TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS difficulty DECIMAL(38,0);
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS total_difficulty DECIMAL(38,0);
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS extra_data TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS gas_limit BIGINT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS gas_used BIGINT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS base_fee_per_gas DECIMAL(38,0);
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS withdrawals_root TEXT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS withdrawals TEXT;       -- JSON list, ethereum-etl form
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS blob_gas_used BIGINT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS excess_blob_gas BIGINT;

-- transactions: account-model fields beyond schema 1 (from/to/value/status/gas/gas_price/gas_used).
-- fee = gas_used * effective_gas_price (+ blob gas, + L1 fee on rollups): what the sender paid.
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS nonce BIGINT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS input TEXT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS max_fee_per_gas DECIMAL(38,0);
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS max_priority_fee_per_gas DECIMAL(38,0);
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS transaction_type INTEGER;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS cumulative_gas_used BIGINT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS contract_address TEXT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS receipt_root TEXT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS effective_gas_price DECIMAL(38,0);
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS blob_gas_used BIGINT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS blob_gas_price DECIMAL(38,0);
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS l1_fee DECIMAL(38,0);
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS l1_gas_used BIGINT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS l1_gas_price DECIMAL(38,0);
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS l1_fee_scalar TEXT;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS has_receipt BOOLEAN;  -- receipt fields were read
-- Provenance of imported exports (tracer ingest etl): the line of the file a row came from.
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS source_line BIGINT;
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS source_line BIGINT;

-- transfers: which block (hash) a transfer was read from, and where in the call tree an internal
-- transfer happened (callTracer frame path, e.g. "0,2").
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS block_hash TEXT;
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS trace_address TEXT;

-- Every event log, as ethereum-etl's logs export: provenance for token transfers and the raw
-- material for other decoders (Approval, Deposit, ...).
CREATE TABLE IF NOT EXISTS logs (
    chain             TEXT NOT NULL,
    block_height      BIGINT NOT NULL,
    block_hash        TEXT,
    block_time        TIMESTAMP,
    txid              TEXT NOT NULL,
    transaction_index INTEGER,
    log_index         BIGINT NOT NULL,
    address           TEXT,
    data              TEXT,
    topics            TEXT[],
    source_line       BIGINT,             -- line of an imported export file (NULL from a node)
    run_id            BIGINT
);

-- Token metadata read once from the contract (symbol(), name(), decimals()) and cached.
-- `status` says what the contract answered: ok, partial (some calls reverted), none.
CREATE TABLE IF NOT EXISTS evm_tokens (
    chain      TEXT NOT NULL,
    address    TEXT NOT NULL,
    symbol     TEXT,
    name       TEXT,
    decimals   INTEGER,
    status     TEXT NOT NULL,
    fetched_at TIMESTAMP,
    run_id     BIGINT
);
