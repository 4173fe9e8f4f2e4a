"""Address clustering: multi-input with a CoinJoin guard, union-find over integer ids, stable ids,
incremental updates, and the evidence for every merge.

Multi-input (common-input ownership; Reid & Harrigan 2011, Meiklejohn et al. 2013): the inputs of one
non-coinbase transaction are spent by one entity, so their addresses are one cluster. It fails on
CoinJoins (many entities sign one transaction: flagged first by :mod:`heuristics.clustering.coinjoin` and
skipped), on PayJoin (undetectable by shape), and on custodial consolidation (an exchange spending its
customers' deposit addresses together — those addresses then *are* the exchange's, which is the right
entity for an investigator). A few false links snowball into super-clusters (Harrigan & Fretter 2016):
:func:`super_clusters` lists the biggest clusters with the merges that built them.

Pairs: each transaction contributes (first input address, other input address) for its distinct input
addresses — k − 1 pairs for k addresses, which connect them all. Ids: a cluster's id is its smallest
address_id (union by the smaller root), so ids depend only on membership. A run reads the transactions
above the chain's ``cluster_state.through_tx_id`` and merges them into the stored clusters; ``full``
starts over. Only merges that joined two clusters are written to ``cluster_links`` (the spanning forest:
enough to explain any pair, far smaller than every pair).

Account-model chains (EVM) have no ``transactions.tx_id``: their runs are ordered by ``transfers.flow_id``
(``cluster_state.through_tx_id`` then holds a flow id), no CoinJoin pass runs, and the default evidence is
the exchange deposit-address heuristic (:mod:`heuristics.clustering.evm_deposit`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from heuristics.clustering.coinjoin import COINJOIN_FLAGS, CoinJoinRules, Columns, read_inputs, verdicts, write_flags
from tracer.store import Store
from tracer.store.store import utcnow

MULTI_INPUT = "multi-input"


@dataclass
class ClusterResult:
    chain: str
    run_id: int
    full: bool
    transactions: int = 0          # transactions read
    coinjoins: dict[str, int] = field(default_factory=dict)   # flag -> transactions flagged
    pairs: int = 0                 # address pairs considered
    merges: int = 0                # pairs that joined two clusters (rows added to cluster_links)
    addresses: int = 0             # addresses in the chain's clusters table
    clusters: int = 0              # distinct clusters
    largest: int = 0               # size of the largest cluster
    unresolved_inputs: int = 0     # inputs read without a known address (their funding tx is not stored)
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: read and flags, pairs (and union), evidence, write


class LinkHeuristic(Protocol):
    """A source of evidence that two addresses have one owner: multi-input, a change rule, …"""

    name: str

    def pairs_sql(self, chain: str, after_tx_id: int) -> tuple[str, list]:
        """SQL giving (tx_id, a, b, confidence) address-id pairs from the transactions above ``after_tx_id``."""
        ...

    def describe(self) -> dict: ...


@dataclass(frozen=True)
class MultiInput:
    """Common-input ownership over non-CoinJoin transactions: (smallest input address, other input address).
    A Stonewall-shaped transaction's links get confidence 0.6 (STONEWALLx2 has two signers)."""

    name: str = MULTI_INPUT

    def pairs_sql(self, chain: str, after_tx_id: int) -> tuple[str, list]:
        skip = ", ".join(f"'{f}'" for f in COINJOIN_FLAGS)
        sql = f"""WITH a AS (
                SELECT DISTINCT i.tx_id, i.address_id FROM inputs i
                WHERE i.chain = ? AND i.tx_id > ? AND i.address_id IS NOT NULL AND i.prev_txid IS NOT NULL
                  AND i.tx_id NOT IN (SELECT tx_id FROM tx_flags WHERE chain = ? AND tx_id > ? AND flag IN ({skip}))
            ), f AS (SELECT tx_id, min(address_id) AS first FROM a GROUP BY tx_id HAVING count(*) > 1)
            SELECT f.tx_id, f.first AS a, a.address_id AS b,
                   CASE WHEN s.tx_id IS NULL THEN 1.0 ELSE 0.6 END AS confidence
            FROM a JOIN f USING (tx_id)
            LEFT JOIN (SELECT tx_id FROM tx_flags WHERE chain = ? AND tx_id > ? AND flag = 'stonewall') s USING (tx_id)
            WHERE a.address_id <> f.first"""
        return sql, [chain, after_tx_id, chain, after_tx_id, chain, after_tx_id]

    def columns(self, store: Store, chain: str, after_tx_id: int, flags: pa.Table | None = None,
                inputs: Columns | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the pairs are built from: the inputs' tx_id and address_id (−1: unknown) by transaction, and
        the sorted tx ids to skip (CoinJoins) and whose links are weak (Stonewall). ``flags`` (the (tx_id,
        flag) rows of ``tx_flags`` above ``after_tx_id``) and ``inputs``
        (:func:`~heuristics.clustering.coinjoin.read_inputs`): if the caller has them."""
        if inputs is None:
            inputs = read_inputs(store, chain, after_tx_id)
        tx = inputs["tx_id"].astype(np.int64, copy=False)
        addr = inputs["address_id"].astype(np.int64, copy=False)
        if flags is None:
            flags = store.arrow("SELECT tx_id, flag FROM tx_flags WHERE chain = ? AND tx_id > ?", [chain, after_tx_id])
        flag_tx = flags["tx_id"].to_numpy().astype(np.int64)
        kind = flags["flag"].to_numpy(zero_copy_only=False)
        return tx, addr, np.sort(flag_tx[np.isin(kind, COINJOIN_FLAGS)]), np.sort(flag_tx[kind == "stonewall"])

    def pairs(self, store: Store, chain: str, after_tx_id: int, flags: pa.Table | None = None,
              inputs: Columns | None = None):
        """The pairs of :meth:`pairs_sql`, built by :func:`~heuristics.clustering.unionfind.multi_input_pairs`
        from one scan of the inputs' integer columns (:meth:`columns`). Returns (tx_id, a, b, confidence,
        unresolved inputs)."""
        from heuristics.clustering.unionfind import multi_input_pairs

        tx, addr, skip, weak = self.columns(store, chain, after_tx_id, flags, inputs)
        ptx, a, b = multi_input_pairs(tx, addr, skip)
        at = np.minimum(np.searchsorted(weak, ptx), max(weak.size - 1, 0))  # binary search: ptx long, weak short
        conf = np.where(weak[at] == ptx, 0.6, 1.0) if weak.size else np.ones(ptx.size)
        return ptx, a, b, conf, int((addr < 0).sum())

    def describe(self) -> dict:
        return {"name": self.name}


def _params(rules: CoinJoinRules, links: list[LinkHeuristic]) -> str:
    return json.dumps({"heuristics": [h.describe() for h in links], "coinjoin": rules.as_dict()}, sort_keys=True)


@dataclass
class ClusterMemory:
    """One chain's clusters held in memory between runs (a :class:`~tracer.workspace.Workspace` keeps
    them), so an incremental run costs what its batch costs. ``parent`` is the union-find forest over every
    address id (ids of other chains are roots of their own), ``size`` a cluster's size at its root.
    ``run_id`` is the cluster run the arrays reflect: a store whose ``cluster_state`` names another run is
    re-read."""

    chain: str
    run_id: int
    parent: np.ndarray
    size: np.ndarray
    addresses: int
    clusters: int
    largest: int
    codes: dict[str, int] = field(default_factory=dict)  # cluster_heuristics seen: name -> code
    # the cluster_state row this run wrote (through_tx_id, params, through_address_id, run_id): the next run
    # reads it together with its run id and new rows, and reads again if the store holds another
    state: tuple | None = None
    account: bool | None = None  # chains.kind is 'account' (a chain's kind never changes once claimed)
    # by address id: some cluster_renames row points at this root (so absorbing it must re-point them);
    # None: not known, every absorbing run re-points
    renamed_to: np.ndarray | None = None

    def grow(self, n: int) -> None:
        """Room for address ids below ``n``: new addresses are clusters of their own."""
        from heuristics.clustering.unionfind import id_dtype

        old = self.parent.shape[0]
        if n <= old:
            return
        n = max(n, old + old // 4)  # amortised: a block at a time would otherwise copy every time
        dtype = np.promote_types(self.parent.dtype, id_dtype(n))  # int32 until ids outgrow it
        self.parent = np.concatenate([self.parent.astype(dtype, copy=False), np.arange(old, n, dtype=dtype)])
        self.size = np.concatenate([self.size.astype(dtype, copy=False), np.ones(n - old, dtype)])
        if self.renamed_to is not None:
            self.renamed_to = np.concatenate([self.renamed_to, np.zeros(n - old, bool)])

    @classmethod
    def load(cls, store: Store, chain: str, batch_rows: int = 1 << 20) -> ClusterMemory | None:
        """The chain's clusters as stored (None if it was never clustered), read ``batch_rows`` rows at a time."""
        from heuristics.clustering.unionfind import forest_sizes, id_dtype

        state = store.one("SELECT run_id, through_address_id FROM cluster_state WHERE chain = ?", [chain])
        if state is None:
            return None
        through = int(state[1] or 0)
        parent = np.arange(through + 1, dtype=id_dtype(through + 1))
        renamed_to = np.zeros(through + 1, bool)
        # streamed in batches: at chain scale the members are ~10^9 rows, more than memory holds at once
        for table, key in (("cluster_members", "address_id"), ("cluster_renames", "absorbed_id")):
            for batch in store.batches(f"SELECT {key} AS x, cluster_id FROM {table} WHERE chain = ?", [chain],
                                       batch_rows):
                x, cluster_id = batch.column(0).to_numpy(), batch.column(1).to_numpy()
                parent[x] = cluster_id
                if table == "cluster_renames":
                    renamed_to[cluster_id] = True
        size = forest_sizes(parent)  # in the forest's dtype, without an int64 count or an array of roots
        addresses = int(store.scalar("SELECT count(*) FROM addresses WHERE chain = ? AND address_id <= ?",
                                     [chain, through]))
        absorbed = int(np.count_nonzero(size == 0))  # ids that are not roots
        return cls(chain, int(state[0] or 0), parent, size, addresses, addresses - absorbed,
                   int(size.max()) if addresses else 0, renamed_to=renamed_to)


