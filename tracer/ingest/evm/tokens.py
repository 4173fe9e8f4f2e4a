"""Read ERC-20 metadata (symbol, name, decimals) from token contracts with web3, once per token.

EIP-20 (https://eips.ethereum.org/EIPS/eip-20) makes ``name()``, ``symbol()`` and ``decimals()``
OPTIONAL, and early tokens built on DSToken (MKR, SAI) answer ``bytes32`` instead of ``string``. So
every call may revert, answer nothing, or answer in the other form. The reads are web3 contract calls
(``w3.eth.contract(address=..., abi=ERC20_ABI)``) on the ingest's own node connection:

1. all three functions of up to ``BATCH_TOKENS`` tokens in one JSON-RPC batch (``w3.batch_requests()``)
   — the common case, one round trip;
2. web3 raises for the whole batch when any one call reverts or does not decode, so then each token
   is asked function by function; a ``string`` answer that does not decode is asked again with the
   legacy ``bytes32`` ABI; a revert or an empty answer means "not present" (None).

The answer is cached in ``evm_tokens`` with a status (``ok``, ``partial``, ``none``), and a token is
not asked again on later runs. Transport failures are retried and then raised naming the contract
and the function (:meth:`~tracer.ingest.evm.rpc.RpcClient.web3_call`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tracer.ingest.evm.rpc import RpcClient

if TYPE_CHECKING:  # web3 is imported when metadata is first read (~1 s of start-up otherwise)
    from web3 import Web3

FIELDS = ("symbol", "name", "decimals")
BATCH_TOKENS = 100


def _view(name: str, out: str) -> dict:
    return {"type": "function", "name": name, "inputs": [], "stateMutability": "view",
            "outputs": [{"name": "", "type": out}]}


# The optional metadata functions of EIP-20, as the standard declares them.
ERC20_ABI = [_view("symbol", "string"), _view("name", "string"), _view("decimals", "uint8")]
# DSToken (MKR, SAI and their forks) declare ``bytes32 public symbol`` / ``name``.
LEGACY_ABI = [_view("symbol", "bytes32"), _view("name", "bytes32")]

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


def _not_present() -> tuple[type[Exception], ...]:
    """What a contract answering "no such function" looks like through web3: a revert
    (ContractLogicError), an empty or undecodable answer (BadFunctionCallOutput), an execution error."""
    from eth_abi.exceptions import DecodingError
    from web3.exceptions import Web3Exception

    return (Web3Exception, DecodingError)


def token_text(value: str | bytes | None) -> str | None:
    """A ``string`` or legacy ``bytes32`` answer as text: NULs and surrounding blanks dropped; None if empty."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.rstrip(b"\0").decode("utf-8", errors="replace")
    text = value.replace("\0", "").strip()
    return text or None


def token_decimals(value: Any) -> int | None:
    """``decimals()`` as an int in 0..255 (uint8, EIP-20); anything else is not an answer."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255 else None


def fetch_metadata(rpc: RpcClient, chain: str, addresses: Iterable[str]) -> list[dict]:
    """Rows for ``evm_tokens``: symbol, name, decimals and status of every token (lowercase addresses)."""
    addrs = sorted({a.lower() for a in addresses})
    w3 = rpc.web3
    rows = []
    for start in range(0, len(addrs), BATCH_TOKENS):
        chunk = addrs[start : start + BATCH_TOKENS]
        answers = _all_in_one_batch(rpc, w3, chunk)
        if answers is None:
            answers = [_one_by_one(rpc, w3, a) for a in chunk]
        for a, (symbol, name, decimals) in zip(chunk, answers, strict=True):
            got = sum(x is not None for x in (symbol, name, decimals))
            rows.append({"chain": chain, "address": a, "symbol": symbol, "name": name, "decimals": decimals,
                         "status": "ok" if got == 3 else ("partial" if got else "none")})
    return rows


def _all_in_one_batch(rpc: RpcClient, w3: Web3, addrs: Sequence[str]) -> list[tuple] | None:
    """Every function of every token in one batch; None when any call reverted or did not decode."""
    from web3 import Web3

    contracts = [w3.eth.contract(address=Web3.to_checksum_address(a), abi=ERC20_ABI) for a in addrs]

    def run() -> list[Any]:
        with w3.batch_requests() as batch:
            for c in contracts:
                for f in FIELDS:
                    batch.add(c.functions[f]())
            return batch.execute()

    where = f"contract {addrs[0]}" + (f" … {addrs[-1]}" if len(addrs) > 1 else "")
    try:
        res = rpc.web3_call(run, where, "eth_call symbol(),name(),decimals()")
    except _not_present():
        return None
    out = []
    for i in range(len(addrs)):
        symbol, name, decimals = res[3 * i : 3 * i + 3]
        out.append((token_text(symbol), token_text(name), token_decimals(decimals)))
    return out


def _one_by_one(rpc: RpcClient, w3: Web3, addr: str) -> tuple:
    from web3 import Web3
    from web3.exceptions import BadFunctionCallOutput

    not_present = _not_present()
    checksummed = Web3.to_checksum_address(addr)
    standard = w3.eth.contract(address=checksummed, abi=ERC20_ABI)
    legacy = w3.eth.contract(address=checksummed, abi=LEGACY_ABI)
    where = f"contract {addr}"

    def ask(contract: Any, f: str) -> Any:
        return rpc.web3_call(contract.functions[f]().call, where, f"eth_call {f}()")

    out: list[Any] = []
    for f in ("symbol", "name"):
        try:
            out.append(token_text(ask(standard, f)))
        except BadFunctionCallOutput:  # answered, but not an ABI string: DSToken's bytes32?
            try:
                out.append(token_text(ask(legacy, f)))
            except not_present:
                out.append(None)
        except not_present:
            out.append(None)
    try:
        out.append(token_decimals(ask(standard, "decimals")))
    except not_present:
        out.append(None)
    return tuple(out)
