"""Change heuristics: which output of a transaction returns to the sender, as composable values.

Modelled on BlockSci's change heuristics (Kalodner et al., "BlockSci", USENIX Security 2020;
``change_address.cpp``): every rule returns, per transaction, the set of outputs it *cannot rule out* as
change, and rules compose — ``a | b`` (union), ``a & b`` (intersection), ``a - b`` (difference) and
``.unique()`` (only transactions where exactly one candidate remains). Each rule is set-based SQL over
``outputs``/``inputs``/``transactions`` joined on integer ids (portable SQL: CTEs, GROUP BY, UNION,
INTERSECT, EXCEPT, CASE), giving ``(tx_id, n)`` rows; no Python runs per transaction.

Scope (every rule): non-coinbase transactions that no CoinJoin rule flagged (``tx_flags``: a mix has many
senders, so "the sender's change" means nothing there), whose inputs are all resolved (their addresses
and values are known) and which have at least two spendable outputs (with one output there is no
payment to tell change from). OP_RETURN outputs are never candidates.

Rules that read the output's *spender* (``locktime``, ``fee_rate``, ``peeling``) only name spent outputs:
BlockSci keeps unspent outputs as "cannot rule out", which makes ``a | locktime`` name every unspent
output; here a rule names an output only on evidence. Their answer can change when the spender arrives:
an incremental run re-reads the transactions whose outputs were spent by the new ones, but a link made
earlier stays — run ``tracer cluster --full`` after large ingests when these rules are in the expression.

Linking (:class:`ChangeLinks`): the change address joins the transaction's first input address (the
smallest input address id, as for multi-input). Change that pays an input address (``reuse``) is change
but no new link. Change clustering is off by default: BlockSci's legacy change rule once merged a
256-million-address super-cluster, and GraphSense does not cluster on change at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from heuristics.clustering.coinjoin import COINJOIN_FLAGS
from tracer.store import Store

CHANGE = "change"


# -- the algebra ----------------------------------------------------------------------------------------
class ChangeRule:
    """A change heuristic: per transaction, the outputs it cannot rule out as change. Compose with
    ``|``, ``&``, ``-`` and ``.unique()``."""

    needs_spender: bool = False

    def sql(self) -> str:
        """SELECT tx_id, n over the ``cand`` relation of :func:`base_sql` (no parameters)."""
        raise NotImplementedError

    def expr(self) -> str:
        """The expression in the ``--change`` language (parses back to an equal rule)."""
        raise NotImplementedError

    def __or__(self, other: ChangeRule) -> ChangeRule:
        return Union(self, other)

    def __and__(self, other: ChangeRule) -> ChangeRule:
        return Intersection(self, other)

    def __sub__(self, other: ChangeRule) -> ChangeRule:
        return Difference(self, other)

    def unique(self) -> ChangeRule:
        return Unique(self)

    def __str__(self) -> str:
        return self.expr()


# binding strength as in Python: - above & above |
_PREC = {"|": 1, "&": 2, "-": 3}


def _wrap(rule: ChangeRule, outer: int, right: bool = False) -> str:
    text = rule.expr()
    if isinstance(rule, _Binary):
        p = _PREC[rule.op]
        if p < outer or (right and p == outer and rule.op == "-"):
            return f"({text})"
    return text


@dataclass(frozen=True)
class _Binary(ChangeRule):
    left: ChangeRule
    right: ChangeRule
    op = ""
    sql_op = ""

    @property
    def needs_spender(self) -> bool:  # type: ignore[override]
        return self.left.needs_spender or self.right.needs_spender

    def sql(self) -> str:
        return (f"SELECT tx_id, n FROM ({self.left.sql()}) l {self.sql_op} "
                f"SELECT tx_id, n FROM ({self.right.sql()}) r")

    def expr(self) -> str:
        p = _PREC[self.op]
        return f"{_wrap(self.left, p)} {self.op} {_wrap(self.right, p, right=True)}"


@dataclass(frozen=True)
class Union(_Binary):
    """Outputs named by either rule."""

    op = "|"
    sql_op = "UNION"


@dataclass(frozen=True)
class Intersection(_Binary):
    """Outputs named by both rules."""

    op = "&"
    sql_op = "INTERSECT"


@dataclass(frozen=True)
class Difference(_Binary):
    """Outputs named by the left rule and not by the right."""

    op = "-"
    sql_op = "EXCEPT"


@dataclass(frozen=True)
class Unique(ChangeRule):
    """The rule's candidate where it names exactly one output of the transaction; nothing elsewhere
    (BlockSci ``unique_change``; GraphSense requires a unique candidate too)."""

    inner: ChangeRule

    @property
    def needs_spender(self) -> bool:  # type: ignore[override]
        return self.inner.needs_spender

    def sql(self) -> str:
        return f"SELECT tx_id, min(n) AS n FROM ({self.inner.sql()}) u GROUP BY tx_id HAVING count(*) = 1"

    def expr(self) -> str:
        inner = self.inner.expr()
        return f"({inner}).unique()" if isinstance(self.inner, _Binary) else f"{inner}.unique()"


# -- the rules ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fresh(ChangeRule):
    """Client change-address behaviour (BlockSci ``client_change_address_behavior``; Meiklejohn et al.,
    IMC 2013): wallets send change to a new address, so an output whose address is first seen in this
    transaction may be change. Fails whenever the payee also gets a fresh address — most payments to
    wallets that follow BIP32 — so alone it rarely leaves one candidate."""

    def sql(self) -> str:
        return "SELECT tx_id, n FROM cand WHERE first_tx = tx_id"

    def expr(self) -> str:
        return "fresh"


@dataclass(frozen=True)
class AddressType(ChangeRule):
    """Address-type match (BlockSci ``address_type``; Ermilov et al. 2017): when every input has one
    script type, the change is likely of that type too. Fails when the payee uses the payer's type (the
    common type — P2WPKH today — matches most payments) and for wallets that send change to another
    type (migrating wallets; Taproot change from legacy inputs)."""

    def sql(self) -> str:
        return "SELECT tx_id, n FROM cand WHERE in_type IS NOT NULL AND script_type = in_type"

    def expr(self) -> str:
        return "type"


@dataclass(frozen=True)
class OptimalChange(ChangeRule):
    """Optimal change (BlockSci ``optimal_change``; Nick 2015): an output smaller than every input is
    likely change — had the payment been smaller than an input, the wallet would not have needed that
    input. Uninformative for one-input transactions (every output is below the only input); fails for
    wallets that select coins for privacy or consolidation rather than minimally."""

    def sql(self) -> str:
        return "SELECT tx_id, n FROM cand WHERE value < min_in"

    def expr(self) -> str:
        return "optimal"


@dataclass(frozen=True)
class PowerOfTen(ChangeRule):
    """Round-value payment (BlockSci ``power_of_ten_value``; Meiklejohn et al. 2013; Androulaki et al.
    2013): people pay round amounts and coin selection leaves change that is not round, so in a transaction
    with an output that is a multiple of 10^digits, the outputs that are not are change candidates.
    ``digits`` = 6 (0.01 BTC) is BlockSci's default. Fails on payments priced in fiat (round in USD, not in
    satoshi), on round change by chance (1 in 10^digits), and names nothing when no output is round."""

    digits: int = 6

    def sql(self) -> str:
        unit = 10 ** self.digits
        return (f"SELECT tx_id, n FROM cand WHERE value % {unit} <> 0 "
                f"AND tx_id IN (SELECT tx_id FROM cand WHERE value % {unit} = 0)")

    def expr(self) -> str:
        return "round" if self.digits == 6 else f"round({self.digits})"


@dataclass(frozen=True)
class AddressReuse(ChangeRule):
    """Address reuse (BlockSci ``address_reuse``): an output paying one of the transaction's input
    addresses is change sent back to the sender. It is never a new link (the address is already an
    input). Fails on self-payments that are not change (a wallet paying a reused address of its own is
    still its own — harmless) and on payments to a counterparty who also signed (PayJoin)."""

    def sql(self) -> str:
        return "SELECT tx_id, n FROM cand WHERE is_reuse"

    def expr(self) -> str:
        return "reuse"


@dataclass(frozen=True)
class OneTimeChange(ChangeRule):
    """One-time change (Meiklejohn et al. 2013, as GraphSense implements it): an output to a fresh address
    (first seen in this transaction), of the inputs' script type, below the smallest input, and not a
    multiple of 10^digits satoshi (GraphSense: not a multiple of 1,000 sat — round amounts are payments).
    GraphSense also requires it to be the only such output: write ``one_time.unique()``. Fails when the
    payee gets a fresh address of the same type and the payment is not round (a second candidate, so
    ``unique`` drops it) and, worse, when the change is not fresh but the payment is (then the payment is
    taken for change)."""

    digits: int = 3

    def sql(self) -> str:
        unit = 10 ** self.digits
        return (f"SELECT tx_id, n FROM cand WHERE first_tx = tx_id AND in_type IS NOT NULL AND script_type = in_type "
                f"AND value < min_in AND value % {unit} <> 0")

    def expr(self) -> str:
        return "one_time" if self.digits == 3 else f"one_time({self.digits})"


@dataclass(frozen=True)
class Locktime(ChangeRule):
    """Locktime consistency (BlockSci ``locktime``): Bitcoin Core and others set nLockTime to the current
    height (anti fee-sniping), other wallets leave it 0; the change is spent by the same wallet, so a spent
    output whose spending transaction has the same locktime behaviour (> 0 or = 0) as this one may be
    change. Fails when payer and payee run wallets with the same behaviour (most of the network today) —
    it then names every spent output — and names nothing unspent."""

    needs_spender = True

    def sql(self) -> str:
        return ("SELECT tx_id, n FROM cand WHERE spender IS NOT NULL "
                "AND (CASE WHEN locktime > 0 THEN 1 ELSE 0 END) = (CASE WHEN s_locktime > 0 THEN 1 ELSE 0 END)")

    def expr(self) -> str:
        return "locktime"


@dataclass(frozen=True)
class FeeRate(ChangeRule):
    """Fee-rate consistency (BlockSci ``fixed_fee``): a wallet that pays a fixed fee rate pays the same
    rate when it spends its change, so a spent output whose spender paid this transaction's rate (sat per
    1,000 vbytes, within ``tolerance`` of it; 0 = equal, BlockSci's rule) may be change. Fails with
    fee-estimating wallets (rates follow the mempool: the change's spender pays another rate, and the
    rule names nothing) and when payer and payee both pay a popular fixed rate."""

    tolerance: float = 0.0
    needs_spender = True

    def sql(self) -> str:
        return (f"SELECT tx_id, n FROM cand WHERE spender IS NOT NULL AND rate IS NOT NULL AND s_rate IS NOT NULL "
                f"AND abs(rate - s_rate) <= {float(self.tolerance)!r} * rate")

    def expr(self) -> str:
        return "fee_rate"


@dataclass(frozen=True)
class PeelingChain(ChangeRule):
    """Peeling-chain position (BlockSci ``peeling_chain``; Meiklejohn et al. 2013): in a 1-input,
    2-output transaction the larger output, when it is spent again by a 1-input, 2-output transaction, is
    the chain going on — the change; the smaller is the payment peeled off. Fails when the payment is the
    larger output (a big purchase from a small wallet) and the payee happens to spend it the same way."""

    needs_spender = True

    def sql(self) -> str:
        return ("SELECT tx_id, n FROM cand WHERE n_in_tx = 1 AND n_out = 2 AND value = max_out AND n_max = 1 "
                "AND s_nin = 1 AND s_nout = 2")

    def expr(self) -> str:
        return "peeling"


# the independent signals the consensus counts (one_time is itself a conjunction of three of them)
VOTERS: tuple[ChangeRule, ...] = (Fresh(), AddressType(), OptimalChange(), PowerOfTen(), Locktime(), FeeRate(),
                                  PeelingChain())


@dataclass(frozen=True)
class Consensus(ChangeRule):
    """Consensus (GraphSense's stance — several rules and a unique candidate — made explicit): an output
    named by at least ``votes`` of the independent signals (fresh, type, optimal, round, locktime,
    fee_rate, peeling), and the only such output of its transaction; a signal that names every output of
    the transaction ruled nothing out there and casts no vote (optimal change in a one-input
    transaction, fresh when every output is fresh); transactions with address-reuse change are left out
    (their change is known, and it is no new link). Fails when the change gathers
    fewer votes than the payment — e.g. change of another script type, unspent, beside a fresh payment of
    the payer's type — and then links the payee: rare, not never."""

    votes: int = 3
    needs_spender = True

    def sql(self) -> str:
        # a rule that names every output of a transaction ruled nothing out there: it casts no vote
        ballots = " UNION ALL ".join(
            f"""SELECT v.tx_id, v.n FROM ({r.sql()}) v JOIN (SELECT tx_id, count(*) AS k FROM ({r.sql()}) g
                GROUP BY tx_id) g ON g.tx_id = v.tx_id JOIN (SELECT DISTINCT tx_id, n_out FROM cand) o
                ON o.tx_id = v.tx_id WHERE g.k < o.n_out""" for r in VOTERS)
        return (f"SELECT tx_id, min(n) AS n FROM ("
                f"SELECT tx_id, n FROM ({ballots}) b GROUP BY tx_id, n HAVING count(*) >= {int(self.votes)}) w "
                f"WHERE tx_id NOT IN (SELECT tx_id FROM cand WHERE is_reuse) GROUP BY tx_id HAVING count(*) = 1")

    def expr(self) -> str:
        return "consensus" if self.votes == 3 else f"consensus({self.votes})"


# the names of the --change language; a name may take one integer: round(5), one_time(4), consensus(2)
one_time, address_type, optimal, power_of_ten = OneTimeChange(), AddressType(), OptimalChange(), PowerOfTen()
reuse, locktime, fee_rate, peeling, fresh, consensus = (AddressReuse(), Locktime(), FeeRate(), PeelingChain(),
                                                        Fresh(), Consensus())
NAMES: dict[str, type[ChangeRule]] = {
    "one_time": OneTimeChange, "fresh": Fresh, "type": AddressType, "optimal": OptimalChange, "round": PowerOfTen,
    "power_of_ten": PowerOfTen, "reuse": AddressReuse, "locktime": Locktime, "fee_rate": FeeRate,
    "peeling": PeelingChain, "consensus": Consensus,
}
_ARG = {OneTimeChange: "digits", PowerOfTen: "digits", Consensus: "votes"}


# -- the --change language ------------------------------------------------------------------------------
class ChangeExpressionError(ValueError):
    pass


_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<int>\d+)|(?P<op>\.unique\(\)|[|&\-()]))")


