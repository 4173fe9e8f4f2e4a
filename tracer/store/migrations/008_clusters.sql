-- moneytrail store, migration 008: clusters keyed by integer ids, with the evidence of every merge.
-- Schema 1's `clusters` keyed clusters by text and nothing ever wrote it; it is replaced.
DROP TABLE IF EXISTS clusters;
CREATE TABLE clusters (
    chain       TEXT NOT NULL,
    address     TEXT NOT NULL,
    address_id  BIGINT NOT NULL,
    cluster_id  BIGINT NOT NULL,      -- the smallest address_id of the cluster: the same data gives the same id
    run_id      BIGINT
);

-- One row per merge that joined two clusters (the spanning forest of the evidence): which heuristic,
-- which transaction, how sure, and which cluster id survived (the smaller) and which was absorbed.
ALTER TABLE cluster_links ADD COLUMN IF NOT EXISTS id_a BIGINT;
ALTER TABLE cluster_links ADD COLUMN IF NOT EXISTS id_b BIGINT;
ALTER TABLE cluster_links ADD COLUMN IF NOT EXISTS tx_id BIGINT;
ALTER TABLE cluster_links ADD COLUMN IF NOT EXISTS surviving_id BIGINT;
ALTER TABLE cluster_links ADD COLUMN IF NOT EXISTS absorbed_id BIGINT;
ALTER TABLE cluster_links ADD COLUMN IF NOT EXISTS size_a BIGINT;   -- sizes of the two clusters just before the merge
ALTER TABLE cluster_links ADD COLUMN IF NOT EXISTS size_b BIGINT;

-- How far clustering has read each chain, and with which parameters (an incremental run continues
-- from through_tx_id; other parameters force a full run).
CREATE TABLE IF NOT EXISTS cluster_state (
    chain          TEXT PRIMARY KEY,
    through_tx_id  BIGINT NOT NULL,
    params         TEXT NOT NULL,
    run_id         BIGINT,
    updated        TIMESTAMP
);

-- CoinJoin (and look-alike) verdicts per transaction, with the rule and its confidence;
-- transactions.flags carries the kind too.
CREATE TABLE IF NOT EXISTS tx_flags (
    chain       TEXT NOT NULL,
    tx_id       BIGINT NOT NULL,
    txid        TEXT NOT NULL,
    flag        TEXT NOT NULL,        -- coinjoin:whirlpool, coinjoin:wasabi1, coinjoin:wasabi11, coinjoin:wasabi2,
                                      -- coinjoin:joinmarket, coinjoin:generic, whirlpool-tx0, stonewall
    confidence  DOUBLE NOT NULL,
    run_id      BIGINT
);

-- Labels propagate to clusters: a cluster holding a labelled address carries that label, with the
-- label's source and confidence and the address that bears it.
CREATE VIEW cluster_labels AS
SELECT c.chain, c.cluster_id, l.label, l.category, l.actor, l.source, l.confidence, l.address AS labelled_address
FROM clusters c JOIN labels l ON l.chain = c.chain AND l.address = c.address;

-- Clusters whose labels name more than one actor (or label, where no actor is given): reported, never
-- merged silently — either a false link joined two entities or one of the labels is wrong.
CREATE VIEW cluster_label_conflicts AS
SELECT chain, cluster_id, count(DISTINCT coalesce(actor, label)) AS actors,
       string_agg(DISTINCT coalesce(actor, label) || ' (' || coalesce(category, '?') || ', ' || coalesce(source, '?') || ')', '; ') AS labels
FROM cluster_labels GROUP BY chain, cluster_id
HAVING count(DISTINCT coalesce(actor, label)) > 1;
