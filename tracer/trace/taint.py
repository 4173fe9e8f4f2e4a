"""Taint on UTXO chains: how much of each output's value came from given source outputs.

Three models, as compared by Möser, Böhme & Breuker (2014, "Towards risk scoring of Bitcoin
transactions") and, for FIFO, Anderson et al. (2019, "Bitcoin Redux", after the rule in Clayton's Case,
1816):

- **poison** — a transaction with any tainted input taints every output entirely. Its support is the
  widest: it never misses, and it over-taints quickly (a mixer poisons everything downstream).
- **haircut** — each output carries the share of tainted value in the transaction's inputs, pro rata;
  taint is conserved (tainted in = tainted out + tainted fee) and diluted by clean inputs.
- **FIFO** — first in, first out: the inputs' value, in input order, fills the outputs in output order
  (the fee last); an output carries the tainted value that lands in it. Conserved, and not diluted.

Taint is tracked per source (the share of each output's value attributed to each source output), so a
reader can say "41 % of this output comes from the ransom payment and 7 % from the sanctioned wallet".
Works on :class:`Tx` lists (transactions in an order where every spent output comes first); a store
adapter builds them from ``inputs`` and ``outputs``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Outpoint = tuple[str, int]


@dataclass
class Tx:
    txid: str
    inputs: list[tuple[Outpoint, int]]       # (spent outpoint, value) in input order
    outputs: list[int]                        # values in output order
    fee: int = field(init=False)

    def __post_init__(self) -> None:
        self.fee = sum(v for _, v in self.inputs) - sum(self.outputs)
        if self.fee < 0:
            raise ValueError(f"{self.txid}: outputs exceed inputs")


Taint = dict[Outpoint, dict[str, float]]   # output -> {source: tainted value (base units)}


def propagate(txs: Iterable[Tx], sources: dict[Outpoint, str], model: str = "haircut") -> Taint:
    """Tainted value per source on every output reached from ``sources`` (outpoint -> source name),
    walking ``txs`` in order. Source outputs carry their whole value for their source. Each model also
    reports the fee's share under the outpoint (txid, -1)."""
    if model not in ("poison", "haircut", "fifo"):
        raise ValueError("model is poison, haircut or fifo")
    txs = list(txs)
    value_of: dict[Outpoint, int] = {}
    for tx in txs:
        for n, v in enumerate(tx.outputs):
            value_of[(tx.txid, n)] = v
    taint: Taint = {}
    for op, src in sources.items():
        if op not in value_of:
            raise ValueError(f"source {op} is not an output of the given transactions")
        taint[op] = {src: float(value_of[op])}
    for tx in txs:
        tainted_inputs = [(op, v, taint[op]) for op, v in tx.inputs if op in taint]
        if not tainted_inputs:
            continue
        if model == "poison":
            names = sorted({s for _, _, t in tainted_inputs for s, x in t.items() if x > 0})
            for n, v in enumerate(tx.outputs):
                # poison: the whole value is tainted, by every source that reached the transaction
                taint[(tx.txid, n)] = {s: float(v) for s in names}
            taint[(tx.txid, -1)] = {s: float(tx.fee) for s in names}
        elif model == "haircut":
            total_in = sum(v for _, v in tx.inputs)
            per_source: dict[str, float] = {}
            for _, _, t in tainted_inputs:
                for s, x in t.items():
                    per_source[s] = per_source.get(s, 0.0) + x
            for n, v in enumerate([*tx.outputs, tx.fee]):
                part = {s: x * v / total_in for s, x in per_source.items() if total_in and x * v > 0}
                if part:
                    taint[(tx.txid, n if n < len(tx.outputs) else -1)] = part
        else:
            _fifo(tx, taint)
    return taint