def cluster(store: Store, chain: str = "bitcoin", full: bool = False, rules: CoinJoinRules | None = None,
            links: list[LinkHeuristic] | None = None, summary: bool = True,
            memory: dict[str, ClusterMemory] | None = None) -> ClusterResult:
    """Cluster the addresses of ``chain``: incrementally from the last run, or from scratch.

    ``links``: the evidence sources, multi-input alone by default; a change rule is added with
    :class:`heuristics.clustering.change.ChangeLinks`. An account-model chain (``chains.kind`` =
    'account') has no transactions.tx_id: its run is ordered by ``transfers.flow_id`` and its default
    evidence is :class:`heuristics.clustering.evm_deposit.EvmDeposit`. ``memory``: a dict (chain →
    :class:`ClusterMemory`) kept by the caller between runs; without it an incremental run first reads the
    chain's clusters from the store. ``summary`` is kept for callers; the counts now come from memory."""
    rules = rules or CoinJoinRules()
    known = (memory or {}).get(chain)
    account = known.account if known is not None and known.account is not None else _is_account(store, chain)
    if not links:
        if account:
            from heuristics.clustering.evm_deposit import EvmDeposit

            links = [EvmDeposit()]
        else:
            links = [MultiInput()]
    params = _params(rules, links)
    memory = {} if memory is None else memory
    parameters = {"full": full, "params": json.loads(params)}
    try:
        with store.transaction():  # the run's results and its row ('ok') in one commit
            started = utcnow()
            result = _cluster(store, chain, account, full, rules, links, params, memory)
            counts = {"transactions": result.transactions, "merges": result.merges, "clusters": result.clusters}
            store.con.execute(
                "INSERT INTO ingest_runs (run_id, source, target, parameters, started, finished, status, row_counts) "
                "VALUES (?, 'cluster', ?, ?, ?, ?, 'ok', ?)",
                [result.run_id, chain, json.dumps(parameters, default=str), started, utcnow(), json.dumps(counts)])
    except Exception as exc:
        memory.pop(chain, None)  # the arrays may hold a batch the store rolled back
        with contextlib.suppress(Exception):  # the rolled-back run, recorded as failed where the store allows
            store.begin_run("cluster", chain, parameters).fail(exc)
        raise
    return result


