"""Find and validate the identifiers investigators match across evidence: crypto addresses, IBANs,
phone numbers and e-mail addresses.

Two steps, always: a fast regular expression proposes candidates, then a checksum decides. A string
that merely *looks* like an address (a typo, a TRON address pasted into a Bitcoin field, a Monero
transaction hash filed as an address) is refused with a reason that names what it actually is.

Rules and their sources:

* Base58Check (Bitcoin wiki "Base58Check encoding"): payload = version ‖ hash, checksum = first four
  bytes of SHA-256(SHA-256(version ‖ hash)). Version bytes per chain are the chains' own
  ``chainparams`` (Bitcoin 0x00/0x05, Litecoin 0x30/0x32/0x05, TRON 0x41, Dash 0x4c/0x10, Zcash
  t1 0x1cb8 / t3 0x1cbd, Bitcoin Gold 0x26/0x17, Dogecoin and Verge 0x1e/0x16/0x21).
* Bech32 / Bech32m (BIP-173, BIP-350): witness version 0 uses the Bech32 constant 1 and a 20- or
  32-byte program; versions 1..16 use the Bech32m constant 0x2bc830a3 and a 2..40-byte program.
* CashAddr (Bitcoin Cash spec "cashaddr.md"): a 40-bit BCH checksum over the prefix and payload.
* EIP-55: a mixed-case EVM address must match the Keccak-256 case checksum; all-lower and all-upper
  addresses carry no checksum and are accepted. Stored lower-case (ethereum-etl convention).
* Ripple base58 uses its own alphabet (``rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz``).
* Monero (CryptoNote standard 004): base58 in 8-byte blocks, checksum = first four bytes of
  Keccak-256 of the rest; network bytes 18 (standard), 19 (integrated), 42 (subaddress).
* IBAN (ISO 13616): move the first four characters to the end, letters to 10..35, the number mod 97
  must be 1; the length must match the country's registered length.
* Phones: Google's libphonenumber (``phonenumbers``) decides validity and formats E.164.

Bitcoin addresses from users and label sources (reports, ads, every label format) go through
:func:`validate_bitcoin_user_address`: bitcoinlib, the project's Bitcoin library, and the built-in
rules must both accept them. Property tests keep the built-in Base58Check and Bech32 code in agreement
with bitcoinlib on mutated addresses.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from eth_utils import keccak

from tracer import chains

os.environ.setdefault("BCL_DATA_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "moneytrail-bitcoinlib"))

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
RIPPLE_ALPHABET = "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz"
BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}
_RIPPLE_INDEX = {c: i for i, c in enumerate(RIPPLE_ALPHABET)}
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_CHARSET)}


class InvalidIdentifier(ValueError):
    """An identifier failed validation; the message says why (and what it looks like instead)."""


# ---------------------------------------------------------------------------------------------
# encodings


def b58decode(text: str, alphabet_index: dict[str, int] = _B58_INDEX) -> bytes:
    """Decode base58 (leading '1'/first-alphabet characters are zero bytes)."""
    num = 0
    for ch in text:
        try:
            num = num * 58 + alphabet_index[ch]
        except KeyError:
            raise InvalidIdentifier(f"character {ch!r} is not base58") from None
    zero = next(iter(alphabet_index))
    pad = len(text) - len(text.lstrip(zero))
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\x00" * pad + body


def b58check_decode(text: str, alphabet_index: dict[str, int] = _B58_INDEX) -> bytes:
    """Decode Base58Check and verify the double-SHA-256 checksum; return version ‖ payload."""
    raw = b58decode(text, alphabet_index)
    if len(raw) < 5:
        raise InvalidIdentifier("too short for Base58Check")
    body, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] != check:
        raise InvalidIdentifier("Base58Check checksum mismatch")
    return body


def _bech32_polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
    return chk


def _convertbits(data: list[int], frombits: int, tobits: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        return None
    return out


def segwit_decode(address: str, hrp: str) -> tuple[int, bytes]:
    """Decode a SegWit address (BIP-173/BIP-350) for the given human-readable part."""
    if address.lower() != address and address.upper() != address:
        raise InvalidIdentifier("mixed-case Bech32")
    addr = address.lower()
    pos = addr.rfind("1")
    if pos < 1 or pos + 7 > len(addr) or len(addr) > 90:
        raise InvalidIdentifier("not a Bech32 string")
    if addr[:pos] != hrp:
        raise InvalidIdentifier(f"Bech32 prefix {addr[:pos]!r}, expected {hrp!r}")
    try:
        data = [_BECH32_INDEX[c] for c in addr[pos + 1:]]
    except KeyError:
        raise InvalidIdentifier("character outside the Bech32 alphabet") from None
    const = _bech32_polymod([ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + data)
    version = data[0]
    if version == 0 and const != 1:
        raise InvalidIdentifier("Bech32 checksum mismatch (witness v0 needs Bech32)")
    if version != 0 and const != 0x2BC830A3:
        raise InvalidIdentifier("Bech32m checksum mismatch (witness v1+ needs Bech32m, BIP-350)")
    if version > 16:
        raise InvalidIdentifier("witness version above 16")
    prog = _convertbits(data[1:-6], 5, 8, False)
    if prog is None or not 2 <= len(prog) <= 40:
        raise InvalidIdentifier("bad witness program length")
    if version == 0 and len(prog) not in (20, 32):
        raise InvalidIdentifier("witness v0 program must be 20 or 32 bytes")
    return version, bytes(prog)


def _cashaddr_polymod(values: list[int]) -> int:
    gen = (0x98F2BC8E61, 0x79B76D99E2, 0xF33E5FB3C4, 0xAE2EABE2A8, 0x1E4F43E470)
    c = 1
    for d in values:
        c0 = c >> 35
        c = ((c & 0x07FFFFFFFF) << 5) ^ d
        for i in range(5):
            if (c0 >> i) & 1:
                c ^= gen[i]
    return c ^ 1


def cashaddr_decode(address: str, prefix: str = "bitcoincash") -> bytes:
    """Decode a CashAddr (with or without its prefix); return version byte ‖ hash."""
    if address.lower() != address and address.upper() != address:
        raise InvalidIdentifier("mixed-case CashAddr")
    addr = address.lower()
    if ":" in addr:
        given, addr = addr.split(":", 1)
        if given != prefix:
            raise InvalidIdentifier(f"CashAddr prefix {given!r}, expected {prefix!r}")
    try:
        data = [_BECH32_INDEX[c] for c in addr]
    except KeyError:
        raise InvalidIdentifier("character outside the CashAddr alphabet") from None
    if len(data) < 9:
        raise InvalidIdentifier("too short for CashAddr")
    if _cashaddr_polymod([ord(c) & 31 for c in prefix] + [0] + data) != 0:
        raise InvalidIdentifier("CashAddr checksum mismatch")
    payload = _convertbits(data[:-8], 5, 8, False)
    if payload is None:
        raise InvalidIdentifier("bad CashAddr padding")
    size = {0: 20, 1: 24, 2: 28, 3: 32, 4: 40, 5: 48, 6: 56, 7: 64}[payload[0] & 7]
    if len(payload) - 1 != size:
        raise InvalidIdentifier("CashAddr hash size does not match its version byte")
    return bytes(payload)


_MONERO_BLOCK = {0: 0, 2: 1, 3: 2, 5: 3, 6: 4, 7: 5, 9: 6, 10: 7, 11: 8}


def monero_decode(address: str) -> bytes:
    """Decode Monero's block base58 and check its Keccak-256 checksum (CryptoNote standard 004)."""
    out = bytearray()
    for start in range(0, len(address), 11):
        block = address[start:start + 11]
        if len(block) not in _MONERO_BLOCK:
            raise InvalidIdentifier("bad Monero base58 block length")
        num = 0
        for ch in block:
            try:
                num = num * 58 + _B58_INDEX[ch]
            except KeyError:
                raise InvalidIdentifier(f"character {ch!r} is not base58") from None
        size = _MONERO_BLOCK[len(block)] if len(block) < 11 else 8
        if num >> (8 * size):
            raise InvalidIdentifier("Monero base58 block overflows")
        out += num.to_bytes(size, "big")
    raw = bytes(out)
    if len(raw) < 5 or keccak(raw[:-4])[:4] != raw[-4:]:
        raise InvalidIdentifier("Monero Keccak checksum mismatch")
    return raw[:-4]


