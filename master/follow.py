"""The master follows a trusted upstream node: fetch, execute, compare, commit through capture.

Each block is executed with py-evm in a ``BlockBuffer`` and committed (one capture
record) only when the computed header equals the upstream's, so the master's
database always holds whole, verified blocks; restarting (even after a kill -9)
resumes from its canonical head. Every round first checks that the upstream still
has our head at our head's height; when it does not, the master walks back to the
fork point, and rewinds and imports the new branch in one record. Replicas see the
canonical chain switch in one step and derive removed logs and new heads from it.

Why it stops (``FollowStopped``): the upstream is another chain, a block does not
reproduce (header field, both values), or a reorg is deeper than ``max_reorg_depth``.
An unreachable upstream is not a reason: the master keeps serving and retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from eth.abc import AtomicDatabaseAPI, BlockAPI, BlockHeaderAPI
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound, HeaderNotFound
from eth_typing import BlockNumber, Hash32
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from chain.config import chain_class, has_config, read_config, write_config
from chain.errors import ChainError, ChainMismatch
from chain.genesis import GenesisSpec
from chain.head import SETTLED_KEYS, settled_hash
from chain.importer import block_summary, decode_block
from chain.live import (
    BlockBuffer,
    activations_added,
    check_genesis,
    config_for_block,
    config_rewound_to,
    execute_block,
    genesis_config,
    initialize_followed_chain,
    rewind,
)
from chain.rpcblock import raw_block
from master.upstream import Upstream, UpstreamError, UpstreamRefused

log = logging.getLogger("ethercattle.follow")

DEFAULT_MAX_REORG_DEPTH = 64


class FollowStopped(Exception):
    """Following cannot go on; the message says why (and names the block)."""


class FollowMetrics:
    """Prometheus metrics of the follower, in their own registry (served at the master's /metrics)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.upstream_head = Gauge("ethercattle_follow_upstream_head", "The upstream's head block number", registry=self.registry)
        self.head = Gauge("ethercattle_follow_head", "The master's canonical head block number", registry=self.registry)
        self.distance = Gauge("ethercattle_follow_distance_blocks", "Blocks the master is behind the upstream's head", registry=self.registry)
        self.blocks = Counter("ethercattle_follow_blocks", "Blocks executed, verified and committed", registry=self.registry)
        self.gas = Counter("ethercattle_follow_gas", "Gas of the blocks committed", registry=self.registry)
        self.reorgs = Counter("ethercattle_follow_reorgs", "Reorgs followed", registry=self.registry)
        self.dropped = Counter("ethercattle_follow_dropped_blocks", "Blocks that left the canonical chain in reorgs", registry=self.registry)
        self.upstream_errors = Counter("ethercattle_follow_upstream_errors", "Failed calls to the upstream", registry=self.registry)
        self.stopped = Gauge("ethercattle_follow_stopped", "1 once following stopped for good (see the log)", registry=self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Progress:
    """Catch-up progress, logged as a bar with blocks/s and Mgas/s every ``interval`` seconds."""

    interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _since: float = field(default=0.0)
    _blocks: int = 0
    _gas: int = 0

    def add(self, gas: int) -> None:
        self._blocks += 1
        self._gas += gas

    def report(self, head: int, target: int) -> None:
        now = self.clock()
        if not self._since:
            self._since = now
            return
        elapsed = now - self._since
        if elapsed < self.interval or not self._blocks:
            return
        log.info("%s", progress_line(head, target, self._blocks / elapsed, self._gas / elapsed / 1e6))
        self._since, self._blocks, self._gas = now, 0, 0


def progress_line(head: int, target: int, blocks_per_second: float, mgas_per_second: float, width: int = 30) -> str:
    """``block 1200 of 4000 [#########.....................]  30.0%  512.3 blocks/s  41.0 Mgas/s``"""
    share = 1.0 if target <= 0 else min(1.0, head / target)
    filled = round(share * width)
    return (f"block {head} of {target} [{'#' * filled}{'.' * (width - filled)}] {share * 100:5.1f}%"
            f"  {blocks_per_second:.1f} blocks/s  {mgas_per_second:.1f} Mgas/s")


class Follower:
    """Keeps ``db`` (the master's capture wrapper) on the upstream's canonical chain."""

    def __init__(
        self,
        db: AtomicDatabaseAPI,
        upstream: Upstream,
        genesis: GenesisSpec,
        max_reorg_depth: int = DEFAULT_MAX_REORG_DEPTH,
        metrics: FollowMetrics | None = None,
        batch: int = 16,
    ) -> None:
        self.db = db
        self.upstream = upstream
        self.genesis = genesis
        self.max_reorg_depth = max_reorg_depth
        self.metrics = metrics or FollowMetrics()
        self.batch = batch
        self.progress = Progress()
        self.genesis_state_root: Hash32 | None = None
        """Set when the upstream misreports block 0's state root: block 1 executes on this one."""

    # -- genesis -----------------------------------------------------------------------

    async def initialise(self) -> None:
        """Initialise an empty database from genesis.json, or check the stored one; both against the upstream's block 0."""
        chain_id = await self.upstream.chain_id()
        if chain_id != self.genesis.chain_id:
            raise FollowStopped(f"the upstream runs chain id {chain_id}, genesis.json says {self.genesis.chain_id}")
        block = await self.upstream.block(0, full=True)
        if block is None:
            raise FollowStopped("the upstream has no block 0")
        config = genesis_config(self.genesis)
        upstream_genesis = decode_block(raw_block(block), config).header
        try:
            check = check_genesis(self.genesis, config, upstream_genesis)
        except ChainMismatch as exc:
            raise FollowStopped(str(exc)) from exc
        if check.misreported_root:
            self.genesis_state_root = check.state_root
            log.warning(
                "the upstream reports the state root of block 0 as 0x%s, but genesis.json's allocation has 0x%s "
                "(anvil does so with --init); block 0 is stored as the upstream reports it, so hashes link, and "
                "block 1 executes on the allocation's real root", check.header.state_root.hex(), check.state_root.hex(),
            )
        if not self._has_head():
            buffer = BlockBuffer(self.db)
            initialize_followed_chain(buffer, config, check, self.genesis.alloc)
            buffer.flush()
            log.info("initialised from genesis.json: block 0 0x%s", check.header.hash.hex())
            return
        stored = ChainDB(self.db).get_canonical_block_hash(BlockNumber(0))
        if stored != check.header.hash:
            raise FollowStopped(f"the database holds another chain: block 0 0x{stored.hex()}, the upstream's 0x{check.header.hash.hex()}")

    def _has_head(self) -> bool:
        if not has_config(self.db):
            return False
        try:
            ChainDB(self.db).get_canonical_head()
        except CanonicalHeadNotFound:
            return False
        return True

    def head(self) -> BlockHeaderAPI:
        return ChainDB(self.db).get_canonical_head()

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Follow until stopped; raises ``FollowStopped`` with the reason when following cannot go on."""
        backoff = 0.5
        initialised = False
        async for _ in self.upstream.new_heads():
            try:
                if not initialised:
                    await self.initialise()
                    initialised = True
                await self.catch_up()
                backoff = 0.5
            except UpstreamError as exc:
                self.metrics.upstream_errors.inc()
                log.warning("upstream %s: %s; retrying in %.1fs (still serving block %d)",
                            self.upstream.http_url, exc, backoff, self._head_number())
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except ChainError as exc:
                self.metrics.stopped.set(1)
                raise FollowStopped(str(exc)) from exc
            except FollowStopped:
                self.metrics.stopped.set(1)
                raise

    def _head_number(self) -> int:
        try:
            return int(self.head().block_number)
        except CanonicalHeadNotFound:
            return -1

    async def catch_up(self) -> None:
        """Import up to the upstream's head, handling reorgs on the way; returns when level with it."""
        while True:
            head = self.head()
            target = await self.upstream.head_number()
            self._record_heads(head.block_number, target)
            if target < head.block_number or await self._upstream_hash(head.block_number) != head.hash:
                await self.reorganise(head, target)
                continue
            if target == head.block_number:
                await self.mark_settled()
                return
            await self._import_range(head.block_number + 1, target)

    async def _import_range(self, first: int, last: int) -> None:
        """Import blocks ``first``..``last``, fetching the next batch while the current one executes.

        Returns early when a block does not link to the head (the upstream moved on
        meanwhile): the caller looks at the upstream again.
        """
        fetching: asyncio.Future[list[bytes]] | None = asyncio.ensure_future(self._fetch(first, min(last, first + self.batch - 1)))
        while fetching is not None:
            raws = await fetching
            after = first + len(raws)
            fetching = None
            if len(raws) == self.batch and after <= last:
                fetching = asyncio.ensure_future(self._fetch(after, min(last, after + self.batch - 1)))
            linked = await asyncio.to_thread(self.extend, raws)
            self.progress.report(self._head_number(), last)
            if linked < len(raws) or fetching is None:
                if fetching is not None:
                    fetching.cancel()
                return
            first = after

    async def _fetch(self, first: int, last: int) -> list[bytes]:
        """Raw blocks ``first``..``last`` in order, up to the first the upstream does not have."""
        raws = await asyncio.gather(*(self.upstream.raw_block(n) for n in range(first, last + 1)))
        present: list[bytes] = []
        for raw in raws:
            if raw is None:
                break
            present.append(raw)
        return present

    async def mark_settled(self) -> None:
        """Store which of our blocks the upstream calls safe and finalized, in one record when either moved.

        An upstream without them (before the merge, or a client that has no
        consensus view) refuses the tag; its replicas then answer the head.
        """
        moved: dict[bytes, bytes] = {}
        for tag, key in SETTLED_KEYS.items():
            try:
                block = await self.upstream.block(tag)
            except UpstreamRefused:
                continue
            if block is None:
                continue
            block_hash = bytes.fromhex(block["hash"][2:])
            if self._our_hash(int(block["number"], 16)) == block_hash and settled_hash(self.db, tag) != block_hash:
                moved[key] = block_hash
        if moved:
            with self.db.atomic_batch() as batch:
                for key, block_hash in moved.items():
                    batch[key] = block_hash

    async def _upstream_hash(self, number: int) -> bytes | None:
        block = await self.upstream.block(number)
        return None if block is None else bytes.fromhex(block["hash"][2:])

    def _record_heads(self, head: int, target: int) -> None:
        self.metrics.head.set(head)
        self.metrics.upstream_head.set(target)
        self.metrics.distance.set(max(0, target - head))

    def extend(self, raws: list[bytes]) -> int:
        """Commit each block that extends the head, one record each; stop at one that does not link.

        Returns how many were committed.
        """
        for committed, raw in enumerate(raws):
            buffer = BlockBuffer(self.db)
            if self._execute(buffer, raw) is None:
                return committed
            buffer.flush()
        return len(raws)

    def _execute(self, buffer: BlockBuffer, raw: bytes) -> BlockAPI | None:
        """Execute one block on ``buffer``'s head; None when it is not the head's child (the upstream moved)."""
        head = ChainDB(buffer).get_canonical_head()
        summary = block_summary(raw)
        config = read_config(buffer)
        extended = config_for_block(config, self.genesis, ChainDB(buffer).get_score(head.hash), summary)
        if extended != config:
            log.info("block %d activates %s", summary.number, ", ".join(name for _, name in activations_added(config, extended)))
            write_config(buffer, extended)
        block = decode_block(raw, extended)
        if block.header.parent_hash != head.hash:
            return None
        override = self.genesis_state_root if head.block_number == 0 else None
        imported = execute_block(chain_class(extended)(buffer), block, override)
        self.metrics.blocks.inc()
        self.metrics.gas.inc(imported.header.gas_used)
        self.progress.add(imported.header.gas_used)
        return imported

    # -- reorgs ------------------------------------------------------------------------

    async def reorganise(self, head: BlockHeaderAPI, target: int) -> None:
        """Find where the upstream's chain leaves ours, then rewind and import its branch in one record."""
        fork = min(head.block_number, target)
        while head.block_number - fork <= self.max_reorg_depth and await self._upstream_hash(fork) != self._our_hash(fork):
            fork -= 1
        if head.block_number - fork > self.max_reorg_depth:
            raise FollowStopped(
                f"the upstream replaced more than {self.max_reorg_depth} blocks below our head {head.block_number} "
                f"(0x{head.hash.hex()}) (raise --max-reorg-depth, or start from a database of the upstream's chain)"
            )
        last = min(target, fork + self.max_reorg_depth + self.batch)
        raws = await asyncio.gather(*(self.upstream.raw_block(n) for n in range(fork + 1, last + 1)))
        dropped, added = await asyncio.to_thread(self._switch, fork, [raw for raw in raws if raw is not None])
        if dropped is None:
            return  # the upstream moved while we fetched: look again
        self.metrics.reorgs.inc()
        self.metrics.dropped.inc(dropped)
        log.warning("reorg: %d blocks above %d left the canonical chain, %d blocks of the upstream's branch replaced them (head %d)",
                    dropped, fork, added, self._head_number())

    def _our_hash(self, number: int) -> bytes | None:
        try:
            return ChainDB(self.db).get_canonical_block_hash(BlockNumber(number))
        except HeaderNotFound:
            return None

    def _switch(self, fork: int, raws: list[bytes]) -> tuple[int | None, int]:
        """Rewind to ``fork`` and import ``raws`` in one buffer; (None, 0) when the branch does not link."""
        buffer = BlockBuffer(self.db)
        dropped = rewind(buffer, fork)
        self._roll_back_activations(buffer, fork)
        for raw in raws:
            if self._execute(buffer, raw) is None:
                return None, 0
        buffer.flush()
        return len(dropped), len(raws)

    def _roll_back_activations(self, buffer: BlockBuffer, fork: int) -> None:
        """Take out of the stored schedule the forks the blocks above ``fork`` activated.

        The new branch's blocks then activate them again where they reach them
        (``_execute``), at another height, or not at all.
        """
        config = read_config(buffer)
        rewound = config_rewound_to(config, self.genesis, fork)
        if rewound == config:
            return
        undone = activations_added(rewound, config)
        log.warning("reorg to block %d rolls back %s", fork, ", ".join(f"{name} from block {start}" for start, name in undone))
        write_config(buffer, rewound)
