"""The HTTP side shared by the tests' local JSON-RPC servers (Bitcoin Core stand-in, recorded mainnet
node, fault proxy): read a JSON body, answer single or batched calls, reply as JSON, log nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler


class JsonRPCHandler(BaseHTTPRequestHandler):
    def read_body(self) -> tuple[bytes, object]:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        return raw, json.loads(raw)

    def send_json(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer_calls(self, body: object, answer: Callable[[dict], dict]) -> None:
        """Answer one call or a batch (a list) with ``answer`` per call, as a JSON-RPC server does."""
        reply = [answer(c) for c in body] if isinstance(body, list) else answer(body)
        self.send_json(200, json.dumps(reply).encode())

    def log_message(self, *args: object) -> None:  # keep test output quiet
        return None
