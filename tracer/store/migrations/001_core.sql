-- moneytrail store, schema 1: the canonical tables of ARCHITECTURE.md.
-- Amounts are exact integers in the asset's base unit. Bitcoin values fit BIGINT; account-model
-- amounts are uint256 and are kept as DECIMAL(38,0) in `amount` where they fit, and always as exact
-- decimal text in `amount_raw`. Times are UTC (TIMESTAMP without zone, UTC by contract).
-- Every ingested row carries run_id -> ingest_runs.

CREATE SEQUENCE IF NOT EXISTS run_id_seq START 1;

CREATE TABLE ingest_runs (
    run_id      BIGINT PRIMARY KEY,
    source      TEXT NOT NULL,        -- bitcoin, evm, etl, bank, reports, ads, labels, prices, simulate
    target      TEXT,                 -- file, directory or URL read
    parameters  JSON,
    started     TIMESTAMP NOT NULL,
    finished    TIMESTAMP,
    status      TEXT NOT NULL,        -- running, ok, failed
    row_counts  JSON,
    error       TEXT
);

-- One row per chain name: which network (mainnet, testnet, ...) and chain id it holds.
-- A store refuses to mix two networks under one chain name.
CREATE TABLE chains (
    chain     TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,          -- utxo, account, fiat
    network   TEXT NOT NULL,
    chain_id  BIGINT,
    run_id    BIGINT
);

CREATE TABLE addresses (
    chain       TEXT NOT NULL,
    address     TEXT NOT NULL,
    address_id  BIGINT NOT NULL,      -- dense, assigned at first sight, never reused
    first_seen  TIMESTAMP,
    script_type TEXT,
    run_id      BIGINT
);

CREATE TABLE blocks (
    chain        TEXT NOT NULL,
    height       BIGINT,              -- NULL until known (BIP34 or chaining)
    hash         TEXT NOT NULL,
    prev_hash    TEXT,
    time         TIMESTAMP,
    tx_count     INTEGER,
    size         INTEGER,
    version      BIGINT,
    merkle_root  TEXT,
    bits         BIGINT,
    nonce        BIGINT,
    height_source TEXT,               -- bip34, chain, genesis, rpc, node
    source       TEXT,                -- file path or URL the block came from
    source_offset BIGINT,             -- byte offset of the block in that file (NULL for RPC)
    run_id       BIGINT
);

CREATE TABLE transactions (
    chain         TEXT NOT NULL,
    txid          TEXT NOT NULL,
    wtxid         TEXT,
    block_hash    TEXT,
    block_height  BIGINT,
    block_time    TIMESTAMP,
    position      INTEGER,
    version       BIGINT,
    locktime      BIGINT,
    size          INTEGER,
    weight        INTEGER,
    fee           DECIMAL(38,0),      -- NULL until every input is known
    is_coinbase   BOOLEAN,
    input_count   INTEGER,
    output_count  INTEGER,
    flags         TEXT,               -- e.g. coinjoin kind; comma separated
    -- account-model fields
    from_address  TEXT,
    to_address    TEXT,
    value         DECIMAL(38,0),
    value_raw     TEXT,
    status        INTEGER,            -- 1 success, 0 reverted
    gas           BIGINT,
    gas_price     DECIMAL(38,0),
    gas_used      BIGINT,
    run_id        BIGINT
);

CREATE TABLE outputs (
    chain          TEXT NOT NULL,
    txid           TEXT NOT NULL,
    n              INTEGER NOT NULL,
    address        TEXT,              -- NULL for OP_RETURN
    script_type    TEXT NOT NULL,
    value          BIGINT NOT NULL,
    spent_by_txid  TEXT,
    spent_by_n     INTEGER,
    block_height   BIGINT,
    run_id         BIGINT
);

CREATE TABLE inputs (
    chain         TEXT NOT NULL,
    txid          TEXT NOT NULL,
    n             INTEGER NOT NULL,
    prev_txid     TEXT,               -- NULL for the coinbase input
    prev_n        BIGINT,
    address       TEXT,               -- resolved from the spent output, also when it arrives later
    value         BIGINT,
    sequence      BIGINT,
    block_height  BIGINT,
    run_id        BIGINT
);

