"""A real HTTP proxy in front of anvil that can misbehave on cue: the node going down, timing out,
answering garbage, or saying a log query is too large. The node behind it is a real anvil; the
proxy only decides, per request, whether to forward it or to fail the way real nodes and
providers fail (the error texts are geth's and common providers')."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer

import requests

from ..jsonrpc_http import JsonRPCHandler

Rule = Callable[[list[dict]], object]


class FaultProxy:
    def __init__(self, upstream: str, rule: Rule | None = None) -> None:
        self.upstream = upstream
        self.rule: Rule = rule or (lambda calls: None)
        self.seen: list[list[dict]] = []
        proxy = self

        class Handler(JsonRPCHandler):
            def do_POST(self) -> None:
                raw, body = self.read_body()
                calls = body if isinstance(body, list) else [body]
                proxy.seen.append(calls)
                action = proxy.rule(calls)
                if action == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(action, tuple) and action[0] == "delay":
                    time.sleep(action[1])
                    action = None
                if action == "garbage":
                    self.send_json(200, b'{"jsonrpc": "2.0", "id": 0, "result": {"number": "0x1", "hash')
                    return
                if action == "http500":
                    self.send_json(500, b"upstream unavailable")
                    return
                if isinstance(action, tuple) and action[0] == "error":
                    reply = [{"jsonrpc": "2.0", "id": c["id"], "error": {"code": action[1], "message": action[2]}}
                             for c in calls]
                    self.send_json(200, json.dumps(reply if isinstance(body, list) else reply[0]).encode())
                    return
                if isinstance(action, tuple) and action[0] == "replace":
                    up = requests.post(proxy.upstream, data=raw, headers={"Content-Type": "application/json"},
                                       timeout=60).json()
                    self.send_json(200, json.dumps(action[1](up)).encode())
                    return
                up = requests.post(proxy.upstream, data=raw, headers={"Content-Type": "application/json"},
                                   timeout=60)
                self.send_json(up.status_code, up.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def block_of(call: dict) -> int | None:
    """The block a call asks about (eth_getBlockByNumber, eth_getBlockReceipts, traces), if any."""
    if call["method"] in ("eth_getBlockByNumber", "eth_getBlockReceipts", "debug_traceBlockByNumber"):
        p = call["params"][0]
        return int(p, 16) if isinstance(p, str) and p.startswith("0x") else None
    return None