# ---------------------------------------------------------------------------------------------
# per-chain validation


def _base58_versions(address: str, versions: dict[bytes, str]) -> str:
    body = b58check_decode(address)
    for version, script in versions.items():
        if body.startswith(version) and len(body) == len(version) + 20:
            return script
    raise InvalidIdentifier(f"Base58Check version 0x{body[:1].hex()} / length {len(body)} not used by this chain")


def _bitcoin_like(address: str, versions: dict[bytes, str], hrp: str | None) -> tuple[str, str]:
    if hrp and address.lower().startswith(hrp + "1"):
        version, prog = segwit_decode(address, hrp)
        if version == 0:
            return address.lower(), "p2wpkh" if len(prog) == 20 else "p2wsh"
        return address.lower(), "p2tr" if version == 1 and len(prog) == 32 else f"witness_v{version}"
    return address, _base58_versions(address, versions)


def _evm(address: str) -> tuple[str, str]:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        raise InvalidIdentifier("an EVM address is 0x followed by 40 hex digits")
    body = address[2:]
    if body != body.lower() and body != body.upper():
        digest = keccak(body.lower().encode()).hex()
        for ch, nibble in zip(body, digest):
            if ch.isalpha() and (ch.isupper() != (int(nibble, 16) >= 8)):
                raise InvalidIdentifier("EIP-55 checksum mismatch (mixed case does not match Keccak-256)")
    return "0x" + body.lower(), "account"


