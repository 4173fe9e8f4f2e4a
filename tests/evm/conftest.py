"""A real anvil node for the EVM tests, and a small driver to put transactions on it.

anvil (Foundry, npm @foundry-rs/anvil, installed by ``make anvil``) is started once per session on a
free 127.0.0.1 port with ``--max-persisted-states 0`` (all states in memory), and stopped after.
Tests that rewrite history (reorgs) get their own node from ``anvil_factory``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "node_modules" / ".bin"
ANVIL = TOOLS / "anvil"
FIXTURES = ROOT / "fixtures"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """A running anvil process and a JSON-RPC helper to drive it."""

    def __init__(self, *extra: str) -> None:
        if not ANVIL.exists():
            subprocess.run(["make", "anvil"], cwd=ROOT, check=True, capture_output=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(ANVIL), "--port", str(self.port), "--host", "127.0.0.1", "--max-persisted-states", "0",
             "--silent", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.session = requests.Session()
        deadline = time.time() + 30
        while True:
            try:
                self.rpc("eth_chainId")
                break
            except requests.ConnectionError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"anvil did not start: {self.proc.stderr.read()!r}") from None
                time.sleep(0.05)
        self.accounts = [a.lower() for a in self.rpc("eth_accounts")]
        self.automining = True

    def rpc(self, method: str, *params: object) -> object:
        r = self.session.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                              "params": list(params)}, timeout=30)
        body = r.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def rpc_batch(self, calls: list[tuple[str, list]]) -> list[object]:
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        body = self.session.post(self.url, data=json.dumps(payload), timeout=120,
                                 headers={"Content-Type": "application/json"}).json()
        out = sorted(body, key=lambda x: x["id"])
        for item in out:
            if "error" in item:
                raise RuntimeError(f"{calls[item['id']][0]}: {item['error']}")
        return [x["result"] for x in out]

    # -- transactions -------------------------------------------------------------------------------
    def send(self, frm: str, to: str | None = None, value: int = 0, data: str = "0x",
             gas: int | None = None) -> str:
        tx: dict = {"from": frm, "value": hex(value), "data": data}
        if to is not None:
            tx["to"] = to
        if gas is not None:
            tx["gas"] = hex(gas)
        txid = str(self.rpc("eth_sendTransaction", tx))
        if self.automining:
            self.wait_mined(txid)
        return txid

    def wait_mined(self, txid: str) -> dict:
        """anvil's automine may answer before the block is sealed (seen under load): wait for it."""
        deadline = time.time() + 30
        while True:
            rec = self.rpc("eth_getTransactionReceipt", txid)
            if rec is not None:
                return rec  # type: ignore[return-value]
            if time.time() > deadline:
                raise RuntimeError(f"{txid} not mined")
            time.sleep(0.01)

    def receipt(self, txid: str) -> dict:
        return self.rpc("eth_getTransactionReceipt", txid)  # type: ignore[return-value]

    def deploy(self, frm: str, name: str, types: list[str] | None = None, args: list | None = None) -> str:
        code = (FIXTURES / "evm" / f"{name}.bin").read_text().strip()
        data = "0x" + code + (encode(types, args).hex() if types else "")
        txid = self.send(frm, None, 0, data, gas=3_000_000)
        return self.wait_mined(txid)["contractAddress"].lower()

    def mine(self, n: int = 1) -> None:
        self.rpc("anvil_mine", hex(n))

    def automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", on)
        self.automining = on

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)  # type: ignore[arg-type]

    def balance(self, addr: str, block: int) -> int:
        return int(self.rpc("eth_getBalance", addr, hex(block)), 16)  # type: ignore[arg-type]

    def call_uint(self, to: str, sig: str, types: list[str], args: list, block: int) -> int:
        return int(self.rpc("eth_call", {"to": to, "data": calldata(sig, types, args)}, hex(block)), 16)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def calldata(sig: str, types: list[str], args: list) -> str:
    return "0x" + function_signature_to_4byte_selector(sig).hex() + encode(types, args).hex()


@pytest.fixture(scope="session")
def anvil() -> Iterator[Node]:
    node = Node()
    yield node
    node.stop()


