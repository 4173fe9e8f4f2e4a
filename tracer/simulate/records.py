"""Labels (as a GraphSense TagPack) and suspicious-activity reports of the simulated world.

Labels: the simulator writes a real TagPack file beside the truth file and turns it into ``labels``
rows with the TagPack importer's own mapping (:mod:`tracer.ingest.labels.sources`), so the rows are exactly what
``tracer ingest labels`` would store — only under the simulate run. Tags on the simulated EVM chain are
filed under ETH (the TagPack currency) and stored under the chain name ``sim-evm``.

Reports: rows as the reports ingester stores them — identifiers given in fields (origin ``field``) and
those found in the narrative (origin ``narrative``), with the same validation and extraction code.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from tracer.ingest.labels.sources import _tagpack_batch
from tracer.ingest.human.reports import IDENTIFIER_SCHEMA, REPORT_SCHEMA, collect_identifiers, validate_identifier


def write_tagpack(path: Path, seed: int, lastmod: dt.date, tags: list[dict]) -> Path:
    doc = {
        "title": f"moneytrail simulated world, seed {seed}",
        "creator": "moneytrail simulate",
        "description": "Services of a simulated world (tracer simulate). Not real entities.",
        "source": "simulate",
        "lastmod": lastmod.isoformat(),
        "is_public": True,
        "tags": tags,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def label_rows(path: Path, run_id: int, evm_addresses: set[str], evm_chain: str,
               networks: dict[str, str] | None = None) -> pa.Table:
    """The labels a TagPack import of ``path`` stores, under ``run_id``; EVM tags moved to ``evm_chain``;
    addresses validated for ``networks`` (chain -> network, as the store's ``chains`` says)."""
    batch = _tagpack_batch(path, run_id, networks)
    if batch.refused:
        raise ValueError(f"the simulated TagPack {path} has refused tags: {batch.refused}")
    table = batch.table()
    is_evm = pc.is_in(table["address"], pa.array(sorted(evm_addresses), pa.string()))
    chain = pc.if_else(is_evm, pa.scalar(evm_chain), table["chain"])
    table = table.set_column(table.schema.get_field_index("chain"), "chain", chain)
    # the pack's file name, not its full path: the store does not depend on where the truth was written
    i = table.schema.get_field_index("source_file")
    return table.set_column(i, "source_file", pa.array([path.name] * len(table), pa.string()))


def report_rows(records: list[dict], run_id: int, bitcoin_network: str = "mainnet") -> tuple[pa.Table, pa.Table]:
    reports, idents = [], []
    for line, rec in enumerate(records, start=1):
        rows = [(kind, validate_identifier(kind, v, "US", bitcoin_network), "field")
                for kind, values in rec["identifiers"].items() for v in values]
        found, report_idents = collect_identifiers(rec["report_id"], rows, rec["narrative"], "US", run_id, line,
                                                  bitcoin_network)
        idents.extend(report_idents)
        reports.append({
            "report_id": rec["report_id"], "kind": rec["kind"], "filer": rec["filer"], "filed_at": rec["filed_at"],
            "subjects": rec["subjects"], "identifiers": json.dumps(found, sort_keys=True),
            "amount": None if rec["amount"] is None else Decimal(str(rec["amount"])).quantize(Decimal("0.01")),
            "currency": "USD", "narrative": rec["narrative"],
            "accounts": found.get("account", []), "source_line": line, "run_id": run_id,
        })
    return pa.Table.from_pylist(reports, REPORT_SCHEMA), pa.Table.from_pylist(idents, IDENTIFIER_SCHEMA)
