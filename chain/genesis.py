"""go-ethereum ``genesis.json`` → py-evm genesis header parameters and state.

The genesis block hash must come out exactly as geth's, or no block of the chain
imports (every block commits to its parent's hash). So the defaults below are
geth's (``core/genesis.go``), not py-evm's: a 4,712,388 gas limit and 131,072
difficulty when absent, a 1 gwei base fee when London is active at genesis, a zero
``parentBeaconBlockRoot`` (py-evm defaults to the empty-trie root) and the empty
requests hash under Prague.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from eth.abc import AtomicDatabaseAPI
from eth.chains.base import Chain
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA256, ZERO_ADDRESS, ZERO_HASH32
from eth.typing import AccountDetails, AccountState, HeaderParams
from eth.vm.forks.cancun.constants import (
    BLOB_BASE_FEE_UPDATE_FRACTION as CANCUN_BLOB_FRACTION,
    MAX_BLOB_GAS_PER_BLOCK as CANCUN_MAX_BLOB_GAS,
    TARGET_BLOB_GAS_PER_BLOCK as CANCUN_TARGET_BLOB_GAS,
    GAS_PER_BLOB,
)
from eth.vm.forks.prague.constants import (
    BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE as PRAGUE_BLOB_FRACTION,
    DEPOSIT_CONTRACT_ADDRESS,
    MAX_BLOB_GAS_PER_BLOCK as PRAGUE_MAX_BLOB_GAS,
    TARGET_BLOB_GAS_PER_BLOCK as PRAGUE_TARGET_BLOB_GAS,
)
from eth_typing import Address
from eth_utils import ValidationError

from chain.config import (
    BPO_FORKS,
    FORK_NAMES,
    OSAKA_RULES_FORKS,
    ChainConfig,
    chain_class,
    write_config,
)
from chain.errors import InvalidGenesis, UnsupportedChain
from chain.osaka import BlobParameters

GETH_GENESIS_GAS_LIMIT = 4_712_388
"""geth's ``params.GenesisGasLimit``, used when genesis.json has no gasLimit."""

GETH_GENESIS_DIFFICULTY = 131_072
"""geth's ``params.GenesisDifficulty``, used when difficulty and mixHash are absent."""

GETH_INITIAL_BASE_FEE = 1_000_000_000
"""geth's ``params.InitialBaseFee``, the genesis base fee when London is at block 0."""

BLOCK_FORK_KEYS: tuple[tuple[str, str], ...] = (
    ("homesteadBlock", "homestead"),
    ("eip150Block", "tangerine-whistle"),
    ("eip155Block", "spurious-dragon"),
    ("byzantiumBlock", "byzantium"),
    ("constantinopleBlock", "constantinople"),
    ("petersburgBlock", "petersburg"),
    ("istanbulBlock", "istanbul"),
    ("muirGlacierBlock", "muir-glacier"),
    ("berlinBlock", "berlin"),
    ("londonBlock", "london"),
    ("arrowGlacierBlock", "arrow-glacier"),
    ("grayGlacierBlock", "gray-glacier"),
)
"""geth's block-numbered fork keys in geth's order, with the py-evm fork each starts.

``eip158Block`` is checked against ``eip155Block`` (py-evm's spurious-dragon is both);
``mergeNetsplitBlock`` only changes the fork id, never the rules, so it is ignored.
"""

TIME_FORK_KEYS: tuple[tuple[str, str], ...] = (
    ("shanghaiTime", "shanghai"),
    ("cancunTime", "cancun"),
    ("pragueTime", "prague"),
    ("osakaTime", "osaka"),
    ("bpo1Time", "bpo1"),
    ("bpo2Time", "bpo2"),
    ("bpo3Time", "bpo3"),
    ("bpo4Time", "bpo4"),
    ("bpo5Time", "bpo5"),
    ("amsterdamTime", "amsterdam"),
    ("verkleTime", "verkle"),
)
"""geth's timestamp fork keys; names absent from py-evm are refused once reached."""

