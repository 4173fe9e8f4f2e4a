"""Labels from the real OFAC SDN lists and GraphSense TagPacks in fixtures/labels/."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracer
from tracer.errors import IngestError
from tracer.ingest.labels.sources import export_tagpacks, ingest_labels

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

OFAC = FIXTURES / "labels" / "ofac-sdn"
PACKS = FIXTURES / "labels" / "tagpacks"
COLUMNS = ("chain, address, label, category, source, confidence, actor, abuse, is_public, context, "
           "source_asset, source_network, confidence_level, is_cluster_definer, pack, pack_header, tag_extra")


@pytest.fixture(scope="module")
def tagpack_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("packs") / "packs.duckdb"
    s = tracer.open_store(path)
    summary = ingest_labels(s, PACKS)
    yield s, summary
    s.close()


def test_ofac_lists_load_every_valid_address_under_its_chain(store):
    summary = ingest_labels(store, OFAC)
    assert summary["read"] == 654
    assert summary["loaded"] == 652
    assert summary["quarantined"] == 2
    assert summary["reasons"] == {"not a valid bitcoin address": 1, "not a valid monero address": 1}
    per_asset = {(a, c): n for a, c, n in store.query(
        "SELECT source_asset, chain, count(*) FROM labels GROUP BY ALL")}
    assert per_asset[("XBT", "bitcoin")] == 434
    assert per_asset[("ETH", "ethereum")] == 152
    assert per_asset[("LTC", "litecoin")] == 10
    assert per_asset[("BCH", "bitcoin-cash")] == 7
    assert per_asset[("TRX", "tron")] == 6
    assert per_asset[("ZEC", "zcash")] == 3
    assert per_asset[("XMR", "monero")] == 2
    # EVM addresses are stored lower-case: the 152 ETH lines are 152 distinct addresses
    assert store.scalar("SELECT count(DISTINCT address) FROM labels WHERE chain = 'ethereum' "
                        "AND source_asset = 'ETH'") == 152
    assert store.scalar("SELECT count(*) FROM labels WHERE address <> lower(address) "
                        "AND chain = 'ethereum'") == 0
    assert store.scalar("SELECT DISTINCT confidence_level FROM labels") == "authority_data"


def test_tron_address_filed_under_xbt_is_quarantined(store):
    ingest_labels(store, OFAC)
    assert store.scalar(
        "SELECT count(*) FROM labels WHERE address = 'TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq'") == 0
    source, position, raw, reason = store.query(
        "SELECT source, position, raw, reason FROM quarantine WHERE raw LIKE 'TUCs%'")[0]
    assert source.endswith("sanctioned_addresses_XBT.txt")
    assert position == "line 355"
    assert raw == "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq"
    assert "not a valid bitcoin address" in reason and "valid tron address" in reason
    assert "filed under XBT" in reason


def test_monero_list_entry_that_is_a_hash_is_quarantined(store):
    ingest_labels(store, OFAC)
    reason = store.scalar("SELECT reason FROM quarantine WHERE source LIKE '%XMR.txt'")
    assert "64 hex digits" in reason


def test_usdt_list_mixing_three_chains_is_split_by_chain(store):
    ingest_labels(store, OFAC)
    split = dict(store.query("SELECT chain, count(*) FROM labels WHERE source_asset = 'USDT' GROUP BY chain"))
    assert split == {"ethereum": 8, "tron": 11, "bitcoin": 7}  # Omni USDT lives on Bitcoin addresses


def test_rerunning_the_ofac_import_adds_nothing(store):
    ingest_labels(store, OFAC)
    second = ingest_labels(store, OFAC)
    assert second["loaded"] == 0 and second["already_stored"] == 652
    assert store.count("labels") == 652
    assert store.count("quarantine") == 2
    assert store.query("SELECT status, row_counts->>'labels' FROM ingest_runs ORDER BY run_id") == [
        ("ok", "652"), ("ok", "0")]


def test_tagpack_counts_per_pack_and_confidence_kept(tagpack_store):
    store, summary = tagpack_store
    counts = dict(store.query("SELECT pack, count(*) FROM labels GROUP BY pack"))
    assert counts["ransomwhere"] == 7457
    assert counts["walletexplorer"] == 386
    assert counts["usdt_blacklist"] == 774
    assert counts["hydra"] == 117
    assert counts["mixing_fc2021"] == 66
    assert counts["sextortion_excello"] == 12521  # 12527 tags: 6 fail the Base58Check checksum
    assert counts["exchange-wallets-binance"] == 86  # BEP2 (bnb1...) tags included
    levels = dict(store.query("SELECT pack, any_value(confidence_level) FROM labels GROUP BY pack"))
    assert levels["ransomwhere"] == "forensic"
    assert levels["usdt_blacklist"] == "ledger_immanent"
    assert levels["hydra"] == "authority_data"
    assert store.scalar("SELECT confidence FROM labels WHERE pack = 'hydra' LIMIT 1") == 0.6
    # per-tag actor and category of walletexplorer survive
    assert store.query(
        "SELECT label, category, actor FROM labels WHERE address = '1vdXJDiDSzeUAoM7eAcWZPhM9wEKmH8dG'"
    ) == [("Huobi.com", "exchange", "huobi")]
    assert summary["quarantined"] == store.scalar("SELECT count(*) FROM quarantine")


def test_tagpack_bad_tags_are_quarantined_with_line(tagpack_store):
    store, _ = tagpack_store
    rows = store.query("SELECT position, reason FROM quarantine WHERE source LIKE '%sextortion_excello.yaml' "
                       "ORDER BY position")
    assert len(rows) == 6
    assert ("line 6485 (tag 3238)", ("not a valid bitcoin address: Base58Check checksum mismatch; "
            "filed under BTC")) in rows
    truncated = store.query("SELECT position FROM quarantine WHERE source LIKE '%/ofac.yaml' "
                            "AND reason LIKE '%Monero base58 block%' ORDER BY position")
    assert truncated == [("line 801 (tag 397)",), ("line 803 (tag 398)",)]


def test_tagpack_round_trip_loses_nothing(tagpack_store, tmp_path: Path):
    store, _ = tagpack_store
    written = export_tagpacks(store, tmp_path / "out")
    assert len(written) == 12
    again = tracer.open_store(tmp_path / "again.duckdb")
    summary = ingest_labels(again, tmp_path / "out")
    assert summary["quarantined"] == 0
    assert summary["loaded"] == store.count("labels")
    again.close()
    store.con.execute(f"ATTACH '{tmp_path / 'again.duckdb'}' AS again (READ_ONLY)")
    try:
        lost = store.scalar(f"SELECT count(*) FROM (SELECT {COLUMNS} FROM labels "
                            f"EXCEPT ALL SELECT {COLUMNS} FROM again.labels)")
        gained = store.scalar(f"SELECT count(*) FROM (SELECT {COLUMNS} FROM again.labels "
                              f"EXCEPT ALL SELECT {COLUMNS} FROM labels)")
    finally:
        store.con.execute("DETACH again")
    assert (lost, gained) == (0, 0)


def test_label_csv_validates_user_entered_addresses(store, tmp_path: Path):
    path = tmp_path / "case-labels.csv"
    path.write_bytes(
        b"chain,address,label,category,confidence\n"
        b"bitcoin,1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,Genesis,miner,1\n"
        b"ethereum,0x983a81ca6FB1e441266D2FbcB7D8E530AC2E05A2,Sanctioned,user,authority_data\n"
        b"bitcoin,1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb,Typo,user,0.5\n"
        b"ethereum,0x983a81ca6fB1e441266D2FbcB7D8E530AC2E05A2,Bad case,user,0.5\n"
        b"bitcoin,3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy,Too sure,user,7\n"
        b"bitcoin,bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq,Caf\xe9,user,0.5\n"
    )
    summary = ingest_labels(store, path)
    assert (summary["loaded"], summary["quarantined"]) == (2, 4)
    assert store.query("SELECT chain, address, confidence FROM labels ORDER BY chain") == [
        ("bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", 1.0),
        ("ethereum", "0x983a81ca6fb1e441266d2fbcb7d8e530ac2e05a2", 0.6)]
    reasons = dict(store.query("SELECT position, reason FROM quarantine"))
    assert "checksum" in reasons["line 4"]
    assert "EIP-55" in reasons["line 5"]
    assert reasons["line 6"] == "confidence must lie in [0, 1]"
    assert reasons["line 7"] == "broken encoding: not valid UTF-8"


def test_broken_tagpack_yaml_names_file_and_line(store, tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("title: x\ncreator: y\ntags:\n- address: [unclosed\n")
    with pytest.raises(IngestError) as err:
        ingest_labels(store, path)
    assert "broken.yaml" in str(err.value) and "line" in err.value.position
    assert store.count("labels") == 0
    assert store.scalar("SELECT status FROM ingest_runs") == "failed"


def test_sdn_advanced_xml_labels_addresses_with_the_party_name(store):
    summary = ingest_labels(store, FIXTURES / "labels" / "sdn_advanced-sample.xml")
    assert (summary["loaded"], summary["quarantined"]) == (3, 1)
    assert store.query("SELECT chain, address, label, actor, source_asset FROM labels ORDER BY chain") == [
        ("bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "EXAMPLE OTC DESK S.R.O.", "ofac-sdn-90001", "XBT"),
        ("ethereum", "0x52908400098527886e0f7030069857d2e4169ee7", "DOE John", "ofac-sdn-90002", "ETH"),
        ("tron", "TEAqwfMhXLaomXhZ8KeMhx3njGmQEDnsUR", "DOE John", "ofac-sdn-90002", "USDT")]
    position, reason = store.query("SELECT position, reason FROM quarantine")[0]
    assert position == "DistinctParty 90001 Feature 502" and "valid tron address" in reason


def test_classic_sdn_xml_checks_eip55(store):
    summary = ingest_labels(store, FIXTURES / "labels" / "sdn-sample.xml")
    assert (summary["loaded"], summary["quarantined"]) == (1, 1)
    assert "EIP-55" in store.scalar("SELECT reason FROM quarantine WHERE position = 'sdnEntry 90003 id 2'")


# The store's network decides which Bitcoin addresses a label may name (`chains`, written by the block
# ingest). Addresses: one key (bitcoinlib) on each network; the legacy one has the testnet/regtest
# Base58 version 0x6f (Bitcoin Core chainparams).
REGTEST_BECH32 = "bcrt1qmy63mjadtw8nhzl69ukdepwzsyvv4yexu0a96h"
TESTNET_BECH32 = "tb1qmy63mjadtw8nhzl69ukdepwzsyvv4yex7xygd7"
TEST_LEGACY = "n1KSZGmQgB8iSZqv6UVhGkCGUbEdw8Lm3Q"
MAINNET_BECH32 = "bc1qmy63mjadtw8nhzl69ukdepwzsyvv4yex5qlmkd"


def _labels_csv(tmp_path: Path, *addresses: str) -> Path:
    path = tmp_path / "case-labels.csv"
    path.write_text("chain,address,label\n" + "".join(f"bitcoin,{a},suspect {k}\n" for k, a in enumerate(addresses, 1)))
    return path


def test_regtest_store_accepts_bcrt1_labels(store, tmp_path: Path):
    store.claim_chain("bitcoin", "utxo", "regtest", None, None)
    summary = ingest_labels(store, _labels_csv(tmp_path, REGTEST_BECH32, TEST_LEGACY))
    assert (summary["loaded"], summary["quarantined"]) == (2, 0)
    assert store.query("SELECT chain, address, label FROM labels ORDER BY label") == [
        ("bitcoin", REGTEST_BECH32, "suspect 1"), ("bitcoin", TEST_LEGACY, "suspect 2")]


def test_regtest_store_refuses_mainnet_and_testnet_labels_with_the_reason(store, tmp_path: Path):
    store.claim_chain("bitcoin", "utxo", "regtest", None, None)
    summary = ingest_labels(store, _labels_csv(tmp_path, MAINNET_BECH32, TESTNET_BECH32, REGTEST_BECH32))
    assert (summary["loaded"], summary["quarantined"]) == (1, 2)
    assert store.query("SELECT position, raw, reason FROM quarantine ORDER BY position") == [
        ("line 2", f"bitcoin,{MAINNET_BECH32},suspect 1",
         "a bitcoin mainnet address; this store holds bitcoin regtest; filed under BTC (looks like bitcoin)"),
        ("line 3", f"bitcoin,{TESTNET_BECH32},suspect 2",
         "a bitcoin testnet address; this store holds bitcoin regtest; filed under BTC"),
    ]


def test_mainnet_store_refuses_bcrt1_labels(store, tmp_path: Path):
    store.claim_chain("bitcoin", "utxo", "mainnet", None, None)
    summary = ingest_labels(store, _labels_csv(tmp_path, REGTEST_BECH32, MAINNET_BECH32))
    assert (summary["loaded"], summary["quarantined"]) == (1, 1)
    assert store.query("SELECT address FROM labels") == [(MAINNET_BECH32,)]
    assert store.query("SELECT position, reason FROM quarantine") == [
        ("line 2", "a bitcoin regtest address; this store holds bitcoin mainnet; filed under BTC")]


def test_store_without_bitcoin_blocks_validates_labels_as_mainnet(store, tmp_path: Path):
    summary = ingest_labels(store, _labels_csv(tmp_path, TEST_LEGACY, MAINNET_BECH32))
    assert (summary["loaded"], summary["quarantined"]) == (1, 1)
    assert store.query("SELECT position, reason FROM quarantine") == [
        ("line 2", "a bitcoin testnet address; this store holds bitcoin mainnet; filed under BTC")]


def test_testnet_store_takes_tb1_tagpack_labels(store, tmp_path: Path):
    store.claim_chain("bitcoin", "utxo", "testnet", None, None)
    pack = tmp_path / "testnet-pack.yaml"
    pack.write_text(f"title: testnet case\ncreator: analyst\nlabel: faucet\ncurrency: BTC\n"
                    f"tags:\n  - address: {TESTNET_BECH32}\n  - address: {REGTEST_BECH32}\n")
    summary = ingest_labels(store, pack)
    assert (summary["loaded"], summary["quarantined"]) == (1, 1)
    assert store.query("SELECT address, label, pack FROM labels") == [(TESTNET_BECH32, "faucet", "testnet-pack")]
    assert store.query("SELECT position, reason FROM quarantine") == [
        ("line 7 (tag 2)", "a bitcoin regtest address; this store holds bitcoin testnet; filed under BTC")]


def test_broken_tagpack_beside_a_good_one_is_refused_and_the_good_one_loads(tmp_path):
    folder = tmp_path / "packs"
    folder.mkdir()
    good = folder / "walletexplorer.yaml"
    good.write_bytes((Path(__file__).resolve().parents[2] / "fixtures" / "labels" / "tagpacks" / "walletexplorer.yaml")
                     .read_bytes())
    broken = folder / "broken.yaml"
    broken.write_text("header: [\n  bad")
    store = tracer.open_store(tmp_path / "s.duckdb")
    for _ in range(2):  # a rerun refuses it again, and records it once
        with pytest.raises(IngestError, match="(?s)broken.yaml at line 3: not valid YAML.*1 of 2 TagPack"):
            ingest_labels(store, folder)
        assert store.query("SELECT source, position FROM quarantine") == [(str(broken), "line 3")]
    assert store.scalar("SELECT count(*) FROM labels WHERE source_file = ?", [str(good)]) == \
        store.scalar("SELECT count(*) FROM labels") > 300
