"""Osaka rules that the differential test cannot reach with blocks it can mine."""

from __future__ import annotations

import pytest
from eth.db.atomic import AtomicDB
from eth_utils import ValidationError

from chain.dev import DevMiner, dev_accounts, init_dev_chain
from chain.osaka.vm import MAX_RLP_BLOCK_SIZE
from tests.chain.test_dev_chain import _sign


def test_block_over_the_rlp_size_cap_is_refused() -> None:
    db = AtomicDB()
    init_dev_chain(db)
    mined = DevMiner(db).mine([_sign(0, nonce=0, to=dev_accounts()[1][0])]).block
    oversized = mined.transactions[0].copy(data=bytes(MAX_RLP_BLOCK_SIZE))
    block = mined.copy(transactions=[oversized])
    vm = DevMiner(db).chain.get_vm(mined.header)

    with pytest.raises(ValidationError, match="block RLP is .* bytes, more than the 8388608 allowed"):
        vm.validate_block(block)