_PY_EVM_BLOB_SCHEDULE: Mapping[str, tuple[int, int, int]] = {
    "cancun": (
        CANCUN_TARGET_BLOB_GAS // GAS_PER_BLOB,
        CANCUN_MAX_BLOB_GAS // GAS_PER_BLOB,
        CANCUN_BLOB_FRACTION,
    ),
    "prague": (
        PRAGUE_TARGET_BLOB_GAS // GAS_PER_BLOB,
        PRAGUE_MAX_BLOB_GAS // GAS_PER_BLOB,
        PRAGUE_BLOB_FRACTION,
    ),
}
"""(target, max, baseFeeUpdateFraction) per fork, hard-coded in py-evm 0.12."""


@dataclass(frozen=True)
class GenesisHeader:
    """The header fields genesis.json may set (geth's defaults already applied)."""

    nonce: bytes
    timestamp: int
    extra_data: bytes
    gas_limit: int
    difficulty: int
    mix_hash: bytes
    coinbase: Address
    base_fee_per_gas: int | None
    """None when absent: the 1 gwei default applies only if London is at genesis."""
    excess_blob_gas: int | None
    blob_gas_used: int | None


@dataclass(frozen=True)
class GenesisSpec:
    """A parsed genesis.json: chain rules as geth states them, header and allocation."""

    chain_id: int
    block_forks: tuple[tuple[str, int], ...]
    """(py-evm fork name, first block) for each block fork geth's config sets, in order."""
    time_forks: tuple[tuple[str, int], ...]
    """(fork name, first timestamp) for each time fork geth's config sets, in order."""
    terminal_total_difficulty: int | None
    dao_fork_block: int | None
    dao_fork_support: bool
    header: GenesisHeader
    alloc: AccountState = field(hash=False, compare=False)
    blob_schedule: tuple[tuple[str, BlobParameters], ...] = ()
    """``blobSchedule`` entries of the Osaka-rules forks (earlier ones are checked only)."""
    fork_id_blocks: tuple[int, ...] = ()
    """Every block number the config names a fork at, DAO and netsplit included (EIP-2124)."""
    deposit_contract: bytes = bytes(20)
    """``depositContractAddress``, zero when unset."""