def _tron(address: str) -> tuple[str, str]:
    body = b58check_decode(address)
    if len(body) != 21 or body[0] != 0x41:
        raise InvalidIdentifier("a TRON address is Base58Check of 0x41 ‖ 20 bytes")
    return address, "account"


def _ripple(address: str) -> tuple[str, str]:
    body = b58check_decode(address, _RIPPLE_INDEX)
    if len(body) != 21 or body[0] != 0:
        raise InvalidIdentifier("a Ripple account is Base58Check (Ripple alphabet) of 0x00 ‖ 20 bytes")
    return address, "account"


def _monero(address: str) -> tuple[str, str]:
    if re.fullmatch(r"[0-9a-fA-F]{64}", address):
        raise InvalidIdentifier("64 hex digits: a transaction hash or key, not a Monero address")
    body = monero_decode(address)
    kinds = {18: "standard", 19: "integrated", 42: "subaddress"}
    if body[0] not in kinds or len(body) not in (65, 73):
        raise InvalidIdentifier(f"Monero network byte {body[0]} / length {len(body)} is not mainnet")
    return address, kinds[body[0]]


def _bitcoin_cash(address: str) -> tuple[str, str]:
    if address[:1] in "13":
        return address, _base58_versions(address, {b"\x00": "p2pkh", b"\x05": "p2sh"})
    payload = cashaddr_decode(address)
    kind = "p2pkh" if payload[0] >> 3 == 0 else "p2sh"
    return address.lower().removeprefix("bitcoincash:"), kind