def _fifo(tx: Tx, taint: Taint) -> None:
    """Inputs' value in order fills outputs in order, the fee last. Within one input, its tainted value is
    spread evenly over its value (an input's own taint has no order: FIFO below the input level would need
    the whole history of how its value was assembled)."""
    segments: list[tuple[int, int, dict[str, float]]] = []   # [start, end) of the input stream, taint density
    pos = 0
    for op, v in tx.inputs:
        t = taint.get(op, {})
        segments.append((pos, pos + v, {s: x / v for s, x in t.items()} if v else {}))
        pos += v
    start = 0
    for n, v in enumerate([*tx.outputs, tx.fee]):
        end = start + v
        acc: dict[str, float] = {}
        for a, b, density in segments:
            overlap = min(b, end) - max(a, start)
            if overlap > 0:
                for s, d in density.items():
                    if d > 0:
                        acc[s] = acc.get(s, 0.0) + d * overlap
        if acc:
            taint[(tx.txid, n if n < len(tx.outputs) else -1)] = acc
        start = end


def shares(taint: Taint, values: dict[Outpoint, int]) -> dict[Outpoint, dict[str, float]]:
    """Each output's tainted share per source (tainted value / output value)."""
    return {op: {s: (x / values[op] if values[op] else 0.0) for s, x in t.items()}
            for op, t in taint.items() if op in values}


def from_store(store, txids: Iterable[str], chain: str = "bitcoin") -> list[Tx]:
    """The transactions ``txids`` from the store, in block order, as :class:`Tx` (inputs must be resolved)."""
    rows = store.query(
        """SELECT t.txid, t.block_height, t.position, i.n, i.prev_txid, i.prev_n, i.value FROM transactions t
           JOIN inputs i ON i.chain = t.chain AND i.tx_id = t.tx_id
           WHERE t.chain = ? AND t.txid IN (SELECT unnest(?)) AND i.prev_txid IS NOT NULL
           ORDER BY t.block_height, t.position, i.n""", [chain, list(txids)])
    outs = store.query(
        """SELECT o.txid, o.n, o.value FROM outputs o JOIN transactions t ON t.chain = o.chain AND t.tx_id = o.tx_id
           WHERE o.chain = ? AND o.txid IN (SELECT unnest(?)) ORDER BY o.txid, o.n""", [chain, list(txids)])
    values: dict[str, list[int]] = {}
    for txid, _n, v in outs:
        values.setdefault(txid, []).append(int(v))
    order: list[str] = []
    ins: dict[str, list] = {}
    for txid, _h, _p, _n, prev, prev_n, v in rows:
        if txid not in ins:
            order.append(txid)
            ins[txid] = []
        if v is None:
            raise ValueError(f"{txid}: an input spends {prev}:{prev_n}, which is not in the store")
        ins[txid].append(((prev, int(prev_n)), int(v)))
    return [Tx(t, ins[t], values.get(t, [])) for t in order]


def forward_taint(store, sources: list[str], model: str = "haircut", hops: int = 6,
                  chain: str = "bitcoin") -> dict[str, dict[str, float]]:
    """Taint forward from source outputs ``txid:n`` through the transactions that spend them, ``hops``
    spends deep (one query per hop on ``outputs.spent_by_txid``); each output's tainted value per source."""
    points = {op: f"{op[0]}:{op[1]}" for op in _outpoints(sources, "source")}
    txs = _neighbourhood(store, sorted({t for t, _ in points}), hops + 1, chain,
                         "SELECT DISTINCT spent_by_txid FROM outputs WHERE chain = ? AND txid IN (SELECT unnest(?)) "
                         "AND spent_by_txid IS NOT NULL")
    # the source transactions themselves: their outputs carry the sources (their inputs need not be known)
    have = {t.txid for t in txs}
    txs[:0] = [_outputs_only(store, txid, chain) for txid in reversed(sorted({t for t, _ in points} - have))]
    taint = propagate(txs, points, model)
    return {f"{t}:{n}": v for (t, n), v in taint.items()}


# -- backward: from an output to its sources -------------------------------------------------------------
def _parents(tx: Tx, n: int, model: str) -> list[tuple[Outpoint, float]]:
    """The inputs that output ``n`` of ``tx`` came from, with the share of its value each gave: haircut —
    every input in proportion to its value; FIFO — the inputs whose stretch of the input stream output
    ``n``'s stretch overlaps (outputs in order, the fee last); poison — every input, each as 1 (a support,
    not shares)."""
    total_in = sum(v for _, v in tx.inputs)
    value = tx.outputs[n]
    if model == "poison":
        return [(op, 1.0) for op, _ in tx.inputs]
    if model == "haircut" or not value:
        return [(op, v / total_in) for op, v in tx.inputs if v] if total_in else []
    start = sum(tx.outputs[:n])
    end, pos, parts = start + value, 0, []
    for op, v in tx.inputs:
        overlap = min(pos + v, end) - max(pos, start)
        if overlap > 0:
            parts.append((op, overlap / value))
        pos += v
    return parts


