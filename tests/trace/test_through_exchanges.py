"""Tracing through exchanges labelled on several chains: from the victims' Bitcoin wallets, across Kestrel
(Bitcoin → USDT), the USDT layering, Lumen (USDT → bank wires) to the mule and funnel accounts — checked
against the simulator's truth files, on several seeds."""

from __future__ import annotations

import json

import pytest

import tracer
from tracer.simulate import simulate


@pytest.fixture(scope="module", params=[7, 11, 23])
def world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"cross{request.param}")
    ws = tracer.open(folder / "w.duckdb")
    summary = simulate(ws.store, seed=request.param, scale="test", truth_path=folder / "truth.json")
    truth = json.loads(summary.truth_path.read_text())
    yield ws, {a["id"]: a for a in truth["actors"]}, {p["id"]: p for p in truth["patterns"]}
    ws.close()


def planted_hops(patterns: dict) -> int:
    """The hops from a victim's wallet to the mules' accounts, counted on the truth's patterns."""
    peels = patterns["operation-1/peeling-chain"]["txids"]  # the consolidation, then the peels
    deposits = patterns["operation-1/kestrel-deposits"]["txids"]  # the deposits, then Kestrel's sweep
    first_deposit = min(peels.index(t) for t in deposits[:-1] if t in peels)
    return (1                   # the controller collects the victims' coins
            + 1 + first_deposit  # consolidation, then peels until the first pays Kestrel's deposit address
            + 1                  # Kestrel sweeps the deposit address into its hot wallet
            + 1                  # Kestrel pays USDT out to evm-1 (inferred crossing)
            + 2                  # evm-1 → evm-2/evm-3 → the Lumen deposit address
            + 1                  # Lumen forwards the deposit to its hot wallet
            + 1)                 # Lumen wires the balance to the mules (inferred crossing)


def test_victims_money_reaches_the_mules_and_the_funnel_across_bitcoin_usdt_and_bank(world):
    ws, actors, patterns = world
    victim = actors["operation-1:victim-1"]["bitcoin"]["addresses"][0]
    controller = actors["operation-1:controller"]
    mules, funnel = controller["bank_accounts"]["mules"], controller["bank_accounts"]["funnel"]
    n = planted_hops(patterns)
    t = ws.trace([victim], hops=n + 1, stop_at=("exchange",), through_exchanges=True).as_json()
    hop = {node["id"]: node["hop"] for node in t["nodes"]}
    assert [hop.get(m) for m in mules] == [n, n, n]
    assert hop.get(funnel) == n + 1
    assert [hop.get(a) for a in controller["sim-evm"]["addresses"]] == [n - 4, n - 3, n - 3]
    kestrel, lumen = actors["exchange:kestrel"], actors["exchange:lumen"]
    steps = [e for e in t["edges"] if e["kind"] == "inferred"]
    assert [(e["hop"], e["src"] in kestrel["bitcoin"]["hot_addresses"], e["dst"]) for e in steps] == [
        (n - 4, True, kestrel["sim-evm"]["hot_wallet"]), (n, False, lumen["bank_account"])]
    assert steps[1]["src"] == lumen["sim-evm"]["hot_wallet"]
    for e in steps:
        b = e["basis"]
        assert (b["tolerance"], e["flow_id"], e["amount"]) == (0.03, None, None)
        assert abs(b["usd_difference"]) <= 0.03 * b["arrival_usd"]
        assert round(b["withdrawal_usd"] - b["arrival_usd"], 2) == pytest.approx(b["usd_difference"], abs=0.011)
    assert [(s["basis"]["actor"], s["basis"]["from_chain"], s["basis"]["to_chain"]) for s in steps] == [
        (f"sim-{kestrel['id'].split(':')[1]}", "bitcoin", "sim-evm"), (f"sim-{lumen['id'].split(':')[1]}", "sim-evm", "fiat")]
    # Kestrel's step: the one USDT withdrawal to evm-1; Lumen's: the structured wires, every one to a mule
    by_id = {e["flow_id"]: e for e in t["edges"] if e["flow_id"] is not None}
    first, second = steps[0]["basis"], steps[1]["basis"]
    assert first["rule"] == "one withdrawal"
    assert [by_id[f]["dst"] for f in first["withdrawal_flow_ids"]] == [controller["sim-evm"]["addresses"][0]]
    wires = [by_id[f] for f in second["withdrawal_flow_ids"]]
    assert second["rule"] == "the first withdrawals after the arrival"
    assert {w["dst"] for w in wires} == set(mules) and all(w["hop"] == n for w in wires)
    assert all(by_id[f]["dst"] in lumen["sim-evm"]["hot_wallet"] for f in second["arrival_flow_ids"])