def _binance_chain(address: str) -> tuple[str, str]:
    """BNB Beacon Chain (BEP2): Bech32 (constant 1) with prefix 'bnb' over a 20-byte hash, no
    witness version (Binance Chain docs, "Address")."""
    addr = address.lower()
    if address != addr and address.upper() != address:
        raise InvalidIdentifier("mixed-case Bech32")
    if not addr.startswith("bnb1"):
        raise InvalidIdentifier("a BEP2 address starts with bnb1")
    try:
        data = [_BECH32_INDEX[c] for c in addr[4:]]
    except KeyError:
        raise InvalidIdentifier("character outside the Bech32 alphabet") from None
    if _bech32_polymod([3, 3, 3, 0, 2, 14, 2] + data) != 1:
        raise InvalidIdentifier("Bech32 checksum mismatch")
    prog = _convertbits(data[:-6], 5, 8, False)
    if prog is None or len(prog) != 20:
        raise InvalidIdentifier("a BEP2 address holds 20 bytes")
    return addr, "account"


def _bank_account(address: str) -> tuple[str, str]:
    """A bank account as the bank ingester stores it: ``<bank>:<account>`` (an exchange's published
    account for fiat deposits and withdrawals, say)."""
    if not re.fullmatch(r"[^\s:]+:[^\s:]+", address):
        raise InvalidIdentifier("a bank account is <bank>:<account>, without spaces")
    return address, "account"


_BTC_VERSIONS = {b"\x00": "p2pkh", b"\x05": "p2sh"}
_VALIDATORS = {
    "bitcoin": lambda a: _bitcoin_like(a, _BTC_VERSIONS, "bc"),
    "litecoin": lambda a: _bitcoin_like(a, {b"\x30": "p2pkh", b"\x32": "p2sh", b"\x05": "p2sh"}, "ltc"),
    "dogecoin": lambda a: _bitcoin_like(a, {b"\x1e": "p2pkh", b"\x16": "p2sh"}, None),
    "dash": lambda a: _bitcoin_like(a, {b"\x4c": "p2pkh", b"\x10": "p2sh"}, None),
    "zcash": lambda a: (a, _base58_versions(a, {b"\x1c\xb8": "p2pkh", b"\x1c\xbd": "p2sh"})),
    "bitcoin-gold": lambda a: _bitcoin_like(a, {b"\x26": "p2pkh", b"\x17": "p2sh"}, "btg"),
    "bitcoin-sv": lambda a: _bitcoin_like(a, _BTC_VERSIONS, None),
    "verge": lambda a: _bitcoin_like(a, {b"\x1e": "p2pkh", b"\x21": "p2sh"}, None),
    "bitcoin-cash": _bitcoin_cash,
    "tron": _tron,
    "ripple": _ripple,
    "binance-chain": _binance_chain,
    "monero": _monero,
    "fiat": _bank_account,
}
#: Chains that use EVM (20-byte Keccak) addresses: every EVM chain of the registry (tracer/chains.py).
EVM_CHAINS = chains.EVM_CHAINS
for _chain in EVM_CHAINS:
    _VALIDATORS[_chain] = _evm

#: The chain names used by labels, and what each stores.
SUPPORTED_CHAINS = frozenset(_VALIDATORS)


def validate_address(chain: str, address: str) -> tuple[str, str]:
    """Validate ``address`` for ``chain``; return (normalised address, script type or kind).

    Raises :class:`InvalidIdentifier` whose message says why, and what the string is instead when it
    is a valid address of another chain (the OFAC list files a TRON address under XBT).
    """
    validator = _VALIDATORS.get(chain)
    if validator is None:
        raise InvalidIdentifier(f"no address rules for chain {chain!r}")
    address = address.strip()
    try:
        return validator(address)
    except InvalidIdentifier as exc:
        others = [c for c in ("bitcoin", "ethereum", "tron", "litecoin", "bitcoin-cash", "monero", "ripple")
                  if c != chain and c in chains_of(address)]
        if others:
            raise InvalidIdentifier(
                f"not a valid {chain} address ({exc}); it is a valid {others[0]} address"
            ) from None
        raise InvalidIdentifier(f"not a valid {chain} address: {exc}") from None


def is_valid(chain: str, address: str) -> bool:
    try:
        validate_address(chain, address)
    except InvalidIdentifier:
        return False
    return True


