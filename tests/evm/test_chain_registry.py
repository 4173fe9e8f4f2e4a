"""One registry of chain names (tracer/chains.py): what ingest names a chain id is what labels file under."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tracer
from tracer import chains
from tracer.ingest.evm.node import ingest_evm
from tracer.ingest.labels.sources import export_tagpacks, ingest_labels

TRACER = [sys.executable, "-c", "from tracer.cli import main; main()"]
ETH = Path(__file__).resolve().parents[2] / "fixtures" / "ethereum"
BLOCKS = ETH / "test_export_blocks_job" / "block_with_logs"
RECEIPTS = ETH / "test_export_receipts_job" / "receipts_with_logs"
TRANSFERS = ETH / "test_export_token_transfers_job" / "block_with_transfers"
TOKEN = "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd"  # the token of block 483920's two transfers


def cli(db: Path, *args: str) -> dict:
    out = subprocess.run([*TRACER, "--db", str(db), *args, "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bsc_transfers_and_bsc_labels_share_a_chain_name(tmp_path):
    db = tmp_path / "bsc.duckdb"
    # mainnet block 483920 as if exported from BNB Smart Chain: only the chain id says where it comes from
    res = cli(db, "ingest", "etl", str(BLOCKS), str(RECEIPTS / "expected_receipts.csv"),
              str(RECEIPTS / "expected_logs.csv"), str(TRANSFERS / "expected_token_transfers.csv"), "--chain-id", "56")
    assert res["chain"] == "bsc" and res["native_transfers"] == 2 and res["erc20_transfers"] == 2
    labels = tmp_path / "case.csv"
    labels.write_text(
        "chain,address,label\n"
        "bsc,0x1b63142628311395ceafeea5667e7c9026c862ca,token sender (filed under the chain name)\n"
        "BNB,0x9df428a91ff0f3635c8f0ce752933b9788926804,BNB payer (filed under the OFAC/TagPack code)\n"
        "ETH,0x2a65aca4d5fc5b5c859090a6c34d164135398226,same address on ethereum\n")
    pack = tmp_path / "pack.yaml"
    pack.write_text("title: bsc case\ncreator: analyst\ncurrency: BEP20\ntags:\n"
                    "  - address: '0x743B8AEEDC163C0E3A0FE9F3910D146C48E70DA8'\n    label: BEP20 payee\n")
    with tracer.open_store(db) as store:
        assert ingest_labels(store, labels)["loaded"] == 3
        assert ingest_labels(store, pack)["loaded"] == 1
        assert store.query("SELECT chain, source_asset, label FROM labels ORDER BY label") == [
            ("bsc", "BEP20", "BEP20 payee"),
            ("bsc", "BNB", "BNB payer (filed under the OFAC/TagPack code)"),
            ("ethereum", "ETH", "same address on ethereum"),
            ("bsc", "BSC", "token sender (filed under the chain name)")]
        assert store.query("SELECT * EXCLUDE (run_id) FROM chains") == [("bsc", "account", "mainnet", 56)]
        # labels meet the flows of chain id 56 on (chain, address); the ethereum label does not
        met = store.query(
            """SELECT f.kind, f.symbol, f.price_asset, f.amount_raw, l.label, l.address = f.src AS is_sender
               FROM flows f JOIN labels l ON l.chain = f.chain AND l.address IN (f.src, f.dst)
               ORDER BY f.kind, l.label""")
        assert met == [
            ("erc20", None, None, "100000", "token sender (filed under the chain name)", True),
            ("native", "BNB", "BNB", "1530219620000000000", "BEP20 payee", False),
            ("native", "BNB", "BNB", "11000440000000000", "BNB payer (filed under the OFAC/TagPack code)", True)]
        assert store.query("SELECT DISTINCT chain FROM flows") == [("bsc",)]
        assert store.query("SELECT DISTINCT asset FROM flows WHERE kind = 'erc20'") == [(TOKEN,)]
        # TagPack export writes the registry's code for labels that came without one of their own
        out = {p.stem: p.read_text() for p in export_tagpacks(store, tmp_path / "out")}
    assert "currency: BSC" in out["case"] and "currency: BNB" in out["case"]


def test_unknown_chain_id_gets_a_registry_name_or_the_override(tmp_path, anvil_factory):
    node = anvil_factory("--chain-id", "56")
    a = node.accounts
    txid = node.send(a[0], a[1], 10**18)
    store = tracer.open_store(tmp_path / "s.duckdb")
    # a store written before chain id 56 was in the registry recorded network "chain-56": still the same chain
    store.claim_chain("bsc", "account", "chain-56", 56, None)
    res = ingest_evm(store, node.url, 0, 1, confirmations=0)
    assert (res.chain, res.chain_id) == ("bsc", 56)
    assert store.query("SELECT * EXCLUDE (run_id) FROM chains") == [("bsc", "account", "mainnet", 56)]
    assert store.query("SELECT chain, kind, asset, symbol, txid, from_address, to_address, amount_raw "
                       "FROM transfers") == [("bsc", "native", "BNB", "BNB", txid, a[0], a[1], str(10**18))]
    assert store.query("SELECT price_asset FROM flows") == [("BNB",)]
    store.close()
    # --chain overrides the name; the coin is still the chain id's
    res = cli(tmp_path / "o.duckdb", "ingest", "evm", "--rpc", node.url, "--to-block", "1", "--confirmations", "0",
              "--chain", "bsc-fork")
    assert (res["chain"], res["chain_id"], res["transfers"]) == ("bsc-fork", 56, 1)
    with tracer.open_store(tmp_path / "o.duckdb") as other:
        assert other.query("SELECT chain, asset FROM transfers") == [("bsc-fork", "BNB")]
        assert other.query("SELECT * EXCLUDE (run_id) FROM chains") == [("bsc-fork", "account", "mainnet", 56)]


def test_the_registry_names_the_usual_chains():
    names = {cid: chains.chain_name(cid) for cid in (1, 56, 137, 42161, 10, 8453, 43114, 250, 100, 11155111,
                                                      17000, 31337, 1337, 999)}
    assert names == {1: "ethereum", 56: "bsc", 137: "polygon", 42161: "arbitrum", 10: "optimism", 8453: "base",
                     43114: "avalanche", 250: "fantom", 100: "gnosis", 11155111: "sepolia", 17000: "holesky",
                     31337: "anvil", 1337: "dev", 999: "evm-999"}
    assert [chains.native_symbol(c) for c in (1, 56, 137, 43114, 250, 100, 999)] == [
        "ETH", "BNB", "POL", "AVAX", "FTM", "XDAI", "ETH"]
    assert [chains.network_of(c) for c in (1, 56, 11155111, 31337, 999)] == [
        "mainnet", "mainnet", "sepolia", "anvil", "chain-999"]
    assert {chains.resolve(c) for c in ("BSC", "BEP20", "BNB", "bsc", " Bsc ")} == {"bsc"}
    assert [chains.resolve(c) for c in ("XBT", "MATIC", "POL", "BEP2", "sepolia", "evm-999")] == [
        "bitcoin", "polygon", "polygon", "binance-chain", "sepolia", None]
    assert [chains.BY_NAME[c].kind for c in ("bitcoin", "ethereum", "tron", "fiat")] == [
        "utxo", "account", "account", "fiat"]
    assert [chains.code_of(c) for c in ("bitcoin", "bsc", "polygon", "sepolia")] == ["BTC", "BSC", "MATIC", "SEPOLIA"]
