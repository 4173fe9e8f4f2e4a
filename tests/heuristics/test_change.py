"""Change heuristics: each rule on small hand-built transactions in a real store (blocks made, ingested
and clustered like any others), the algebra on them, the --change language, the links into clusters, and
the score on simulated worlds against their truth files."""

from __future__ import annotations

import hashlib

import pytest

import tracer
from heuristics.clustering import ChangeExpressionError, ChangeLinks, MultiInput, candidates, parse
from heuristics.clustering.change import (
    AddressReuse,
    AddressType,
    Consensus,
    Fresh,
    OneTimeChange,
    OptimalChange,
    PowerOfTen,
)
from heuristics.clustering.scoring import pairwise
from tests.bitcoin.blockmaker import Tx, TxIn, TxOut, coinbase, make_block, sha256d
from tracer.ingest.bitcoin.blocks import ingest_bitcoin
from tracer.ingest.bitcoin.network import network
from tracer.simulate import simulate


def script(kind: str, name: str) -> bytes:
    h = hashlib.sha256(name.encode()).digest()
    return {"p2wpkh": b"\x00\x14" + h[:20], "p2pkh": b"\x76\xa9\x14" + h[:20] + b"\x88\xac",
            "p2sh": b"\xa9\x14" + h[:20] + b"\x87", "p2tr": b"\x51\x20" + h}[kind]


def spend(*outpoints: tuple[Tx, int], outputs: list[TxOut], locktime: int = 0) -> Tx:
    return Tx([TxIn(t.txid(), n) for t, n in outpoints], outputs, locktime=locktime)


def with_fee_rate(tx: Tx, in_value: int, sat_per_vb: int, change_n: int) -> Tx:
    """Set output ``change_n`` so the fee is exactly ``sat_per_vb`` × the (witness-less) size."""
    fee = sat_per_vb * len(tx.serialize())
    tx.outputs[change_n].value = in_value - fee - sum(o.value for i, o in enumerate(tx.outputs) if i != change_n)
    return tx


