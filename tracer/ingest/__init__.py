"""Ingesters: one module per source. Each reads its source, maps it to the canonical tables and loads
Arrow batches into the store. ``SOURCES`` maps a source name to the module that ingests it."""

SOURCES = {
    "bitcoin": "tracer.ingest.bitcoin.blocks",
    "evm": "tracer.ingest.evm.node",
    "etl": "tracer.ingest.evm.etl",
    "bank": "tracer.ingest.human.bank",
    "reports": "tracer.ingest.human.reports",
    "ads": "tracer.ingest.human.ads",
    "labels": "tracer.ingest.labels.sources",
    "prices": "tracer.ingest.prices",
}
