"""One KZG trusted setup per process, for our code and for py-evm's precompile.

Loading the EIP-4844 trusted setup takes about 3 s here, and py-evm 0.12's point
evaluation precompile (address 0x0a) loads it again on every call, which would make
each block import, ``eth_call`` or ``eth_estimateGas`` touching 0x0a take seconds.
``patch_point_evaluation`` makes that precompile reuse the process-wide setup;
``chain.config.chain_class`` applies it, so every chain this project builds gets it.
"""

from __future__ import annotations

import functools
from typing import Any

import ckzg
import eth.precompiles.point_evaluation as point_evaluation

TRUSTED_SETUP_PATH: str = point_evaluation.TRUSTED_SETUP_PATH
"""py-evm's copy of the mainnet KZG ceremony output."""


def trusted_setup(path: str = TRUSTED_SETUP_PATH, precompute: int = 0) -> Any:
    """The loaded setup for ``path`` (loaded on first use, then shared)."""
    return _load(str(path), int(precompute))


@functools.lru_cache(maxsize=None)
def _load(path: str, precompute: int) -> Any:
    # Keyed on normalised positional arguments: lru_cache would otherwise load
    # again for ``f()`` versus ``f(path, 0)``.
    return ckzg.load_trusted_setup(path, precompute)


def patch_point_evaluation() -> None:
    """Make py-evm's point evaluation precompile use ``trusted_setup`` (idempotent).

    The precompile module calls the name ``load_trusted_setup`` it imported from
    ckzg; rebinding that name is the narrowest change that removes the reload.
    """
    point_evaluation.load_trusted_setup = trusted_setup  # type: ignore[attr-defined]
