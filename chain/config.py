"""The chain configuration, stored in the chain database itself.

Replicas receive nothing but the master's database writes, so everything needed to
rebuild the py-evm chain class (chain id, which VM rules apply from which block, the
DAO and seal settings) is kept under one ordinary key, ``b"chain-config"``, as a small
versioned JSON document. ``open_chain(db)`` turns any database that holds it back into
a py-evm ``Chain`` whose head is the database's canonical head.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping

from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI, DatabaseAPI, VirtualMachineAPI
from eth.chains.base import Chain
from eth.chains.mainnet import MainnetDAOValidatorVM
from eth.consensus.noproof import NoProofConsensus
from eth.vm.forks import (
    ArrowGlacierVM,
    BerlinVM,
    ByzantiumVM,
    CancunVM,
    ConstantinopleVM,
    FrontierVM,
    GrayGlacierVM,
    HomesteadVM,
    IstanbulVM,
    LondonVM,
    MuirGlacierVM,
    ParisVM,
    PetersburgVM,
    PragueVM,
    ShanghaiVM,
    SpuriousDragonVM,
    TangerineWhistleVM,
)
from eth_typing import BlockNumber

from chain.errors import ChainConfigMissing, InvalidChainConfig, UnsupportedChain
from chain.kzg import patch_point_evaluation
from chain.osaka import CANCUN_BLOBS, PRAGUE_BLOBS, BlobParameters, OsakaVM, osaka_vm

CONFIG_KEY = b"chain-config"
"""The database key of the JSON configuration (a chain key, not bookkeeping)."""

CONFIG_VERSION = 1
"""Bumped whenever the JSON layout changes incompatibly; readers refuse other versions."""

_ORDERED_VMS: tuple[type[VirtualMachineAPI], ...] = (
    FrontierVM,
    HomesteadVM,
    TangerineWhistleVM,
    SpuriousDragonVM,
    ByzantiumVM,
    ConstantinopleVM,
    PetersburgVM,
    IstanbulVM,
    MuirGlacierVM,
    BerlinVM,
    LondonVM,
    ArrowGlacierVM,
    GrayGlacierVM,
    ParisVM,
    ShanghaiVM,
    CancunVM,
    PragueVM,
    OsakaVM,
)

BPO_FORKS: tuple[str, ...] = ("bpo1", "bpo2", "bpo3", "bpo4", "bpo5")
"""geth's blob-parameter-only forks: Osaka's rules with their own blob schedule entry."""

OSAKA_RULES_FORKS: frozenset[str] = frozenset((OsakaVM.fork, *BPO_FORKS))
"""Forks that run ``OsakaVM`` configured with the fork's blob parameters."""

FORK_NAMES: tuple[str, ...] = tuple(vm.fork for vm in _ORDERED_VMS) + BPO_FORKS
"""py-evm's fork names (its ``VM.fork``), then the BPO forks, oldest first: the
vocabulary of ``forks``."""

FORK_VMS: Mapping[str, type[VirtualMachineAPI]] = {
    **{vm.fork: vm for vm in _ORDERED_VMS},
    **{name: OsakaVM for name in BPO_FORKS},
}
"""VM class per fork name (py-evm's, and ours from Osaka on; ``chain_class`` gives the
Osaka-rules forks their blob parameters)."""

PROOF_OF_STAKE_FORKS: frozenset[str] = frozenset(
    name for name, vm in FORK_VMS.items() if issubclass(vm, ParisVM)
)
"""Forks whose blocks carry no proof of work; the first one in a schedule is the merge."""

LATEST_FORK: str = OsakaVM.fork
"""The newest fork with new rules (BPO forks change parameters only): the dev chain's default."""