@pytest.fixture
def anvil_factory() -> Iterator:
    nodes: list[Node] = []

    def make(*extra: str) -> Node:
        n = Node(*extra)
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.stop()


class Scenario:
    """What the scripted scenario put on chain, for the tests to check against."""

    def __init__(self, node: Node) -> None:
        self.node = node
        a = node.accounts
        self.start = node.height() + 1
        self.usdt = node.deploy(a[0], "Token", ["string", "string", "uint8"], ["Tether USD", "USDT", 6])
        self.big = node.deploy(a[0], "Token", ["string", "string", "uint8"], ["Big Token", "BIG", 18])
        self.splitter = node.deploy(a[0], "Splitter")
        self.outsider = "0x000000000000000000000000000000000000beef"
        self.txs: dict[str, str] = {}
        mint = "mint(address,uint256)"
        xfer = "transfer(address,uint256)"
        node.automine(False)
        t = self.txs
        t["mint_usdt"] = node.send(a[0], self.usdt, data=calldata(mint, ["address", "uint256"], [a[1], 10**12]))
        t["mint_big"] = node.send(a[0], self.big, data=calldata(mint, ["address", "uint256"], [a[2], 3 * 2**70]))
        t["mint_huge"] = node.send(a[0], self.big, data=calldata(mint, ["address", "uint256"], [a[3], 2**200]))
        node.mine()
        t["eth"] = node.send(a[1], a[4], 15 * 10**17)
        t["eth_self"] = node.send(a[4], a[4], 10**17)
        t["eth_zero"] = node.send(a[5], a[6], 0)
        t["eth_above_2_64"] = node.send(a[1], a[7], 20 * 10**18)
        t["eth_outsider"] = node.send(a[2], self.outsider, 12345)
        t["usdt"] = node.send(a[1], self.usdt, data=calldata(xfer, ["address", "uint256"], [a[4], 250 * 10**6]))
        node.mine()
        t["usdt_self"] = node.send(a[4], self.usdt, data=calldata(xfer, ["address", "uint256"], [a[4], 10**6]))
        t["usdt_zero"] = node.send(a[1], self.usdt, data=calldata(xfer, ["address", "uint256"], [a[5], 0]))
        t["big_above_2_64"] = node.send(a[2], self.big, data=calldata(xfer, ["address", "uint256"],
                                                                       [a[6], 2**65 + 7]))
        t["big_above_1e38"] = node.send(a[3], self.big, data=calldata(xfer, ["address", "uint256"],
                                                                       [a[7], 10**40 + 1]))
        # Reverted: more tokens than the sender holds, and a payout that reverts with ether attached.
        t["usdt_reverted"] = node.send(a[5], self.usdt, data=calldata(xfer, ["address", "uint256"], [a[6], 1]),
                                       gas=100_000)
        t["split_reverted"] = node.send(a[5], self.splitter, 10**18,
                                        calldata("splitThenFail(address[])", ["address[]"], [[a[8], a[9]]]),
                                        gas=200_000)
        node.mine()
        # Internal transfers: a split to three payees, and a payout whose second inner call fails.
        t["split"] = node.send(a[6], self.splitter, 3 * 10**18,
                               calldata("split(address[])", ["address[]"], [[a[8], a[9], self.outsider]]))
        t["split_partial"] = node.send(a[6], self.splitter, 2 * 10**18,
                                       calldata("payTryRevert(address,address)", ["address", "address"],
                                                [a[8], self.usdt]), gas=200_000)
        node.mine()
        node.automine(True)
        self.end = node.height()
        for name, txid in t.items():
            st = int(node.receipt(txid)["status"], 16)
            assert st == (0 if name.endswith("_reverted") else 1), name


@pytest.fixture(scope="session")
def scenario(anvil: Node) -> Scenario:
    return Scenario(anvil)


@pytest.fixture
def clean(tmp_path, anvil, scenario):
    """The EVM rows of one clean ingest of the scenario (for killed/resumed/rerun comparisons)."""
    import tracer
    from tracer.ingest.evm.node import ingest_evm

    from .test_node_failures import snapshot

    store = tracer.open_store(tmp_path / "clean.duckdb")
    ingest_evm(store, anvil.url, 0, scenario.end)
    snap = snapshot(store)
    store.close()
    return snap