def test_without_the_option_the_trace_stays_on_bitcoin(world):
    ws, actors, patterns = world
    victim = actors["operation-1:victim-1"]["bitcoin"]["addresses"][0]
    t = ws.trace([victim], hops=planted_hops(patterns) + 1, stop_at=("exchange",)).as_json()
    assert {n["chain"] for n in t["nodes"]} == {"bitcoin"}
    assert not [e for e in t["edges"] if e["kind"] == "inferred"]


def test_a_tolerance_of_zero_infers_nothing(world):
    ws, actors, patterns = world
    victim = actors["operation-1:victim-1"]["bitcoin"]["addresses"][0]
    t = ws.trace([victim], hops=planted_hops(patterns) + 1, stop_at=("exchange",), through_exchanges=True,
                 exchange_tolerance=0.0).as_json()
    assert not [e for e in t["edges"] if e["kind"] == "inferred"]
    assert {n["chain"] for n in t["nodes"]} == {"bitcoin"}


def test_exposure_of_the_operation_shows_the_categories_planted_around_it(world):
    ws, actors, patterns = world
    # the ad poster: funded straight from Kestrel's hot wallet, pays the ad sites (truth: operation-1/funding,
    # operation-1/ad-fees)
    poster = ws.exposure(actors["operation-1:ad-poster"]["bitcoin"]["addresses"], hops=3).as_json()
    cats = {c["category"]: c for c in poster["categories"]}
    assert cats["exchange"]["direct_received"] > 0 and cats["shop"]["direct_sent"] > 0
    sites = {f"{a['id'][5:]} ad payments (simulate)" for a in actors.values() if a["id"].startswith("site:")}
    assert set(cats["shop"]["labels"]) <= sites and poster["risk"]["level"] == "low"
    # the controller: one coin goes through a Wasabi-shaped CoinJoin whose coordinator fee is labelled, and the
    # peels are deposited at Kestrel (truth: operation-1/coinjoin, operation-1/kestrel-deposits)
    assert patterns["operation-1/coinjoin"]["type"] == "coinjoin"
    controller = ws.exposure(actors["operation-1:controller"]["bitcoin"]["addresses"], hops=3).as_json()
    cats = {c["category"]: c for c in controller["categories"]}
    assert cats["coinjoin"]["direct_sent"] > 0 and cats["exchange"]["direct_sent"] + cats["exchange"]["indirect_sent"] > 0
    assert controller["risk"]["level"] == "high"
    assert controller["risk"]["rule"].startswith("direct exposure to coinjoin (")
    for result in (poster, controller):  # shares of one subject's flow: never more than all of it
        for side in ("received", "sent"):
            assert sum(c[f"share_{side}"] for c in result["categories"]) <= 1 + 1e-9