@dataclass(frozen=True)
class ChainConfig:
    """Everything that selects the rules of a chain, as stored in its database."""

    chain_id: int
    """EIP-155 chain id, also what ``eth_chainId`` answers."""

    forks: tuple[tuple[int, str], ...]
    """(first block number, py-evm fork name) pairs, strictly increasing, the first at 0.

    Time-based forks (Shanghai and later) are already translated into block numbers:
    py-evm selects VMs by number only.
    """

    terminal_total_difficulty: int | None = None
    """geth's ``terminalTotalDifficulty``; informational once the merge block is known."""

    dao_fork_block: int | None = None
    """geth's ``daoForkBlock``: None means the chain has no DAO fork at all."""

    dao_fork_support: bool = False
    """geth's ``daoForkSupport``: whether the DAO block drains the DAO accounts."""

    blob_schedule: tuple[tuple[str, BlobParameters], ...] = ()
    """genesis ``blobSchedule`` entries of the Osaka-rules forks, (fork name, parameters).

    Cancun and Prague run py-evm's fixed numbers; Osaka defaults to Prague's.
    """

    fork_times: tuple[tuple[str, int], ...] = ()
    """geth's time forks as configured, (fork name, activation timestamp), reached or not.

    ``forks`` holds only the forks known blocks reached; EIP-2124 fork ids and
    EIP-7910's ``eth_config`` also need the ones still to come.
    """

    fork_id_blocks: tuple[int, ...] = ()
    """Every block number geth's config names a fork at (DAO and netsplit included),
    for EIP-2124 fork ids."""

    deposit_contract: bytes = bytes(20)
    """geth's ``depositContractAddress`` (zero when unset, as geth reports it)."""

    check_pow_seals: bool = False
    """Verify ethash seals on proof-of-work blocks.

    Off by default: the master imports chains it already trusts (exports of a synced
    geth, test chains sealed with fake ethash) and py-evm's pure-Python ethash takes
    seconds per block. Off means pre-merge VMs run with ``NoProofConsensus``.
    """

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def merge_block(self) -> int | None:
        """The first proof-of-stake block, or None if the schedule has none yet."""
        for start, name in self.forks:
            if name in PROOF_OF_STAKE_FORKS:
                return start
        return None

    def fork_at(self, block_number: int) -> str:
        """The fork whose rules apply to ``block_number``."""
        active = self.forks[0][1]
        for start, name in self.forks:
            if start > block_number:
                break
            active = name
        return active

    def fork_of(self, block_number: int, timestamp: int) -> str:
        """The fork whose rules apply to a block with this number and timestamp, on the chain or not.

        geth picks rules by number and time (``Rules(number, isMerge, time)``), while
        ``forks`` starts a time fork only at the first known block that reached it: a block
        past the known ones (a simulated block, a call with a later time) would otherwise
        run the head's fork after its timestamp reached the next one. So the newest fork of
        ``fork_times`` the timestamp reaches applies too, once the schedule gives the block
        proof-of-stake rules, and never an older fork than the schedule gives. Raises
        ``UnsupportedChain`` when the block reaches a fork ethercattle does not implement.
        """
        scheduled = self.fork_at(block_number)
        if scheduled not in PROOF_OF_STAKE_FORKS:
            return scheduled
        return newest_time_fork(scheduled, self.fork_times, block_number, timestamp) or scheduled

    def blob_parameters(self, fork: str) -> BlobParameters:
        """The blob parameters a fork from Cancun on runs."""
        for name, parameters in self.blob_schedule:
            if name == fork:
                return parameters
        fixed = {"cancun": CANCUN_BLOBS, "prague": PRAGUE_BLOBS, OsakaVM.fork: PRAGUE_BLOBS}
        if fork in fixed:
            return fixed[fork]
        raise InvalidChainConfig(f"fork {fork} has no blobSchedule entry")

    def to_json(self) -> str:
        """Serialize to the stored JSON document (stable key order, compact)."""
        document = {
            "version": CONFIG_VERSION,
            "chainId": self.chain_id,
            "forks": [[start, name] for start, name in self.forks],
            "terminalTotalDifficulty": self.terminal_total_difficulty,
            "daoForkBlock": self.dao_fork_block,
            "daoForkSupport": self.dao_fork_support,
            "checkPowSeals": self.check_pow_seals,
            "forkTimes": [[name, time] for name, time in self.fork_times],
            "forkIdBlocks": list(self.fork_id_blocks),
            "depositContract": "0x" + self.deposit_contract.hex(),
            "blobSchedule": {
                name: [p.target, p.max, p.base_fee_update_fraction]
                for name, p in self.blob_schedule
            },
        }
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ChainConfig:
        """Parse a stored document; raises ``InvalidChainConfig`` if it is not one."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidChainConfig(f"chain config is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise InvalidChainConfig("chain config is not a JSON object")
        return _from_document(document)


def newest_time_fork(
    scheduled: str, time_forks: Iterable[tuple[str, int]], block_number: int, timestamp: int
) -> str | None:
    """The newest of ``time_forks`` that a block at ``timestamp`` reaches and that is newer
    than ``scheduled`` (the fork the schedule gives the block), or None.

    Shared by blocks being followed (``chain.live.config_for_block``) and blocks that are
    never stored (``ChainConfig.fork_of``). Raises ``UnsupportedChain`` when the block
    reaches a fork ethercattle does not implement.
    """
    newest = FORK_NAMES.index(scheduled)
    reached: str | None = None
    for name, fork_time in time_forks:
        if timestamp < fork_time:
            continue
        if name not in FORK_VMS:
            raise UnsupportedChain(
                f"block {block_number} (time {timestamp}) activates {name}, "
                "which ethercattle does not implement yet"
            )
        if FORK_NAMES.index(name) > newest:
            newest, reached = FORK_NAMES.index(name), name
    return reached


def _from_document(document: dict[str, Any]) -> ChainConfig:
    version = document.get("version")
    if version != CONFIG_VERSION:
        raise InvalidChainConfig(
            f"chain config version {version!r} is not supported (expected {CONFIG_VERSION})"
        )
    try:
        forks = tuple((int(start), str(name)) for start, name in document["forks"])
        return ChainConfig(
            chain_id=int(document["chainId"]),
            forks=forks,
            terminal_total_difficulty=_optional_int(document.get("terminalTotalDifficulty")),
            dao_fork_block=_optional_int(document.get("daoForkBlock")),
            dao_fork_support=bool(document.get("daoForkSupport", False)),
            check_pow_seals=bool(document.get("checkPowSeals", False)),
            fork_times=tuple((str(name), int(time)) for name, time in document.get("forkTimes", ())),
            fork_id_blocks=tuple(int(number) for number in document.get("forkIdBlocks", ())),
            deposit_contract=bytes.fromhex(
                str(document.get("depositContract", "0x" + "00" * 20))[2:]
            ),
            blob_schedule=tuple(
                (str(name), BlobParameters(*(int(value) for value in entry)))
                for name, entry in (document.get("blobSchedule") or {}).items()
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidChainConfig(f"malformed chain config: {exc!r}") from exc


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _validate(config: ChainConfig) -> None:
    """Refuse schedules py-evm would misread; called on every construction."""
    if config.chain_id < 0:
        raise InvalidChainConfig(f"chain id must be non-negative, got {config.chain_id}")
    if not config.forks or config.forks[0][0] != 0:
        raise InvalidChainConfig("the fork schedule must start at block 0")
    previous_start, previous_rank = -1, -1
    for start, name in config.forks:
        if name not in FORK_VMS:
            raise InvalidChainConfig(f"unknown fork {name!r}; known: {', '.join(FORK_NAMES)}")
        rank = FORK_NAMES.index(name)
        if start <= previous_start or rank <= previous_rank:
            raise InvalidChainConfig(f"fork schedule out of order at {name!r}: {config.forks}")
        previous_start, previous_rank = start, rank
        if name in OSAKA_RULES_FORKS:
            config.blob_parameters(name)
    if config.dao_fork_block is not None and config.dao_fork_support:
        if config.fork_at(config.dao_fork_block) != HomesteadVM.fork:
            raise UnsupportedChain(
                "py-evm applies the DAO fork only under homestead rules, but block "
                f"{config.dao_fork_block} runs {config.fork_at(config.dao_fork_block)}"
            )


def write_config(db: DatabaseAPI, config: ChainConfig) -> None:
    """Store ``config`` under ``CONFIG_KEY`` (through ``db``, so CDC captures it)."""
    db[CONFIG_KEY] = config.to_json().encode()


def read_config(db: DatabaseAPI) -> ChainConfig:
    """Load the stored configuration; raises ``ChainConfigMissing`` if there is none."""
    try:
        raw = db[CONFIG_KEY]
    except KeyError:
        raise ChainConfigMissing(
            f"no {CONFIG_KEY.decode()!r} key in the database: it holds no ethercattle "
            "chain (import a chain or initialise a dev chain on the master first)"
        ) from None
    return ChainConfig.from_json(raw)


def has_config(db: DatabaseAPI) -> bool:
    """Whether the database already holds a chain configuration."""
    return CONFIG_KEY in db


class EthercattleChain(Chain):
    """py-evm's ``Chain`` that keeps the ``ChainConfig`` it was built from.

    py-evm selects a VM by block number from ``vm_configuration``; a block that is not
    on the chain also needs its timestamp for that (``ChainConfig.fork_of``).
    """

    chain_config: ClassVar[ChainConfig | None] = None
    """The configuration ``chain_class`` built this class from."""

    @classmethod
    def get_vm_class_at(cls, block_number: int, timestamp: int) -> type[VirtualMachineAPI]:
        """The VM of a block with this number and timestamp, on the chain or not (a
        simulated block, a call's overridden block context)."""
        return _vm_at(cls, block_number, timestamp)


@functools.lru_cache(maxsize=1024)
def _vm_at(chain: type[EthercattleChain], block_number: int, timestamp: int) -> type[VirtualMachineAPI]:
    """``get_vm_class_at``, kept per (chain, number, time): every eth_call asks it (0.3 us, not 3)."""
    scheduled = chain.get_vm_class_for_block_number(BlockNumber(block_number))
    config = chain.chain_config
    if config is None:
        raise TypeError(f"{chain.__name__} was not built by chain_class")
    fork = config.fork_of(block_number, timestamp)
    return scheduled if fork == scheduled.fork else _unscheduled_vm(chain, fork)


@functools.lru_cache(maxsize=None)
def _unscheduled_vm(chain: type[EthercattleChain], fork: str) -> type[VirtualMachineAPI]:
    """The chain's VM of ``fork`` where its schedule has one, else one built like them (once,
    so that classes cached per VM, such as the RPC's call states, are reused)."""
    for _, vm in chain.vm_configuration:
        if vm.fork == fork:
            return vm
    assert chain.chain_config is not None
    return fork_vm(chain.chain_config, fork)


@functools.lru_cache(maxsize=None)
def chain_class(config: ChainConfig) -> type[EthercattleChain]:
    """Build (once per distinct config) the py-evm ``Chain`` subclass for ``config``.

    Cached because replicas rebuild the chain for every request that needs one, and
    each ``configure`` call creates new classes. Every chain of the project is built
    here, so this is where py-evm's point evaluation precompile is made to reuse the
    process's one KZG setup (``chain.kzg``) before any block or call can reach it.
    """
    patch_point_evaluation()
    vm_configuration = tuple(
        (BlockNumber(start), fork_vm(config, name)) for start, name in config.forks
    )
    genesis_vm = vm_configuration[0][1]
    if issubclass(genesis_vm, ParisVM):
        merged_genesis = genesis_vm.configure(
            __name__=f"{genesis_vm.__name__}MergedGenesis",
            create_genesis_header=classmethod(_merged_genesis_header),
        )
        vm_configuration = ((BlockNumber(0), merged_genesis), *vm_configuration[1:])
    return EthercattleChain.configure(
        __name__=f"EthercattleChain{config.chain_id}",
        chain_id=config.chain_id,
        vm_configuration=vm_configuration,
        chain_config=config,
    )


def _merged_genesis_header(
    vm_class: type[VirtualMachineAPI], **genesis_params: Any
) -> BlockHeaderAPI:
    """A proof-of-stake genesis header that keeps geth's difficulty and nonce.

    geth accepts a genesis whose own difficulty reaches the terminal total
    difficulty with Shanghai or later active at time 0 (hive's chains, many
    devnets); py-evm's post-merge header builder refuses any non-zero difficulty or
    nonce, so the header is built without them and they are put back.
    """
    difficulty = genesis_params.pop("difficulty", 0)
    nonce = genesis_params.pop("nonce", bytes(8))
    header = vm_class.create_header_from_parent(None, **genesis_params)  # type: ignore[arg-type]
    return header.copy(difficulty=difficulty, nonce=nonce)


def fork_vm(config: ChainConfig, name: str) -> type[VirtualMachineAPI]:
    """The VM for one fork, with the DAO and seal settings of ``config`` applied."""
    if name in OSAKA_RULES_FORKS:
        return osaka_vm(name, config.blob_parameters(name))
    vm: type[VirtualMachineAPI] = FORK_VMS[name]
    overrides: dict[str, Any] = {}
    if name == HomesteadVM.fork:
        if config.dao_fork_block is None:
            overrides["support_dao_fork"] = False
        else:
            # Validates the DAO extra-data rule on the ten blocks from the fork, as geth.
            vm = MainnetDAOValidatorVM
            overrides["support_dao_fork"] = config.dao_fork_support
            overrides["_dao_fork_block_number"] = BlockNumber(config.dao_fork_block)
    if name not in PROOF_OF_STAKE_FORKS and not config.check_pow_seals:
        overrides["consensus_class"] = NoProofConsensus
    if not overrides:
        return vm
    return vm.configure(__name__=f"{vm.__name__}Configured", **overrides)


def open_chain(db: AtomicDatabaseAPI) -> EthercattleChain:
    """Rebuild the chain stored in ``db`` (head = the database's canonical head)."""
    return chain_class(read_config(db))(db)
