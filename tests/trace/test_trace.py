"""Following the money: traces and paths over real blocks and a simulated operation, checked against the
raw data and the simulator's truth files."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import pytest

import tracer
from tracer.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = ROOT / "fixtures" / "bitcoin"
SATOSHI, HAL = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
TX170 = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


@pytest.fixture(scope="module")
def early(tmp_path_factory):
    ws = tracer.open(tmp_path_factory.mktemp("early") / "early.duckdb")
    ws.ingest("bitcoin", [BLOCKS / "blk-heights-0-438.dat"])
    ws.cluster()
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("traceworld")
    ws = tracer.open(folder / "w.duckdb")
    summary = simulate(ws.store, seed=7, scale="test", truth_path=folder / "truth.json")
    truth = json.loads(summary.truth_path.read_text())
    yield ws, {a["id"]: a for a in truth["actors"]}
    ws.close()


def _bitcoin(actor: dict, key: str = "addresses") -> list[str]:
    value = actor["bitcoin"]
    return (ast.literal_eval(value) if isinstance(value, str) else value)[key]


def test_one_hop_forward_from_satoshi_reaches_hal_with_the_exact_amounts(early):
    t = early.trace([SATOSHI], hops=1).as_json()
    first = [e for e in t["edges"] if e["txid"] == TX170]
    assert [(e["src"], e["dst"], e["amount"], e["kind"], e["hop"]) for e in first] == [
        (SATOSHI, f"tx:{TX170}", "5000000000", "utxo", 1),
        (f"tx:{TX170}", HAL, "1000000000", "utxo", 1),
        (f"tx:{TX170}", SATOSHI, "4000000000", "utxo", 1),
    ]
    hal = next(n for n in t["nodes"] if n["id"] == HAL)
    assert (hal["hop"], hal["chain"], hal["kind"]) == (1, "bitcoin", "party")
    assert t["seeds"] == [SATOSHI] and t["params"]["direction"] == "forward"


def test_money_only_moves_forward_in_time(early):
    t = early.trace([SATOSHI], hops=3).as_json()
    reached_at: dict[str, str] = {SATOSHI: ""}
    for e in sorted(t["edges"], key=lambda e: (e["hop"], e["time"])):
        assert e["time"] >= reached_at.get(e["src"], ""), e
        reached_at.setdefault(e["dst"], e["time"])


def test_backward_from_hal_finds_satoshi_and_the_path_between_them(early):
    t = early.trace([HAL], direction="backward", hops=1).as_json()
    assert any(n["id"] == SATOSHI and n["hop"] == 1 for n in t["nodes"])
    [route] = early.find_paths(SATOSHI, HAL, hops=2)
    assert [(e["src"], e["dst"], e["amount"]) for e in route] == [
        (SATOSHI, f"tx:{TX170}", "5000000000"), (f"tx:{TX170}", HAL, "1000000000")]


def test_value_and_time_thresholds_prune_the_walk(early):
    small = early.trace([SATOSHI], hops=1, min_value=20.0).as_json()
    # 12cb… paid out 10, 10, 1, 1, 10 BTC after block 170: only outputs of at least 20 BTC are followed
    assert all(int(e["amount"]) >= 20 * 10**8 for e in small["edges"])
    assert HAL not in {n["id"] for n in small["nodes"]}
    none = early.trace([SATOSHI], hops=2, until=dt.datetime(2009, 1, 1)).as_json()
    assert none["edges"] == []


def test_address_level_equals_cluster_level_where_clusters_are_singletons(early):
    a = early.trace([SATOSHI], hops=2).as_json()
    c = early.trace([SATOSHI], hops=2, level="cluster").as_json()
    reached = [n["node"] for n in a["nodes"] if n["kind"] == "party"]
    sizes = early.rows("""SELECT count(*) FROM clusters WHERE cluster_id IN
                          (SELECT cluster_id FROM clusters WHERE address_id IN (SELECT unnest(?))) GROUP BY cluster_id""",
                       [reached])
    assert sizes and all(n == 1 for (n,) in sizes)
    assert a["edges"] == c["edges"] and a["nodes"] == c["nodes"]


def test_victims_money_reaches_the_exchange_the_operation_cashes_out_at(world):
    ws, actors = world
    victim = _bitcoin(actors["operation-1:victim-1"])
    kestrel = set(_bitcoin(actors["exchange:kestrel"], "hot_addresses"))
    t = ws.trace(victim[:1], hops=12, stop_at=("exchange",)).as_json()
    hits = [n for n in t["nodes"] if n["id"] in kestrel]
    assert hits and all(any(lab["category"] == "exchange" for lab in n["labels"]) for n in hits)
    # and a path the investigator can read, movement by movement
    routes = ws.find_paths(victim[0], hits[0]["id"], hops=12, max_degree=None)
    assert routes and routes[0][0]["src"] == victim[0] and routes[0][-1]["dst"] == hits[0]["id"]


def test_an_unknown_seed_is_refused_by_name(early):
    from tracer.trace import SeedError

    with pytest.raises(SeedError, match="1NotAnAddress: not an address"):
        early.trace(["1NotAnAddress"])