def load_genesis(path: str | Path) -> GenesisSpec:
    """Read and parse a geth genesis.json file."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidGenesis(f"cannot read genesis {path}: {exc}") from exc
    return parse_genesis(document)


def parse_genesis(document: Mapping[str, Any]) -> GenesisSpec:
    """Parse a decoded genesis.json document (geth's field names and number formats)."""
    if not isinstance(document, Mapping):
        raise InvalidGenesis("genesis is not a JSON object")
    config = document.get("config")
    if not isinstance(config, Mapping):
        raise InvalidGenesis("genesis has no 'config' object")
    _refuse_unsupported_engines(config)
    _check_fork_order(config)
    _check_blob_schedule(config.get("blobSchedule"))
    time_forks = tuple(
        (name, _quantity(config[key], key))
        for key, name in TIME_FORK_KEYS
        if config.get(key) is not None
    )
    deposit_contract = _deposit_contract(config.get("depositContractAddress"))
    if _quantity(document.get("number", 0), "number") != 0:
        raise InvalidGenesis("genesis 'number' must be 0")
    return GenesisSpec(
        chain_id=_quantity(_required(config, "chainId"), "chainId"),
        block_forks=_block_forks(config),
        time_forks=time_forks,
        terminal_total_difficulty=_optional_quantity(config, "terminalTotalDifficulty"),
        dao_fork_block=_optional_quantity(config, "daoForkBlock"),
        dao_fork_support=bool(config.get("daoForkSupport", False)),
        header=_parse_header(document),
        alloc=parse_alloc(document.get("alloc") or {}),
        blob_schedule=_osaka_blob_schedule(config.get("blobSchedule"), time_forks),
        fork_id_blocks=_fork_id_blocks(config),
        deposit_contract=deposit_contract,
    )


def _required(mapping: Mapping[str, Any], key: str) -> Any:
    if mapping.get(key) is None:
        raise InvalidGenesis(f"genesis is missing {key!r}")
    return mapping[key]


def _refuse_unsupported_engines(config: Mapping[str, Any]) -> None:
    for engine in ("clique", "parlia", "aura"):
        if config.get(engine) is not None:
            raise UnsupportedChain(f"{engine} consensus is not supported (py-evm rules only)")


def _check_blob_schedule(schedule: Any) -> None:
    """py-evm hard-codes the blob parameters; refuse a chain that changes them."""
    if schedule is None:
        return
    for fork, (target, maximum, fraction) in _PY_EVM_BLOB_SCHEDULE.items():
        entry = schedule.get(fork)
        if entry is None:
            continue
        wanted = (
            _quantity(entry.get("target"), "target"),
            _quantity(entry.get("max"), "max"),
            _quantity(entry.get("baseFeeUpdateFraction"), "baseFeeUpdateFraction"),
        )
        if wanted != (target, maximum, fraction):
            raise UnsupportedChain(
                f"blobSchedule.{fork} {wanted} differs from py-evm's fixed "
                f"{(target, maximum, fraction)} (target, max, fraction)"
            )


OPTIONAL_TIME_FORK_KEYS = frozenset({"bpo1Time", "bpo2Time", "bpo3Time", "bpo4Time", "bpo5Time", "verkleTime"})
"""Time forks geth lets a chain leave out while configuring later ones."""


def _check_fork_order(config: Mapping[str, Any]) -> None:
    """geth's ``CheckConfigForkOrder`` for time forks, with its words: no required fork
    left out before a configured one, no fork activating before the one it follows.

    Block forks stay lenient (a London genesis need not list Berlin): py-evm's London
    rules include every earlier fork, and chains written that way import as before.
    """
    last: tuple[str, int | None] | None = None
    for key, _ in TIME_FORK_KEYS:
        value = _optional_quantity(config, key)
        if last is not None and value is not None:
            last_key, last_value = last
            if last_value is None:
                raise InvalidGenesis(
                    f"unsupported fork ordering: {last_key} not enabled, but {key} enabled "
                    f"at timestamp {value}"
                )
            if last_value > value:
                raise InvalidGenesis(
                    f"unsupported fork ordering: {last_key} enabled at timestamp {last_value}, "
                    f"but {key} enabled at timestamp {value}"
                )
        if key not in OPTIONAL_TIME_FORK_KEYS or value is not None:
            last = (key, value)


def _osaka_blob_schedule(
    schedule: Any, time_forks: tuple[tuple[str, int], ...]
) -> tuple[tuple[str, BlobParameters], ...]:
    """Blob parameters of the Osaka-rules forks; a BPO fork without its entry is refused.

    A BPO fork changes nothing but blob parameters, so geth refuses one without them;
    Osaka without an entry runs Prague's numbers (mainnet's).
    """
    entries = schedule if isinstance(schedule, Mapping) else {}
    for name, _ in time_forks:
        if name in BPO_FORKS and not isinstance(entries.get(name), Mapping):
            raise InvalidGenesis(
                f"{name}Time is set but blobSchedule.{name} is missing: a blob-parameter-only "
                "fork needs its target, max and baseFeeUpdateFraction"
            )
    return tuple(
        (name, _blob_parameters(name, entries[name]))
        for name in FORK_NAMES
        if name in OSAKA_RULES_FORKS and isinstance(entries.get(name), Mapping)
    )


def _blob_parameters(fork: str, entry: Mapping[str, Any]) -> BlobParameters:
    field_name = f"blobSchedule.{fork}"
    parameters = BlobParameters(
        target=_quantity(entry.get("target"), f"{field_name}.target"),
        max=_quantity(entry.get("max"), f"{field_name}.max"),
        base_fee_update_fraction=_quantity(
            entry.get("baseFeeUpdateFraction"), f"{field_name}.baseFeeUpdateFraction"
        ),
    )
    if not 0 < parameters.target <= parameters.max or parameters.base_fee_update_fraction <= 0:
        raise InvalidGenesis(
            f"{field_name}: need 0 < target <= max and a positive baseFeeUpdateFraction, "
            f"got {parameters}"
        )
    return parameters


def _deposit_contract(value: Any) -> bytes:
    """The configured address; py-evm reads deposits from the mainnet contract only
    (zero means "none here")."""
    if value is None:
        return ZERO_ADDRESS
    address = _data(value, "depositContractAddress", 20)
    if address not in (ZERO_ADDRESS, DEPOSIT_CONTRACT_ADDRESS):
        raise UnsupportedChain(
            f"depositContractAddress 0x{address.hex()} is not mainnet's; py-evm "
            "only parses EIP-6110 deposits from the mainnet contract"
        )
    return address


def _fork_id_blocks(config: Mapping[str, Any]) -> tuple[int, ...]:
    """geth's ``gatherForks`` block part: every ``*Block`` fork key's number."""
    keys = [key for key, _ in BLOCK_FORK_KEYS] + ["daoForkBlock", "eip158Block", "mergeNetsplitBlock"]
    return tuple(sorted({n for key in keys if (n := _optional_quantity(config, key)) is not None}))


def _block_forks(config: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """geth's block forks, with geth's own defaulting of petersburg to constantinople."""
    blocks = {key: _optional_quantity(config, key) for key, _ in BLOCK_FORK_KEYS}
    eip158 = _optional_quantity(config, "eip158Block")
    if eip158 != blocks["eip155Block"]:
        raise UnsupportedChain(
            f"eip155Block ({blocks['eip155Block']}) and eip158Block ({eip158}) differ; "
            "py-evm's spurious-dragon rules enable both at once"
        )
    if blocks["petersburgBlock"] is None:
        blocks["petersburgBlock"] = blocks["constantinopleBlock"]
    return tuple(
        (name, number)
        for key, name in BLOCK_FORK_KEYS
        if (number := blocks[key]) is not None
    )


def _parse_header(document: Mapping[str, Any]) -> GenesisHeader:
    mix_hash = _data(document.get("mixHash", "0x" + "00" * 32), "mixHash", 32)
    difficulty_value = document.get("difficulty")
    if difficulty_value is None:
        difficulty = GETH_GENESIS_DIFFICULTY if mix_hash == ZERO_HASH32 else 0
    else:
        difficulty = _quantity(difficulty_value, "difficulty")
    gas_limit = _quantity(document.get("gasLimit", 0), "gasLimit") or GETH_GENESIS_GAS_LIMIT
    return GenesisHeader(
        nonce=_quantity(document.get("nonce", 0), "nonce").to_bytes(8, "big"),
        timestamp=_quantity(document.get("timestamp", 0), "timestamp"),
        extra_data=_data(document.get("extraData", "0x"), "extraData"),
        gas_limit=gas_limit,
        difficulty=difficulty,
        mix_hash=mix_hash,
        coinbase=Address(_data(document.get("coinbase", "0x" + "00" * 20), "coinbase", 20)),
        base_fee_per_gas=_optional_quantity(document, "baseFeePerGas"),
        excess_blob_gas=_optional_quantity(document, "excessBlobGas"),
        blob_gas_used=_optional_quantity(document, "blobGasUsed"),
    )


def parse_alloc(alloc: Mapping[str, Any]) -> AccountState:
    """geth's ``alloc`` (address → balance/nonce/code/storage) as a py-evm state dict."""
    state: AccountState = {}
    for key, account in alloc.items():
        address = Address(_data(key, f"alloc address {key}", 20))
        storage = account.get("storage") or {}
        state[address] = AccountDetails(
            balance=_quantity(account.get("balance", 0), f"balance of {key}"),
            nonce=_quantity(account.get("nonce", 0), f"nonce of {key}"),
            code=_data(account.get("code", "0x"), f"code of {key}"),
            storage={
                _quantity(_as_hex(slot), f"storage slot of {key}"): _quantity(
                    _as_hex(value), f"storage value of {key}"
                )
                for slot, value in storage.items()
            },
        )
    return state


def genesis_params(spec: GenesisSpec, fork: str) -> dict[str, HeaderParams]:
    """Header parameters for ``Chain.from_genesis`` when block 0 runs ``fork``.

    Which post-London fields exist depends on the genesis fork, as in geth's
    ``Genesis.ToBlock``; the state root is left out for py-evm to compute.
    """
    header = spec.header
    rank = FORK_NAMES.index(fork)
    params: dict[str, HeaderParams] = {
        "difficulty": header.difficulty,
        "gas_limit": header.gas_limit,
        "timestamp": header.timestamp,
        "coinbase": header.coinbase,
        "nonce": header.nonce,
        "extra_data": header.extra_data,
        "mix_hash": header.mix_hash,
    }
    if rank >= FORK_NAMES.index("london"):
        params["base_fee_per_gas"] = (
            GETH_INITIAL_BASE_FEE if header.base_fee_per_gas is None else header.base_fee_per_gas
        )
    if rank >= FORK_NAMES.index("shanghai"):
        params["withdrawals_root"] = BLANK_ROOT_HASH
    if rank >= FORK_NAMES.index("cancun"):
        params["blob_gas_used"] = header.blob_gas_used or 0
        params["excess_blob_gas"] = header.excess_blob_gas or 0
        # geth (EIP-4788): always the zero hash; py-evm would default to the empty-trie root.
        params["parent_beacon_block_root"] = ZERO_HASH32
    if rank >= FORK_NAMES.index("prague"):
        params["requests_hash"] = EMPTY_SHA256
    return params


def initialize_chain(
    db: AtomicDatabaseAPI,
    config: ChainConfig,
    params: Mapping[str, HeaderParams],
    state: AccountState,
) -> Chain:
    """Write ``config`` then the genesis block and state into an empty ``db``.

    The config goes first: a crash in between leaves a database that says which
    chain it is meant to hold, and the next initialisation finishes the genesis.
    """
    write_config(db, config)
    try:
        chain = chain_class(config).from_genesis(db, dict(params), state)
    except (ValidationError, ValueError, TypeError) as exc:
        raise InvalidGenesis(f"py-evm refused the genesis header: {exc}") from exc
    assert isinstance(chain, Chain)
    return chain


def _as_hex(value: Any) -> Any:
    """Storage keys/values are hex even without a 0x prefix (unlike quantities)."""
    if isinstance(value, str) and not value.startswith(("0x", "0X")):
        return "0x" + value
    return value


def _quantity(value: Any, name: str) -> int:
    """geth's HexOrDecimal: a JSON number, "0x…" hex or a decimal string."""
    if isinstance(value, bool):
        raise InvalidGenesis(f"{name}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if text.lower().startswith("0x"):
                return int(text[2:] or "0", 16)
            return int(text, 10)
        except ValueError:
            pass
    raise InvalidGenesis(f"{name}: expected a number, got {value!r}")


def _optional_quantity(mapping: Mapping[str, Any], key: str) -> int | None:
    value = mapping.get(key)
    return None if value is None else _quantity(value, key)


def _data(value: Any, name: str, length: int | None = None) -> bytes:
    """Hex bytes, 0x-prefixed or not, optionally of an exact length."""
    if not isinstance(value, str):
        raise InvalidGenesis(f"{name}: expected hex data, got {value!r}")
    text = value[2:] if value.lower().startswith("0x") else value
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise InvalidGenesis(f"{name}: not hex data: {value!r}") from None
    if length is not None and len(data) != length:
        raise InvalidGenesis(f"{name}: expected {length} bytes, got {len(data)}")
    return data
