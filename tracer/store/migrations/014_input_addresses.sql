-- moneytrail store, migration 014: the address an input spends from, also before its spent output is stored.
-- tracer/ingest/bitcoin/spending.py derives it from the input's own scriptSig / witness for the standard
-- forms (P2PKH, P2WPKH, P2SH-P2WPKH, P2SH-P2WSH, P2SH multisig, P2WSH). Documented in docs/data-model.md
-- ("Input addresses") and docs/heuristics.md.

-- Where inputs.address (and address_id) came from: 'prevout' (the spent output's address: it is stored)
-- or 'script' (derived from the spending script; the spent output is not stored yet). NULL: no address.
-- When the spent output arrives later the row becomes 'prevout'; a disagreement goes to quarantine.
ALTER TABLE inputs ADD COLUMN IF NOT EXISTS address_source TEXT;
-- The spending form the script was recognised as (p2pkh, p2wpkh, p2sh-p2wpkh, p2sh-p2wsh, p2sh-multisig,
-- p2wsh), kept also once the prevout is known: with address_source 'prevout' it says the two were compared.
ALTER TABLE inputs ADD COLUMN IF NOT EXISTS spend_type TEXT;
UPDATE inputs SET address_source = 'prevout' WHERE address IS NOT NULL;

-- Stale blocks' inputs keep what the parser derived, for when their block rejoins the best chain.
ALTER TABLE stale_inputs ADD COLUMN IF NOT EXISTS script_address TEXT;
ALTER TABLE stale_inputs ADD COLUMN IF NOT EXISTS spend_type TEXT;
