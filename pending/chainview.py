"""What the pending view needs from the replica's chain: decoding, inclusion, account nonces.

Read-only, straight from the replica's LevelDB at its current head (the apply
agent moves the head underneath; each call reads it again). The chain object is
rebuilt only when the stored chain configuration changes.
"""

from __future__ import annotations

import rlp
from eth.abc import DatabaseAPI, SignedTransactionAPI
from eth.chains.base import Chain
from eth.db.schema import SchemaV1
from eth.rlp.accounts import Account
from eth_typing import BlockNumber
from eth_utils import keccak
from trie import HexaryTrie

from chain.config import CONFIG_KEY, open_chain
from chain.head import head_hash, head_header
from storage.readonly import ReadOnlyDB


class ChainView:
    """The replica's chain as of its current head (None-safe before genesis arrives)."""

    def __init__(self, db: DatabaseAPI) -> None:
        self.db = db if isinstance(db, ReadOnlyDB) else ReadOnlyDB(db)
        self._chain: Chain | None = None
        self._config: bytes | None = None

    @property
    def chain(self) -> Chain | None:
        raw = self.db.get(CONFIG_KEY)
        if raw is None:
            return None
        if self._chain is None or raw != self._config:
            self._chain, self._config = open_chain(self.db), raw
        return self._chain

    def ready(self) -> bool:
        """The database holds a chain with a head."""
        return self.chain is not None and head_hash(self.db) is not None

    def decode(self, canonical: bytes) -> SignedTransactionAPI:
        """A canonical raw transaction under the rules of the block after the head."""
        chain = self.chain
        if chain is None:
            raise LookupError("the replica holds no chain yet")
        head = head_header(self.db)
        number = BlockNumber(0 if head is None else head.block_number + 1)
        return chain.get_vm_class_for_block_number(number).get_transaction_builder().decode(canonical)

    def included(self, tx_hash: bytes) -> bool:
        """A block this replica applied holds the transaction."""
        return self.db.get(SchemaV1.make_transaction_hash_to_block_lookup_key(tx_hash)) is not None  # type: ignore[arg-type]

    def nonce(self, address: bytes) -> int:
        """The account's nonce at the head (0 for an unknown account or before genesis)."""
        head = head_header(self.db)
        if head is None:
            return 0
        encoded = HexaryTrie(self.db, head.state_root)[keccak(address)]
        return 0 if not encoded else int(rlp.decode(encoded, sedes=Account).nonce)