def parse(text: str) -> ChangeRule:
    """Parse a ``--change`` expression: names (``one_time``, ``type``, ``optimal``, ``round``, ``reuse``,
    ``locktime``, ``fee_rate``, ``peeling``, ``fresh``, ``consensus``; ``round(5)`` and the like take one
    integer), ``|``, ``&``, ``-`` with Python's precedence (``-`` binds tightest, then ``&``, then ``|``),
    parentheses and the postfix ``.unique()``."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ChangeExpressionError(f"cannot read {text[pos:]!r} in change expression {text!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not tokens:
        raise ChangeExpressionError("empty change expression")
    at = 0

    def peek() -> tuple[str, str] | None:
        return tokens[at] if at < len(tokens) else None

    def take(value: str | None = None) -> tuple[str, str]:
        nonlocal at
        tok = peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ChangeExpressionError(f"expected {value or 'more'} in change expression {text!r}")
        at += 1
        return tok

    def binary(level: int) -> ChangeRule:
        ops = [op for op, p in _PREC.items() if p == level]
        left = binary(level + 1) if level < 3 else postfix()
        while (tok := peek()) is not None and tok[1] in ops:
            take()
            right = binary(level + 1) if level < 3 else postfix()
            left = {"|": Union, "&": Intersection, "-": Difference}[tok[1]](left, right)
        return left

    def postfix() -> ChangeRule:
        rule = primary()
        while (tok := peek()) is not None and tok[1] == ".unique()":
            take()
            rule = Unique(rule)
        return rule

    def primary() -> ChangeRule:
        kind, value = take()
        if value == "(":
            rule = binary(1)
            take(")")
            return rule
        if kind != "name":
            raise ChangeExpressionError(f"unexpected {value!r} in change expression {text!r}")
        cls = NAMES.get(value)
        if cls is None:
            raise ChangeExpressionError(f"unknown change rule {value!r}: use one of {', '.join(sorted(NAMES))}")
        nxt = peek()
        if nxt is not None and nxt[1] == "(" and at + 1 < len(tokens) and tokens[at + 1][0] == "int":
            if cls not in _ARG:
                raise ChangeExpressionError(f"change rule {value!r} takes no argument")
            take("(")
            arg = int(take()[1])
            take(")")
            return cls(**{_ARG[cls]: arg})
        return cls()

    rule = binary(1)
    if at != len(tokens):
        raise ChangeExpressionError(f"unexpected {tokens[at][1]!r} in change expression {text!r}")
    return rule


# -- SQL ------------------------------------------------------------------------------------------------
def base_sql(chain: str, after_tx_id: int, rescan_spent: bool) -> tuple[str, list]:
    """The CTEs every rule reads, ending in ``cand``: one row per spendable output of a transaction in
    scope, with what the rules need (integer ids; the spender found by the integer outpoint key).

    ``rescan_spent``: also read older transactions whose outputs were spent above ``after_tx_id`` (rules
    that look at the spender)."""
    skip = ", ".join(f"'{f}'" for f in COINJOIN_FLAGS)
    rescan = ""
    params: list = [chain, after_tx_id]
    if rescan_spent and after_tx_id > 0:
        rescan = """ OR t.tx_id IN (SELECT o.tx_id FROM inputs i JOIN outputs o
                        ON o.chain = i.chain AND o.txkey = i.prev_txkey AND o.n = i.prev_n AND o.txid = i.prev_txid
                        WHERE i.chain = ? AND i.tx_id > ?)"""
        params += [chain, after_tx_id]
    params += [chain, chain, chain, chain, chain, chain]
    sql = f"""WITH scope AS (
        SELECT t.tx_id, t.txid, t.locktime, t.input_count,
               CASE WHEN t.fee IS NOT NULL AND t.weight > 0 THEN floor(t.fee * 1000.0 / floor((t.weight + 3) / 4.0)) END AS rate
        FROM transactions t
        WHERE t.chain = ? AND NOT t.is_coinbase AND (t.tx_id > ?{rescan})
          AND t.tx_id NOT IN (SELECT tx_id FROM tx_flags WHERE chain = ? AND flag IN ({skip}))
    ), ins AS (
        SELECT i.tx_id, i.address_id, i.value, a.script_type FROM inputs i
        LEFT JOIN addresses a ON a.address_id = i.address_id
        WHERE i.chain = ? AND i.prev_txid IS NOT NULL AND i.tx_id IN (SELECT tx_id FROM scope)
    ), txin AS (
        SELECT tx_id, min(address_id) AS first_addr, min(value) AS min_in, count(address_id) AS n_known,
               CASE WHEN count(DISTINCT script_type) = 1 AND count(script_type) = count(*) THEN min(script_type) END AS in_type
        FROM ins GROUP BY tx_id
    ), outs AS (
        SELECT o.tx_id, o.n, o.txid, o.txkey, o.address_id, o.value, o.script_type FROM outputs o
        WHERE o.chain = ? AND o.address_id IS NOT NULL AND o.script_type <> 'nulldata'
          AND o.tx_id IN (SELECT tx_id FROM scope)
    ), txout AS (
        SELECT o.tx_id, count(*) AS n_out, max(o.value) AS max_out,
               sum(CASE WHEN o.value = m.mx THEN 1 ELSE 0 END) AS n_max
        FROM outs o JOIN (SELECT tx_id, max(value) AS mx FROM outs GROUP BY tx_id) m ON m.tx_id = o.tx_id
        GROUP BY o.tx_id
    ), firsts AS (
        SELECT address_id, min(tx_id) AS first_tx FROM outputs
        WHERE chain = ? AND address_id IN (SELECT address_id FROM outs) GROUP BY address_id
    ), spend AS (
        SELECT o.tx_id, o.n, min(i.tx_id) AS spender FROM outs o JOIN inputs i
          ON i.chain = ? AND i.prev_txkey = o.txkey AND i.prev_n = o.n AND i.prev_txid = o.txid
        GROUP BY o.tx_id, o.n
    ), cand AS (
        SELECT o.tx_id, o.n, o.address_id, o.value, o.script_type, x.first_addr, x.min_in, x.in_type,
               sc.input_count AS n_in_tx, y.n_out, y.max_out, y.n_max, f.first_tx, sc.locktime, sc.rate,
               sp.spender, st.locktime AS s_locktime, st.input_count AS s_nin, st.output_count AS s_nout,
               CASE WHEN st.fee IS NOT NULL AND st.weight > 0
                    THEN floor(st.fee * 1000.0 / floor((st.weight + 3) / 4.0)) END AS s_rate,
               r.address_id IS NOT NULL AS is_reuse
        FROM outs o JOIN scope sc ON sc.tx_id = o.tx_id JOIN txin x ON x.tx_id = o.tx_id
        JOIN txout y ON y.tx_id = o.tx_id
        LEFT JOIN firsts f ON f.address_id = o.address_id
        LEFT JOIN spend sp ON sp.tx_id = o.tx_id AND sp.n = o.n
        LEFT JOIN transactions st ON st.chain = ? AND st.tx_id = sp.spender
        LEFT JOIN (SELECT DISTINCT tx_id, address_id FROM ins) r ON r.tx_id = o.tx_id AND r.address_id = o.address_id
        WHERE y.n_out >= 2 AND x.n_known = sc.input_count
    )"""
    return sql, params


def candidates(store: Store, rule: ChangeRule | str, chain: str = "bitcoin") -> list[tuple[str, int]]:
    """The (txid, output index) pairs ``rule`` names, sorted — for inspection and tests. CoinJoin flags are
    read from ``tx_flags`` (written by ``tracer cluster``)."""
    rule = parse(rule) if isinstance(rule, str) else rule
    base, params = base_sql(chain, 0, False)
    rows = store.query(
        f"{base} SELECT s.txid, k.n FROM ({rule.sql()}) k JOIN scope s ON s.tx_id = k.tx_id ORDER BY s.txid, k.n",
        params)
    return [(txid, int(n)) for txid, n in rows]


@dataclass(frozen=True)
class ChangeLinks:
    """A :class:`~heuristics.clustering.cluster.LinkHeuristic`: the change output(s) that ``rule`` names
    join the transaction's first input address (its smallest input address id). Change paying an input
    address is no new link. ``confidence`` is a prior written to ``cluster_links``, not a measurement
    (see docs/heuristics.md for the measured precision of each rule)."""

    rule: ChangeRule
    confidence: float = 0.7

    @classmethod
    def of(cls, expr: str, confidence: float = 0.7) -> ChangeLinks:
        return cls(parse(expr), confidence)

    @property
    def name(self) -> str:
        return f"{CHANGE}:{self.rule.expr()}"

    def pairs_sql(self, chain: str, after_tx_id: int) -> tuple[str, list]:
        base, params = base_sql(chain, after_tx_id, self.rule.needs_spender)
        sql = f"""{base}
            SELECT c.tx_id, c.first_addr AS a, c.address_id AS b, {float(self.confidence)!r} AS confidence
            FROM ({self.rule.sql()}) k JOIN cand c ON c.tx_id = k.tx_id AND c.n = k.n
            WHERE NOT c.is_reuse AND c.address_id <> c.first_addr"""
        return sql, params

    def describe(self) -> dict:
        return {"name": CHANGE, "expr": self.rule.expr(), "confidence": self.confidence}
