"""Exchange deposit addresses on an account-model chain (Victor, FC 2020): hand-built token transfers in a
real store with exact expected clusters, the windows and tolerances that keep look-alikes apart, the
incremental run, the CLI, and the simulated world's operation found through its deposit address."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

import tracer
from heuristics.clustering import EvmDeposit
from tracer.simulate import simulate

CHAIN = "testevm"
TOKEN = "0x00000000000000000000000000000000000000aa"
START = dt.datetime(2024, 1, 1)


def addr(name: str) -> str:
    return "0x" + name.encode().hex().ljust(40, "0")[:40]


def transfers(rows: list[tuple[str, str, int, int]], first: int = 0) -> pa.Table:
    """(from, to, amount, block) rows as the EVM ingester stores token transfers, one transaction each."""
    n = len(rows)
    return pa.table({
        "chain": [CHAIN] * n, "asset": [TOKEN] * n,
        "txid": [f"0x{first + i:064x}" for i in range(n)], "idx": list(range(n)),
        "from_address": [addr(f) for f, _, _, _ in rows], "to_address": [addr(t) for _, t, _, _ in rows],
        "amount": pa.array([a for _, _, a, _ in rows], pa.decimal128(38, 0)),
        "amount_raw": [str(a) for _, _, a, _ in rows],
        "time": [START + dt.timedelta(seconds=12 * b) for _, _, _, b in rows],
        "block_height": [b for _, _, _, b in rows], "kind": ["erc20"] * n,
    })


STORY = [
    # D1: two customers deposit, D1 forwards the sum to the exchange's hot wallet
    ("u1", "D1", 100, 10), ("u2", "D1", 50, 20), ("D1", "hot", 150, 25),
    # D2: one customer, forwarded less 0.5 % (within the 1 % tolerance)
    ("u3", "D2", 1_000, 30), ("D2", "hot", 995, 40),
    # a pass-through to an unlabelled address is no deposit address
    ("u4", "P", 100, 50), ("u5", "P", 100, 51), ("P", "other", 200, 52),
    # forwarded 40 more than arrived: not a deposit forward
    ("u6", "D3", 100, 60), ("u7", "D3", 40, 61), ("D3", "hot", 100, 62),
    # a deposit older than the window is not counted, and the rest does not match the forward
    ("u8", "D4", 10, 100), ("u9", "D4", 10, 4_000), ("D4", "hot", 20, 4_001),
    # the hot wallet paying its cold wallet after customers paid it directly: exchange to exchange, no link
    ("u10", "hot", 30, 70), ("u11", "hot", 30, 71), ("hot", "cold", 60, 72),
    # D1 used again later by a third address: the same customer
    ("u12", "D1", 70, 200), ("D1", "hot", 70, 210),
]


def load(ws: tracer.Workspace, rows: list[tuple[str, str, int, int]], first: int = 0) -> None:
    ws.store.claim_chain(CHAIN, "account", "test", 99, None)
    ws.store.append("transfers", transfers(rows, first))


@pytest.fixture()
def story(tmp_path):
    ws = tracer.open(tmp_path / "evm.duckdb")
    load(ws, STORY)
    labels = pa.table({"chain": [CHAIN, CHAIN], "address": [addr("hot").upper().replace("0X", "0x"), addr("cold")],
                       "label": ["Exchange hot wallet", "Exchange cold wallet"], "category": ["exchange", "exchange"],
                       "source": ["test", "test"]})
    ws.store.append("labels", labels)
    yield ws
    ws.close()


def groups(ws: tracer.Workspace) -> set[frozenset[str]]:
    names = {addr(n): n for n in ("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12",
                                  "D1", "D2", "D3", "D4", "P", "hot", "cold", "other")}
    by: dict[int, set[str]] = {}
    for address, cid in ws.rows("SELECT address, cluster_id FROM clusters WHERE chain = ?", [CHAIN]):
        by.setdefault(cid, set()).add(names[address])
    return {frozenset(g) for g in by.values() if len(g) > 1}


def test_every_customer_of_one_deposit_address_is_one_cluster(story):
    result = story.cluster(chain=CHAIN)
    assert groups(story) == {frozenset({"u1", "u2", "u12"})}
    assert (result.addresses, result.clusters, result.merges, result.coinjoins) == (20, 18, 2, {})
    links = story.rows("SELECT address_a, address_b, heuristic, txid, confidence FROM cluster_links "
                       "WHERE chain = ? ORDER BY tx_id", [CHAIN])
    # evidence: the forwarding transfer of D1 that showed each customer
    assert links == [(addr("u1"), addr("u2"), "evm-deposit", f"0x{2:064x}", 1.0),
                     (addr("u1"), addr("u12"), "evm-deposit", f"0x{18:064x}", 1.0)]
    assert [(p.heuristic, p.txid) for p in story.explain(addr("u12"), addr("u2"), chain=CHAIN)] == [
        ("evm-deposit", f"0x{18:064x}"), ("evm-deposit", f"0x{2:064x}")]


def test_the_deposit_address_joins_its_customers_when_asked(story):
    story.cluster(chain=CHAIN, links=[EvmDeposit(with_deposit_address=True)])
    assert groups(story) == {frozenset({"u1", "u2", "u12", "D1"}), frozenset({"u3", "D2"})}


def test_window_and_tolerance_are_parameters(story):
    # a window wide enough for u8's old deposit: D4 forwards exactly what u8 and u9 brought
    story.cluster(chain=CHAIN, links=[EvmDeposit(window_blocks=4_000)])
    assert groups(story) == {frozenset({"u1", "u2", "u12"}), frozenset({"u8", "u9"})}
    # no tolerance: D2's forward (0.5 % short) no longer counts, with the deposit address asked for
    story.cluster(chain=CHAIN, links=[EvmDeposit(tolerance=0.0, with_deposit_address=True)])
    assert groups(story) == {frozenset({"u1", "u2", "u12", "D1"})}


def test_incremental_run_links_a_later_customer_to_the_earlier_ones(tmp_path):
    ws = tracer.open(tmp_path / "inc.duckdb")
    load(ws, STORY[:3])
    ws.store.append("labels", pa.table({"chain": [CHAIN], "address": [addr("hot")], "label": ["hot"],
                                        "category": ["exchange"]}))
    first = ws.cluster(chain=CHAIN)
    assert first.full and groups(ws) == {frozenset({"u1", "u2"})}
    load(ws, STORY[17:], first=17)
    again = ws.cluster(chain=CHAIN)
    assert not again.full and again.transactions == 2 and again.merges == 1
    assert groups(ws) == {frozenset({"u1", "u2", "u12"})}
    ws.close()


def test_tracer_cluster_on_an_evm_chain(story, tmp_path):
    from typer.testing import CliRunner

    from tracer.cli import app

    path = tmp_path / "evm.duckdb"
    story.close()
    runner = CliRunner()
    out = runner.invoke(app, ["--db", str(path), "cluster", "--chain", CHAIN, "--with-deposit-address", "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert (summary["chain"], summary["merges"], summary["clusters"]) == (CHAIN, 4, 16)
    refused = runner.invoke(app, ["--db", str(path), "cluster", "--chain", CHAIN, "--change", "consensus"])
    assert refused.exit_code == 1 and "account-model chain" in str(refused.exception)


def test_simulated_operation_is_found_through_its_exchange_deposit_address(tmp_path):
    ws = tracer.open(tmp_path / "w.duckdb")
    summary = simulate(ws.store, seed=7, scale="test", truth_path=tmp_path / "truth.json")
    truth = json.loads(summary.truth_path.read_text())
    controller = next(a for a in truth["actors"] if a["id"] == "operation-1:controller")
    evm1, evm2, evm3 = controller["sim-evm"]["addresses"]
    deposit = controller["sim-evm"]["exchange_deposit_address"]
    forwards = next(p for p in truth["patterns"] if p["id"] == "operation-1/evm-deposit-forwarding")["txids"]
    result = ws.cluster(chain="sim-evm")
    # the operation paid its two layering addresses into one Lumen deposit address: they are one customer;
    # every other simulated user has a deposit address of its own, so nothing else is linked
    assert result.merges == 1
    # evm-2 was seen first (smaller id); evm-3's deposit is the one the second forward showed
    assert ws.rows("SELECT address_a, address_b, heuristic, txid FROM cluster_links WHERE chain = 'sim-evm'") == [
        (evm2, evm3, "evm-deposit", forwards[1])]
    assert ws.rows("SELECT count(DISTINCT cluster_id) FROM clusters WHERE address IN (?, ?, ?)",
                   [evm2, evm3, deposit]) == [(2,)]
    assert evm1 not in {r[0] for r in ws.rows("SELECT address_a FROM cluster_links UNION SELECT address_b FROM cluster_links")}
    ws.close()
