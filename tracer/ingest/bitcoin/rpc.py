"""A minimal Bitcoin Core JSON-RPC client: ``getblockchaininfo``, ``getblockhash``, ``getblock <hash> 0``.

It knows nothing of the store. Calls are sent as JSON-RPC batches (Bitcoin Core accepts an array of
requests on one HTTP POST), with retries and back-off on connection failures. Authentication is the
node's cookie file (``<datadir>/.cookie``, ``__cookie__:<password>``) or ``rpcuser``/``rpcpassword``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from tracer.errors import IngestError


class BitcoinRPC:
    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        cookie: str | Path | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ):
        self.url = url
        self.session = requests.Session()
        if cookie is not None:
            try:
                text = Path(cookie).read_text().strip()
            except OSError as exc:
                raise IngestError(str(cookie), "cookie file", f"cannot read the RPC cookie: {exc}") from None
            user, _, password = text.partition(":")
        if user is not None:
            self.session.auth = (user, password or "")
        self.timeout, self.retries = timeout, retries
        self._id = 0

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send calls as one JSON-RPC batch; return results in order or raise naming the failed call."""
        if not calls:
            return []
        payload = []
        for method, params in calls:
            self._id += 1
            payload.append({"jsonrpc": "1.0", "id": self._id, "method": method, "params": params})
        first_id = payload[0]["id"]
        body = self._post(payload, calls)
        if not isinstance(body, list):
            raise IngestError(self.url, _describe(calls[0]), f"malformed JSON-RPC batch response: {str(body)[:200]}")
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        results = []
        for k, call in enumerate(calls):
            item = by_id.get(first_id + k)
            if item is None:
                raise IngestError(self.url, _describe(call), "no response to this call in the batch")
            if item.get("error"):
                err = item["error"]
                msg = err.get("message") if isinstance(err, dict) else str(err)
                code = err.get("code") if isinstance(err, dict) else None
                raise IngestError(self.url, _describe(call), f"node error {code}: {msg}")
            results.append(item.get("result"))
        return results

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def _post(self, payload: list[dict], calls: list[tuple[str, list[Any]]]) -> Any:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                resp = self.session.post(self.url, json=payload, timeout=self.timeout)
            except requests.RequestException as exc:
                if attempt == self.retries:
                    raise IngestError(self.url, _describe(calls[0]), f"node unreachable after {attempt + 1} tries: {exc}") from None
                time.sleep(delay)
                delay *= 2
                continue
            if resp.status_code == 401:
                raise IngestError(self.url, _describe(calls[0]), "authentication refused (check the cookie or user/password)")
            try:
                return resp.json()
            except ValueError:
                if resp.status_code >= 500 and attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise IngestError(self.url, _describe(calls[0]), f"HTTP {resp.status_code}, not JSON: {resp.text[:200]!r}") from None
        raise AssertionError("unreachable")


def _describe(call: tuple[str, list[Any]]) -> str:
    method, params = call
    return f"{method}({', '.join(map(str, params))})"
