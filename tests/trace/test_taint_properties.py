"""Taint models on generated UTXO graphs (hypothesis): conservation, shares, poison ⊇ haircut, locality, and
FIFO = haircut on a single-input chain; backward shares sum to 1 and agree with the forward models; plus
the models on real block 170's chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from tracer.trace.taint import Tx, backward_shares, from_store, propagate, shares

ROOT = Path(__file__).resolve().parents[2]


@st.composite
def utxo_graphs(draw, min_txs: int = 1, max_txs: int = 12, prefix: str = "t"):
    """Funding outputs, then transactions each spending 1-4 unspent outputs into 1-4 outputs and a fee."""
    funding = draw(st.lists(st.integers(1_000, 10**9), min_size=1, max_size=5))
    txs = [Tx(f"{prefix}fund", [], [])]
    txs[0].outputs = funding
    txs[0].fee = 0
    unspent = [((f"{prefix}fund", n), v) for n, v in enumerate(funding)]
    for k in range(draw(st.integers(min_txs, max_txs))):
        if not unspent:
            break
        picks = draw(st.lists(st.integers(0, len(unspent) - 1), min_size=1, max_size=min(4, len(unspent)), unique=True))
        inputs = [unspent[i] for i in sorted(picks)]
        unspent = [u for i, u in enumerate(unspent) if i not in picks]
        total = sum(v for _, v in inputs)
        fee = draw(st.integers(0, total // 10))
        cuts = sorted(draw(st.lists(st.integers(1, max(1, total - fee - 1)), max_size=3, unique=True)))
        bounds = [0, *[c for c in cuts if 0 < c < total - fee], total - fee]
        outputs = [b - a for a, b in zip(bounds, bounds[1:], strict=False) if b > a] or [total - fee]
        tx = Tx(f"{prefix}{k}", inputs, outputs)
        txs.append(tx)
        unspent += [((tx.txid, n), v) for n, v in enumerate(outputs)]
    return txs


def _values(txs):
    return {(t.txid, n): v for t in txs for n, v in enumerate(t.outputs)}


@settings(max_examples=150, deadline=None)
@given(utxo_graphs(), st.data())
def test_taint_is_conserved_and_shares_sum_to_at_most_one(txs, data):
    values = _values(txs)
    sources = {op: f"s{i}" for i, op in enumerate(data.draw(st.lists(st.sampled_from(sorted(values)), min_size=1,
                                                                     max_size=3, unique=True)))}
    for model in ("haircut", "fifo"):
        taint = propagate(txs, sources, model)
        for tx in txs[1:]:
            if any((tx.txid, n) in sources for n in range(len(tx.outputs))):
                continue  # a source injects taint: conservation holds downstream of it
            tin = sum(sum(taint.get(op, {}).values()) for op, _ in tx.inputs)
            tout = sum(sum(taint.get((tx.txid, n), {}).values()) for n in range(len(tx.outputs)))
            tfee = sum(taint.get((tx.txid, -1), {}).values())
            assert tin == pytest.approx(tout + tfee, rel=1e-9, abs=1e-6), (model, tx.txid)
        for op, per_source in shares(taint, values).items():
            assert sum(per_source.values()) <= 1 + 1e-9, (model, op)
            assert all(x >= -1e-12 for x in per_source.values())


@settings(max_examples=150, deadline=None)
@given(utxo_graphs(), st.data())
def test_poisons_support_contains_haircuts(txs, data):
    values = _values(txs)
    sources = {data.draw(st.sampled_from(sorted(values))): "dirty"}
    poison = propagate(txs, sources, "poison")
    for model in ("haircut", "fifo"):
        other = propagate(txs, sources, model)
        touched = {op for op, t in other.items() if sum(t.values()) > 0}
        assert touched <= set(poison), model


@settings(max_examples=100, deadline=None)
@given(utxo_graphs(prefix="a"), utxo_graphs(prefix="b"), st.data())
def test_unrelated_transactions_change_nothing(txs, others, data):
    sources = {data.draw(st.sampled_from(sorted(_values(txs)))): "dirty"}
    for model in ("poison", "haircut", "fifo"):
        alone = propagate(txs, sources, model)
        mixed = propagate([*txs, *others], sources, model)
        assert mixed == alone, model


@settings(max_examples=100, deadline=None)
@given(st.integers(10_000, 10**9), st.lists(st.tuples(st.integers(1, 9), st.integers(0, 50)), min_size=1, max_size=8))
def test_fifo_and_haircut_agree_on_a_single_input_chain(start, steps):
    txs = [Tx("fund", [], [])]
    txs[0].outputs, txs[0].fee = [start], 0
    prev, value = ("fund", 0), start
    for k, (tenths, fee) in enumerate(steps):
        if value < 3:
            break
        fee = min(fee, value - 2)
        pay = max(1, (value - fee) * tenths // 10)
        outs = [pay, value - fee - pay] if value - fee - pay > 0 else [value - fee]
        tx = Tx(f"c{k}", [(prev, value)], outs)
        txs.append(tx)
        prev, value = (tx.txid, len(outs) - 1), outs[-1]
    sources = {("fund", 0): "dirty"}
    haircut, fifo = propagate(txs, sources, "haircut"), propagate(txs, sources, "fifo")
    assert set(haircut) == set(fifo)
    for op in haircut:
        assert haircut[op]["dirty"] == pytest.approx(fifo[op]["dirty"], rel=1e-9)


def test_models_on_real_blocks_follow_satoshis_first_payment(tmp_path):
    store = tracer.open_store(tmp_path / "s.duckdb")
    from tracer.ingest.bitcoin.blocks import ingest_bitcoin

    ingest_bitcoin(store, [ROOT / "fixtures" / "bitcoin" / "blk-heights-0-438.dat"])
    tx170 = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    # block 170 and the next spends of Satoshi's change: a single-input peeling chain
    chain = [r[0] for r in store.query(
        """SELECT t.txid FROM transactions t WHERE t.block_height BETWEEN 170 AND 438 AND NOT t.is_coinbase
           ORDER BY t.block_height, t.position""")]
    txs = from_store(store, chain)
    assert txs[0].txid == tx170 and txs[0].inputs[0][1] == 5_000_000_000 and txs[0].outputs == [1_000_000_000,
                                                                                                4_000_000_000]
    sources = {(tx170, 1): "satoshi change"}
    haircut = propagate(txs, sources, "haircut")
    fifo = propagate(txs, sources, "fifo")
    poison = propagate(txs, sources, "poison")
    # the next spend of the 40 BTC change pays 10 BTC on and keeps 30: all of it from the source
    nxt = next(t for t in txs if t.inputs and t.inputs[0][0] == (tx170, 1))
    assert nxt.outputs == [1_000_000_000, 3_000_000_000]
    assert [haircut[(nxt.txid, n)]["satoshi change"] for n in (0, 1)] == [1_000_000_000, 3_000_000_000]
    assert haircut == fifo
    assert set(poison) >= set(haircut)


def test_tracer_taint_follows_a_source_output_through_its_spends(tmp_path):
    ws = tracer.open(tmp_path / "w.duckdb")
    ws.ingest("bitcoin", [ROOT / "fixtures" / "bitcoin" / "blk-heights-0-438.dat"])
    tx170 = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    result = ws.taint([f"{tx170}:1"], model="fifo", hops=2)
    assert result[f"{tx170}:1"] == {f"{tx170}:1": 4_000_000_000.0}
    spent = ws.rows("SELECT spent_by_txid FROM outputs WHERE txid = ? AND n = 1", [tx170])[0][0]
    assert sum(result[f"{spent}:0"].values()) + sum(result[f"{spent}:1"].values()) == 4_000_000_000.0
    ws.close()


@settings(max_examples=150, deadline=None)
@given(utxo_graphs(), st.data())
def test_backward_shares_sum_to_one_and_agree_with_forward_taint_from_every_source(txs, data):
    values = _values(txs)
    target = data.draw(st.sampled_from(sorted(op for op, v in values.items() if v > 0)))
    funding = {op: f"f{op[1]}" for op in values if op[0] == txs[0].txid}
    for model in ("haircut", "fifo"):
        back = backward_shares(txs, target, model)
        assert sum(back.values()) == pytest.approx(1.0, rel=1e-9), model
        assert set(back) <= set(funding) and all(x > 0 for x in back.values())
        forward = propagate(txs, funding, model).get(target, {})
        assert {funding[op]: x for op, x in back.items()} == pytest.approx(
            {s: x / values[target] for s, x in forward.items() if x > 0}, rel=1e-9, abs=1e-12), model
    poison = backward_shares(txs, target, "poison")
    assert set(backward_shares(txs, target, "haircut")) <= set(poison) and set(poison.values()) == {1.0}


def test_tracer_taint_backward_finds_the_coinbase_behind_hals_ten_bitcoin(tmp_path):
    ws = tracer.open(tmp_path / "w.duckdb")
    ws.ingest("bitcoin", [ROOT / "fixtures" / "bitcoin" / "blk-heights-0-438.dat"])
    tx170 = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    coinbase9 = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
    result = ws.taint([f"{tx170}:0"], model="haircut", hops=3, backward=True)
    assert result == {f"{tx170}:0": {f"{coinbase9}:0": 1.0}}
    ws.close()