def _cluster(store: Store, chain: str, account: bool, full: bool, rules: CoinJoinRules, links: list[LinkHeuristic], params: str,
             memory: dict[str, ClusterMemory]) -> ClusterResult:
    from heuristics.clustering.unionfind import find_all, flatten, forest, multi_input_union

    con = store.con
    # new addresses and transactions are appended with rising ids: the filters let DuckDB skip old row groups
    if account:  # no UTXO transactions: positions are the transfers' flow ids
        position = """SELECT max(flow_id), count(DISTINCT txid) FILTER (WHERE flow_id > ?) FROM transfers
                      WHERE chain = ? AND flow_id >= ?"""
    else:
        position = "SELECT max(tx_id), count(*) FILTER (WHERE tx_id > ?) FROM transactions WHERE chain = ? AND tx_id >= ?"
    where = f"""SELECT a.*, t.* FROM (SELECT max(address_id), count(*) FILTER (WHERE chain = ? AND address_id > ?)
                                     FROM addresses WHERE address_id >= ?) a, ({position}) t"""
    known = memory.get(chain)
    row = None
    if known is not None and known.state is not None and not full:
        # one statement: the run id, the stored state (checked against the one in memory) and the new rows
        # above the remembered positions
        after, through_address = known.state[0], known.state[2]
        row = store.one(
            f"""SELECT nextval('run_id_seq'), s.through_tx_id, s.params, s.through_address_id, s.run_id, w.*
                FROM (SELECT * FROM cluster_state WHERE chain = ?) s, ({where}) w""",
            [chain, chain, through_address, through_address, after, chain, after])
    if row is not None and tuple(row[1:5]) == known.state:
        run_id, state, position_row = int(row[0]), tuple(row[1:5]), row[5:]
    else:
        run_id = int(row[0] if row is not None else store.scalar("SELECT nextval('run_id_seq')"))
        state = store.one("SELECT through_tx_id, params, through_address_id, run_id FROM cluster_state WHERE chain = ?",
                          [chain])
        position_row = None
    if state is not None and state[1] != params:
        full = True  # other rules: what was merged before may not hold
    after = 0 if full or state is None else int(state[0])
    through_address = 0 if full or state is None else int(state[2] or 0)
    result = ClusterResult(chain, run_id, full or state is None)
    clock = _Clock(result.seconds)
    if position_row is None or full:
        position_row = store.one(where, [chain, through_address, through_address, after, chain, after])
    top_address, new_addresses, top, result.transactions = position_row
    top_address = max(int(top_address or 0), through_address)
    new_addresses = int(new_addresses)
    top = after if top is None else max(int(top), after)
    if result.full:
        for table in ("cluster_members", "cluster_renames", "cluster_evidence"):
            con.execute(f"DELETE FROM {table} WHERE chain = ?", [chain])
        memory.pop(chain, None)
        mem = None
    else:
        mem = memory.get(chain)
        if mem is None or mem.run_id != state[3]:
            mem = ClusterMemory.load(store, chain)
    if mem is None:  # every address id of the store in one forest; the chain's absorbed addresses written from it
        parent, size = forest(top_address + 1)
    else:
        mem.grow(top_address + 1)
        parent, size = mem.parent, mem.size
    flags = inputs = union = None
    if top > after and not account:
        inputs = read_inputs(store, chain, after)
        found = verdicts(store, chain, after, rules, inputs)
        flags = found.select(["tx_id", "flag"])
        kinds, counts = np.unique(flags["flag"].to_numpy(zero_copy_only=False), return_counts=True)
        result.coinjoins = {str(k): int(c) for k, c in zip(kinds, counts, strict=True)}
        if _one_pass(links):  # the union (compiled, without the GIL) runs while DuckDB writes the flags
            union = _Background(multi_input_union, parent, size, *links[0].columns(store, chain, after, flags, inputs))
        with _joined(union):
            write_flags(store, chain, after, run_id, found, replace=result.full)
    clock("read and flags")
    if union is not None:
        m = _one_pass_merges(union.result(), result)
        clock("pairs and union")
    elif top > after:
        m = _merges(store, chain, after, links, result, flags, inputs, parent, size, clock)
    else:
        m = _no_merges()
    result.merges = int(m["tx_id"].size)
    known_codes = mem.codes if mem is not None else {}
    codes = _heuristic_codes(store, [h.name for h in links], known_codes) if result.merges else None
    if mem is None:
        flat = _Background(flatten, parent)  # a full run's members, found while DuckDB writes the evidence
        with _joined(flat):
            _insert_evidence(store, chain, run_id, m, codes)
        moved, cluster_ids = flat.result()
        clock("evidence")
        _insert(store, "cluster_members", chain, run_id, moved, cluster_ids)
        mem = ClusterMemory(chain, run_id, parent, size, new_addresses, new_addresses - result.merges,
                            int(size.max()) if new_addresses else 0, codes=known_codes,
                            renamed_to=np.zeros(parent.size, bool))
    else:
        if result.merges:
            _absorb(store, chain, run_id, m["absorbed_id"], find_all(mem.parent, m["absorbed_id"]), m["gone"], mem)
        _insert_evidence(store, chain, run_id, m, codes)
        clock("evidence")
        mem.addresses += new_addresses
        mem.clusters += new_addresses - result.merges
        if result.merges:
            mem.largest = max(mem.largest, int(mem.size[m["surviving_id"]].max()))
        mem.run_id = run_id
    if state is None:
        con.execute("INSERT INTO cluster_state (chain, through_tx_id, params, run_id, updated, through_address_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [chain, int(top), params, run_id, utcnow(), top_address])
    else:  # an UPDATE of the one row costs less than INSERT OR REPLACE's delete and insert through the key
        con.execute("UPDATE cluster_state SET through_tx_id = ?, params = ?, run_id = ?, updated = ?, "
                    "through_address_id = ? WHERE chain = ?", [int(top), params, run_id, utcnow(), top_address, chain])
    mem.state, mem.account = (int(top), params, top_address, run_id), account
    memory[chain] = mem
    result.addresses, result.clusters, result.largest = mem.addresses, mem.clusters, mem.largest
    clock("write")
    return result


class _Clock:
    """Seconds since the last call, recorded under a phase name."""

    def __init__(self, into: dict[str, float]):
        self.into, self.last = into, time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.into[phase] = round(self.into.get(phase, 0.0) + now - self.last, 4)
        self.last = now


class _Background(threading.Thread):
    """``fn(*args)`` in a thread, started at once: for the compiled kernels (``nogil``), which then run while
    the calling thread waits in DuckDB (which releases the GIL too). :meth:`result` joins and re-raises."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args, self.value, self.error = fn, args, None, None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:  # handed to the caller by result()
            self.error = exc

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


@contextlib.contextmanager
def _joined(job: _Background | None):
    """Run the block; if it fails, wait for ``job`` before the error goes on (its arrays must not change
    while the caller rolls back)."""
    try:
        yield
    except BaseException:
        if job is not None:
            job.join()
        raise


def _one_pass(links: list[LinkHeuristic]) -> bool:
    """Multi-input alone (the default): its pairs are found and unioned in one compiled pass."""
    return len(links) == 1 and isinstance(links[0], MultiInput)


def _one_pass_merges(out: tuple, result: ClusterResult) -> dict:
    """The merge records of :func:`~heuristics.clustering.unionfind.multi_input_union`'s result ``out``."""
    result.pairs, result.unresolved_inputs, *cols = out
    m = dict(zip(("tx_id", "a", "b", "weak", "surviving_id", "absorbed_id", "size_a", "size_b", "gone"), cols,
                 strict=True))
    m["confidence"] = np.where(m.pop("weak"), 0.6, 1.0)
    m["rank"] = np.zeros(m["tx_id"].size, np.int8)
    return m


def _insert_evidence(store: Store, chain: str, run_id: int, m: dict, codes: np.ndarray | None) -> None:
    """The merges ``m`` into ``cluster_evidence``; ``codes``: the heuristics' codes by rank."""
    if not m["tx_id"].size:
        return
    evidence = pa.table({
        "id_a": m["a"], "id_b": m["b"], "tx_id": m["tx_id"], "heuristic": codes[m["rank"]],
        "confidence": m["confidence"], "surviving_id": m["surviving_id"], "absorbed_id": m["absorbed_id"],
        "size_a": m["size_a"], "size_b": m["size_b"],
    })
    with store.view("_evidence", evidence):
        store.con.execute("""INSERT INTO cluster_evidence SELECT ?, id_a, id_b, tx_id, heuristic, confidence,
                             surviving_id, absorbed_id, size_a, size_b, ? FROM _evidence""", [chain, run_id])


_MERGE_COLUMNS = ("tx_id", "a", "b", "rank", "surviving_id", "absorbed_id", "size_a", "size_b", "gone")


def _no_merges() -> dict[str, np.ndarray]:
    empty = np.zeros(0, np.int64)
    return {**{c: empty for c in _MERGE_COLUMNS}, "confidence": np.zeros(0)}


def _merges(store: Store, chain: str, after: int, links: list[LinkHeuristic], result: ClusterResult,
            flags: pa.Table | None, inputs: Columns | None, parent: np.ndarray, size: np.ndarray, clock: _Clock) -> dict:
    """Union every heuristic's pairs above ``after`` into the forest (``parent``, ``size``, changed in place);
    return the pairs that joined two clusters (the evidence) with their records: tx_id, a, b, confidence, rank
    (the heuristic's place in ``links``), surviving and absorbed roots, both sizes before, the absorbed size.
    Every pair is built and ordered first (:func:`_pairs`), then unioned
    (:func:`~heuristics.clustering.unionfind.union_pairs`): the path of change heuristics and account-model
    chains. Multi-input alone on a UTXO chain takes :func:`~heuristics.clustering.unionfind.multi_input_union`
    in :func:`_cluster` instead, which gives the same merges for the same pairs."""
    from heuristics.clustering.unionfind import union_pairs

    pairs = _pairs(store, chain, after, links, result, flags, inputs)
    a, b = pairs["a"], pairs["b"]
    result.pairs = int(a.size)
    clock("pairs")
    merged, survive, absorb, size_a, size_b, gone = union_pairs(parent, size, a, b)
    clock("union")
    return {"tx_id": pairs["tx_id"][merged], "a": a[merged], "b": b[merged], "confidence": pairs["confidence"][merged],
            "rank": pairs["rank"][merged], "surviving_id": survive[merged], "absorbed_id": absorb[merged],
            "size_a": size_a[merged], "size_b": size_b[merged], "gone": gone[merged]}


def _pairs(store: Store, chain: str, after: int, links: list[LinkHeuristic], result: ClusterResult,
           flags: pa.Table | None, inputs: Columns | None) -> dict:
    """Every heuristic's (tx_id, a, b, confidence) pairs above ``after``, in the order the union-find takes
    them: by transaction, then heuristic (``rank``: its place in ``links``), then b, then a."""
    parts = []
    for rank, h in enumerate(links):
        if isinstance(h, MultiInput):
            tx, a, b, conf, result.unresolved_inputs = h.pairs(store, chain, after, flags, inputs)
        else:
            sql, params = h.pairs_sql(chain, after)
            t = store.arrow(f"SELECT tx_id, a, b, confidence FROM ({sql})", params)
            tx, a, b = (t[c].to_numpy().astype(np.int64) for c in ("tx_id", "a", "b"))
            conf = t["confidence"].to_numpy().astype(np.float64)
        parts.append((tx, a, b, conf, np.full(tx.size, rank, np.int64)))
    tx, a, b, conf, rank = (np.concatenate(c) for c in zip(*parts, strict=True))
    if len(parts) > 1 or not isinstance(links[0], MultiInput):
        order = np.lexsort((a, b, rank, tx))
        tx, a, b, conf, rank = tx[order], a[order], b[order], conf[order], rank[order]
    return {"tx_id": tx, "a": a, "b": b, "confidence": conf, "rank": rank}


def _insert(store: Store, table: str, chain: str, run_id: int, ids: np.ndarray, cluster_ids: np.ndarray) -> None:
    """Rows (chain, id, cluster_id, run_id) into ``cluster_members`` or ``cluster_renames``."""
    if ids.size:
        with store.view("_rows", pa.table({"id": ids, "cluster_id": cluster_ids})):
            store.con.execute(f"INSERT INTO {table} SELECT ?, id, cluster_id, ? FROM _rows", [chain, run_id])


def _absorb(store: Store, chain: str, run_id: int, absorbed: np.ndarray, final: np.ndarray, sizes: np.ndarray,
            mem: ClusterMemory) -> None:
    """Record that the clusters rooted at ``absorbed`` (of ``sizes`` addresses) now belong to ``final``
    without rewriting their members: a single address gets its ``cluster_members`` row; a bigger cluster's
    root gets a ``cluster_renames`` row, and the renames that pointed at it point at ``final`` (renames stay
    one hop, so the ``clusters`` view resolves any address with one join). A full run leaves no renames.
    ``mem.renamed_to`` tells which roots renames point at: the UPDATE runs only if an absorbed root is one."""
    single = sizes == 1
    _insert(store, "cluster_members", chain, run_id, absorbed[single], final[single])
    if single.all():
        return
    old, new = absorbed[~single], final[~single]
    if mem.renamed_to is None or mem.renamed_to[old].any():
        with store.view("_renamed", pa.table({"old": old, "new": new})):
            store.con.execute("""UPDATE cluster_renames SET cluster_id = r.new, run_id = ? FROM _renamed r
                                 WHERE cluster_renames.chain = ? AND cluster_renames.cluster_id = r.old""",
                              [run_id, chain])
    if mem.renamed_to is not None:
        mem.renamed_to[old] = False
        mem.renamed_to[new] = True
    _insert(store, "cluster_renames", chain, run_id, absorbed[~single], final[~single])


def _heuristic_codes(store: Store, names: list[str], known: dict[str, int]) -> np.ndarray:
    """The codes of ``names`` in ``cluster_heuristics`` (new names get the next codes); ``known``: the codes
    seen so far, completed from the table when a name is missing."""
    if not all(n in known for n in names):
        known.update(store.query("SELECT name, code FROM cluster_heuristics"))
        for name in names:
            if name not in known:
                known[name] = max(known.values(), default=-1) + 1
                store.con.execute("INSERT INTO cluster_heuristics VALUES (?, ?)", [known[name], name])
    return np.array([known[n] for n in names], np.int32)


def _is_account(store: Store, chain: str) -> bool:
    return store.scalar("SELECT kind FROM chains WHERE chain = ?", [chain]) == "account"


# -- explaining ------------------------------------------------------------------------------------------
@dataclass
class Link:
    address_a: str
    address_b: str
    heuristic: str
    txid: str
    confidence: float


def explain(store: Store, a: str, b: str, chain: str = "bitcoin") -> list[Link] | None:
    """The chain of evidence joining addresses ``a`` and ``b``: the merges on the path between them in
    their cluster's evidence tree (unique, since only merges that joined two clusters are kept). None if
    they are not in one cluster; [] if a == b."""
    rows = store.query(
        "SELECT address, address_id, cluster_id FROM clusters WHERE chain = ? AND address IN (?, ?)", [chain, a, b])
    found = {r[0]: (r[1], r[2]) for r in rows}
    if a not in found or b not in found or found[a][1] != found[b][1]:
        return None
    if a == b:
        return []
    links = store.query(
        """SELECT id_a, id_b FROM cluster_evidence WHERE chain = ? AND id_a IN
           (SELECT address_id FROM clusters WHERE chain = ? AND cluster_id = ?)""", [chain, chain, found[a][1]])
    graph: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for ia, ib in links:
        graph.setdefault(ia, []).append((ib, (ia, ib)))
        graph.setdefault(ib, []).append((ia, (ia, ib)))
    start, goal = found[a][0], found[b][0]
    back: dict[int, tuple[int, tuple[int, int]] | None] = {start: None}
    queue = deque([start])
    while queue and goal not in back:
        node = queue.popleft()
        for nxt, link in graph.get(node, ()):
            if nxt not in back:
                back[nxt] = (node, link)
                queue.append(nxt)
    if goal not in back:
        return None
    path: list[tuple[int, int]] = []
    node = goal
    while back[node] is not None:
        node, link = back[node]
        path.append(link)
    path.reverse()
    text = {(r[0], r[1]): r[2:] for r in store.query(
        """SELECT id_a, id_b, address_a, address_b, heuristic, txid, confidence FROM cluster_links
           WHERE chain = ? AND id_a IN (SELECT unnest(?)) AND id_b IN (SELECT unnest(?))""",
        [chain, [p[0] for p in path], [p[1] for p in path]])}
    return [Link(*text[p]) for p in path]


def super_clusters(store: Store, min_size: int = 1000, chain: str = "bitcoin", links_per_cluster: int = 10) -> list[dict]:
    """Clusters of at least ``min_size`` (≥ 2) addresses, each with the merges that joined the biggest pieces
    (largest smaller side first): where a false link would have done the most damage."""
    out = []
    for cluster_id, size in store.query(
            """SELECT cluster_id, count(*) AS n FROM clusters WHERE chain = ? GROUP BY cluster_id
               HAVING count(*) >= ? ORDER BY n DESC, cluster_id""", [chain, max(min_size, 2)]):
        members = "(SELECT address_id FROM clusters WHERE chain = ? AND cluster_id = ?)"
        links = store.query(
            f"""SELECT address_a, address_b, heuristic, txid, confidence, size_a, size_b FROM cluster_links
               WHERE chain = ? AND id_a IN {members} ORDER BY least(size_a, size_b) DESC, txid LIMIT ?""",
            [chain, chain, cluster_id, links_per_cluster])
        by_heuristic = dict(store.query(
            f"""SELECT h.name, count(*) FROM cluster_evidence e JOIN cluster_heuristics h ON h.code = e.heuristic
               WHERE e.chain = ? AND e.id_a IN {members} GROUP BY h.name""",
            [chain, chain, cluster_id]))
        out.append({"cluster_id": cluster_id, "size": size, "links_by_heuristic": by_heuristic,
                    "biggest_merges": [dict(zip(("address_a", "address_b", "heuristic", "txid", "confidence",
                                                 "size_a", "size_b"), r, strict=True)) for r in links]})
    return out
