"""EIP-2124 fork identifiers, as geth's ``core/forkid`` computes them.

A fork id is CRC32 over the genesis hash and every fork activation passed so far
(block numbers, then timestamps; zero, duplicates and times not after genesis
dropped), written as 4 big-endian bytes. EIP-7910's ``eth_config`` reports it for
the current and the coming forks.
"""

from __future__ import annotations

import zlib

from chain.config import ChainConfig


def fork_activations(config: ChainConfig, genesis_time: int) -> tuple[list[int], list[int]]:
    """(block numbers, timestamps) that count towards fork ids, each sorted, deduplicated."""
    blocks = sorted({number for number in config.fork_id_blocks if number > 0})
    times = sorted({time for _, time in config.fork_times if time > genesis_time})
    return blocks, times


def fork_id(config: ChainConfig, genesis_hash: bytes, genesis_time: int, head_time: int) -> bytes:
    """The fork id of a node whose head is at ``head_time``, past every block fork."""
    blocks, times = fork_activations(config, genesis_time)
    checksum = zlib.crc32(genesis_hash)
    for activation in [*blocks, *(time for time in times if time <= head_time)]:
        checksum = zlib.crc32(activation.to_bytes(8, "big"), checksum)
    return checksum.to_bytes(4, "big")
