"""Read ERC-20 metadata (symbol, name, decimals) from token contracts, once per token.

EIP-20 makes ``name()``, ``symbol()`` and ``decimals()`` OPTIONAL, and early tokens (MKR, SAI)
return ``bytes32`` instead of ``string``; so every call may revert or answer in either form. The
answer is cached in ``evm_tokens`` with a status, and a token that answers nothing is not asked
again on every run.
"""

from __future__ import annotations

from collections.abc import Iterable

from tracer.ingest.evm_rpc import RpcClient

SELECTORS = {"name": "0x06fdde03", "symbol": "0x95d89b41", "decimals": "0x313ce567"}

# Well-known mainnet stablecoins, so `--tokens USDT` works without looking the address up.
KNOWN_TOKENS = {
    1: {
        "USDT": "0xdac17f958d2ee523a2206206994597c13d831ec7",
        "USDC": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
        "DAI": "0x6b175474e89094c44da98b954eedeac495271d0f",
        "BUSD": "0x4fabb145d64652a948d72533023f6e7a623c7c53",
        "WETH": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
    },
}


def decode_text(ret: str | None) -> str | None:
    """ABI ``string`` or legacy ``bytes32`` return data as text; None if neither."""
    if not ret or ret == "0x":
        return None
    raw = bytes.fromhex(ret[2:])
    if len(raw) >= 64:
        offset = int.from_bytes(raw[:32], "big")
        if offset == 32 and len(raw) >= 64:
            length = int.from_bytes(raw[32:64], "big")
            if 64 + length <= len(raw):
                return _clean(raw[64 : 64 + length])
    if len(raw) == 32:
        return _clean(raw.rstrip(b"\0"))
    return None


def _clean(b: bytes) -> str | None:
    text = b.decode("utf-8", errors="replace").replace("\0", "").strip()
    return text or None


def decode_uint(ret: str | None) -> int | None:
    if not ret or len(ret) < 66:
        return None
    v = int(ret[2:66], 16)
    return v if v <= 255 else None


def fetch_metadata(rpc: RpcClient, chain: str, addresses: Iterable[str]) -> list[dict]:
    """One batched round of eth_call for every token: rows for ``evm_tokens``."""
    addrs = sorted(set(addresses))
    calls = [(a, SELECTORS[f]) for a in addrs for f in ("symbol", "name", "decimals")]
    res = rpc.eth_call(calls)
    rows = []
    for i, a in enumerate(addrs):
        sym, name, decs = res[3 * i : 3 * i + 3]
        symbol, nm, decimals = decode_text(sym), decode_text(name), decode_uint(decs)
        got = sum(x is not None for x in (symbol, nm, decimals))
        rows.append({"chain": chain, "address": a, "symbol": symbol, "name": nm, "decimals": decimals,
                     "status": "ok" if got == 3 else ("partial" if got else "none")})
    return rows