def chains_of(address: str) -> list[str]:
    """Every chain on which ``address`` is valid (EVM addresses report 'ethereum' only)."""
    found = []
    for chain in ("bitcoin", "ethereum", "tron", "litecoin", "bitcoin-cash", "dogecoin", "dash", "zcash",
                  "ripple", "monero"):
        try:
            _VALIDATORS[chain](address.strip())
        except (InvalidIdentifier, ValueError, KeyError, IndexError):
            continue
        found.append(chain)
    return found


def validate_bitcoin_user_address(address: str) -> tuple[str, str]:
    """Validate a user-entered Bitcoin mainnet address with bitcoinlib and the built-in rules.

    Both must agree: bitcoinlib is the project's Bitcoin library (it knows every script type), and the
    built-in Bech32/Bech32m check enforces BIP-350's constant per witness version.
    """
    from bitcoinlib.encoding import EncodingError
    from bitcoinlib.keys import deserialize_address

    normalised, script_type = validate_address("bitcoin", address)
    try:
        info = deserialize_address(normalised)
    except (EncodingError, ValueError, TypeError) as exc:
        raise InvalidIdentifier(f"not a valid bitcoin address: bitcoinlib: {exc}") from None
    if info.get("network") != "bitcoin" and not (info.get("network") == "litecoin" and script_type == "p2sh"):
        raise InvalidIdentifier(f"not a bitcoin mainnet address (bitcoinlib: network {info.get('network')!r})")
    return normalised, script_type


# ---------------------------------------------------------------------------------------------
# IBAN, phones, e-mails

#: ISO 13616 registry: IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def validate_iban(text: str) -> str:
    """Return the IBAN in compact upper-case form, or raise (ISO 13616 mod-97 and country length)."""
    iban = re.sub(r"[\s-]", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban):
        raise InvalidIdentifier("an IBAN is a country code, two check digits and 10-30 letters/digits")
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is None:
        raise InvalidIdentifier(f"country {iban[:2]} does not use IBANs")
    if len(iban) != expected:
        raise InvalidIdentifier(f"{iban[:2]} IBANs have {expected} characters, not {len(iban)}")
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise InvalidIdentifier("IBAN check digits fail mod-97")
    return iban