def test_backward_from_the_mules_crosses_both_exchanges_back_to_the_victims(world):
    """The same route walked back: the mules' wires come from Lumen's bank account, whose deposit on the
    USDT chain (the operation's Lumen deposit address) is inferred from them; the USDT came from Kestrel's
    hot wallet, whose deposit on Bitcoin (the operation's deposit address, swept with other customers'
    coins) is inferred from that withdrawal; then back along the peels to every victim."""
    ws, actors, patterns = world
    controller = actors["operation-1:controller"]
    mules = controller["bank_accounts"]["mules"]
    n = planted_hops(patterns)
    t = ws.trace(mules, direction="backward", hops=n, stop_at=("exchange",), through_exchanges=True).as_json()
    hop = {node["id"]: node["hop"] for node in t["nodes"]}
    kestrel, lumen = actors["exchange:kestrel"], actors["exchange:lumen"]
    deposit = patterns["operation-1/kestrel-deposits"]["addresses"]
    assert [hop.get(lumen["bank_account"]), hop.get(lumen["sim-evm"]["hot_wallet"])] == [1, 2]
    assert [hop.get(a) for a in controller["sim-evm"]["addresses"]] == [4, 3, 3]
    assert [hop.get(kestrel["sim-evm"]["hot_wallet"]), *(hop.get(a) for a in deposit)] == [5, 6]
    victims = [a for a in actors.values() if a["id"].startswith("operation-1:victim-")]
    assert len(victims) == 4 and {hop.get(a["bitcoin"]["addresses"][0]) for a in victims} == {n}
    steps = sorted((e for e in t["edges"] if e["kind"] == "inferred"), key=lambda e: e["hop"])[:2]
    assert [(e["hop"], e["src"], e["dst"]) for e in steps] == [
        (2, lumen["sim-evm"]["hot_wallet"], lumen["bank_account"]), (6, steps[1]["src"], kestrel["sim-evm"]["hot_wallet"])]
    assert steps[1]["src"] in kestrel["bitcoin"]["hot_addresses"]
    assert [(s["basis"]["actor"], s["basis"]["from_chain"], s["basis"]["to_chain"], s["basis"]["rule"]) for s in steps] == [
        (f"sim-{lumen['id'].split(':')[1]}", "sim-evm", "fiat", "one depositor"),
        (f"sim-{kestrel['id'].split(':')[1]}", "bitcoin", "sim-evm", "one depositor")]
    by_id = {e["flow_id"]: e for e in t["edges"] if e["flow_id"] is not None}
    lumen_step, kestrel_step = steps[0]["basis"], steps[1]["basis"]
    # withdrawals: the structured wires to the mules; the one USDT payment to evm-1
    assert {by_id[f]["dst"] for f in lumen_step["withdrawal_flow_ids"]} == set(mules)
    assert [by_id[f]["dst"] for f in kestrel_step["withdrawal_flow_ids"]] == [controller["sim-evm"]["addresses"][0]]
    # deposits: the Lumen deposit address's two forwards into the hot wallet; Kestrel's sweep into its hot wallet
    assert len(lumen_step["arrival_flow_ids"]) == 2
    assert {by_id[f]["dst"] for f in lumen_step["arrival_flow_ids"]} == {lumen["sim-evm"]["hot_wallet"]}
    assert [by_id[f]["src"] for f in kestrel_step["arrival_flow_ids"]] == [
        "tx:" + patterns["operation-1/kestrel-deposits"]["txids"][-1]]
    for e in steps:
        b = e["basis"]
        assert (b["tolerance"], e["flow_id"], e["amount"], e["usd"]) == (0.03, None, None, b["arrival_usd"])
        assert abs(b["usd_difference"]) <= 0.03 * b["arrival_usd"]
        assert b["window"][0] < e["time"] < b["window"][1]


def test_both_ways_from_the_first_usdt_account_crosses_kestrel_back_and_lumen_forward(world):
    ws, actors, patterns = world
    controller = actors["operation-1:controller"]
    evm1 = controller["sim-evm"]["addresses"][0]
    kestrel, lumen = actors["exchange:kestrel"], actors["exchange:lumen"]
    t = ws.trace([evm1], direction="both", hops=4, stop_at=("exchange",), through_exchanges=True).as_json()
    hop = {node["id"]: node["hop"] for node in t["nodes"]}
    assert [hop.get(m) for m in controller["bank_accounts"]["mules"]] == [4, 4, 4]
    assert [hop.get(a) for a in patterns["operation-1/kestrel-deposits"]["addresses"]] == [2]
    steps = sorted((e["hop"], e["basis"]["actor"], e["basis"]["rule"]) for e in t["edges"] if e["kind"] == "inferred")
    assert steps == [(2, f"sim-{kestrel['id'].split(':')[1]}", "one depositor"),
                     (4, f"sim-{lumen['id'].split(':')[1]}", "the first withdrawals after the arrival")]
    back = ws.trace([evm1], direction="backward", hops=4, stop_at=("exchange",)).as_json()
    assert {n["chain"] for n in back["nodes"]} == {"sim-evm"}  # without the option: no crossing