# wallets: name -> (script type); a wallet's addresses are name1, name2, ...
FUND = [(1_000_000, "p2wpkh", "alice1"), (600_000, "p2wpkh", "alice2"), (2_000_000, "p2pkh", "bob1"),
        (5_000_000, "p2wpkh", "carol1"), (3_000_000, "p2wpkh", "dave1"), (1_100_000, "p2wpkh", "gina1"),
        (1_200_000, "p2wpkh", "hank1"), (1_300_000, "p2wpkh", "ivan1")]


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """Five transactions, each named for what it shows (txid -> name in ``names``):

    - ``two_in``: alice pays 1,000,000 (round, P2PKH, fresh) from two P2WPKH inputs; change 587,654 to a
      fresh P2WPKH address, below the smaller input.
    - ``reuse``: bob pays carol's fresh P2WPKH address and takes change back to his own input address.
    - ``peel1``: carol, one input, pays dave 400,000 and keeps the larger rest (fresh, P2WPKH), locktime >
      0, 100 sat/vB; ``peel2`` spends that rest the same way (1 in, 2 out, locktime > 0, 100 sat/vB), and
      dave spends his 400,000 with locktime 0 at 20 sat/vB (``dave_spend``, one output: out of scope).
    - ``mix``: a three-party equal-output CoinJoin (gina, hank, ivan; 2 × 1,000,000 and a change).
    """
    fund = [TxOut(v, script(k, n)) for v, k, n in FUND]
    blk1 = make_block(b"\x00" * 32, 1, [], coinbase_outputs=fund)
    cb = coinbase(1, fund)  # block 1's coinbase, rebuilt for its txid
    ids = {n: i for i, (_, _, n) in enumerate(FUND)}
    two_in = spend((cb, ids["alice1"]), (cb, ids["alice2"]),
                   outputs=[TxOut(1_000_000, script("p2pkh", "bob2")), TxOut(587_654, script("p2wpkh", "alice3"))])
    reuse = spend((cb, ids["bob1"]), outputs=[TxOut(700_000, script("p2wpkh", "carol2")),
                                              TxOut(1_290_000, script("p2pkh", "bob1"))])
    peel1 = with_fee_rate(spend((cb, ids["carol1"]), outputs=[TxOut(400_000, script("p2wpkh", "dave2")),
                                                              TxOut(0, script("p2wpkh", "carol3"))], locktime=101),
                          5_000_000, 100, 1)
    mix = spend((cb, ids["gina1"]), (cb, ids["hank1"]), (cb, ids["ivan1"]),
                outputs=[TxOut(1_000_000, script("p2wpkh", "gina2")), TxOut(1_000_000, script("p2wpkh", "hank2")),
                         TxOut(234_567, script("p2wpkh", "ivan2"))])
    blk2 = make_block(sha256d(blk1[:80]), 2, [two_in, reuse, peel1, mix], time=1_700_000_600)
    change = peel1.outputs[1].value
    peel2 = with_fee_rate(spend((peel1, 1), outputs=[TxOut(300_000, script("p2tr", "erin1")),
                                                     TxOut(0, script("p2wpkh", "carol4"))], locktime=102),
                          change, 100, 1)
    dave_spend = with_fee_rate(spend((peel1, 0), (cb, ids["dave1"]), outputs=[TxOut(0, script("p2wpkh", "dave3"))]),
                               3_400_000, 20, 0)
    blk3 = make_block(sha256d(blk2[:80]), 3, [peel2, dave_spend], time=1_700_001_200)
    folder = tmp_path_factory.mktemp("change")
    magic = network("regtest").magic
    (folder / "blk00000.dat").write_bytes(b"".join(magic + len(b).to_bytes(4, "little") + b for b in (blk1, blk2, blk3)))
    ws = tracer.open(folder / "hand.duckdb")
    ingest_bitcoin(ws.store, [folder / "blk00000.dat"], network_name="regtest")
    ws.cluster()  # flags the CoinJoin
    names = {t.txid()[::-1].hex(): name for t, name in ((two_in, "two_in"), (reuse, "reuse"), (peel1, "peel1"),
                                                        (peel2, "peel2"), (dave_spend, "dave_spend"), (mix, "mix"))}
    addr = {n: ws.store.scalar("SELECT address FROM outputs WHERE txid = ? AND n = ?", [t.txid()[::-1].hex(), i])
            for t, outs in ((two_in, ("bob2", "alice3")), (reuse, ("carol2", None)), (peel1, ("dave2", "carol3")),
                            (peel2, ("erin1", "carol4")), (dave_spend, ("dave3",)), (mix, ("gina2", "hank2", "ivan2")))
            for i, n in enumerate(outs) if n is not None}
    addr.update({n: ws.store.scalar("SELECT address FROM outputs WHERE txid = ? AND n = ?",
                                     [cb.txid()[::-1].hex(), i]) for n, i in ids.items()})
    yield ws, names, addr
    ws.close()


def named(hand, rule) -> set[tuple[str, int]]:
    ws, names, _ = hand
    return {(names[txid], n) for txid, n in candidates(ws.store, rule)}


