"""A small Ethereum JSON-RPC client built for bulk reads: batches, retries, shrinking log ranges.

It knows JSON-RPC and nothing of the store (fetch → map → load, as in ethereum-etl's jobs/mappers
split). Every failure is an :class:`~tracer.errors.IngestError` naming the node URL, the block (or
block range) and the JSON-RPC method, so an analyst can tell *which* call failed and retry it.

Two transports carry the same batches (``transport=``):

* ``web3`` (the default): web3.py's :class:`~web3.HTTPProvider` — its HTTP session handling, request
  encoding and JSON-RPC batch support (``provider.make_batch_request``, web3 ≥ 7), one provider per
  fetch thread. The batch goes through the provider, not through ``w3.batch_requests()``: that layer
  formats every reply (checksummed addresses, AttributeDicts, HexBytes) and raises on the first failed
  call of a batch, while ingest wants the raw hex strings (they map straight to the store's lowercase
  columns) and the failing call's own block and method. The provider's JSON encoding and decoding
  steps use orjson (same values, ~3× faster than the standard library; a malformed reply keeps its
  body for quarantine). web3 also reads token metadata (contract calls with the ERC-20 ABI,
  :mod:`tracer.ingest.evm.tokens`) on the same provider.
* ``raw``: the same JSON-RPC batches posted with :mod:`requests` directly (kept for comparison and as
  a fallback; docs/benchmarks.md measures both against ethereum-etl).

Retries, back-off and error naming are this module's, identical for both transports (web3's own
retry of single requests is switched off so that it does not multiply them).

Batching follows the JSON-RPC 2.0 spec (https://www.jsonrpc.org/specification#batch): one HTTP POST
carries many calls, answered in any order and matched by ``id``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from tracer.errors import IngestError

if TYPE_CHECKING:  # web3 is imported when first used: ~1 s of start-up that `tracer ingest etl` need not pay
    from web3 import Web3

try:  # orjson parses JSON-RPC replies ~3× faster than the standard library (same values: ints exact)
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a declared dependency; stay usable without it
    _loads = json.loads

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

# JSON-RPC error codes and messages that mean "method not available on this node".
_METHOD_MISSING_CODES = {-32601, -32004}
# Messages nodes use when an eth_getLogs range returns too much (geth, erigon, nethermind,
# Alchemy/Infura-style providers). The range is split in two and both halves retried.
_TOO_LARGE_HINTS = (
    "more than",
    "too many",
    "too large",
    "limit exceeded",
    "response size",
    "query timeout",
    "block range",
    "range is too",
    "exceed",
)


class RpcError(IngestError):
    """A JSON-RPC call failed (after retries): names node, block and method."""

    def __init__(self, url: str, position: str, method: str, reason: str, code: int | None = None,
                 raw: str | None = None):
        self.method, self.code, self.raw = method, code, raw
        super().__init__(url, position, reason, item=method)


class MethodNotSupported(RpcError):
    """The node does not offer this method (JSON-RPC -32601)."""


TRANSPORTS = ("web3", "raw")


class MalformedReply(ValueError):
    """A reply body that is not JSON; keeps the body for quarantine."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        super().__init__(f"malformed JSON response ({body[:80]!r})")


_PROVIDER_CLASS: list[type] = []


def _provider_class() -> type:
    """web3's HTTP provider with orjson at its two JSON hooks (the class is built on first use)."""
    if _PROVIDER_CLASS:
        return _PROVIDER_CLASS[0]
    from web3 import HTTPProvider

    class ProviderWithOrjson(HTTPProvider):
        """web3's HTTP provider with orjson at its two JSON hooks; a malformed reply raised with its body.

        ``encode_batch_rpc_request`` and ``decode_rpc_response`` are the provider's JSON encoding and
        decoding steps (web3/providers/base.py); the stock ones go through the standard library's json
        with web3's encoder class (about 25 µs per call in a 200-call batch) and drop the body from a
        decoding error. Ids still come from the provider's own ``request_counter``, as in the stock one.
        """

        def encode_batch_rpc_request(self, requests: list[tuple[Any, Any]]) -> bytes:
            return _dumps([{"jsonrpc": "2.0", "method": method, "params": params or [],
                            "id": next(self.request_counter)} for method, params in requests])

        @staticmethod
        def decode_rpc_response(raw_response: bytes) -> Any:
            try:
                return _parse(raw_response)
            except ValueError:
                raise MalformedReply(raw_response) from None

    _PROVIDER_CLASS.append(ProviderWithOrjson)
    return ProviderWithOrjson


@dataclass(frozen=True)
class Call:
    """One JSON-RPC call plus where it points in the chain (for error messages)."""

    method: str
    params: list[Any]
    position: str  # e.g. "block 17", "blocks 10-20", "tx 0xab…"


