-- moneytrail store, migration 011: typology alerts (heuristics/typologies, `tracer alerts`).
-- Documented in docs/data-model.md ("Alerts") and docs/heuristics.md ("Typology alerts").

-- Migration 001 declared `alerts` with text ids and JSON evidence; nothing ever wrote it, so it is
-- replaced by the table the detectors fill (the contract's columns kept: alert_id, typology, score,
-- subjects, evidence as flow ids, created).
DROP TABLE IF EXISTS alerts;

-- One row per alert. A detector finds a pattern around a focal node, anchored at one flow (e.g. the
-- first flow of its time window); alert_key = md5(typology:focal_id:anchor) names the pattern, so
-- finding it again (a rerun, or a run over more data) updates the row instead of adding one.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id    BIGINT NOT NULL,       -- dense, from 1, in order of first detection
    alert_key   TEXT NOT NULL,
    typology    TEXT NOT NULL,         -- structuring, fan_in, fan_out, cycle, peeling_chain, ...
    score       DOUBLE NOT NULL,       -- 0..1; analysts work the queue from the top
    focal_id    BIGINT,                -- the node the alert is about: address_id, or -tx_id for a UTXO tx
    anchor      BIGINT,                -- the flow_id that anchors the pattern (part of alert_key)
    chain       TEXT,                  -- the focal node's chain, or 'multi'
    subjects    BIGINT[] NOT NULL,     -- address ids involved, focal first
    evidence    BIGINT[] NOT NULL,     -- flow ids of the movements behind the alert
    usd         DOUBLE,                -- value of the evidence flows the detector counts
    first_time  TIMESTAMP,
    last_time   TIMESTAMP,
    summary     TEXT,                  -- one line: what was seen, in numbers
    params      TEXT,                  -- JSON: the parameters the detector ran with
    first_run   BIGINT,                -- the alerts run that first raised it
    run_id      BIGINT,                -- the last alerts run that found it
    created     TIMESTAMP,             -- when first raised
    updated     TIMESTAMP,             -- when last found
    status      TEXT NOT NULL DEFAULT 'open'   -- open, escalated, dismissed (kept across reruns)
);
