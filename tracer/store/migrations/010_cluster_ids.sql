-- moneytrail store, migration 010: clusters and their evidence kept in integer ids only.
-- Writing each address's text and each merge's two addresses and txid dominated a clustering run
-- (docs/benchmarks.md, "Clustering"); the text is now reached through views over `addresses`,
-- `transactions` and `transfers`. The 008 tables are converted, then replaced by views of the same names
-- and columns, so readers keep working.

-- An address absorbed into a cluster whose id (its smallest address_id) is not its own. A clustered
-- address without a row is the root of its cluster: its cluster_id is its address_id. A full run writes
-- one row per merge, not one per address.
CREATE TABLE cluster_members (
    chain       TEXT NOT NULL,
    address_id  BIGINT NOT NULL,
    cluster_id  BIGINT NOT NULL,
    run_id      BIGINT
);
INSERT INTO cluster_members SELECT chain, address_id, cluster_id, run_id FROM clusters WHERE cluster_id <> address_id;

-- Incremental runs do not rewrite the members of a cluster that another absorbs: its root gets a row here
-- naming the cluster it now belongs to (kept one hop: renames pointing at a root that is absorbed later are
-- repointed). A member's cluster is then its rename's cluster_id, else its cluster_members cluster_id,
-- else its own address_id. A full run leaves this table empty.
CREATE TABLE cluster_renames (
    chain        TEXT NOT NULL,
    absorbed_id  BIGINT NOT NULL,
    cluster_id   BIGINT NOT NULL,
    run_id       BIGINT
);

-- The heuristics that linked addresses, by a small code (multi-input, change:<expr>, evm-deposit, …).
CREATE TABLE cluster_heuristics (
    code  INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);
INSERT INTO cluster_heuristics
SELECT CAST(row_number() OVER (ORDER BY heuristic) - 1 AS INTEGER), heuristic
FROM (SELECT DISTINCT heuristic FROM cluster_links WHERE id_a IS NOT NULL);

-- One row per merge that joined two clusters: the address ids, the transaction (tx_id; on account-model
-- chains the transfer's flow_id), the heuristic's code, the confidence, the surviving and absorbed
-- cluster ids and both sizes just before.
CREATE TABLE cluster_evidence (
    chain         TEXT NOT NULL,
    id_a          BIGINT NOT NULL,
    id_b          BIGINT NOT NULL,
    tx_id         BIGINT,
    heuristic     INTEGER NOT NULL,
    confidence    DOUBLE,
    surviving_id  BIGINT,
    absorbed_id   BIGINT,
    size_a        BIGINT,
    size_b        BIGINT,
    run_id        BIGINT
);
INSERT INTO cluster_evidence
SELECT l.chain, l.id_a, l.id_b, l.tx_id, h.code, l.confidence, l.surviving_id, l.absorbed_id, l.size_a, l.size_b, l.run_id
FROM cluster_links l JOIN cluster_heuristics h ON h.name = l.heuristic WHERE l.id_a IS NOT NULL;

-- The largest address_id a chain's last run covered: the `clusters` view lists the addresses up to it.
ALTER TABLE cluster_state ADD COLUMN through_address_id BIGINT;
UPDATE cluster_state SET through_address_id =
    coalesce((SELECT max(c.address_id) FROM clusters c WHERE c.chain = cluster_state.chain), 0);

-- (the views cluster_labels and cluster_label_conflicts of 008 read `clusters` by name: they read the view)
DROP TABLE clusters;
DROP TABLE cluster_links;

-- The 008 `clusters`, as a view: every address of a clustered chain up to the last run, its cluster id
-- (renamed, else as written, else its own).
CREATE VIEW clusters AS
SELECT a.chain, a.address, a.address_id, coalesce(r.cluster_id, m.cluster_id, a.address_id) AS cluster_id,
       coalesce(r.run_id, m.run_id, s.run_id) AS run_id
FROM addresses a
JOIN cluster_state s ON s.chain = a.chain AND a.address_id <= s.through_address_id
LEFT JOIN cluster_members m ON m.address_id = a.address_id
LEFT JOIN cluster_renames r ON r.absorbed_id = coalesce(m.cluster_id, a.address_id);

-- The 008 `cluster_links`, as a view: the evidence with both addresses, the heuristic's name and the txid.
CREATE VIEW cluster_links AS
SELECT l.chain, aa.address AS address_a, ab.address AS address_b, h.name AS heuristic,
       coalesce(t.txid, f.txid) AS txid, l.confidence, l.run_id, l.id_a, l.id_b, l.tx_id,
       l.surviving_id, l.absorbed_id, l.size_a, l.size_b
FROM cluster_evidence l
JOIN addresses aa ON aa.address_id = l.id_a
JOIN addresses ab ON ab.address_id = l.id_b
JOIN cluster_heuristics h ON h.code = l.heuristic
LEFT JOIN transactions t ON t.chain = l.chain AND t.tx_id = l.tx_id
LEFT JOIN transfers f ON f.chain = l.chain AND f.flow_id = l.tx_id;
