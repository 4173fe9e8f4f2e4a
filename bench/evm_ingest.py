"""Benchmark: `tracer ingest evm` against ethereum-etl on the same anvil chain, same range.

    .venv/bin/python bench/evm_ingest.py [--blocks 2000] [--per-block 10] [--repeat 3] [--skip-etl]

1. Starts anvil on a free 127.0.0.1 port and builds a chain of ``--blocks`` blocks, each holding one
   ERC-20 ``scatter`` transaction (``--per-block`` Transfer logs) and two ether payments, sent as
   JSON-RPC batches with automine off and one ``evm_mine`` per block.
2. Installs ethereum-etl from PyPI into its own venv (``.cache/etl-venv``, git-ignored) if missing.
3. Runs, each as its own process (wall time and peak RSS of that process), tracer once per transport
   (``--transport web3``: web3.py's HTTPProvider, the default; ``--transport raw``: requests):
   - tracer: ``tracer ingest evm`` with block receipts (status, fees) — more data than the peer reads;
   - tracer, ``--receipts none`` (blocks + eth_getLogs), the same data ethereum-etl reads;
   - ethereum-etl ``export_blocks_and_transactions`` + ``export_token_transfers`` (CSV).
   The tools take turns, ``--repeat`` times each; the fastest run of each is reported (the machine is
   shared; every run's wall time is listed too). Each tool's start-up is its same command over block 0
   alone, so the table also gives the ratio of the time spent past start-up.
4. Checks that all runs agree on the row counts (blocks, transactions, token transfers), and prints
   the rates and ratios as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / ".tools" / "node_modules" / ".bin" / "anvil"
ETL_VENV = ROOT / ".cache" / "etl-venv"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rpc:
    def __init__(self, url: str) -> None:
        self.url, self.s = url, requests.Session()

    def batch(self, calls: list[tuple[str, list]]) -> list:
        body = self.s.post(self.url, json=[{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                                           for i, (m, p) in enumerate(calls)], timeout=300).json()
        out = sorted(body, key=lambda x: x["id"])
        for x in out:
            if "error" in x:
                raise RuntimeError(f"{calls[x['id']][0]}: {x['error']}")
        return [x["result"] for x in out]

    def call(self, method: str, *params: object) -> object:
        return self.batch([(method, list(params))])[0]


def calldata(sig: str, types: list[str], args: list) -> str:
    return "0x" + function_signature_to_4byte_selector(sig).hex() + encode(types, args).hex()


def build_chain(rpc: Rpc, blocks: int, per_block: int) -> dict:
    """Deploy a token, then ``blocks`` blocks of 1 scatter (per_block transfers) + 2 ETH payments."""
    accts = [a.lower() for a in rpc.call("eth_accounts")]
    code = (ROOT / "fixtures" / "evm" / "Token.bin").read_text().strip()
    data = "0x" + code + encode(["string", "string", "uint8"], ["Tether USD", "USDT", 6]).hex()
    tx = rpc.call("eth_sendTransaction", {"from": accts[0], "data": data, "gas": hex(3_000_000)})
    rec = None
    while rec is None:  # automine may answer before the block is sealed
        rec = rpc.call("eth_getTransactionReceipt", tx)
        time.sleep(0.01)
    token = rec["contractAddress"].lower()
    rpc.call("eth_sendTransaction", {"from": accts[0], "to": token, "gas": hex(200_000),
                                     "data": calldata("mint(address,uint256)", ["address", "uint256"],
                                                      [accts[0], 10**30])})
    rng = random.Random(7)
    pool = ["0x" + rng.randbytes(20).hex() for _ in range(2000)]
    nonce = {a: int(rpc.call("eth_getTransactionCount", a, "pending"), 16) for a in accts[:3]}

    def next_nonce(a: str) -> str:
        nonce[a] += 1
        return hex(nonce[a] - 1)

    rpc.call("evm_setAutomine", False)
    t0 = time.time()
    for b in range(blocks):
        calls: list[tuple[str, list]] = []
        if True:
            to = [pool[(b * per_block + k) % len(pool)] for k in range(per_block)]
            calls.append(("eth_sendTransaction", [{
                "from": accts[0], "to": token, "gas": hex(60_000 + 30_000 * per_block), "nonce": next_nonce(accts[0]),
                "data": calldata("scatter(address[],uint256)", ["address[]", "uint256"], [to, 1000 + b])}]))
            for k in (1, 2):
                calls.append(("eth_sendTransaction", [{
                    "from": accts[k], "to": pool[(b + k * 7) % len(pool)], "gas": hex(21000),
                    "nonce": next_nonce(accts[k]),
                    "value": hex(10**15 + b)}]))
        rpc.batch(calls)  # a JSON-RPC batch may be served concurrently: mine only after it returns
        rpc.call("evm_mine")
    rpc.call("evm_setAutomine", True)
    pending = rpc.call("eth_getBlockByNumber", "pending", False)
    assert not pending or not pending["transactions"], "transactions left unmined"
    tip = int(rpc.call("eth_blockNumber"), 16)
    return {"token": token, "tip": tip, "build_seconds": round(time.time() - t0, 1)}


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` as a child of a small wrapper that reports the child's wall time and peak RSS."""
    wrapper = ("import resource, subprocess, sys, time, json; t=time.perf_counter(); "
               "r=subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "w=time.perf_counter()-t; m=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
               "print(json.dumps({'rc': r.returncode, 'wall': w, 'maxrss_kb': m, 'out': r.stdout[-4000:], "
               "'err': r.stderr[-4000:]}))")
    p = subprocess.run([PY, "-c", wrapper, *cmd], capture_output=True, text=True, env=env)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {res['err']}")
    return res