def backward_shares(txs: Iterable[Tx], target: Outpoint, model: str = "haircut") -> dict[Outpoint, float]:
    """The share of ``target``'s value that came from each source: walking back through ``txs`` from the
    target, the outputs whose transaction is not among ``txs`` (or has no inputs: a coinbase, a funding
    transaction) are the sources. Haircut and FIFO shares sum to 1 at the target and agree with the forward
    models run from every source; poison gives the support (each source as 1)."""
    if model not in ("poison", "haircut", "fifo"):
        raise ValueError("model is poison, haircut or fifo")
    by_id = {tx.txid: tx for tx in txs}
    tx = by_id.get(target[0])
    if tx is None or not 0 <= target[1] < len(tx.outputs):
        raise ValueError(f"{target[0]}:{target[1]} is not an output of the given transactions")
    current: dict[Outpoint, float] = {target: 1.0}
    sources: dict[Outpoint, float] = {}
    while current:
        step: dict[Outpoint, float] = {}
        for op, share in current.items():
            tx = by_id.get(op[0])
            parts = _parents(tx, op[1], model) if tx is not None and tx.inputs else []
            if not parts:
                sources[op] = max(sources.get(op, 0.0), share) if model == "poison" else sources.get(op, 0.0) + share
                continue
            for prev, part in parts:
                add = share * part
                step[prev] = max(step.get(prev, 0.0), add) if model == "poison" else step.get(prev, 0.0) + add
        current = step
    return sources


def backward_taint(store, targets: list[str], model: str = "haircut", hops: int = 6,
                   chain: str = "bitcoin") -> dict[str, dict[str, float]]:
    """For each target output ``txid:n``, the share of its value that came from each source output ``hops``
    spends back (or fewer, where the history ends in a coinbase): one query per hop on ``inputs``."""
    points = _outpoints(targets, "target")
    txs = _neighbourhood(store, sorted({t for t, _ in points}), hops, chain,
                         "SELECT DISTINCT prev_txid FROM inputs WHERE chain = ? AND txid IN (SELECT unnest(?)) "
                         "AND prev_txid IS NOT NULL")
    have = {t.txid for t in txs}
    txs += [_outputs_only(store, txid, chain) for txid in sorted({t for t, _ in points} - have)]  # coinbases
    return {f"{t}:{n}": {f"{s}:{k}": v for (s, k), v in sorted(backward_shares(txs, (t, n), model).items())}
            for t, n in points}


def _outpoints(texts: list[str], what: str) -> list[Outpoint]:
    points = []
    for text in texts:
        txid, sep, n = text.rpartition(":")
        if not sep or not n.isdigit():
            raise ValueError(f"{text}: a {what} is txid:n (an output)")
        points.append((txid, int(n)))
    return points


def _neighbourhood(store, frontier: list[str], levels: int, chain: str, step_sql: str) -> list[Tx]:
    """The transactions ``levels`` steps from ``frontier`` (one query per step: ``step_sql`` maps txids to
    the next ones), as :class:`Tx` in block order."""
    seen: list[str] = []
    for _ in range(levels):
        if not frontier:
            break
        seen += [t for t in frontier if t not in seen]
        frontier = sorted({r[0] for r in store.query(step_sql, [chain, frontier])} - set(seen))
    return from_store(store, seen, chain)


def _outputs_only(store, txid: str, chain: str) -> Tx:
    """A transaction known by its outputs alone (a source's, or a coinbase)."""
    values = [int(v) for (v,) in store.query("SELECT value FROM outputs WHERE chain = ? AND txid = ? ORDER BY n",
                                             [chain, txid])]
    if not values:
        raise ValueError(f"{txid}: not a transaction in this store")
    tx = Tx(txid, [], [])
    tx.outputs, tx.fee = values, 0
    return tx
