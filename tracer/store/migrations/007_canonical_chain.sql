-- moneytrail store, migration 007: the canonical Bitcoin chain.
-- Every stored block says whether it is on the best chain (most accumulated work); stale blocks are
-- kept and marked, and their transactions live in the stale_* side tables, out of transactions /
-- outputs / inputs / flows, until a reorg makes their branch best again. Documented in docs/bitcoin.md
-- ("Best chain, stale blocks and reorgs").

-- Existing rows (EVM blocks, simulated and already stored Bitcoin blocks) stay on the best chain;
-- the Bitcoin loader fills chainwork for stored blocks on its next run and re-decides.
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS in_best_chain BOOLEAN DEFAULT true;
-- accumulated proof of work (Σ 2^256 / (target + 1)) from the block after work_root to this block
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS chainwork DECIMAL(38,0);
-- the nearest ancestor not in the store (for a chain from genesis: the genesis block's null parent);
-- blocks sharing a work_root compete, and chainwork is comparable among them
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS work_root TEXT;
-- order of arrival in the store: on equal work the block stored first stays best (as Bitcoin Core)
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS arrival BIGINT;

-- The transactions of stale blocks, in the loader's own shape (not the canonical tables').
CREATE TABLE IF NOT EXISTS stale_transactions (
    chain         TEXT NOT NULL,
    txid          TEXT NOT NULL,
    wtxid         TEXT,
    block_hash    TEXT NOT NULL,
    block_height  BIGINT,
    block_time    TIMESTAMP,
    position      INTEGER,
    version       BIGINT,
    locktime      BIGINT,
    size          INTEGER,
    weight        INTEGER,
    is_coinbase   BOOLEAN,
    input_count   INTEGER,
    output_count  INTEGER,
    tx_id         BIGINT NOT NULL,
    run_id        BIGINT
);
CREATE TABLE IF NOT EXISTS stale_outputs (
    chain         TEXT NOT NULL,
    txid          TEXT NOT NULL,
    n             INTEGER NOT NULL,
    address       TEXT,
    script_type   TEXT NOT NULL,
    value         BIGINT NOT NULL,
    block_height  BIGINT,
    time          TIMESTAMP,
    tx_id         BIGINT NOT NULL,
    ord           BIGINT NOT NULL,
    run_id        BIGINT
);
CREATE TABLE IF NOT EXISTS stale_inputs (
    chain         TEXT NOT NULL,
    txid          TEXT NOT NULL,
    n             INTEGER NOT NULL,
    prev_txid     TEXT,
    prev_n        BIGINT,
    sequence      BIGINT,
    block_height  BIGINT,
    time          TIMESTAMP,
    tx_id         BIGINT NOT NULL,
    ord           BIGINT NOT NULL,
    run_id        BIGINT
);