def test_the_hand_built_store_holds_what_the_rules_read(hand):
    ws, names, _ = hand
    rows = ws.rows("SELECT txid, input_count, output_count, locktime, fee, weight FROM transactions "
                   "WHERE NOT is_coinbase ORDER BY block_height, position")
    assert [(names[r[0]], r[1], r[2], r[3]) for r in rows] == [
        ("two_in", 2, 2, 0), ("reuse", 1, 2, 0), ("peel1", 1, 2, 101), ("mix", 3, 3, 0), ("peel2", 1, 2, 102),
        ("dave_spend", 2, 1, 0)]
    rate = {names[t]: int(fee) * 1000 // ((w + 3) // 4) for t, _, _, _, fee, w in rows}
    assert (rate["peel1"], rate["peel2"], rate["dave_spend"]) == (100_000, 100_000, 20_000)
    assert ws.rows("SELECT flag FROM tx_flags") == [("coinjoin:generic",)]


def test_each_rule_names_exactly_its_candidates(hand):
    # a fresh address is first seen in this transaction (bob1, paid back by `reuse`, is not)
    assert named(hand, "fresh") == {("two_in", 0), ("two_in", 1), ("reuse", 0), ("peel1", 0), ("peel1", 1),
                                    ("peel2", 0), ("peel2", 1)}
    # every input of one type: outputs of that type (peel2's P2TR payment is not)
    assert named(hand, "type") == {("two_in", 1), ("reuse", 1), ("peel1", 0), ("peel1", 1), ("peel2", 1)}
    # below the smallest input: alice's 1,000,000 payment is not below her 600,000 input
    assert named(hand, "optimal") == {("two_in", 1), ("reuse", 0), ("reuse", 1), ("peel1", 0), ("peel1", 1),
                                      ("peel2", 0), ("peel2", 1)}
    # a round (10^6) payment beside a change that is not round
    assert named(hand, "round") == {("two_in", 1)}
    assert named(hand, "round(5)") == {("two_in", 1), ("reuse", 1), ("peel1", 1), ("peel2", 1)}
    assert named(hand, "reuse") == {("reuse", 1)}
    # one-time change: fresh, the inputs' type, below the smallest input, not a multiple of 1,000 sat
    # (dave's 400,000 is a multiple; the changes are 587,654, 4,588,700 and 4,276,200)
    assert named(hand, "one_time") == {("two_in", 1), ("peel1", 1), ("peel2", 1)}
    # the spender: peel1's rest is spent with locktime > 0 like peel1, dave's coin with locktime 0
    assert named(hand, "locktime") == {("peel1", 1)}
    assert named(hand, "fee_rate") == {("peel1", 1)}
    assert named(hand, "peeling") == {("peel1", 1)}
    # consensus: type, optimal and round agree on alice's change; on peel1, locktime, fee_rate and peeling
    # (fresh, type and optimal name both its outputs there, so they cast no vote)
    assert named(hand, "consensus") == {("two_in", 1), ("peel1", 1)}
    assert named(hand, "consensus(2)") == {("two_in", 1), ("peel1", 1)}
    assert named(hand, "consensus(4)") == set()


def test_the_algebra_composes_candidate_sets(hand):
    fresh, typ = named(hand, Fresh()), named(hand, AddressType())
    assert named(hand, Fresh() | AddressType()) == fresh | typ
    assert named(hand, Fresh() & AddressType()) == fresh & typ == {("two_in", 1), ("peel1", 0), ("peel1", 1),
                                                                   ("peel2", 1)}
    assert named(hand, Fresh() - AddressType()) == fresh - typ == {("two_in", 0), ("reuse", 0), ("peel2", 0)}
    assert named(hand, (Fresh() & AddressType()).unique()) == {("two_in", 1), ("peel2", 1)}
    assert named(hand, OptimalChange().unique()) == {("two_in", 1)}
    assert named(hand, (OneTimeChange() | AddressReuse()).unique()) == {("two_in", 1), ("reuse", 1), ("peel1", 1),
                                                                        ("peel2", 1)}
    # python's precedence: - binds tighter than &, & tighter than |
    assert named(hand, "fresh | reuse - fresh") == named(hand, Fresh() | (AddressReuse() - Fresh())) == fresh | {
        ("reuse", 1)}
    assert named(hand, "optimal & type | reuse") == named(hand, (OptimalChange() & AddressType()) | AddressReuse())


def test_a_coinjoin_yields_no_change_candidates(hand):
    # the mix's 234,567 output is fresh, P2WPKH and below every input: one-time change by shape alone
    assert not [c for c in named(hand, "fresh | type | optimal | one_time | round(3)") if c[0] == "mix"]


def test_the_change_language_parses_and_prints_back():
    assert parse("consensus") == Consensus()
    assert parse("optimal & type") == OptimalChange() & AddressType()
    assert parse("(one_time | reuse).unique()") == (OneTimeChange() | AddressReuse()).unique()
    assert parse("round(5) - reuse") == PowerOfTen(5) - AddressReuse()
    for text in ("consensus", "optimal & type", "(one_time | reuse).unique()", "fresh - (type - optimal)",
                 "(fresh | type) & optimal", "round(5).unique()", "consensus(2)", "one_time.unique() | reuse"):
        assert parse(text).expr() == text
        assert parse(parse(text).expr()) == parse(text)
    for bad, message in (("", "empty"), ("optimal &", "expected more"), ("speed", "unknown change rule 'speed'"),
                         ("(fresh", r"expected \)"), ("type(3)", "takes no argument"), ("fresh fresh", "unexpected"),
                         ("fresh; DROP TABLE x", "cannot read")):
        with pytest.raises(ChangeExpressionError, match=message):
            parse(bad)


def test_change_links_join_the_change_to_the_first_input_and_are_off_by_default(hand):
    ws, names, addr = hand

    def groups() -> set[frozenset[str]]:
        rows = ws.rows("SELECT address, cluster_id FROM clusters WHERE chain = 'bitcoin'")
        by: dict[int, set[str]] = {}
        for address, cid in rows:
            by.setdefault(cid, set()).add(address)
        inv = {v: k for k, v in addr.items()}
        return {frozenset(inv[a] for a in g) for g in by.values() if len(g) > 1}

    ws.cluster(full=True)
    assert groups() == {frozenset({"alice1", "alice2"}), frozenset({"dave2", "dave1"})}
    result = ws.cluster(full=True, links=[MultiInput(), ChangeLinks.of("consensus")])
    assert groups() == {frozenset({"alice1", "alice2", "alice3"}), frozenset({"dave2", "dave1"}),
                        frozenset({"carol1", "carol3"})}
    assert result.merges == 4
    links = ws.rows("SELECT address_b, heuristic, txid, confidence FROM cluster_links WHERE heuristic LIKE 'change%' "
                    "ORDER BY tx_id")
    assert [(b, h, names[t], c) for b, h, t, c in links] == [
        (addr["alice3"], "change:consensus", "two_in", 0.7), (addr["carol3"], "change:consensus", "peel1", 0.7)]
    path = ws.explain(addr["alice3"], addr["alice2"])
    assert [(p.heuristic, names[p.txid]) for p in path] == [("change:consensus", "two_in"), ("multi-input", "two_in")]
    # reuse names bob's change, which is already his input address: no new link
    ws.cluster(full=True, links=[MultiInput(), ChangeLinks.of("reuse")])
    assert groups() == {frozenset({"alice1", "alice2"}), frozenset({"dave2", "dave1"})}
    # a rule naming both outputs links both (no .unique()): carol's payee joins her
    ws.cluster(full=True, links=[MultiInput(), ChangeLinks.of("fresh & type")])
    assert frozenset({"carol1", "carol3", "dave2", "dave1", "carol4"}) in groups()


def test_tracer_cluster_takes_a_change_expression_and_refuses_a_bad_one(tmp_path):
    import subprocess
    import sys

    db = str(tmp_path / "empty.duckdb")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tracer.cli", "--db", db, *args], capture_output=True, text=True,
                              timeout=120)

    bad = cli("cluster", "--change", "optimal &")
    assert bad.returncode == 1
    assert bad.stderr == "error: --change optimal &: expected more in change expression 'optimal &'\n"
    good = cli("cluster", "--change", "(one_time | reuse).unique()", "--json")
    assert good.returncode == 0, good.stderr
    assert '"merges": 0' in good.stdout


@pytest.fixture(scope="module", params=[3, 11])
def world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"cworld{request.param}")
    ws = tracer.open(folder / "w.duckdb")
    summary = simulate(ws.store, seed=request.param, scale="test", truth_path=folder / "truth.json")
    yield ws, summary.truth_path
    ws.close()


def test_consensus_change_keeps_clusters_precise_and_raises_recall(world):
    ws, truth = world
    ws.cluster(full=True)
    alone = pairwise(ws.store, truth)
    ws.cluster(full=True, links=[MultiInput(), ChangeLinks.of("consensus")])
    both = pairwise(ws.store, truth)
    # threshold: docs/heuristics.md measures ≥ 0.98 on every scored seed; 0.95 leaves room for unseen seeds
    assert both.precision >= 0.95
    assert both.recall > alone.recall
    assert ws.rows("SELECT count(*) FROM cluster_links WHERE heuristic = 'change:consensus'")[0][0] > 100
