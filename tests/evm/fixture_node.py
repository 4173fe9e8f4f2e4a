"""A JSON-RPC server that answers from ethereum-etl's saved mainnet responses (fixtures/ethereum).

The files ``web3_response.<method>_<param>_<param>.json`` are what a real mainnet node answered when
ethereum-etl recorded its tests. This server replays them over real HTTP, so ``tracer ingest evm``
runs its whole fetch → map → load path on real mainnet data. It answers only what was recorded,
plus three facts that follow from the recordings: the chain id (1: mainnet), the tip (the highest
recorded block), ``eth_getBlockReceipts`` "method not found" (ethereum-etl did not record it, so the
client must fall back to per-transaction receipts), and an empty eth_getLogs for blocks whose
logsBloom is all zeros (the bloom filter proves they hold no logs).
"""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from ..jsonrpc_http import JsonRPCHandler


class FixtureNode:
    def __init__(self, *dirs: Path) -> None:
        self.files: dict[str, dict] = {}
        for d in dirs:
            for f in d.glob("web3_response.*.json"):
                self.files[f.name[len("web3_response."):-len(".json")]] = json.loads(f.read_text())
        self.blocks = {int(v["result"]["number"], 16): v["result"] for k, v in self.files.items()
                       if k.startswith("eth_getBlockByNumber_0x")}
        latest = self.files.get("eth_getBlockByNumber_latest_false")
        self.tip = int(latest["result"]["number"], 16) if latest else max(self.blocks)
        node = self

        class Handler(JsonRPCHandler):
            def do_POST(self) -> None:
                self.answer_calls(self.read_body()[1], node.answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, call: dict) -> dict:
        m, p, i = call["method"], call.get("params", []), call.get("id")
        def ok(result):
            return {"jsonrpc": "2.0", "id": i, "result": result}
        if m == "eth_chainId":
            return ok("0x1")
        if m == "eth_blockNumber":
            return ok(hex(self.tip))
        if m == "eth_getBlockReceipts":
            return {"jsonrpc": "2.0", "id": i, "error": {"code": -32601, "message": "Method not found"}}
        if m == "eth_getLogs":
            lo, hi = int(p[0]["fromBlock"], 16), int(p[0]["toBlock"], 16)
            key = f"eth_newFilter_fromBlock_{hex(lo)}_toBlock_{hex(hi)}_topics_{p[0]['topics'][0]}"
            if key in self.files:
                return ok(self.files["eth_getFilterLogs_" + self.files[key]["result"]]["result"])
            if all(int(self.blocks[h]["logsBloom"], 16) == 0 for h in range(lo, hi + 1)):
                return ok([])
        key = "_".join([m] + [str(x).lower() for x in p])
        if key in self.files:
            return ok(self.files[key]["result"])
        return {"jsonrpc": "2.0", "id": i, "error": {"code": -32000, "message": f"not recorded: {key}"}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
