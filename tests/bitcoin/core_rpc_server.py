"""A small Bitcoin Core JSON-RPC server for tests, serving real blocks by height.

Bitcoin Core cannot be installed here, so the RPC source is tested against this server. It answers the
three calls moneytrail makes — ``getblockchaininfo``, ``getblockhash <height>``, ``getblock <hash> 0`` —
over HTTP with basic auth, single or batched, and with Bitcoin Core's error objects: -8 "Block height out
of range", -5 "Block not found", -32601 "Method not found", and HTTP 401 for bad credentials.
:meth:`CoreRPCServer.serve` switches the chain it serves, so a test can reorganise the node.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from http.server import ThreadingHTTPServer

from ..jsonrpc_http import JsonRPCHandler


class CoreRPCServer:
    def __init__(self, blocks: list[bytes], user: str = "__cookie__", password: str = "s3cret", tip: int | None = None,
                 chain: str = "main"):
        self.tip, self.chain = tip, chain
        self.serve(blocks)
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.calls: list[str] = []
        server = self

        class Handler(JsonRPCHandler):
            def do_POST(self):
                if self.headers.get("Authorization") != server.auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="jsonrpc"')
                    self.end_headers()
                    return
                self.answer_calls(self.read_body()[1], server.answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, blocks: list[bytes]) -> None:
        """Switch the best chain the node serves (a reorg): blocks by height from 0. Blocks served
        before stay retrievable by hash, as a node keeps stale blocks."""
        self.blocks = list(blocks)
        self.hashes = [hashlib.sha256(hashlib.sha256(b[:80]).digest()).digest()[::-1].hex() for b in self.blocks]
        self.by_hash = {**getattr(self, "by_hash", {}), **{h: b for h, b in zip(self.hashes, self.blocks)}}

    def answer(self, req: dict) -> dict:
        method, params, rid = req.get("method"), req.get("params", []), req.get("id")
        self.calls.append(method)

        def ok(result):
            return {"result": result, "error": None, "id": rid}

        def fail(code, message):
            return {"result": None, "error": {"code": code, "message": message}, "id": rid}

        if method == "getblockchaininfo":
            tip = len(self.blocks) - 1 if self.tip is None else self.tip
            return ok({"chain": self.chain, "blocks": tip, "bestblockhash": self.hashes[min(tip, len(self.hashes) - 1)]})
        if method == "getblockhash":
            height = params[0]
            if not isinstance(height, int) or not 0 <= height < len(self.blocks):
                return fail(-8, "Block height out of range")
            return ok(self.hashes[height])
        if method == "getblock":
            block = self.by_hash.get(params[0])
            if block is None:
                return fail(-5, "Block not found")
            if len(params) < 2 or params[1] != 0:
                return fail(-8, "this test server only serves verbosity 0")
            return ok(block.hex())
        return fail(-32601, "Method not found")

    def __enter__(self) -> CoreRPCServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
