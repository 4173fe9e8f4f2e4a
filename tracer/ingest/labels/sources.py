"""Labels: who is behind an address. OFAC SDN lists, GraphSense TagPacks (import and export), CSV.

Every address is validated for the chain it is filed under (:mod:`tracer.codecs.identifiers`): a
list that files a TRON address under XBT — OFAC's own SDN list does, see
``fixtures/labels/ofac-sdn/sanctioned_addresses_XBT.txt`` — gets that address quarantined with the
reason, not stored as a Bitcoin label. Lists that mix chains under one asset (OFAC's USDT list holds
Ethereum, TRON and Omni/Bitcoin addresses) are split by the address's own form. Bitcoin addresses are
validated for the network the store holds (its ``chains`` table, mainnet when it has no Bitcoin yet):
a regtest store takes ``bcrt1…`` labels and quarantines mainnet ones, saying which network they are for.

Formats:

* OFAC per-asset lists, one address per line, ``sanctioned_addresses_<ASSET>.txt`` as published by
  github.com/0xB10C/ofac-sanctioned-digital-currency-addresses (extracted from ``sdn_advanced.xml``
  "Digital Currency Address - <ASSET>" features).
* OFAC ``sdn_advanced.xml`` itself: each DistinctParty's "Digital Currency Address - <ASSET>" feature,
  labelled with the party's primary name.
* GraphSense TagPacks (github.com/graphsense/graphsense-tagpacks, README "TagPack structure"): a YAML
  header (title, creator, description, lastmod, ...) plus ``tags``; the generic tag fields (label,
  source, currency, network, category, abuse, confidence, actor, is_cluster_definer, context, lastmod)
  may sit in the header and are inherited by every tag that does not set them. ``confidence`` is a
  named level; its number is GraphSense tagpack-tool's ``confidence.csv`` level / 100.
* CSV with a header: ``chain,address,label[,category,source,confidence,actor,abuse]``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from tracer import chains
from tracer.errors import IngestError
from tracer.ingest.csvread import Refused, append_new, quarantine_many, read_lines, reason_counts
from tracer.codecs.identifiers import (
    InvalidIdentifier,
    b58check_decode,
    chains_of,
    segwit_decode,
    validate_address,
    validate_bitcoin_user_address,
)
from tracer.ingest.bitcoin.network import NETWORKS
from tracer.store import Store
from tracer.store.store import Run

#: OFAC asset codes and TagPack currency/network codes -> the store's chain names (the chain registry,
#: :mod:`tracer.chains`, is the one place they are listed).
ASSET_CHAINS: dict[str, str] = chains.CODES
#: Tokens that live on several chains: the address's own form decides, in this order of preference
#: (an Omni USDT address is a Bitcoin address).
MULTI_CHAIN_ASSETS: dict[str, tuple[str, ...]] = chains.MULTI_CHAIN_CODES

#: GraphSense tagpack-tool confidence.csv: confidence id -> level (0..100).
CONFIDENCE_LEVELS: dict[str, int] = {
    "override": 100, "ownership": 100, "ledger_immanent": 100, "manual_transaction": 90,
    "service_api": 70, "forensic_investigation": 70, "authority_data": 60, "trusted_provider": 50,
    "service_data": 50, "forensic": 50, "untrusted_transaction": 40, "web_crawl": 20, "heuristic": 10,
    "unknown": 5,
}
#: Tag fields a TagPack header may set for all its tags.
GENERIC_TAG_FIELDS = ("label", "source", "currency", "network", "category", "abuse", "confidence",
                      "actor", "is_cluster_definer", "context", "lastmod")
#: Tag fields with a column of their own in `labels`.
_COLUMN_FIELDS = {"address", "label", "source", "currency", "network", "category", "abuse", "confidence",
                  "actor", "is_cluster_definer", "context"}

OFAC_SOURCE = "https://sanctionslist.ofac.treas.gov/ (SDN list, Digital Currency Address features)"
LABEL_KEY = ("chain", "address", "label", "pack")

_LABEL_SCHEMA = pa.schema([
    ("chain", pa.string()), ("address", pa.string()), ("label", pa.string()), ("category", pa.string()),
    ("source", pa.string()), ("confidence", pa.float64()), ("actor", pa.string()), ("abuse", pa.string()),
    ("is_public", pa.bool_()), ("context", pa.string()), ("source_line", pa.int64()), ("run_id", pa.int64()),
    ("source_asset", pa.string()), ("source_network", pa.string()), ("confidence_level", pa.string()),
    ("is_cluster_definer", pa.bool_()), ("pack", pa.string()), ("pack_header", pa.string()),
    ("tag_extra", pa.string()), ("source_file", pa.string()),
])


def chain_for(asset: str, address: str) -> str:
    """The chain an address filed under ``asset`` belongs to; raise InvalidIdentifier if none fits.

    ``asset`` is an OFAC asset or TagPack currency/network code (``XBT``, ``BEP20``) or a chain name of
    the registry (``bsc``, ``sepolia``): both resolve through :func:`tracer.chains.resolve`."""
    code = asset.strip().upper()
    if code in MULTI_CHAIN_ASSETS:
        for chain in MULTI_CHAIN_ASSETS[code]:
            try:
                validate_address(chain, address)
            except InvalidIdentifier:
                continue
            return chain
        raise InvalidIdentifier(
            f"not a valid address on any chain {code} is filed for ({', '.join(MULTI_CHAIN_ASSETS[code])})"
        )
    chain = chains.resolve(asset)
    if chain is None:
        raise InvalidIdentifier(f"unknown asset or network code {asset!r}")
    return chain


def store_networks(store: Store) -> dict[str, str]:
    """The network each chain of the store holds (``chains``, written by the block ingesters)."""
    return {chain: network for chain, network in store.query("SELECT chain, network FROM chains")}


def bitcoin_network_of(address: str) -> str | None:
    """The Bitcoin network whose address rules ``address`` follows ('testnet' also stands for signet,
    which shares its prefixes; a Base58 testnet address is also a regtest one), or None."""
    for name in ("mainnet", "testnet", "regtest"):
        try:
            validate_bitcoin_address(address, name)
        except InvalidIdentifier:
            continue
        return name
    return None


def validate_bitcoin_address(address: str, network: str = "mainnet") -> tuple[str, str]:
    """Validate a Bitcoin address for ``network`` (mainnet, testnet, signet, regtest); return
    (normalised address, script type).

    Mainnet: bitcoinlib and the built-in rules must both accept it (:func:`validate_bitcoin_user_address`).
    The test networks: the network's Bech32 prefix (tb, bcrt) or Base58Check versions (0x6f, 0xc4) from
    Bitcoin Core's chainparams (:mod:`tracer.ingest.bitcoin.network`), BIP-173/BIP-350 checksums.
    """
    if network == "mainnet":
        return validate_bitcoin_user_address(address)
    net = NETWORKS.get(network)
    if net is None:
        raise InvalidIdentifier(f"no address rules for bitcoin network {network!r}")
    address = address.strip()
    if address.lower().startswith(net.hrp + "1"):
        version, program = segwit_decode(address, net.hrp)
        if version == 0:
            return address.lower(), "p2wpkh" if len(program) == 20 else "p2wsh"
        return address.lower(), "p2tr" if version == 1 and len(program) == 32 else f"witness_v{version}"
    try:
        body = b58check_decode(address)
    except (InvalidIdentifier, ValueError, KeyError) as exc:
        raise InvalidIdentifier(f"not a valid bitcoin {network} address: {exc}") from None
    kinds = {net.p2pkh_version: "p2pkh", net.p2sh_version: "p2sh"}
    if len(body) != 21 or body[0] not in kinds:
        raise InvalidIdentifier(f"not a valid bitcoin {network} address: Base58Check version 0x{body[:1].hex()} "
                                f"/ length {len(body)} not used by {network}")
    return address, kinds[body[0]]


class _Batch:
    """Label rows being collected from one source, and the ones refused.

    ``networks`` (chain -> network, from the store's ``chains``) decides which network's address rules
    apply: a regtest store takes bcrt1… labels and refuses mainnet ones; a chain the store has not
    seen is taken to be mainnet.
    """

    def __init__(self, run_id: int, source_file: str, networks: dict[str, str] | None = None):
        self.run_id, self.source_file = run_id, source_file
        self.networks = networks or {}
        self.rows: list[dict[str, Any]] = []
        self.refused = Refused()

    def add(self, *, asset: str, address: Any, label: Any, line: int | None, position: str, raw: str,
            network: str | None = None, **fields: Any) -> None:
        if address is None or str(address).strip() == "":
            self.refused.add(position, raw, "no address")
            return
        if label is None or str(label).strip() == "":
            self.refused.add(position, raw, "no label")
            return
        address = str(address).strip()
        code = (network or asset or "").strip()
        try:
            chain = chain_for(code, address)
            if chain == "bitcoin":
                normalised, _ = self._bitcoin(address)
            else:
                normalised, _ = validate_address(chain, address)
        except InvalidIdentifier as exc:
            reason = f"{exc}; filed under {code or '(no currency)'}"
            seen = chains_of(address)
            if seen:
                reason += f" (looks like {', '.join(seen)})"
            self.refused.add(position, raw, reason)
            return
        self.rows.append({
            "chain": chain, "address": normalised, "label": str(label), "source_line": line,
            "run_id": self.run_id, "source_file": self.source_file, "source_asset": asset,
            "source_network": network, **fields,
        })

    def _bitcoin(self, address: str) -> tuple[str, str]:
        network = self.networks.get("bitcoin", "mainnet")
        try:
            return validate_bitcoin_address(address, network)
        except InvalidIdentifier:
            other = bitcoin_network_of(address)
            if other is None or other == network or {other, network} <= {"testnet", "signet"}:
                raise
            raise InvalidIdentifier(f"a bitcoin {other} address; this store holds bitcoin {network}") from None

    def table(self) -> pa.Table:
        cols = {name: [row.get(name) for row in self.rows] for name in _LABEL_SCHEMA.names}
        return pa.table(cols, schema=_LABEL_SCHEMA)


def _rename_chains(table: pa.Table, chain_map: dict[str, str] | None) -> pa.Table:
    """Tags the source files under one chain stored under another (``{"ethereum": "sim-evm"}``): for a
    private or simulated EVM chain, whose addresses a TagPack can only file under ETH."""
    if not chain_map or not len(table):
        return table
    chain = [chain_map.get(c, c) for c in table["chain"].to_pylist()]
    return table.set_column(table.schema.get_field_index("chain"), "chain", pa.array(chain, pa.string()))


def _finish(store: Store, batches: Iterable[tuple[str, _Batch]], run: Run,
            chain_map: dict[str, str] | None = None) -> dict[str, int]:
    """Load every batch of one run in one transaction; on failure nothing stays and the run says why."""
    loaded = quarantined = read = 0
    reasons: dict[str, int] = {}
    try:
        with store.transaction():
            for source_file, batch in batches:
                for kind, n in reason_counts(batch.refused).items():
                    reasons[kind] = reasons.get(kind, 0) + n
                read += len(batch.rows) + len(batch.refused)
                loaded += append_new(store, "labels", _rename_chains(batch.table(), chain_map), LABEL_KEY)
                quarantined += len(batch.refused)
                quarantine_many(store, run, source_file, batch.refused)
            run.add(read=read, labels=loaded)
            run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    return {"run_id": run.run_id, "read": read, "loaded": loaded, "quarantined": quarantined,
            "already_stored": read - quarantined - loaded, "reasons": reasons}


def _begin(store: Store, kind: str, target: str, params: dict[str, Any]) -> Run:
    return store.begin_run("labels", target, {"format": kind, **params})


# ---------------------------------------------------------------------------------------------
# OFAC


_OFAC_FILE = re.compile(r"sanctioned_addresses_([A-Z0-9]+)\.txt$")


def _ofac_list(path: Path, run_id: int, networks: dict[str, str] | None = None) -> _Batch:
    m = _OFAC_FILE.search(path.name)
    if not m:
        raise IngestError(str(path), "file name", "expected sanctioned_addresses_<ASSET>.txt")
    asset = m.group(1)
    batch = _Batch(run_id, str(path), networks)
    lines = read_lines(path.read_bytes())
    batch.refused.rows.extend(lines.refused.rows)
    for number, text in zip(lines.numbers.tolist(), lines.split(), strict=True):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        batch.add(asset=asset, address=text, label=f"OFAC SDN Digital Currency Address - {asset}",
                  line=number, position=f"line {number}", raw=text, abuse="sanction",
                  source=OFAC_SOURCE, confidence=CONFIDENCE_LEVELS["authority_data"] / 100,
                  confidence_level="authority_data", pack="ofac-sdn", is_public=True)
    return batch


def ingest_ofac(store: Store, path: str | Path, chain_map: dict[str, str] | None = None) -> dict[str, int]:
    """Load OFAC per-asset address lists (a directory of ``sanctioned_addresses_*.txt`` or one file),
    or ``sdn_advanced.xml``."""
    path = Path(path)
    if path.suffix.lower() == ".xml":
        return ingest_sdn_xml(store, path, chain_map)
    files = sorted(path.glob("sanctioned_addresses_*.txt")) if path.is_dir() else [path]
    if not files:
        raise IngestError(str(path), "directory", "no sanctioned_addresses_<ASSET>.txt files")
    xml = sorted(p for p in path.glob("sdn*.xml")) if path.is_dir() else []
    run = _begin(store, "ofac", str(path), {"files": [f.name for f in files + xml]})
    try:
        networks = store_networks(store)
        batches = [(str(f), _ofac_list(f, run.run_id, networks)) for f in files]
        batches += [(str(f), _sdn_xml_batch(f, run.run_id, networks)) for f in xml]
    except IngestError as exc:
        run.fail(exc)
        raise
    return _finish(store, batches, run, chain_map)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _sdn_xml_batch(path: Path, run_id: int, networks: dict[str, str] | None = None) -> _Batch:
    """Digital-currency features of ``sdn_advanced.xml`` (OFAC's advanced SDN format).

    FeatureType ids are looked up from ReferenceValueSets by their text ("Digital Currency Address -
    XBT"); each DistinctParty's primary alias is the label and its FixedRef the actor.
    """
    batch = _Batch(run_id, str(path), networks)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise IngestError(str(path), f"line {exc.position[0]}", f"not well-formed XML: {exc}") from None
    if _local(root.tag) == "sdnList":
        return _sdn_classic(root, batch)
    feature_assets: dict[str, str] = {}
    for el in root.iter():
        if _local(el.tag) == "FeatureType" and (el.text or "").startswith("Digital Currency Address - "):
            feature_assets[el.get("ID", "")] = el.text.split(" - ", 1)[1].strip()
    for party in root.iter():
        if _local(party.tag) != "DistinctParty":
            continue
        name = None
        for alias in party.iter():
            if _local(alias.tag) == "Alias" and alias.get("Primary") == "true":
                parts = [p.text for p in alias.iter() if _local(p.tag) == "NamePartValue" and p.text]
                name = " ".join(parts)
                break
        for feature in party.iter():
            if _local(feature.tag) != "Feature" or feature.get("FeatureTypeID") not in feature_assets:
                continue
            asset = feature_assets[feature.get("FeatureTypeID")]
            for detail in feature.iter():
                if _local(detail.tag) == "VersionDetail" and detail.text:
                    ref = party.get("FixedRef")
                    batch.add(asset=asset, address=detail.text, label=name or f"OFAC SDN {ref}",
                              line=None, position=f"DistinctParty {ref} Feature {feature.get('ID')}",
                              raw=detail.text, abuse="sanction", source=OFAC_SOURCE,
                              confidence=CONFIDENCE_LEVELS["authority_data"] / 100,
                              confidence_level="authority_data", pack="ofac-sdn", is_public=True,
                              actor=f"ofac-sdn-{ref}" if ref else None)
    return batch


def _sdn_classic(root: ET.Element, batch: _Batch) -> _Batch:
    """OFAC's classic ``sdn.xml``: sdnEntry / idList / id with idType "Digital Currency Address - X"."""
    for entry in root.iter():
        if _local(entry.tag) != "sdnEntry":
            continue
        values = {_local(c.tag): (c.text or "").strip() for c in entry}
        name = " ".join(v for v in (values.get("firstName"), values.get("lastName")) if v)
        uid = values.get("uid")
        for ident in entry.iter():
            if _local(ident.tag) != "id":
                continue
            fields = {_local(c.tag): (c.text or "").strip() for c in ident}
            kind = fields.get("idType", "")
            if not kind.startswith("Digital Currency Address - "):
                continue
            asset = kind.split(" - ", 1)[1].strip()
            batch.add(asset=asset, address=fields.get("idNumber"), label=name or f"OFAC SDN {uid}", line=None,
                      position=f"sdnEntry {uid} id {fields.get('uid')}", raw=fields.get("idNumber") or "",
                      abuse="sanction", source=OFAC_SOURCE, confidence=CONFIDENCE_LEVELS["authority_data"] / 100,
                      confidence_level="authority_data", pack="ofac-sdn", is_public=True,
                      actor=f"ofac-sdn-{uid}" if uid else None)
    return batch


def ingest_sdn_xml(store: Store, path: str | Path, chain_map: dict[str, str] | None = None) -> dict[str, int]:
    """Load the digital-currency addresses of OFAC's ``sdn_advanced.xml`` (or the classic ``sdn.xml``)."""
    path = Path(path)
    run = _begin(store, "ofac-xml", str(path), {})
    try:
        batch = _sdn_xml_batch(path, run.run_id, store_networks(store))
    except IngestError as exc:
        run.fail(exc)
        raise
    return _finish(store, [(str(path), batch)], run, chain_map)


# ---------------------------------------------------------------------------------------------
# TagPacks


def _tag_lines(text: str) -> list[int]:
    """Line numbers (1-based) where each item of the top-level ``tags:`` list starts."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if re.match(r"tags\s*:", line)), None)
    if start is None:
        return []
    indent = None
    found = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line and not line[0].isspace() and not line.startswith("-"):
            break  # next top-level key
        m = re.match(r"(\s*)- ", line)
        if m and (indent is None or len(m.group(1)) == indent):
            indent = len(m.group(1))
            found.append(i + 1)
    return found


def _scalar_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _tagpack_batch(path: Path, run_id: int, networks: dict[str, str] | None = None) -> _Batch:
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(str(path), f"byte {exc.start}", "broken encoding: not valid UTF-8") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        raise IngestError(str(path), where, f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tags"), list):
        raise IngestError(str(path), "document", "a TagPack is a mapping with a 'tags' list")
    header = {k: v for k, v in doc.items() if k != "tags"}
    inherited = {k: header[k] for k in GENERIC_TAG_FIELDS if k in header}
    pack_header = {k: _scalar_text(v) if isinstance(v, (dict, list)) else v
                   for k, v in header.items() if k not in GENERIC_TAG_FIELDS}
    pack_header_json = json.dumps(pack_header, sort_keys=True, default=str)
    lines = _tag_lines(text)
    if len(lines) != len(doc["tags"]):
        lines = []
    batch = _Batch(run_id, str(path), networks)
    for k, tag in enumerate(doc["tags"]):
        line = lines[k] if lines else None
        position = f"line {line} (tag {k + 1})" if line else f"tag {k + 1}"
        if not isinstance(tag, dict):
            batch.refused.add(position, _scalar_text(tag) or "", "a tag is a mapping")
            continue
        merged = {**inherited, **tag}
        raw = json.dumps(tag, sort_keys=True, default=str)
        confidence_level = merged.get("confidence")
        level = None
        if confidence_level is not None:
            if str(confidence_level) in CONFIDENCE_LEVELS:
                level = CONFIDENCE_LEVELS[str(confidence_level)] / 100
            else:
                try:
                    level = float(confidence_level) / 100
                except (TypeError, ValueError):
                    batch.refused.add(position, raw, f"unknown confidence {confidence_level!r}")
                    continue
        extra = {k: v for k, v in merged.items() if k not in _COLUMN_FIELDS}
        context = merged.get("context")
        if isinstance(context, (dict, list)):
            context = json.dumps(context, sort_keys=True)
        elif context is not None:
            context = json.dumps(str(context))  # a JSON string holding the TagPack's context text
        cluster_definer = merged.get("is_cluster_definer")
        batch.add(asset=str(merged.get("currency") or "").strip(), network=merged.get("network"),
                  address=merged.get("address"), label=merged.get("label"), line=line,
                  position=position, raw=raw, source=_scalar_text(merged.get("source")),
                  category=_scalar_text(merged.get("category")), abuse=_scalar_text(merged.get("abuse")),
                  actor=_scalar_text(merged.get("actor")), confidence=level,
                  confidence_level=_scalar_text(confidence_level),
                  is_cluster_definer=None if cluster_definer is None else bool(cluster_definer),
                  context=context, pack=path.stem, pack_header=pack_header_json,
                  tag_extra=json.dumps(extra, sort_keys=True, default=str) if extra else None,
                  is_public=bool(doc.get("is_public", True)))
    return batch


def ingest_tagpacks(store: Store, path: str | Path, chain_map: dict[str, str] | None = None) -> dict[str, int]:
    """Load one GraphSense TagPack (YAML) or every ``*.yaml`` TagPack in a directory tree."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*.yaml") if "actor" not in p.name) if path.is_dir() else [path]
    if not files:
        raise IngestError(str(path), "directory", "no *.yaml TagPacks")
    run = _begin(store, "tagpack", str(path), {"files": [f.name for f in files]})
    # each pack is its own unit: a broken pack is refused (and quarantined), the packs beside it load
    refused: list[IngestError] = []
    batches = []
    try:
        networks = store_networks(store)
        for f in files:
            try:
                batches.append((str(f), _tagpack_batch(f, run.run_id, networks)))
            except IngestError as exc:
                store.quarantine(run.run_id, exc.source, exc.position, None, f"file refused: {exc.reason}")
                refused.append(exc)
        if refused and not batches:
            raise refused[0]
    except IngestError as exc:
        run.fail(exc)
        raise
    summary = _finish(store, batches, run, chain_map)
    if refused:
        first = refused[0]
        raise IngestError(first.source, first.position,
                          f"{first.reason}; {len(refused)} of {len(files)} TagPack(s) refused, the others loaded")
    return summary


def export_tagpacks(store: Store, out_dir: str | Path, pack: str | None = None,
                    creator: str = "moneytrail") -> list[Path]:
    """Write the stored labels as TagPacks, one YAML file per pack, in ``out_dir``.

    Every tag carries its own fields except those all tags of the pack share, which move to the
    header (the TagPack way). Header fields seen on import (title, creator, lastmod, ...) come back
    unchanged, so import -> export -> import stores the same rows.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    where, params = ("WHERE pack = ?", [pack]) if pack else ("", [])
    rows = store.con.execute(
        "SELECT pack, address, label, source, source_asset, source_network, category, abuse, actor, "
        "confidence_level, confidence, is_cluster_definer, context, tag_extra, pack_header, chain "
        f"FROM labels {where} ORDER BY pack, coalesce(source_line, 0), chain, address, label", params
    ).fetchall()
    by_pack: dict[str, list[tuple]] = {}
    for row in rows:
        by_pack.setdefault(row[0] or "labels", []).append(row)
    written = []
    for name, items in by_pack.items():
        header = json.loads(items[0][14]) if items[0][14] else {}
        header.setdefault("title", name)
        header.setdefault("creator", creator)
        tags = []
        for (_, address, label, source, asset, network, category, abuse, actor, level, confidence,
             definer, context, extra, _h, chain) in items:
            tag: dict[str, Any] = {"address": address, "label": label}
            if source is not None:
                tag["source"] = source
            if not _h:
                # not from a TagPack (OFAC lists or XML, CSV): write GraphSense's codes, and name the
                # network of a multi-chain token so the tag cannot be read back onto another chain
                asset = "BTC" if asset in (None, "", "XBT") and chain == "bitcoin" else asset
                if asset in MULTI_CHAIN_ASSETS and network is None:
                    network = _chain_currency(chain)
            tag["currency"] = asset if asset else _chain_currency(chain)
            if network is not None:
                tag["network"] = network
            for key, value in (("category", category), ("abuse", abuse), ("actor", actor)):
                if value is not None:
                    tag[key] = value
            if level is not None:
                tag["confidence"] = level
            elif confidence is not None:
                tag["confidence"] = round(confidence * 100)
            if definer is not None:
                tag["is_cluster_definer"] = bool(definer)
            if context is not None:
                value = json.loads(context)
                tag["context"] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            if extra:
                tag.update(json.loads(extra))
            tags.append(tag)
        for key in GENERIC_TAG_FIELDS:
            values = [t.get(key, _MISSING) for t in tags]
            if values and values[0] is not _MISSING and all(v == values[0] for v in values):
                header[key] = values[0]
                for t in tags:
                    del t[key]
        doc = {**header, "tags": tags}
        path = out / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.yaml"
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        path.write_text(yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100),
                        encoding="utf-8")
        written.append(path)
    return written


_MISSING = object()


def _chain_currency(chain: str) -> str:
    return chains.code_of(chain)


# ---------------------------------------------------------------------------------------------
# CSV


def _csv_batch(path: Path, run_id: int, default_source: str, networks: dict[str, str] | None = None) -> _Batch:
    lines = read_lines(path.read_bytes())
    batch = _Batch(run_id, str(path), networks)
    batch.refused.rows.extend(lines.refused.rows)
    reader = csv.reader(io.StringIO(lines.text, newline=""))
    header = None
    numbers = lines.numbers.tolist()
    for k, fields in enumerate(reader):
        number = numbers[k] if k < len(numbers) else None
        if header is None:
            header = [h.strip().lower() for h in fields]
            missing = {"chain", "address", "label"} - set(header)
            if missing:
                raise IngestError(str(path), f"line {number}", f"CSV header lacks {sorted(missing)}")
            continue
        raw = ",".join(fields)
        if len(fields) != len(header):
            batch.refused.add(f"line {number}", raw, f"{len(fields)} fields, header has {len(header)}")
            continue
        row = dict(zip(header, (f.strip() for f in fields)))
        confidence = row.get("confidence") or None
        level_name = None
        level = None
        if confidence is not None:
            if confidence in CONFIDENCE_LEVELS:
                level_name, level = confidence, CONFIDENCE_LEVELS[confidence] / 100
            else:
                try:
                    level = float(confidence)
                except ValueError:
                    batch.refused.add(f"line {number}", raw, f"confidence {confidence!r} is not a number")
                    continue
                if not 0 <= level <= 1:
                    batch.refused.add(f"line {number}", raw, "confidence must lie in [0, 1]")
                    continue
        # a chain name of the registry (bsc) or a code (BNB); the code is kept as the source asset
        chain = chains.resolve(row["chain"])
        code = row["chain"].strip().upper()
        asset = code if code in chains.CODES else _chain_currency(chain) if chain is not None else row["chain"]
        batch.add(asset=asset, address=row["address"], label=row["label"], line=number,
                  position=f"line {number}", raw=raw,
                  category=row.get("category") or None, source=row.get("source") or default_source,
                  actor=row.get("actor") or None, abuse=row.get("abuse") or None, confidence=level,
                  confidence_level=level_name, pack=path.stem)
    return batch


def ingest_label_csv(store: Store, path: str | Path, chain_map: dict[str, str] | None = None) -> dict[str, int]:
    """Load a simple label CSV (``chain,address,label[,category,source,confidence,actor,abuse]``)."""
    path = Path(path)
    run = _begin(store, "csv", str(path), {})
    try:
        batch = _csv_batch(path, run.run_id, str(path), store_networks(store))
    except IngestError as exc:
        run.fail(exc)
        raise
    return _finish(store, [(str(path), batch)], run, chain_map)


def ingest_labels(store: Store, path: str | Path, kind: str | None = None,
                  chain_map: dict[str, str] | None = None) -> dict[str, int]:
    """Pick the reader by ``kind`` (ofac, tagpack, csv, sdn-xml) or by the path's name.

    ``chain_map`` stores tags filed under one chain under another (``{"ethereum": "sim-evm"}``)."""
    path = Path(path)
    if not path.exists():
        raise IngestError(str(path), "path", "no such file or directory")
    if kind is None:
        if path.suffix.lower() in (".yaml", ".yml") or (path.is_dir() and any(path.rglob("*.yaml"))):
            kind = "tagpack"
        elif path.suffix.lower() == ".csv":
            kind = "csv"
        elif path.suffix.lower() == ".xml":
            kind = "sdn-xml"
        else:
            kind = "ofac"
    if kind == "tagpack":
        return ingest_tagpacks(store, path, chain_map=chain_map)
    if kind == "csv":
        return ingest_label_csv(store, path, chain_map=chain_map)
    if kind == "sdn-xml":
        return ingest_sdn_xml(store, path, chain_map=chain_map)
    if kind == "ofac":
        return ingest_ofac(store, path, chain_map=chain_map)
    raise IngestError(str(path), "kind", f"unknown label format {kind!r} (ofac, tagpack, csv, sdn-xml)")
