"""Per-network constants of Bitcoin: message-start magic, address prefixes and HRP, proof-of-work limit,
genesis hash and the BIP34 activation height (Bitcoin Core ``src/kernel/chainparams.cpp``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Network:
    name: str
    magic: bytes
    p2pkh_version: int
    p2sh_version: int
    hrp: str
    pow_limit: int
    genesis: str
    bip34_height: int


NETWORKS: dict[str, Network] = {
    "mainnet": Network(
        "mainnet", bytes.fromhex("f9beb4d9"), 0x00, 0x05, "bc",
        0x00000000FFFF0000000000000000000000000000000000000000000000000000,
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", 227931,
    ),
    "testnet": Network(
        "testnet", bytes.fromhex("0b110907"), 0x6F, 0xC4, "tb",
        0x00000000FFFF0000000000000000000000000000000000000000000000000000,
        "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943", 21111,
    ),
    "signet": Network(
        "signet", bytes.fromhex("0a03cf40"), 0x6F, 0xC4, "tb",
        0x00000377AE000000000000000000000000000000000000000000000000000000,
        "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6", 1,
    ),
    "regtest": Network(
        "regtest", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, "bcrt",
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206", 1,
    ),
}

MAGICS = {net.magic: net for net in NETWORKS.values()}


def network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown Bitcoin network {name!r}; choose one of {', '.join(NETWORKS)}") from None