class RpcClient:
    """Thread-safe JSON-RPC over HTTP with batches, timeouts and retries with backoff.

    ``retries`` counts extra attempts after the first; the wait doubles each time from ``backoff``
    seconds (with jitter), as recommended for rate-limited providers (HTTP 429) and nodes that are
    restarting. Errors answered by the node itself (bad params, reverted eth_call) are not retried.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.25,
        max_batch: int = 500,
        transport: str = "web3",
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        self.url = url
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_batch = max_batch
        self._local = threading.local()
        self.requests_sent = 0
        self.calls_sent = 0
        self.shrinks = 0  # eth_getLogs ranges split because the node said "too large"

    # -- transport ----------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["Content-Type"] = "application/json"
            self._local.session = s
        return s

    @property
    def web3(self) -> Web3:
        """This thread's :class:`~web3.Web3` on the node (one provider, one HTTP session per thread)."""
        w3 = getattr(self._local, "w3", None)
        if w3 is None:
            from web3 import Web3

            provider = _provider_class()(self.url, request_kwargs={"timeout": self.timeout},
                                               exception_retry_configuration=None)
            w3 = self._local.w3 = Web3(provider)
        return w3

    def _post_web3(self, calls: Sequence[Call], position: str, method: str) -> tuple[Any, int]:
        """One batch through web3's provider, with this client's retries; (body, id of the first call).

        The provider numbers requests from its own counter; it belongs to this thread alone, so the
        ids of one batch are consecutive from the next value of that counter.
        """
        provider = self.web3.provider
        requests_ = [(c.method, c.params) for c in calls]
        last, raw = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4))
            base = next(provider.request_counter) + 1  # type: ignore[attr-defined]
            try:
                body = provider.make_batch_request(requests_)  # type: ignore[attr-defined]
            except requests.Timeout:
                last = f"timed out after {self.timeout:g} s"
                continue
            except requests.ConnectionError as exc:
                last = f"node unreachable ({type(exc).__name__})"
                continue
            except requests.HTTPError as exc:
                self.requests_sent += 1
                r = exc.response
                status = r.status_code if r is not None else 0
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                    continue
                text = r.text[:200] if r is not None else ""
                raise RpcError(self.url, position, method, f"HTTP {status}: {text}") from None
            except requests.RequestException as exc:  # bad URL, unsupported scheme: retrying cannot help
                raise RpcError(self.url, position, method, f"cannot send the request: {exc}") from None
            except MalformedReply as exc:
                self.requests_sent += 1
                last = str(exc)
                raw = exc.body[:4096].decode("utf-8", errors="replace")
                continue
            except (AttributeError, TypeError, KeyError):
                # web3 sorts a batch reply by id and trips over items that are not JSON-RPC objects.
                self.requests_sent += 1
                last = "malformed batch reply: items are not JSON-RPC responses"
                continue
            self.requests_sent += 1
            return body, base
        raise RpcError(
            self.url, position, method, f"{last}; gave up after {self.retries + 1} attempts", raw=raw
        )

    def web3_call(self, fn: Any, position: str, method: str) -> Any:
        """Run ``fn()`` (a web3 call, e.g. a contract function's ``.call``) with this client's retries.

        Transport failures are retried with back-off like batches and then raised as
        :class:`RpcError` naming ``position`` and ``method``; errors the node or the ABI decoder
        answered (reverts, undecodable output) are left to the caller.
        """
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4))
            try:
                self.calls_sent += 1
                return fn()
            except requests.Timeout:
                last = f"timed out after {self.timeout:g} s"
            except requests.ConnectionError as exc:
                last = f"node unreachable ({type(exc).__name__})"
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status != 429 and status < 500:
                    raise RpcError(self.url, position, method, f"HTTP {status}") from None
                last = f"HTTP {status}"
            except MalformedReply as exc:
                last = str(exc)
            except requests.RequestException as exc:
                raise RpcError(self.url, position, method, f"cannot send the request: {exc}") from None
        raise RpcError(self.url, position, method, f"{last}; gave up after {self.retries + 1} attempts")

    def _post(self, payload: bytes, position: str, method: str) -> Any:
        """POST with retries on transport failures; return the decoded JSON body."""
        last, raw = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4))
            try:
                r = self._session().post(self.url, data=payload, timeout=self.timeout)
            except requests.Timeout:
                last = f"timed out after {self.timeout:g} s"
                continue
            except requests.ConnectionError as exc:
                last = f"node unreachable ({type(exc).__name__})"
                self._local.session = None
                continue
            except requests.RequestException as exc:  # bad URL, unsupported scheme: retrying cannot help
                raise RpcError(self.url, position, method, f"cannot send the request: {exc}") from None
            self.requests_sent += 1
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code != 200:
                raise RpcError(self.url, position, method, f"HTTP {r.status_code}: {r.text[:200]}")
            try:
                return _parse(r.content)
            except ValueError:
                last = f"malformed JSON response ({r.content[:80]!r})"
                raw = r.content[:4096].decode("utf-8", errors="replace")
                continue
        raise RpcError(
            self.url, position, method, f"{last}; gave up after {self.retries + 1} attempts", raw=raw
        )

    # -- calls --------------------------------------------------------------------------------------
    def call(self, method: str, params: Sequence[Any] = (), position: str = "node") -> Any:
        """One call; returns its ``result``."""
        return self.batch([Call(method, list(params), position)])[0]

    def batch(self, calls: Sequence[Call], node_errors: str = "raise") -> list[Any]:
        """Many calls in as few HTTP requests as ``max_batch`` allows; results in call order.

        Raises the first node error (with the failing call's block and method) unless
        ``node_errors="return"``, which puts the :class:`RpcError` in that call's slot. A whole
        HTTP request is retried when the transport fails or the reply does not match the request.
        """
        out: list[Any] = []
        for start in range(0, len(calls), self.max_batch):
            out.extend(self._batch_once(calls[start : start + self.max_batch], node_errors))
        return out

    def _batch_once(self, calls: Sequence[Call], node_errors: str = "raise") -> list[Any]:
        if not calls:
            return []
        payload = b""
        if self.transport == "raw":
            payload = json.dumps(
                [{"jsonrpc": "2.0", "id": i, "method": c.method, "params": c.params} for i, c in enumerate(calls)],
                separators=(",", ":"),
            ).encode()
        self.calls_sent += len(calls)
        where = calls[0].position if len(calls) == 1 else f"{calls[0].position} … {calls[-1].position}"
        methods = sorted({c.method for c in calls})
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            if self.transport == "raw":
                body, base = self._post(payload, where, ",".join(methods)), 0
            else:
                body, base = self._post_web3(calls, where, ",".join(methods))
            if isinstance(body, dict) and "error" in body and len(calls) > 0 and body.get("id") is None:
                # A node that refuses the whole batch (some providers cap batch size).
                err = body["error"] or {}
                raise RpcError(self.url, where, ",".join(methods), _error_text(err), err.get("code"))
            if not isinstance(body, list):
                body = [body]
            by_id: dict[int, dict] = {}
            for item in body:
                if isinstance(item, dict) and isinstance(item.get("id"), int):
                    by_id[item["id"] - base] = item
            if len(by_id) != len(calls) or any(i not in by_id for i in range(len(calls))):
                last = f"malformed batch reply: {len(by_id)} answers for {len(calls)} calls"
                continue
            results = []
            for i, c in enumerate(calls):
                item = by_id[i]
                if "error" in item and item["error"] is not None:
                    err = item["error"] if isinstance(item["error"], dict) else {"message": str(item["error"])}
                    code = err.get("code")
                    cls = MethodNotSupported if _is_method_missing(err) else RpcError
                    exc = cls(self.url, c.position, c.method, _error_text(err), code)
                    if node_errors == "return" and cls is RpcError:
                        results.append(exc)
                        continue
                    raise exc
                if "result" not in item:
                    last = f"malformed reply to {c.method} at {c.position}: no result"
                    break
                results.append(item["result"])
            else:
                return results
        raise RpcError(self.url, where, ",".join(methods), f"{last}; gave up after {self.retries + 1} attempts")

    # -- chain reads ----------------------------------------------------------------------------------
    def chain_id(self) -> int:
        return _int(self.call("eth_chainId", [], "node"), self.url, "node", "eth_chainId")

    def block_number(self) -> int:
        return _int(self.call("eth_blockNumber", [], "node"), self.url, "node", "eth_blockNumber")

    def get_blocks(self, heights: Sequence[int], full: bool = True) -> list[dict]:
        """Blocks by height; a missing block (``null``) is an error naming its height."""
        res = self.batch([Call("eth_getBlockByNumber", [hex(h), full], f"block {h}") for h in heights])
        for h, b in zip(heights, res, strict=True):
            if not isinstance(b, dict):
                raise RpcError(self.url, f"block {h}", "eth_getBlockByNumber",
                               "node returned no block" if b is None else f"malformed block: {str(b)[:80]}")
        return res

    def get_block_receipts(self, heights: Sequence[int]) -> list[list[dict]]:
        res = self.batch([Call("eth_getBlockReceipts", [hex(h)], f"block {h}") for h in heights])
        for h, r in zip(heights, res, strict=True):
            if not isinstance(r, list):
                raise RpcError(self.url, f"block {h}", "eth_getBlockReceipts",
                               "node returned no receipts" if r is None else f"malformed receipts: {str(r)[:80]}")
        return res

    def get_blocks_and_receipts(self, heights: Sequence[int]) -> tuple[list[dict], list[list[dict]]]:
        """Full blocks and eth_getBlockReceipts for the same heights, in one batch."""
        n = len(heights)
        res = self.batch([Call("eth_getBlockByNumber", [hex(h), True], f"block {h}") for h in heights]
                         + [Call("eth_getBlockReceipts", [hex(h)], f"block {h}") for h in heights])
        blocks, receipts = res[:n], res[n:]
        for h, b, r in zip(heights, blocks, receipts, strict=True):
            if not isinstance(b, dict):
                raise RpcError(self.url, f"block {h}", "eth_getBlockByNumber",
                               "node returned no block" if b is None else f"malformed block: {str(b)[:80]}")
            if not isinstance(r, list):
                raise RpcError(self.url, f"block {h}", "eth_getBlockReceipts",
                               "node returned no receipts" if r is None else f"malformed receipts: {str(r)[:80]}")
        return blocks, receipts

    def get_receipts(self, tx_hashes: Sequence[str], heights: Sequence[int]) -> list[dict]:
        """Receipts one by one (batched) for nodes without eth_getBlockReceipts."""
        res = self.batch([
            Call("eth_getTransactionReceipt", [t], f"block {h} tx {t}") for t, h in zip(tx_hashes, heights, strict=True)
        ])
        for t, h, r in zip(tx_hashes, heights, res, strict=True):
            if not isinstance(r, dict):
                raise RpcError(self.url, f"block {h} tx {t}", "eth_getTransactionReceipt", "node returned no receipt")
        return res

    def trace_blocks(self, heights: Sequence[int]) -> list[list[dict]]:
        """callTracer traces per block (geth/anvil ``debug_traceBlockByNumber``)."""
        res = self.batch([
            Call("debug_traceBlockByNumber", [hex(h), {"tracer": "callTracer"}], f"block {h}") for h in heights
        ])
        for h, r in zip(heights, res, strict=True):
            if not isinstance(r, list):
                raise RpcError(self.url, f"block {h}", "debug_traceBlockByNumber", "malformed trace reply")
        return res

    def trace_blocks_parity(self, heights: Sequence[int]) -> list[list[dict]]:
        """Parity/OpenEthereum-style flat traces per block (``trace_block``: erigon, nethermind, anvil)."""
        res = self.batch([Call("trace_block", [hex(h)], f"block {h}") for h in heights])
        for h, r in zip(heights, res, strict=True):
            if not isinstance(r, list):
                raise RpcError(self.url, f"block {h}", "trace_block", "malformed trace reply")
        return res

    def get_logs(
        self,
        lo: int,
        hi: int,
        address: Sequence[str] | None = None,
        topics: Sequence[Any] | None = None,
        max_range: int = 2000,
    ) -> list[dict]:
        """eth_getLogs over [lo, hi], split into ranges that shrink when the node says "too large".

        Providers cap log queries by result count or block span and answer with an error
        (geth: "query returned more than 10000 results"; others: "block range too large").
        The range is halved until it passes; a single block that still fails is an error.
        """
        out: list[dict] = []
        pending = [(a, min(a + max_range - 1, hi)) for a in range(lo, hi + 1, max_range)]
        pending.reverse()
        while pending:
            a, b = pending.pop()
            flt: dict[str, Any] = {"fromBlock": hex(a), "toBlock": hex(b)}
            if address:
                flt["address"] = list(address)
            if topics:
                flt["topics"] = list(topics)
            position = f"blocks {a}-{b}"
            try:
                logs = self.call("eth_getLogs", [flt], position)
            except RpcError as exc:
                if b > a and isinstance(exc, RpcError) and _too_large(exc.reason):
                    mid = (a + b) // 2
                    pending.append((mid + 1, b))
                    pending.append((a, mid))
                    self.shrinks += 1
                    continue
                raise
            if not isinstance(logs, list):
                raise RpcError(self.url, position, "eth_getLogs", f"malformed logs reply: {str(logs)[:80]}")
            out.extend(logs)
        return out


def _parse(body: bytes) -> Any:
    try:
        return _loads(body)
    except ValueError:
        return json.loads(body)  # e.g. integers beyond 64 bits, which orjson refuses


def _error_text(err: dict) -> str:
    msg = str(err.get("message", "unknown error"))
    code = err.get("code")
    return f"node error {code}: {msg}" if code is not None else f"node error: {msg}"


def _is_method_missing(err: dict) -> bool:
    if err.get("code") in _METHOD_MISSING_CODES:
        return True
    msg = str(err.get("message", "")).lower()
    return "method not found" in msg or "not supported" in msg or "does not exist" in msg


def _too_large(reason: str) -> bool:
    r = reason.lower()
    return any(h in r for h in _TOO_LARGE_HINTS)


def _int(value: Any, url: str, position: str, method: str) -> int:
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        raise RpcError(url, position, method, f"malformed quantity {str(value)[:40]!r}") from None
