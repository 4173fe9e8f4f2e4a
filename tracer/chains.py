"""The registry of chain names: one table shared by ingest, labels and flows.

A chain name is the store's ``chain`` column (lowercase). Each chain has a kind (``utxo``, ``account``,
``fiat``), its native coin's symbol (what values ``native``/``internal``/``utxo`` flows), for EVM chains
the chain id (EIP-155) and the network the ``chains`` table records, and the currency or network codes
that OFAC lists and GraphSense TagPacks file its addresses under (``XBT``, ``BEP20``, ``MATIC``, ...).

Because ``tracer ingest evm`` (chain id from ``eth_chainId``), ``tracer ingest etl`` (``--chain-id``) and
the label loaders (codes and names) all name chains from this table, a label filed under ``BNB`` or ``bsc``
lands on ``bsc``, the chain transfers read from chain id 56 are stored under.

Chain ids: chainlist.org / ethereum-lists/chains (``_data/chains/eip155-<id>.json``). Native symbols are
the ones those files give (Polygon's ``POL`` since September 2024, formerly ``MATIC``; Gnosis ``XDAI``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chain:
    name: str  # the store's chain name
    kind: str  # utxo, account or fiat
    native: str | None  # the native coin's symbol (None for fiat: each row names its currency)
    chain_id: int | None = None  # EIP-155 chain id of an EVM chain
    network: str | None = None  # what `chains.network` records for it
    codes: tuple[str, ...] = ()  # OFAC asset / TagPack currency or network codes for this chain
    evm: bool = False  # EVM (20-byte Keccak) addresses

    @property
    def code(self) -> str:
        """The code a TagPack export writes for this chain (its first code, else its name upper-cased)."""
        return self.codes[0] if self.codes else self.name.upper()


def _evm(name: str, chain_id: int, native: str, *codes: str, network: str = "mainnet") -> Chain:
    return Chain(name, "account", native, chain_id, network, codes, evm=True)


CHAINS: tuple[Chain, ...] = (
    Chain("bitcoin", "utxo", "BTC", codes=("BTC", "XBT")),
    Chain("litecoin", "utxo", "LTC", codes=("LTC",)),
    Chain("bitcoin-cash", "utxo", "BCH", codes=("BCH",)),
    Chain("bitcoin-sv", "utxo", "BSV", codes=("BSV",)),
    Chain("bitcoin-gold", "utxo", "BTG", codes=("BTG",)),
    Chain("dogecoin", "utxo", "DOGE", codes=("DOGE",)),
    Chain("dash", "utxo", "DASH", codes=("DASH",)),
    Chain("zcash", "utxo", "ZEC", codes=("ZEC",)),
    Chain("verge", "utxo", "XVG", codes=("XVG",)),
    Chain("monero", "utxo", "XMR", codes=("XMR",)),
    Chain("tron", "account", "TRX", codes=("TRX",)),
    Chain("ripple", "account", "XRP", codes=("XRP",)),
    Chain("binance-chain", "account", "BNB", codes=("BEP2",)),
    _evm("ethereum", 1, "ETH", "ETH"),
    _evm("ethereum-classic", 61, "ETC", "ETC"),
    _evm("bsc", 56, "BNB", "BSC", "BEP20", "BNB"),
    _evm("polygon", 137, "POL", "MATIC", "POL"),
    _evm("arbitrum", 42161, "ETH", "ARB"),
    _evm("optimism", 10, "ETH", "OP"),
    _evm("base", 8453, "ETH", "BASE"),
    _evm("avalanche", 43114, "AVAX", "AVAX"),
    _evm("fantom", 250, "FTM", "FTM"),
    _evm("gnosis", 100, "XDAI", "XDAI"),
    _evm("kcc", 321, "KCS", "KCS"),
    _evm("sepolia", 11155111, "ETH", network="sepolia"),
    _evm("holesky", 17000, "ETH", network="holesky"),
    _evm("goerli", 5, "ETH", network="goerli"),
    _evm("anvil", 31337, "ETH", network="anvil"),
    _evm("dev", 1337, "ETH", network="dev"),
    Chain("fiat", "fiat", None),
)

BY_NAME: dict[str, Chain] = {c.name: c for c in CHAINS}
BY_CHAIN_ID: dict[int, Chain] = {c.chain_id: c for c in CHAINS if c.chain_id is not None}
#: OFAC asset / TagPack currency and network codes -> chain name.
CODES: dict[str, str] = {code: c.name for c in CHAINS for code in c.codes}
#: Tokens that live on several chains: the address's own form decides, in this order of preference
#: (an Omni USDT address is a Bitcoin address).
MULTI_CHAIN_CODES: dict[str, tuple[str, ...]] = {
    "USDT": ("ethereum", "tron", "bitcoin"),
    "USDC": ("ethereum", "tron"),
}
#: Chains with EVM addresses.
EVM_CHAINS: frozenset[str] = frozenset(c.name for c in CHAINS if c.evm)
#: Chain ids of local development nodes (no confirmations needed).
DEV_CHAIN_IDS = frozenset({31337, 1337})


def by_chain_id(chain_id: int) -> Chain | None:
    return BY_CHAIN_ID.get(chain_id)


def chain_name(chain_id: int) -> str:
    """The registry's name for an EVM chain id; ``evm-<id>`` for an id it does not know."""
    c = BY_CHAIN_ID.get(chain_id)
    return c.name if c else f"evm-{chain_id}"


def network_of(chain_id: int) -> str:
    """The network ``chains`` records for a chain id (``mainnet``, ``sepolia``, ...; ``chain-<id>`` if unknown)."""
    c = BY_CHAIN_ID.get(chain_id)
    return c.network if c and c.network else f"chain-{chain_id}"


def native_symbol(chain: str | int, default: str = "ETH") -> str:
    """The native coin of a chain (by name or EVM chain id); ``default`` for one the registry does not know."""
    c = BY_CHAIN_ID.get(chain) if isinstance(chain, int) else BY_NAME.get(chain)
    return c.native if c and c.native else default


def resolve(code_or_name: str) -> str | None:
    """The chain a label's code or chain name means (``BNB``, ``bep20``, ``bsc`` -> ``bsc``), or None.

    Codes first (``BNB`` is the BSC code, as OFAC and TagPacks use it), then chain names.
    """
    s = code_or_name.strip()
    return CODES.get(s.upper()) or (s.lower() if s.lower() in BY_NAME else None)


def code_of(chain: str) -> str:
    """The code a TagPack export files ``chain`` under (``bsc`` -> ``BSC``, ``bitcoin`` -> ``BTC``)."""
    c = BY_NAME.get(chain)
    return c.code if c else chain.upper()
