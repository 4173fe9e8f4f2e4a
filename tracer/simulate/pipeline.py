"""The order of generation: background Bitcoin economy, ads and the operation, EVM, bank, records, truth."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tracer.simulate import evm as evm_mod
from tracer.simulate import plant_flow
from tracer.simulate import plant_graph
from tracer.simulate.ads import CITIES, ad_rows, fee_schedule, plan_ads, write_ad
from tracer.simulate.bank import Bank, account, cash_out
from tracer.simulate.ledger import FIRST_HEIGHT, Ledger
from tracer.simulate.market import Prices
from tracer.simulate.operation import run_operation
from tracer.simulate.records import label_rows, report_rows, write_tagpack
from tracer.simulate.scripted import Scripted
from tracer.simulate.sources import write_sources
from tracer.simulate.truth import write_truth
from tracer.simulate.wallets import Economy
from tracer.store import Store, graph


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """Independent, reproducible random streams per component (so changing one leaves the others alone)."""
    return np.random.Generator(np.random.Philox(key=[seed, stream]))


def addr_strings(store: Store, ids: list[int] | np.ndarray) -> dict[int, str]:
    ids = np.unique(np.asarray(list(ids), np.int64))
    if ids.size == 0:
        return {}
    store.con.register("_sim_ids", pa.table({"addr": ids}))
    try:
        rows = store.con.execute("SELECT a.addr, a.address FROM _sim_addr a JOIN _sim_ids USING (addr)").fetchall()
    finally:
        store.con.unregister("_sim_ids")
    return {int(a): s for a, s in rows}


def run_world(store: Store, run_id: int, seed: int, cfg: dict[str, Any], truth_path: Path,
              progress: Callable[[str, float], None] | None, sources_dir: Path | None = None,
              ad_fees_known: bool = False) -> tuple[dict[str, int], list[Path], dict[str, str], dt.datetime, Path | None]:
    from tracer.simulate.world import PERIOD_DAYS, START, block_times

    def tell(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    # a world written as sources is a regtest chain: its blocks carry real proof of work only at regtest's
    # difficulty, and the blk ingester claims the chain with the network it reads
    network_name = "mainnet" if sources_dir is None else "regtest"
    store.claim_chain("bitcoin", "utxo", network_name, None, run_id)
    store.claim_chain(evm_mod.CHAIN, "account", "simulated", evm_mod.CHAIN_ID, run_id)
    store.claim_chain("fiat", "fiat", "fiat", None, run_id)
    store.con.execute("SELECT 1").fetchall()  # close claim_chain's open result before Arrow registers
    target = cfg["target"]
    times = block_times(cfg, rng_for(seed, 1))
    if sources_dir is not None:
        times = times.astype("datetime64[s]").astype("datetime64[us]")  # headers hold whole seconds
    prices = Prices(START, PERIOD_DAYS, rng_for(seed, 3))

    # -- Bitcoin: background economy, then ads and the operation on top ----------------------------
    ledger = Ledger(store, seed, network_name)
    econ = Economy(ledger, cfg, rng_for(seed, 2))
    first = econ.genesis(max(1, int(np.ceil(cfg["users"] * 1.8 / 20_000))))
    econ.reserve(econ.exch_hot[0], 2)  # Kestrel's coins that will fund the operation's ad poster
    econ.run(cfg["n_blocks"], cfg["blocks_per_round"], first,
             progress=lambda b, n: tell("bitcoin background", b / n))
    tell("ads and the operation", 0.0)
    arng = rng_for(seed, 4)
    n_bg_ads = int(np.clip(target // 80, 60, 20_000))
    # the messy part of the ads (fee schedule, processor rates, ads paid otherwise or never scraped) has a
    # stream of its own
    messy = rng_for(seed, 9)
    schedule = fee_schedule(messy, START, PERIOD_DAYS)
    authors, ads = plan_ads(arng, seed, START, PERIOD_DAYS, 30, n_bg_ads, max(10, n_bg_ads // 8), schedule, messy)
    scr = Scripted(econ, times, rng_for(seed, 5))
    op = run_operation(scr, econ, prices, authors, ads, rng_for(seed, 6), START, messy)
    # opt-in extra typology instances (--plant N), on a stream of their own: N = 0 changes nothing
    plant, plan, prng = int(cfg.get("plant", 0)), plant_flow.FlowPlan(), plant_flow.rng_of(seed)
    if plant:
        plant_flow.plant_bitcoin(plan, scr, econ, plant, prng)
    scr.release()
    econ.release()  # the coin sets are not needed any more: give their memory back before the joins
    tell("writing Bitcoin tables", 0.0)
    counts = ledger.materialise(run_id, times, None if sources_dir is None else sources_dir / "blocks",
                                stage=lambda name: tell(name, 0.0))
    tell("ads, USDT and bank", 0.0)

    # -- ads ----------------------------------------------------------------------------------------
    printed = addr_strings(store, list(op.victim_print_addr.values()))
    victim_addr = [printed[op.victim_print_addr[f"victim-{k + 1}"]] for k in range(4)]
    op_i = 0
    fee_txids = ledger.txids(tx for tx, _ in op.ad_fees.values()) if ad_fees_known else {}
    for ad in ads:
        a = ad["author"]
        btc = None
        if a.operation:
            if op_i % 5 in (1, 3):
                btc = victim_addr[op_i % 4]
            op_i += 1
        ad["addresses"] = [btc] if btc else []
        ad["title"], ad["body"] = write_ad(arng, a, ad["city"], ad["rate"], ad["phones"][0], btc)
        if ad_fees_known and ad["ad_id"] in op.ad_fees:
            ad["fee_txid"] = fee_txids[op.ad_fees[ad["ad_id"]][0]]
    # a scrape sees the ad, not its payment: fee_txid stays unknown unless asked for (the truth has it);
    # paid ads the scrape missed are not written at all
    counts["ads"] = store.append("ads", ad_rows([ad for ad in ads if ad["scraped"]], run_id))

    # -- USDT on the simulated EVM chain ------------------------------------------------------------
    erng = rng_for(seed, 7)
    ew = evm_mod.EvmWorld(seed, START, PERIOD_DAYS, max(100, target // 100), cfg["exchanges"], erng)
    ew.background(max(500, target // 20), 100)
    dep_sat = sum(d["value"] for d in op.exchange_deposits)
    last_dep = max(d["block"] for d in op.exchange_deposits)
    t_dep = times[last_dep].astype("datetime64[s]")
    btc_usd = float(prices.usd("BTC", t_dep))
    usd = dep_sat / 1e8 * btc_usd * 0.99  # the exchange's trading fee
    usdt = int(usd * 1e6) // 10_000 * 10_000
    e1, e2, e3 = (ew.new_account(f"operation-1 evm-{k}", "actor") for k in (1, 2, 3))
    lumen_dep = ew.new_account("Lumen Markets deposit for operation-1", "exchange_deposit")
    t = t_dep + np.timedelta64(2 * 3600, "s")
    a2 = usdt * 6 // 10 // 10_000 * 10_000
    a3 = usdt - a2
    ew.add(ew.hot[0], e1, usdt, t, tag=1)
    ew.add([e1, e1], [e2, e3], [a2, a3], [t + 1800, t + 2400], tag=2)
    ew.add([e2, e3], [lumen_dep, lumen_dep], [a2, a3], [t + 3 * 3600, t + 3 * 3600 + 1800], tag=3)
    ew.add([lumen_dep, lumen_dep], [ew.hot[2], ew.hot[2]], [a2, a3], [t + 3 * 3600 + 600, t + 3 * 3600 + 2400], tag=4)
    if plant:
        plant_flow.plant_evm(plan, ew, plant, prng, START, PERIOD_DAYS)
    evm_tables = ew.tables(run_id)
    # the simulated chain forks Ethereum: its Tether contract is valued as USDT (a token that only
    # calls itself USDT would not be)
    graph.set_token_price_asset(store, evm_mod.CHAIN, evm_mod.USDT, "USDT", "simulate: the simulated chain's Tether contract")
    for name in ("blocks", "transactions", "logs", "transfers", "evm_tokens"):
        n = store.append(name, evm_tables[name])
        counts[f"sim-evm {name}"] = n
    evm_addr = ew.address_strings()
    tags_sorted = np.concatenate(ew.tag)[ew.order]
    evm_txids = {k: ew.txid_sorted[tags_sorted == k].tolist() for k in (1, 2, 3, 4)}
    tell("bank", 0.0)

    # -- bank ---------------------------------------------------------------------------------------
    brng = rng_for(seed, 8)
    bank = Bank(seed, START, PERIOD_DAYS, brng)
    bg_accounts = bank.background(max(300, target // 40), max(2_000, target // 4))
    lumen_account = account(seed, "meridian", "lumen-markets-operating")
    fiat = cash_out(bank, brng, lumen_account, usdt / 1e6 * 0.995, t + 5 * 3600, seed)
    if plant:
        plant_flow.plant_bank(plan, bank, plant, prng, seed, START, PERIOD_DAYS)
    planted = plant_graph.plant(bank, seed, cfg.get("plant", 0), bg_accounts)  # opt-in: --plant N
    if planted:  # the operation's route exchange -> mules -> funnel is a scatter-gather too: label it so
        planted.append(plant_graph.route_pattern(bank, fiat, lumen_account))
    ftable, forder = bank.table(run_id)
    planted = plant_graph.transfer_ids(planted, bank, ftable["txid"].to_pylist(), forder)
    counts["fiat transfers"] = store.append("transfers", ftable)
    sizes = np.array([len(r["from"]) for r in bank.rows])
    offsets = np.cumsum(sizes) - sizes
    inv = np.empty_like(forder)
    inv[forder] = np.arange(forder.size)
    txid_of_row = ftable["txid"].to_pylist()
    fiat_id = lambda g: txid_of_row[int(inv[offsets[g]])]  # noqa: E731

    tell("prices, labels, reports, truth", 0.0)
    # -- prices ---------------------------------------------------------------------------------------
    counts["prices"] = store.append("prices", prices.table(run_id))

    # -- labels (TagPack) -----------------------------------------------------------------------------
    service_ids = [int(x) for x in np.concatenate(econ.hot_addrs)] + [int(x) for x in econ.miner_addrs] \
        + [int(x) for x in econ.wasabi_addrs] + [int(x) for x in econ.whirlpool_addrs] \
        + [int(x) for ids in op.site_addrs.values() for x in ids]
    deposit_sample = {}
    for e, dep in enumerate(econ.exch_dep):
        rows = store.con.execute(
            "SELECT DISTINCT o.addr FROM _sim_out o WHERE o.owner = ? AND o.addr >= 0 ORDER BY o.addr LIMIT 25",
            [int(dep)]).fetchall()
        deposit_sample[e] = [int(r[0]) for r in rows]
    names = addr_strings(store, service_ids + [a for v in deposit_sample.values() for a in v] + [op.deposit_addr])
    tags = []
    for e, name in enumerate(cfg["exchanges"]):
        slug = cfg["exchange_slugs"][e]
        for a in econ.hot_addrs[e]:
            tags.append({"address": names[int(a)], "currency": "BTC", "label": f"{name} hot wallet",
                         "category": "exchange", "actor": f"sim-{slug}", "confidence": "service_data"})
        for a in deposit_sample[e]:
            tags.append({"address": names[a], "currency": "BTC", "label": f"{name} deposit address",
                         "category": "exchange", "actor": f"sim-{slug}", "confidence": "forensic"})
        tags.append({"address": evm_addr[ew.hot[e]], "currency": "ETH", "label": f"{name} hot wallet",
                     "category": "exchange", "actor": f"sim-{slug}", "confidence": "service_data"})
        if e == 2:  # the exchange publishes the bank account it pays fiat withdrawals from
            tags.append({"address": lumen_account, "currency": "fiat", "label": f"{name} bank account",
                         "category": "exchange", "actor": f"sim-{slug}", "confidence": "service_data"})
    for m, name in enumerate(cfg["miners"]):
        tags.append({"address": names[int(econ.miner_addrs[m])], "currency": "BTC", "label": f"{name} payout",
                     "category": "miner", "confidence": "ledger_immanent"})
    for a in econ.wasabi_addrs:
        tags.append({"address": names[int(a)], "currency": "BTC", "label": "Wasabi-style coordinator fee",
                     "category": "coinjoin", "actor": "sim-wasabi-coordinator", "confidence": "forensic"})
    for a in econ.whirlpool_addrs:
        tags.append({"address": names[int(a)], "currency": "BTC", "label": "Whirlpool-style coordinator fee",
                     "category": "coinjoin", "actor": "sim-whirlpool-coordinator", "confidence": "forensic"})
    for site, ids in op.site_addrs.items():
        for a in ids:
            tags.append({"address": names[int(a)], "currency": "BTC", "label": f"{site} ad payments",
                         "category": "shop", "actor": f"sim-{site.split('.')[0]}", "confidence": "service_data"})
    stem = truth_path.with_suffix("")
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    tagpack = write_tagpack(Path(f"{stem}.tagpack.yaml"), seed, START.date(), tags)
    counts["labels"] = store.append("labels", label_rows(tagpack, run_id, set(evm_addr), evm_mod.CHAIN,
                                                         {"bitcoin": network_name}))

    # -- reports ----------------------------------------------------------------------------------------
    op_phones = sorted({p for a in authors if a.operation for p in a.phones})
    op_ads = [ad for ad in ads if ad["author"].operation]
    dep_str = names[op.deposit_addr]
    mules = fiat["accounts"]["mules"]
    funnel = fiat["accounts"]["funnel"]
    d_end = (t + 86400).astype("datetime64[us]").astype(dt.datetime)
    records = [
        {"report_id": f"SIM-{seed}-SAR-0001", "kind": "SAR", "filer": "Kestrel Exchange (simulated) compliance",
         "filed_at": d_end, "subjects": ["Kestrel customer holding deposit address " + dep_str],
         "identifiers": {"bitcoin": [dep_str], "ethereum": [evm_addr[e1]]},
         "amount": round(usd, 2),
         "narrative": (
             f"HUMAN TRAFFICKING FIN-2020-A008. Kestrel Exchange reports deposits to {dep_str} totalling "
             f"{dep_sat / 1e8:.8f} BTC that reached the customer through a CoinJoin and a peeling chain. "
             f"The customer sold them for USDT and withdrew {usdt / 1e6:,.2f} USDT to {evm_addr[e1]} the same day.")},
        {"report_id": f"SIM-{seed}-SAR-0002", "kind": "SAR", "filer": "Meridian Bank (simulated) BSA office",
         "filed_at": d_end + dt.timedelta(days=3), "subjects": ["account holder of " + funnel, *mules],
         "identifiers": {"account": [funnel, *mules], "phone": [op_phones[0]]},
         "amount": round(usd, 2),
         "narrative": (
             f"HUMAN TRAFFICKING FIN-2020-A008. Account {funnel} received cash deposits just under 10,000 USD "
             f"in several cities and transfers from three individuals ({', '.join(mules)}) who had received "
             f"wires from a crypto exchange, then wired the funds out within days. The phone on file, "
             f"{op_phones[0]}, appears in escort advertisements.")},
        {"report_id": f"SIM-{seed}-TIP-0001", "kind": "tip", "filer": "Anti-trafficking hotline (simulated)",
         "filed_at": d_end - dt.timedelta(days=10), "subjects": ["unknown advertiser"],
         "identifiers": {"phone": op_phones[1:]},
         "amount": None,
         "narrative": (
             f"Caller reports ads {', '.join(ad['ad_id'] for ad in op_ads[:4])} moving between "
             f"{', '.join(sorted({CITIES[ad['city']][0] for ad in op_ads}))} with the same photos; "
             f"numbers {', '.join(op_phones)}.")},
    ]
    rep, idents = report_rows(records, run_id, network_name)
    counts["reports"] = store.append("reports", rep)
    counts["report_identifiers"] = store.append("report_identifiers", idents)

    # -- ground truth -----------------------------------------------------------------------------------
    btc_names = addr_strings(store, [a for p in plan.bitcoin for a in p["addrs"]])
    plant_txids = ledger.txids(t for p in plan.bitcoin for t in p["txs"])  # real hashes in a regtest world
    planted_flow = plant_flow.truth_patterns(
        plan, plant_txids.__getitem__, lambda a: btc_names[int(a)],
        lambda tag: ew.txid_sorted[tags_sorted == tag].tolist(), lambda a: evm_addr[a], fiat_id)
    files, patterns = write_truth(
        store, truth_path, seed=seed, run_id=run_id, cfg=cfg, econ=econ, scr=scr, op=op, authors=authors, ads=ads,
        evm={"addresses": evm_addr, "world": ew, "txids": evm_txids, "op": {"evm-1": e1, "evm-2": e2, "evm-3": e3,
                                                                          "lumen-deposit": lumen_dep},
             "usdt": usdt},
        fiat={"accounts": fiat["accounts"], "lumen": lumen_account,
              "structuring": [fiat_id(g) for g in fiat["structuring"]],
              "funnel": [fiat_id(g) for g in fiat["funnel"]], "cycle": [fiat_id(g) for g in fiat["cycle"]]},
        reports=[r["report_id"] for r in records], tagpack=tagpack, schedule=schedule, first_height=FIRST_HEIGHT,
        last_height=FIRST_HEIGHT + len(times) - 1, extra_patterns=planted_flow + planted,
    )
    manifest = None
    if sources_dir is not None:
        tell("sources", 0.0)
        manifest = write_sources(store, run_id, seed, sources_dir, tagpack)
    ledger.drop_staging()
    tell("done", 1.0)
    end = times[-1].astype("datetime64[us]").astype(dt.datetime)
    return counts, [tagpack, *files], patterns, end, manifest
