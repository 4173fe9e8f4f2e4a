"""What goes through web3: the JSON-RPC batches (``--transport web3``, the default), token metadata
(contract calls with the ERC-20 ABI) and the checksummed ``--tokens`` addresses.

Non-standard tokens are real contracts on anvil: their runtime code is assembled below and installed
with ``anvil_setCode``; each answers its selectors with fixed return data and reverts on any other.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3

import tracer
from tracer.errors import IngestError
from tracer.ingest.evm.node import ingest_evm
from tracer.ingest.evm.rpc import RpcClient, RpcError
from tracer.ingest.evm.tokens import fetch_metadata

from .test_node_failures import fast, snapshot


def runtime_code(answers: dict[str, bytes]) -> str:
    """EVM code that returns ``answers[signature]`` for that function and reverts on anything else."""
    sels = [function_signature_to_4byte_selector(s) for s in answers]
    datas = list(answers.values())
    head = 6 + 11 * len(sels) + 4
    bodies_at = [head + 16 * i for i in range(len(sels))]
    data_at = head + 16 * len(sels)
    code = bytearray(b"\x60\x00\x35\x60\xe0\x1c")  # PUSH1 0 CALLDATALOAD PUSH1 224 SHR: the selector
    for sel, dest in zip(sels, bodies_at, strict=True):
        code += b"\x80\x63" + sel + b"\x14\x61" + dest.to_bytes(2, "big") + b"\x57"  # DUP1 PUSH4 EQ PUSH2 JUMPI
    code += b"\x60\x00\x80\xfd"  # PUSH1 0 DUP1 REVERT
    offset = data_at
    for data in datas:  # JUMPDEST; CODECOPY(0, offset, len); RETURN(0, len)
        n = len(data).to_bytes(2, "big")
        code += b"\x5b\x61" + n + b"\x61" + offset.to_bytes(2, "big") + b"\x60\x00\x39\x61" + n + b"\x60\x00\xf3"
        offset += len(data)
    code += b"".join(datas)
    return "0x" + code.hex()


def test_web3_and_raw_transports_store_exactly_the_same_rows(tmp_path, anvil, scenario):
    snaps, runs = [], []
    for transport in ("web3", "raw"):
        store = tracer.open_store(tmp_path / f"{transport}.duckdb")
        res = ingest_evm(store, anvil.url, 0, scenario.end, traces=True, batch_size=4, transport=transport)
        assert res.transport == transport and res.blocks == scenario.end + 1
        snaps.append(snapshot(store))
        runs.append(store.query("SELECT json_extract_string(parameters, '$.transport') FROM ingest_runs"))
        store.close()
    assert snaps[0] == snaps[1]
    assert runs == [[("web3",)], [("raw",)]]
    assert len(snaps[0]["transfers"]) == 18 and len(snaps[0]["evm_tokens"]) == 2


def test_non_standard_tokens_are_read_through_web3_contract_calls(anvil, scenario):
    mkr, partial, silent = ("0x" + c * 40 for c in "abc")
    no_code = "0x000000000000000000000000000000000000dead"
    anvil.rpc("anvil_setCode", mkr, runtime_code({  # DSToken: bytes32 symbol and name
        "symbol()": b"MKR".ljust(32, b"\0"), "name()": b"Maker".ljust(32, b"\0"),
        "decimals()": encode(["uint256"], [18])}))
    anvil.rpc("anvil_setCode", partial, runtime_code({  # no name() (reverts); decimals out of uint8
        "symbol()": encode(["string"], ["ABC"]), "decimals()": encode(["uint256"], [1000])}))
    anvil.rpc("anvil_setCode", silent, runtime_code({  # answers every call with nothing
        "symbol()": b"", "name()": b"", "decimals()": b""}))
    client = RpcClient(anvil.url)
    rows = fetch_metadata(client, "anvil", [scenario.usdt, mkr.upper().replace("0X", "0x"), partial, silent, no_code])
    got = {r["address"]: (r["symbol"], r["name"], r["decimals"], r["status"]) for r in rows}
    assert got == {
        scenario.usdt: ("USDT", "Tether USD", 6, "ok"),
        mkr: ("MKR", "Maker", 18, "ok"),
        partial: ("ABC", None, None, "partial"),
        silent: (None, None, None, "none"),
        no_code: (None, None, None, "none"),
    }
    assert all(r["chain"] == "anvil" for r in rows)


def test_standard_tokens_are_read_in_one_batch(anvil, scenario):
    client = RpcClient(anvil.url)
    rows = fetch_metadata(client, "anvil", [scenario.usdt, scenario.big])
    assert [(r["symbol"], r["name"], r["decimals"], r["status"]) for r in rows] == sorted(
        [("USDT", "Tether USD", 6, "ok"), ("BIG", "Big Token", 18, "ok")],
        key=lambda r: {"USDT": scenario.usdt, "BIG": scenario.big}[r[0]])
    assert client.calls_sent == 1  # one web3 batch: 2 tokens × symbol, name, decimals


def test_token_metadata_from_a_node_that_is_down_names_the_contract_and_call():
    token = "0x" + "ab" * 20
    with pytest.raises(RpcError) as err:
        fetch_metadata(fast("http://127.0.0.1:9", retries=1), "anvil", [token])
    assert f"at contract {token}" in str(err.value) and "eth_call symbol(),name(),decimals()" in str(err.value)
    assert "node unreachable" in str(err.value) and "gave up after 2 attempts" in str(err.value)


def test_a_mistyped_checksummed_token_address_is_refused_before_anything_is_read(tmp_path, anvil, scenario):
    good = Web3.to_checksum_address(scenario.usdt)
    flipped = good[:-1] + (good[-1].lower() if good[-1].isupper() else good[-1].upper())
    if flipped[-1].isdigit():  # the last character is a digit: flip the last letter instead
        i = max(k for k, c in enumerate(good) if c.isalpha() and k > 1)
        flipped = good[:i] + good[i].swapcase() + good[i + 1:]
    store = tracer.open_store(tmp_path / "s.duckdb")
    with pytest.raises(IngestError) as err:
        ingest_evm(store, anvil.url, 0, scenario.end, tokens=[flipped])
    assert f"--tokens at {flipped}" in str(err.value) and "EIP-55 checksum does not match" in str(err.value)
    with pytest.raises(IngestError, match="0x \\+ 40 hex digits"):
        ingest_evm(store, anvil.url, 0, scenario.end, tokens=["0x1234"])
    assert store.count("blocks") == 0 and store.count("ingest_runs") == 0
    res = ingest_evm(store, anvil.url, 0, scenario.end, tokens=[good])
    assert res.tokens == [good]
    assert store.query("SELECT DISTINCT asset FROM transfers WHERE kind = 'erc20'") == [(scenario.usdt,)]


def test_importing_the_etl_importer_does_not_load_web3():
    """web3 takes ~1 s to import; `tracer ingest etl` (which shares the EVM mappers) must not pay it."""
    code = "import sys, tracer.ingest.evm.etl, tracer.ingest.evm.node, tracer.commands.evm; print('web3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
