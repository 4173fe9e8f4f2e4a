"""The ground truth of a simulated world: a JSON file and two Parquet companions beside it.

``<truth>.json`` names every actor (with its addresses, accounts, phones, ads) and every planted pattern
with its members (txids, addresses, ad ids, account ids, fiat transfer ids, EVM transaction hashes).
``<truth>.addresses.parquet`` maps *every* simulated address (Bitcoin and sim-evm) to its owner wallet
and its controlling entity — the answer key for address clustering. ``<truth>.transactions.parquet``
gives every Bitcoin transaction's kind (payment, consolidation, exchange sweep, CoinJoin, ...) and
owner — the answer key for change, CoinJoin and typology detectors. Fiat ground truth stays where the
AML data sets keep it: ``transfers.is_laundering``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tracer.simulate.wallets import (
    ACTOR,
    COORDINATOR,
    EXCH_DEPOSIT,
    EXCH_HOT,
    MINER,
    OWNER_KIND_NAMES,
    SERVICE,
    TX_KIND_NAMES,
    USER,
)
from tracer.store import Store

FORMAT = "moneytrail-simulate-truth/1"


def _owner_table(econ: Any, cfg: dict) -> pa.Table:
    o = econ.owners
    n = len(o.kind)
    names, entities = [], []
    slugs = cfg["exchange_slugs"]
    for i in range(n):
        k = int(o.kind[i])
        if k == USER:
            names.append(f"user-{i}")
            entities.append(f"user-{i}")
            continue
        names.append(o.names[i])
        e = int(o.entity[i])
        if k in (EXCH_HOT, EXCH_DEPOSIT):
            entities.append(f"exchange:{slugs[e]}")
        elif k == MINER:
            entities.append(f"miner:{cfg['miners'][e]}")
        elif k == COORDINATOR:
            entities.append("coordinator:" + ("wasabi" if e == 0 else "whirlpool"))
        elif k == SERVICE:
            entities.append("site:" + o.names[i].split(" ")[0])
        elif k == ACTOR:
            entities.append("operation-1")
        else:
            entities.append(o.names[i])
    return pa.table({"owner": pa.array(np.arange(n), pa.int32()), "owner_name": names,
                     "owner_kind": [OWNER_KIND_NAMES[int(k)] for k in o.kind], "entity": entities})


def write_truth(store: Store, truth_path: Path, *, seed: int, run_id: int, cfg: dict, econ: Any, scr: Any, op: Any,
                authors: list, ads: list[dict], evm: dict, fiat: dict, reports: list[str], tagpack: Path,
                first_height: int, last_height: int, schedule: list[dict] | None = None,
                extra_patterns: list[dict] | None = None
                ) -> tuple[list[Path], dict[str, str]]:
    from tracer.simulate.pipeline import addr_strings

    con = store.con
    stem = truth_path.with_suffix("")
    addr_file = Path(f"{stem}.addresses.parquet")
    tx_file = Path(f"{stem}.transactions.parquet")
    owners = _owner_table(econ, cfg)
    ew = evm["world"]
    evm_addr = evm["addresses"]
    op_evm = set(evm["op"].values())
    evm_entity = []
    for i, kind in enumerate(ew.kind):
        if i in op_evm and kind == "actor":
            evm_entity.append("operation-1")
        elif kind == "exchange_hot":
            evm_entity.append(f"exchange:{cfg['exchange_slugs'][ew.hot.index(i)]}")
        elif kind == "exchange_deposit":
            ex = ew.deposit_owner.get(i, 2)  # the operation's deposit address is at Lumen
            evm_entity.append(f"exchange:{cfg['exchange_slugs'][ex]}")
        else:
            evm_entity.append(ew.labels[i] if kind != "user" else ew.labels[i])
    evm_owners = pa.table({"address": evm_addr, "owner_name": ew.labels, "owner_kind": ew.kind, "entity": evm_entity})
    roles = pa.table({"tx": pa.array([t["tx"] for t in scr.txs], pa.int64()), "role": [t["role"] for t in scr.txs]})
    kinds = pa.table({"kind": pa.array(np.arange(len(TX_KIND_NAMES)), pa.int16()), "kind_name": TX_KIND_NAMES})
    for name, table in (("_sim_owners", owners), ("_sim_evm_owners", evm_owners), ("_sim_roles", roles),
                        ("_sim_kinds", kinds)):
        con.register(name, table)
    try:
        con.execute(
            f"""COPY (
              SELECT 'bitcoin' AS chain, a.address, ow.owner_name AS owner, ow.owner_kind, ow.entity
              FROM _sim_addr a JOIN _sim_first USING (addr) JOIN _sim_owners ow ON ow.owner = a.owner
              UNION ALL
              SELECT 'sim-evm', address, owner_name, owner_kind, entity FROM _sim_evm_owners
              ORDER BY chain, address) TO '{addr_file}' (FORMAT parquet)"""
        )
        con.execute(
            f"""COPY (
              SELECT 'bitcoin' AS chain, t.txid, {first_height} + t.block AS block_height, t.position,
                     k.kind_name AS kind, ow.owner_name AS owner, ow.entity, r.role
              FROM _sim_txid t JOIN _sim_kinds k ON k.kind = t.kind
              LEFT JOIN _sim_owners ow ON ow.owner = t.owner LEFT JOIN _sim_roles r ON r.tx = t.tx
              ORDER BY t.block, t.position) TO '{tx_file}' (FORMAT parquet)"""
        )
        kind_counts = dict(con.execute(
            "SELECT k.kind_name, count(*) FROM _sim_tx t JOIN _sim_kinds k ON k.kind = t.kind GROUP BY 1 ORDER BY 1"
        ).fetchall())
        op_owner_ids = sorted(op.owners.values())
        con.register("_sim_op_owners", pa.table({"owner": pa.array(op_owner_ids, pa.int32())}))
        owned = con.execute(
            "SELECT a.owner, a.address FROM _sim_addr a JOIN _sim_first USING (addr) "
            "JOIN _sim_op_owners USING (owner) ORDER BY a.owner, a.address").fetchall()
        con.unregister("_sim_op_owners")
    finally:
        for name in ("_sim_owners", "_sim_evm_owners", "_sim_roles", "_sim_kinds"):
            con.unregister(name)
    by_owner: dict[int, list[str]] = {}
    for ow, address in owned:
        by_owner.setdefault(int(ow), []).append(address)

    all_addr_ids = [a for p in op.patterns for a in p.get("addrs", [])] + [op.deposit_addr]
    all_addr_ids += [int(a) for a in np.concatenate(econ.hot_addrs)]
    strings = addr_strings(store, all_addr_ids)
    txids = scr.led.txids([t for p in op.patterns for t in p["txs"]] + [tx for tx, _ in op.ad_fees.values()])
    txid = lambda tx: txids[int(tx)]  # noqa: E731

    actors: list[dict] = []
    for e, name in enumerate(cfg["exchanges"]):
        actors.append({
            "id": f"exchange:{cfg['exchange_slugs'][e]}", "kind": "exchange", "name": name,
            "bitcoin": {"hot_addresses": [strings[int(a)] for a in econ.hot_addrs[e]]},
            "sim-evm": {"hot_wallet": evm_addr[ew.hot[e]]},
            **({"bank_account": fiat["lumen"]} if e == 2 else {}),
        })
    for label, owner in op.owners.items():
        kind = "ad_site" if label.startswith("site:") else "trafficking_operation_member"
        entry = {"id": label, "kind": kind, "bitcoin": {"addresses": by_owner.get(owner, [])}}
        if kind == "ad_site":
            # a processor that takes each payment on a fresh address and sweeps it into these labelled ones
            entry["sweeps_receiving_addresses"] = label == f"site:{op.sweeping_site}"
        if label.startswith("operation-1:victim"):
            entry["controlled_by"] = "operation-1:controller"
            entry["bitcoin"]["printed_in_ads"] = strings.get(op.victim_print_addr[label.split(":")[1]]) \
                if op.victim_print_addr[label.split(":")[1]] in strings else None
        if label == "operation-1:controller":
            entry["bitcoin"]["exchange_deposit_address"] = strings[op.deposit_addr]
            entry["sim-evm"] = {"addresses": [evm_addr[evm["op"][k]] for k in ("evm-1", "evm-2", "evm-3")],
                                "exchange_deposit_address": evm_addr[evm["op"]["lumen-deposit"]]}
            entry["bank_accounts"] = {k: fiat["accounts"][k] for k in ("mules", "funnel", "shells")}
        actors.append(entry)
    actors.append({"id": "operation-1:payee", "kind": "merchant", "bank_account": fiat["accounts"]["dealer"]})
    for a in authors:
        actors.append({"id": a.author_id, "kind": "ad_author", "operation": a.operation, "phones": a.phones,
                       "emails": a.emails, "ads": a.ads, "image_hashes": a.images})
    for name in cfg["miners"]:
        actors.append({"id": f"miner:{name}", "kind": "miner"})
    actors += [{"id": "coordinator:wasabi", "kind": "coinjoin_coordinator"},
               {"id": "coordinator:whirlpool", "kind": "coinjoin_coordinator"}]

    patterns: list[dict] = []
    for p in op.patterns:
        entry = {"id": p["id"], "type": p["pattern"], "chain": "bitcoin", "actor": p.get("actor", "operation-1"),
                 "txids": [txid(t) for t in p["txs"]], "addresses": [strings[a] for a in p.get("addrs", [])]}
        if "ads" in p:
            entry["ads"] = p["ads"]
        if "participants" in p:
            entry["participants"] = p["participants"]
        patterns.append(entry)
    op_ads = [ad for ad in ads if ad["author"].operation]
    patterns.append({
        "id": "operation-1/ads", "type": "ad_author_linking", "chain": "ads", "actor": "operation-1",
        "ads": [ad["ad_id"] for ad in op_ads], "phones": sorted({p for ad in op_ads for p in ad["phones"]}),
        "authors": sorted({ad["author"].author_id for ad in op_ads}),
        "ad_fee_txids": {ad["ad_id"]: txid(op.ad_fees[ad["ad_id"]][0]) for ad in op_ads if ad["ad_id"] in op.ad_fees},
    })
    # links of the ads the store holds; paid ads the scrape missed and ads paid by other means apart
    scraped = {ad["ad_id"] for ad in ads if ad.get("scraped", True)}
    patterns.append({"id": "operation-1/ad-payments", "type": "ad_payment_linking", "chain": "bitcoin",
                     "actor": "all", "links": {ad_id: {"txid": txid(tx), "fee_sat": sat}
                                               for ad_id, (tx, sat) in sorted(op.ad_fees.items()) if ad_id in scraped},
                     "unscraped_paid_ads": {ad_id: {"txid": txid(tx), "fee_sat": sat}
                                            for ad_id, (tx, sat) in sorted(op.ad_fees.items()) if ad_id not in scraped},
                     "paid_otherwise": sorted(ad["ad_id"] for ad in ads if ad.get("paid_with", "bitcoin") != "bitcoin"),
                     "sweeping_site": op.sweeping_site,
                     "fee_schedule": Path(f"{stem}.fees.csv").name if schedule is not None else None})
    patterns.append({"id": "operation-1/usdt-layering", "type": "layering", "chain": "sim-evm", "actor": "operation-1",
                     "txids": evm["txids"][1] + evm["txids"][2] + evm["txids"][3],
                     "addresses": [evm_addr[evm["op"][k]] for k in ("evm-1", "evm-2", "evm-3")],
                     "amount_usdt_base_units": evm["usdt"]})
    patterns.append({"id": "operation-1/evm-deposit-forwarding", "type": "deposit_address_forwarding",
                     "chain": "sim-evm", "actor": "exchange:lumen", "txids": evm["txids"][4],
                     "addresses": [evm_addr[evm["op"]["lumen-deposit"]], evm_addr[ew.hot[2]]]})
    for key, typ in (("structuring", "structuring"), ("funnel", "funnel_account"), ("cycle", "cycle")):
        patterns.append({"id": f"operation-1/{key}", "type": typ, "chain": "fiat", "actor": "operation-1",
                         "transfer_ids": fiat[key],
                         "accounts": sorted({fiat["accounts"]["funnel"], *fiat["accounts"]["mules"]}
                                            if key != "cycle" else set(fiat["accounts"]["shells"]))})
    patterns += extra_patterns or []  # planted with --plant (tracer.simulate.plant_flow, plant_graph)
    truth = {
        "format": FORMAT, "seed": seed, "run_id": run_id, "target_transactions": cfg["target"],
        "chains": {"bitcoin": {"network": "mainnet", "first_height": first_height, "last_height": last_height},
                   "sim-evm": {"chain_id": 1337, "network": "simulated", "token": "USDT"},
                   "fiat": {"currency": "USD"}},
        "bitcoin_transaction_kinds": kind_counts,
        "actors": actors, "patterns": patterns, "reports": reports,
        "companions": {"addresses": addr_file.name, "transactions": tx_file.name, "tagpack": tagpack.name},
    }
    files = [truth_path, addr_file, tx_file]
    if schedule is not None:  # the sites' fee schedule, as `tracer ads link --fees` reads it
        fees = Path(f"{stem}.fees.csv")
        lines = ["site,location,fee_usd,valid_from,valid_to"]
        for row in schedule:
            when = [row[k].strftime("%Y-%m-%dT%H:%M:%SZ") if row[k] else "" for k in ("valid_from", "valid_to")]
            location = f'"{row["location"]}"' if "," in row["location"] else row["location"]
            lines.append(f"{row['site']},{location},{row['fee_usd']:g},{when[0]},{when[1]}")
        fees.write_text("\n".join(lines) + "\n", encoding="utf-8")
        truth["companions"]["fee_schedule"] = fees.name
        files.append(fees)
    truth_path.write_text(json.dumps(truth, indent=1, sort_keys=False, default=str), encoding="utf-8")
    return files, {p["id"]: p["type"] for p in patterns}
