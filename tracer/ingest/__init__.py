"""Ingesters: one module per source. Each reads its source, maps it to the canonical tables and loads
Arrow batches into the store. ``SOURCES`` maps a source name to the module that ingests it."""

SOURCES = {
    "bitcoin": "tracer.ingest.bitcoin",
    "evm": "tracer.ingest.evm",
    "etl": "tracer.ingest.etl",
    "bank": "tracer.ingest.bank",
    "reports": "tracer.ingest.reports",
    "ads": "tracer.ingest.ads",
    "labels": "tracer.ingest.labels",
    "prices": "tracer.ingest.prices",
}
