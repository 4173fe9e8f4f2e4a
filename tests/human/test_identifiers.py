"""Identifier validation and extraction: checksums per chain, EIP-55, IBAN, phones; bitcoinlib agrees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer  # noqa: F401  (sets BCL_DATA_DIR before bitcoinlib loads)
from tracer.codecs.identifiers import (
    B58_ALPHABET,
    InvalidIdentifier,
    find_identifiers,
    is_valid,
    validate_address,
    validate_bitcoin_user_address,
    validate_iban,
)

REAL_BITCOIN = [
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",  # p2pkh (genesis)
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",  # p2sh
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",  # p2wpkh
    "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",  # p2wsh (BIP-173 vector)
    "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",  # p2tr (BIP-350 vector)
]


@pytest.mark.parametrize("address,script", list(zip(REAL_BITCOIN, ["p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"])))
def test_every_bitcoin_script_type_validates(address, script):
    assert validate_address("bitcoin", address) == (address, script)
    assert validate_bitcoin_user_address(address) == (address, script)


def test_taproot_with_a_bech32_instead_of_bech32m_checksum_is_refused():
    # BIP-350 test vector: witness v1 encoded with the old Bech32 constant
    with pytest.raises(InvalidIdentifier, match="Bech32m"):
        validate_address("bitcoin", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd")


def test_eip55_mixed_case_must_match_its_checksum():
    good = "0x983a81ca6FB1e441266D2FbcB7D8E530AC2E05A2"
    assert validate_address("ethereum", good)[0] == good.lower()
    assert validate_address("ethereum", good.lower())[0] == good.lower()
    with pytest.raises(InvalidIdentifier, match="EIP-55"):
        validate_address("ethereum", "0x983a81ca6fB1e441266D2FbcB7D8E530AC2E05A2")


def test_tron_address_is_not_a_bitcoin_address():
    assert is_valid("tron", "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq")
    with pytest.raises(InvalidIdentifier, match="valid tron address"):
        validate_address("bitcoin", "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq")


def test_iban_mod97_and_country_length():
    assert validate_iban("GB82 WEST 1234 5698 7654 32") == "GB82WEST12345698765432"
    with pytest.raises(InvalidIdentifier, match="mod-97"):
        validate_iban("GB82 WEST 1234 5698 7654 33")
    with pytest.raises(InvalidIdentifier, match="22 characters"):
        validate_iban("DE8937040044053201300")


def test_narrative_extraction_finds_each_kind_once():
    text = ("Paid 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa twice: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa; "
            "call +1 (415) 555-2671, write to Ops@Example.COM, IBAN DE89 3704 0044 0532 0130 00, "
            "bad 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")
    assert [(i.kind, i.value) for i in find_identifiers(text)] == [
        ("bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"), ("phone", "+14155552671"),
        ("email", "ops@example.com"), ("iban", "DE89370400440532013000")]


def _bitcoinlib_accepts(address: str) -> bool:
    from bitcoinlib.keys import deserialize_address

    try:
        info = deserialize_address(address)
    except Exception:  # noqa: BLE001 - bitcoinlib raises several types for bad input
        return False
    return info.get("network") == "bitcoin"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(REAL_BITCOIN[:2]), st.integers(0, 33), st.sampled_from(B58_ALPHABET))
def test_builtin_base58check_agrees_with_bitcoinlib_on_mutations(address, position, char):
    mutated = address[:position] + char + address[position + 1:]
    assert is_valid("bitcoin", mutated) == _bitcoinlib_accepts(mutated)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(REAL_BITCOIN[2:]), st.integers(4, 61), st.sampled_from("qpzry9x8gf2tvdw0s3jn54khce6mua7l"))
def test_builtin_bech32_agrees_with_bitcoinlib_on_mutations(address, position, char):
    position = min(position, len(address) - 1)
    mutated = address[:position] + char + address[position + 1:]
    assert is_valid("bitcoin", mutated) == _bitcoinlib_accepts(mutated)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_extraction_never_fails_on_arbitrary_text(text):
    for ident in find_identifiers(text):
        assert ident.value and ident.kind