def normalize_phone(text: str, region: str | None = None) -> str:
    """Return the phone number in E.164 (``+15551234567``), or raise if libphonenumber rejects it."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("not a valid phone number for its region (libphonenumber)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b")


def normalize_email(text: str) -> str:
    """Lower-case an e-mail address after checking its shape (local@domain.tld)."""
    value = text.strip()
    if not _EMAIL.fullmatch(value) or ".." in value:
        raise InvalidIdentifier("not an e-mail address")
    return value.lower()


# ---------------------------------------------------------------------------------------------
# extraction from free text


@dataclass(frozen=True)
class Identifier:
    """One identifier found in text: kind (bitcoin, ethereum, tron, iban, phone, email, ...), value."""

    kind: str
    value: str
    start: int = -1
    end: int = -1


_B58 = "1-9A-HJ-NP-Za-km-z"
_CANDIDATES = [
    ("bitcoin", re.compile(rf"(?<![{_B58}])[13][{_B58}]{{25,34}}(?![{_B58}])")),
    ("bitcoin", re.compile(r"(?<![0-9A-Za-z])(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}(?![0-9A-Za-z])")),
    ("ethereum", re.compile(r"(?<![0-9A-Za-z])0x[0-9a-fA-F]{40}(?![0-9A-Za-z])")),
    ("tron", re.compile(rf"(?<![{_B58}])T[{_B58}]{{33}}(?![{_B58}])")),
    ("litecoin", re.compile(rf"(?<![{_B58}])[LM][{_B58}]{{26,33}}(?![{_B58}])")),
    ("litecoin", re.compile(r"(?<![0-9A-Za-z])ltc1[02-9ac-hj-np-z]{6,87}(?![0-9A-Za-z])")),
    ("monero", re.compile(rf"(?<![{_B58}])[48][{_B58}]{{94}}(?:[{_B58}]{{11}})?(?![{_B58}])")),
]
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){10,30}(?![A-Za-z0-9])")


#: Bitcoin's test networks (testnet, signet, regtest): Base58Check versions 0x6f / 0xc4 and their HRPs
_TEST_BITCOIN = {
    "base58": re.compile(rf"(?<![{_B58}])[mn2][{_B58}]{{25,34}}(?![{_B58}])"),
    "tb": re.compile(r"(?<![0-9A-Za-z])(?:tb1|TB1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}(?![0-9A-Za-z])"),
    "bcrt": re.compile(r"(?<![0-9A-Za-z])(?:bcrt1|BCRT1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}(?![0-9A-Za-z])"),
}


def find_addresses(text: str, bitcoin_network: str = "mainnet") -> list[Identifier]:
    """Crypto addresses in free text, checksum-validated (Bitcoin also by bitcoinlib). Bitcoin addresses
    are those of ``bitcoin_network``, the network the store's Bitcoin chain holds."""
    found: list[Identifier] = []
    candidates = _CANDIDATES
    if bitcoin_network != "mainnet":
        from tracer.ingest.bitcoin.network import network
        from tracer.ingest.labels.sources import validate_bitcoin_address

        net = network(bitcoin_network)
        candidates = [("bitcoin-test", _TEST_BITCOIN["base58"]), ("bitcoin-test", _TEST_BITCOIN[net.hrp])] + \
            [c for c in _CANDIDATES if c[0] != "bitcoin"]
    for kind, pattern in candidates:
        for m in pattern.finditer(text):
            try:
                if kind == "bitcoin-test":
                    value, _ = validate_bitcoin_address(m.group(), bitcoin_network)
                    kind = "bitcoin"
                elif kind == "bitcoin":
                    value, _ = validate_bitcoin_user_address(m.group())
                else:
                    value, _ = validate_address(kind, m.group())
            except InvalidIdentifier:
                continue
            found.append(Identifier(kind, value, m.start(), m.end()))
    return found


def _iban_in(candidate: str, offset: int) -> Identifier | None:
    """The IBAN at the start of a regex candidate: its country fixes the length, so trailing words
    that the pattern swallowed ("... 7654 32 TRX") are cut off before the checksum decides."""
    expected = IBAN_LENGTHS.get(candidate[:2])
    if expected is None:
        return None
    taken = end = 0
    while end < len(candidate) and taken < expected:
        if candidate[end] != " ":
            taken += 1
        end += 1
    if taken != expected:
        return None
    try:
        return Identifier("iban", validate_iban(candidate[:end]), offset, offset + end)
    except InvalidIdentifier:
        return None


def find_identifiers(text: str, region: str | None = "US", bitcoin_network: str = "mainnet") -> list[Identifier]:
    """All identifiers in ``text``, in order of position, each validated; duplicates kept once.

    ``region`` is the default country for phone numbers written without ``+country``; Bitcoin
    addresses are those of ``bitcoin_network``.
    """
    if not text:
        return []
    found = find_addresses(text, bitcoin_network)
    for m in _IBAN.finditer(text):
        ident = _iban_in(m.group(), m.start())
        if ident is not None:
            found.append(ident)
    for m in _EMAIL.finditer(text):
        try:
            found.append(Identifier("email", normalize_email(m.group()), m.start(), m.end()))
        except InvalidIdentifier:
            continue
    taken = [(i.start, i.end) for i in found]
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        if any(s < match.end and match.start < e for s, e in taken):
            continue  # digits inside an address or IBAN are not a phone number
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        found.append(Identifier("phone", e164, match.start, match.end))
    found.sort(key=lambda i: (i.start, i.kind))
    seen: set[tuple[str, str]] = set()
    unique = []
    for ident in found:
        if (ident.kind, ident.value) not in seen:
            seen.add((ident.kind, ident.value))
            unique.append(ident)
    return unique