GETARGSPEC_SHIM = """\
# Written by moneytrail's bench/evm_ingest.py: ethereum-etl 2.4.2 pins eth-abi 2.x, which pins
# parsimonious 0.8.1, which imports inspect.getargspec (removed in Python 3.11). This restores it.
import inspect
from collections import namedtuple

if not hasattr(inspect, "getargspec"):
    _ArgSpec = namedtuple("ArgSpec", "args varargs keywords defaults")

    def getargspec(func):
        s = inspect.getfullargspec(func)
        return _ArgSpec(s.args, s.varargs, s.varkw, s.defaults)

    inspect.getargspec = getargspec
"""


def ensure_etl() -> Path | str:
    """ethereum-etl in its own venv; on Python ≥ 3.11 it needs the getargspec shim above."""
    exe = ETL_VENV / "bin" / "ethereumetl"
    if not exe.exists():
        ETL_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "venv", str(ETL_VENV)], check=True)
        p = subprocess.run([str(ETL_VENV / "bin" / "pip"), "install", "-q", "ethereum-etl"], capture_output=True,
                           text=True)
        if p.returncode != 0 or not exe.exists():
            return f"pip install ethereum-etl failed: {p.stderr.strip()[-1500:]}"
    site = subprocess.run([str(ETL_VENV / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "sitecustomize.py").write_text(GETARGSPEC_SHIM)
    probe = subprocess.run([str(exe), "export_blocks_and_transactions", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"ethereum-etl does not start: {probe.stderr.strip()[-800:]}"
    return exe


def count_csv(path: Path) -> int:
    with path.open(newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--per-block", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-etl", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool (the fastest is reported)")
    ap.add_argument("--transports", nargs="+", default=["web3", "raw"], choices=["web3", "raw"])
    args = ap.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    node = subprocess.Popen([str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--max-persisted-states", "0",
                             "--silent", "--gas-limit", "100000000"], stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="evm-bench-"))
    try:
        rpc = Rpc(url)
        for _ in range(200):
            try:
                rpc.call("eth_chainId")
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        chain = build_chain(rpc, args.blocks, args.per_block)
        tip = chain["tip"]
        print(f"chain: {tip + 1} blocks built in {chain['build_seconds']} s", file=sys.stderr)
        # Read everything once before timing, so that no tool is the first to touch a block.
        for lo in range(0, tip + 1, 100):
            hs = range(lo, min(lo + 100, tip + 1))
            rpc.batch([("eth_getBlockByNumber", [hex(h), True]) for h in hs]
                      + [("eth_getBlockReceipts", [hex(h)]) for h in hs])
        rpc.call("eth_getLogs", {"fromBlock": "0x0", "toBlock": hex(tip)})

        tracer_exe = str(ROOT / ".venv" / "bin" / "tracer")

        def run_tracer(extra: list[str], hi: int, db: Path) -> dict:
            db.unlink(missing_ok=True)
            r = timed([tracer_exe, "--db", str(db), "ingest", "evm", "--rpc", url, "--from-block", "0",
                       "--to-block", str(hi), "--batch-size", str(args.batch_size), "--workers", str(args.workers),
                       "--json", *extra])
            q = subprocess.run([tracer_exe, "--db", str(db), "query", "--format", "json",
                                "SELECT (SELECT count(*) FROM blocks) b, (SELECT count(*) FROM transactions) t, "
                                "(SELECT count(*) FROM transfers WHERE kind='erc20') e, (SELECT count(*) FROM "
                                "transfers WHERE kind='native') n"], capture_output=True, text=True, check=True)
            c = json.loads(q.stdout)[0]
            return {"wall": r["wall"], "maxrss_mb": r["maxrss_kb"] / 1024, "blocks": c["b"], "transactions": c["t"],
                    "token_transfers": c["e"], "native": c["n"]}

        def run_etl(etl: Path, hi: int) -> dict:
            b_out, t_out, x_out = work / "blocks.csv", work / "transactions.csv", work / "token_transfers.csv"
            r1 = timed([str(etl), "export_blocks_and_transactions", "--start-block", "0", "--end-block", str(hi),
                        "--provider-uri", url, "--blocks-output", str(b_out), "--transactions-output", str(t_out),
                        "--batch-size", str(args.batch_size), "--max-workers", str(args.workers)])
            r2 = timed([str(etl), "export_token_transfers", "--start-block", "0", "--end-block", str(hi),
                        "--provider-uri", url, "--output", str(x_out), "--batch-size", str(args.batch_size),
                        "--max-workers", str(args.workers)])
            return {"wall": r1["wall"] + r2["wall"], "maxrss_mb": max(r1["maxrss_kb"], r2["maxrss_kb"]) / 1024,
                    "blocks": count_csv(b_out), "transactions": count_csv(t_out),
                    "token_transfers": count_csv(x_out), "native": None,
                    "parts": {"export_blocks_and_transactions": round(r1["wall"], 2),
                              "export_token_transfers": round(r2["wall"], 2)}}

        tools: dict = {}
        for t in args.transports:
            tools[f"tracer {t} (block receipts)"] = (lambda hi, k, t=t: run_tracer(
                ["--transport", t], hi, work / f"{t}-r-{k}.duckdb"))
        for t in args.transports:
            tools[f"tracer {t} (--receipts none)"] = (lambda hi, k, t=t: run_tracer(
                ["--transport", t, "--receipts", "none"], hi, work / f"{t}-n-{k}.duckdb"))
        etl_note = None
        if not args.skip_etl:
            etl = ensure_etl()
            if isinstance(etl, str):
                etl_note = etl
            else:
                tools["ethereum-etl"] = lambda hi, k: run_etl(etl, hi)
        # Tools take turns (round robin), each --repeat times; the fastest run of each is reported
        # (the machine is shared: the minimum is the run least disturbed by others). Start-up: the
        # same command over block 0 alone.
        results: dict = {}
        for k in range(args.repeat):
            for label, fn in tools.items():
                r = fn(tip, k)
                if label not in results or r["wall"] < results[label]["wall"]:
                    results[label] = {**r, "walls": results.get(label, {}).get("walls", [])}
                results[label]["walls"].append(round(r["wall"], 2))
        for label, fn in tools.items():
            results[label]["startup"] = min(fn(0, "s")["wall"] for _ in range(2))
        report(results, chain, args, etl_note)
    finally:
        node.terminate()
        node.wait(timeout=10)


def report(results: dict, chain: dict, args: argparse.Namespace, etl_note: str | None) -> None:
    counts = {(r["blocks"], r["transactions"], r["token_transfers"]) for r in results.values()}
    peer = results.get("ethereum-etl")
    lines = [
        f"Chain: anvil, {chain['tip'] + 1} blocks built by the script ({args.per_block} ERC-20 transfers + 2 ETH "
        f"payments per block), batch size {args.batch_size}, {args.workers} workers for both tools. "
        f"Same row counts in every run: {'yes' if len(counts) == 1 else 'NO: ' + str(counts)}.",
        "",
        "| tool | wall s | blocks/s | token transfers/s | all transfers/s | peak RSS MB | ratio vs ethereum-etl "
        "| start-up s | ratio without start-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        transfers = r["token_transfers"] + (r["native"] or 0)
        ratio = f"{peer['wall'] / r['wall']:.2f}×" if peer else "—"
        steady = (f"{(peer['wall'] - peer['startup']) / max(r['wall'] - r['startup'], 1e-9):.2f}×"
                  if peer else "—")
        lines.append(f"| {label} | {r['wall']:.1f} | {r['blocks'] / r['wall']:,.0f} | "
                     f"{r['token_transfers'] / r['wall']:,.0f} | {transfers / r['wall']:,.0f} | "
                     f"{r['maxrss_mb']:.0f} | {ratio} | {r['startup']:.1f} | {steady} |")
    lines.append("")
    for label, r in results.items():
        lines.append(f"- {label}: {r['blocks']:,} blocks, {r['transactions']:,} transactions, "
                     f"{r['token_transfers']:,} token transfers" + (f", {r['native']:,} native transfers"
                                                                     if r["native"] is not None else "")
                     + (f"; parts {r['parts']}" if "parts" in r else "") + f"; walls {r['walls']}")
    if etl_note:
        lines.append(f"- ethereum-etl not measured: {etl_note}")
    lines.append(f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                 f"{platform.platform()}.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