CREATE TABLE transfers (
    chain         TEXT NOT NULL,      -- ethereum, ..., or 'fiat'
    asset         TEXT NOT NULL,      -- ETH, token contract address, or currency code
    txid          TEXT NOT NULL,      -- tx hash, or a stable id for fiat rows
    idx           BIGINT NOT NULL,    -- log index / trace position / CSV line
    from_address  TEXT,
    to_address    TEXT,
    amount        DECIMAL(38,0),      -- exact base units where they fit 38 digits, else NULL
    amount_raw    TEXT NOT NULL,      -- exact base units as decimal text, always
    time          TIMESTAMP,
    block_height  BIGINT,
    kind          TEXT,               -- native, erc20, internal, wire, ach, ...
    symbol        TEXT,
    decimals      INTEGER,
    payment_format TEXT,
    is_laundering BOOLEAN,            -- ground truth columns of AML data sets, kept for scoring
    alert_id      TEXT,
    source_line   BIGINT,
    run_id        BIGINT
);

CREATE TABLE clusters (
    chain       TEXT NOT NULL,
    address     TEXT NOT NULL,
    cluster_id  TEXT NOT NULL,
    run_id      BIGINT
);

CREATE TABLE cluster_links (
    chain      TEXT NOT NULL,
    address_a  TEXT NOT NULL,
    address_b  TEXT NOT NULL,
    heuristic  TEXT NOT NULL,
    txid       TEXT,
    confidence DOUBLE,
    run_id     BIGINT
);

CREATE TABLE labels (
    chain       TEXT NOT NULL,
    address     TEXT NOT NULL,
    label       TEXT NOT NULL,
    category    TEXT,
    source      TEXT,
    confidence  DOUBLE,
    actor       TEXT,
    abuse       TEXT,
    is_public   BOOLEAN,
    context     JSON,
    source_line BIGINT,
    run_id      BIGINT
);

CREATE TABLE ads (
    ad_id      TEXT NOT NULL,
    site       TEXT NOT NULL,
    posted_at  TIMESTAMP,
    title      TEXT,
    body       TEXT,
    price      DECIMAL(18,2),
    currency   TEXT,
    phones     TEXT[],
    emails     TEXT[],
    location   TEXT,
    lat        DOUBLE,
    lon        DOUBLE,
    image_hashes TEXT[],
    addresses  TEXT[],              -- crypto addresses found in the text
    fee_chain  TEXT,
    fee_txid   TEXT,
    source_line BIGINT,
    run_id     BIGINT
);

CREATE TABLE ad_payments (
    ad_id   TEXT NOT NULL,
    chain   TEXT NOT NULL,
    txid    TEXT NOT NULL,
    n       INTEGER,
    score   DOUBLE,
    method  TEXT,
    run_id  BIGINT
);

CREATE TABLE reports (
    report_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,        -- SAR, STR, tip
    filer       TEXT,
    filed_at    TIMESTAMP,
    subjects    TEXT[],
    identifiers JSON,                 -- {"bitcoin": [...], "ethereum": [...], "iban": [...], "phone": [...], ...}
    amount      DECIMAL(18,2),
    currency    TEXT,
    narrative   TEXT,
    source_line BIGINT,
    run_id      BIGINT
);

CREATE TABLE report_identifiers (
    report_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,         -- bitcoin, ethereum, tron, iban, phone, email, account
    value      TEXT NOT NULL,
    origin     TEXT,                  -- field, narrative
    run_id     BIGINT
);

CREATE TABLE prices (
    asset   TEXT NOT NULL,
    time    TIMESTAMP NOT NULL,
    usd     DOUBLE NOT NULL,
    source  TEXT,
    run_id  BIGINT
);

CREATE TABLE alerts (
    alert_id  TEXT NOT NULL,
    typology  TEXT NOT NULL,
    score     DOUBLE,
    subjects  TEXT[],
    evidence  JSON,
    created   TIMESTAMP,
    run_id    BIGINT
);

CREATE TABLE cases (
    case_id     TEXT PRIMARY KEY,
    title       TEXT,
    created     TIMESTAMP,
    created_by  TEXT,
    notes       TEXT
);

CREATE TABLE case_items (
    case_id  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    ref      TEXT NOT NULL,
    added    TIMESTAMP,
    note     TEXT
);

CREATE TABLE audit_log (
    time    TIMESTAMP NOT NULL,
    actor   TEXT,
    action  TEXT NOT NULL,
    detail  JSON
);

CREATE TABLE quarantine (
    run_id    BIGINT,
    source    TEXT NOT NULL,          -- file path or URL
    position  TEXT NOT NULL,          -- "byte 1234", "line 17", "block 702861", ...
    raw       TEXT,                   -- the refused item (hex for binary, truncated if huge)
    reason    TEXT NOT NULL,
    created   TIMESTAMP
);

-- Checkpoints make ingests resumable: one row per source unit (blk file, RPC height range, CSV file).
CREATE TABLE checkpoints (
    source    TEXT NOT NULL,
    unit      TEXT NOT NULL,
    position  TEXT,
    done      BOOLEAN,
    run_id    BIGINT,
    updated   TIMESTAMP
);
