"""Ads as trace seeds: `ad:[<site>:]<ad_id>` starts from the transaction that paid the ad's fee (as linked in
ad_payments), checked against the simulator's truth; unknown and unlinked ads are refused by name."""

from __future__ import annotations

import json

import pytest

import tracer
from tracer.simulate import simulate
from tracer.trace import SeedError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adseeds")
    ws = tracer.open(folder / "w.duckdb")
    summary = simulate(ws.store, seed=7, scale="test", truth_path=folder / "truth.json")
    ws.cluster()
    ws.link_ads(folder / "truth.fees.csv")
    truth = json.loads(summary.truth_path.read_text())
    yield ws, {a["id"]: a for a in truth["actors"]}, {p["id"]: p for p in truth["patterns"]}
    ws.close()


def test_an_operation_ad_leads_back_to_the_ad_poster_and_forward_to_the_site(world):
    ws, actors, patterns = world
    fees = patterns["operation-1/ads"]["ad_fee_txids"]
    linked = dict(ws.rows("SELECT ad_id, txid FROM ad_payments"))
    ad_id = next(ad for ad in sorted(fees) if linked.get(ad) == fees[ad])  # an ad the linker got right
    site = ws.rows("SELECT site FROM ads WHERE ad_id = ?", [ad_id])[0][0]
    poster = set(actors["operation-1:ad-poster"]["bitcoin"]["addresses"])
    site_addresses = set(actors[f"site:{site}"]["bitcoin"]["addresses"])
    back = ws.trace([f"ad:{site}:{ad_id}"], direction="backward", hops=1).as_json()
    seed = [n for n in back["nodes"] if n["seed"]]
    assert [(n["id"], n["kind"]) for n in seed] == [(f"tx:{fees[ad_id]}", "transaction")]
    payers = {n["id"] for n in back["nodes"] if n["kind"] == "party"}
    assert payers and payers <= poster
    fwd = ws.trace([f"ad:{ad_id}"], hops=1).as_json()
    paid = {e["dst"] for e in fwd["edges"]}
    assert len(paid & site_addresses) == 1 and paid - site_addresses <= poster  # the fee, and the change


def test_unknown_and_unlinked_ads_are_refused_by_name(world):
    ws, _, patterns = world
    with pytest.raises(SeedError, match="^ad:nosuch-000001: no such ad in this store"):
        ws.trace(["ad:nosuch-000001"])
    unpaid = sorted(patterns["operation-1/ad-payments"]["paid_otherwise"])[0]
    with pytest.raises(SeedError, match=f"^ad:{unpaid}: the ad is not linked to a payment"):
        ws.trace([f"ad:{unpaid}"])
