"""JSON shapes of headers, blocks, transactions, receipts and logs, as geth writes them.

One formatter per object, shared by every method that returns one (a transaction
looks the same from eth_getTransactionByHash, a full block or by index). Key order
follows geth's output: maps (headers, blocks, receipts) are marshalled by Go with
sorted keys, structs (transactions, logs) in field order, so the bytes match too.
"""

from __future__ import annotations

from typing import Any, Sequence

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth._utils.address import generate_contract_address
from eth.vm.forks.cancun.constants import GAS_PER_BLOB
from eth_typing import Address

from rpc.backend import BlockData

JSON = dict[str, Any]


def quantity(value: int) -> str:
    """A JSON-RPC QUANTITY: minimal hex, "0x0" for zero."""
    return hex(value)


def data(value: bytes) -> str:
    """A JSON-RPC DATA string."""
    return "0x" + value.hex()


def word(value: int) -> str:
    """A 32-byte word (storage keys and values, topics) as DATA."""
    return "0x" + value.to_bytes(32, "big").hex()


def address_or_none(value: bytes) -> str | None:
    """A recipient: null for contract creation (py-evm stores it as empty bytes)."""
    return data(value) if value else None


def _sorted(fields: JSON) -> JSON:
    return dict(sorted(fields.items()))


# --- headers and blocks -------------------------------------------------------------

_OPTIONAL_HEADER_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("baseFeePerGas", "base_fee_per_gas", True),
    ("withdrawalsRoot", "withdrawals_root", False),
    ("blobGasUsed", "blob_gas_used", True),
    ("excessBlobGas", "excess_blob_gas", True),
    ("parentBeaconBlockRoot", "parent_beacon_block_root", False),
    ("requestsHash", "requests_hash", False),
)
"""(JSON name, py-evm attribute, is a quantity) for fields later forks added."""


def header_json(header: BlockHeaderAPI) -> JSON:
    """geth's ``RPCMarshalHeader``: fork fields appear only when the header has them."""
    fields: JSON = {
        "number": quantity(header.block_number),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "mixHash": data(header.mix_hash),
        "sha3Uncles": data(header.uncles_hash),
        "logsBloom": data(header.bloom.to_bytes(256, "big")),
        "stateRoot": data(header.state_root),
        "miner": data(header.coinbase),
        "difficulty": quantity(header.difficulty),
        "extraData": data(header.extra_data),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.timestamp),
        "transactionsRoot": data(header.transaction_root),
        "receiptsRoot": data(header.receipt_root),
    }
    for name, attribute, is_quantity in _OPTIONAL_HEADER_FIELDS:
        value = getattr(header, attribute, None)
        if value is not None:
            fields[name] = quantity(value) if is_quantity else data(value)
    return fields


def block_json(block: BlockData, full_transactions: bool) -> JSON:
    """geth's ``RPCMarshalBlock`` with transactions (hashes or full objects)."""
    fields = header_json(block.header)
    fields["size"] = quantity(block.size)
    if full_transactions:
        fields["transactions"] = [
            transaction_json(tx, block.sender(index), block, index)
            for index, tx in enumerate(block.transactions)
        ]
    else:
        fields["transactions"] = [data(block.transaction_hash(index)) for index in range(len(block.transactions))]
    fields["uncles"] = [data(uncle.hash) for uncle in block.block.uncles]
    withdrawals = getattr(block.block, "withdrawals", None)
    if withdrawals is not None and hasattr(block.header, "withdrawals_root"):
        fields["withdrawals"] = [withdrawal_json(w) for w in withdrawals]
    return _sorted(fields)


def uncle_json(uncle: BlockHeaderAPI, size: int) -> JSON:
    """An uncle as geth shows it: its header, size, no transactions, no uncles."""
    fields = header_json(uncle)
    fields["size"] = quantity(size)
    fields["uncles"] = []
    return _sorted(fields)


def withdrawal_json(withdrawal: Any) -> JSON:
    return {
        "index": quantity(withdrawal.index),
        "validatorIndex": quantity(withdrawal.validator_index),
        "address": data(withdrawal.address),
        "amount": quantity(withdrawal.amount),
    }


# --- transactions ----------------------------------------------------------------------

LEGACY, ACCESS_LIST, DYNAMIC_FEE, BLOB, SET_CODE = 0, 1, 2, 3, 4


def tx_type(tx: SignedTransactionAPI) -> int:
    """The EIP-2718 type (py-evm gives legacy transactions none)."""
    return getattr(tx, "type_id", None) or LEGACY


def access_list_json(access_list: Sequence[tuple[bytes, Sequence[int]]]) -> list[JSON]:
    return [
        {"address": data(address), "storageKeys": [word(slot) for slot in slots]}
        for address, slots in access_list
    ]


def authorization_json(auth: Any) -> JSON:
    return {
        "chainId": quantity(auth.chain_id),
        "address": data(auth.address),
        "nonce": quantity(auth.nonce),
        "yParity": quantity(auth.y_parity),
        "r": quantity(auth.r),
        "s": quantity(auth.s),
    }


def legacy_v(tx: SignedTransactionAPI) -> int:
    """A legacy transaction's ``v`` (py-evm keeps it on legacy classes only)."""
    return int(getattr(tx, "v"))


def legacy_chain_id(v: int) -> int | None:
    """EIP-155 chain id from a legacy ``v`` (None for pre-155 signatures)."""
    if v in (27, 28) or v < 35:
        return None
    return (v - 35) // 2


def fee_caps(tx: SignedTransactionAPI) -> tuple[int, int]:
    """(fee cap, tip cap): both are the gas price for legacy and access-list transactions."""
    if tx_type(tx) in (LEGACY, ACCESS_LIST):
        return tx.gas_price, tx.gas_price
    return tx.max_fee_per_gas, tx.max_priority_fee_per_gas


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int | None) -> int:
    """What the sender paid per gas: min(tip cap + base fee, fee cap) once there is a base fee."""
    fee_cap, tip_cap = fee_caps(tx)
    return fee_cap if base_fee is None else min(tip_cap + base_fee, fee_cap)


def effective_tip(tx: SignedTransactionAPI, base_fee: int | None) -> int:
    """geth's ``EffectiveGasTip``: what the block producer earned per gas."""
    fee_cap, tip_cap = fee_caps(tx)
    return tip_cap if base_fee is None else min(tip_cap, fee_cap - base_fee)


def transaction_json(tx: SignedTransactionAPI, sender: bytes, block: BlockData | None,
                     index: int | None) -> JSON:
    """geth's ``RPCTransaction``, for a mined transaction (``block``) or a loose one (no block fields)."""
    kind = tx_type(tx)
    mined = block is not None and index is not None
    fields: JSON = {
        "blockHash": data(block.hash) if mined and block else None,
        "blockNumber": quantity(block.number) if mined and block else None,
        "blockTimestamp": quantity(block.header.timestamp) if mined and block else None,
        "from": data(sender),
        "gas": quantity(tx.gas),
        "gasPrice": None,
    }
    if kind == LEGACY or kind == ACCESS_LIST:
        fields["gasPrice"] = quantity(tx.gas_price)
    else:
        base_fee = block.base_fee if mined and block else None
        fields["gasPrice"] = quantity(effective_gas_price(tx, base_fee))
        fields["maxFeePerGas"] = quantity(tx.max_fee_per_gas)
        fields["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee_per_gas)
        if kind == BLOB:
            fields["maxFeePerBlobGas"] = quantity(tx.max_fee_per_blob_gas)
    fields.update({
        "hash": data(block.transaction_hash(index) if mined and block and index is not None else tx.hash),
        "input": data(tx.data),
        "nonce": quantity(tx.nonce),
        "to": address_or_none(tx.to),
        "transactionIndex": quantity(index) if mined and index is not None else None,
        "value": quantity(tx.value),
        "type": quantity(kind),
    })
    if kind == LEGACY:
        v = legacy_v(tx)
        chain_id = legacy_chain_id(v)
        if chain_id is not None:
            fields["chainId"] = quantity(chain_id)
        fields.update({"v": quantity(v), "r": quantity(tx.r), "s": quantity(tx.s)})
        return fields
    fields["accessList"] = access_list_json(tx.access_list)
    fields["chainId"] = quantity(tx.chain_id or 0)
    if kind == BLOB:
        fields["blobVersionedHashes"] = [data(h) for h in tx.blob_versioned_hashes]
    if kind == SET_CODE:
        fields["authorizationList"] = [authorization_json(a) for a in tx.authorization_list]
    fields.update({
        "v": quantity(tx.y_parity),
        "r": quantity(tx.r),
        "s": quantity(tx.s),
        "yParity": quantity(tx.y_parity),
    })
    return fields


# --- receipts and logs -------------------------------------------------------------------


def receipt_logs(block: BlockData, index: int) -> list[JSON]:
    """One receipt's logs as geth's ``types.Log`` (field order of the Go struct), with block-wide
    log indexes; the fields they share are formatted once."""
    number, tx_hash = quantity(block.number), data(block.transaction_hash(index))
    position, block_hash, timestamp = quantity(index), data(block.hash), quantity(block.header.timestamp)
    return [
        {
            "address": data(log.address),
            "topics": [word(topic) for topic in log.topics],
            "data": data(log.data),
            "blockNumber": number,
            "transactionHash": tx_hash,
            "transactionIndex": position,
            "blockHash": block_hash,
            "blockTimestamp": timestamp,
            "logIndex": quantity(log_index),
            "removed": False,
        }
        for log_index, log in enumerate(block.receipts[index].logs, block.log_offsets[index])
    ]


def receipt_json(block: BlockData, index: int) -> JSON:
    """geth's ``MarshalReceipt``: derived fields (gasUsed, contractAddress, prices) included.

    Go sorts a map's keys, so the fields are set in that order (sorting a built map cost
    2.5 us of a receipt's ~16)."""
    tx = block.transactions[index]
    receipt: ReceiptAPI = block.receipts[index]
    sender = block.sender(index)
    kind = tx_type(tx)
    fields: JSON = {}
    if kind == BLOB:
        fields["blobGasPrice"] = quantity(block.blob_base_fee or 0)
        fields["blobGasUsed"] = quantity(GAS_PER_BLOB * len(tx.blob_versioned_hashes))
    fields["blockHash"] = data(block.hash)
    fields["blockNumber"] = quantity(block.number)
    recipient = tx.to
    fields["contractAddress"] = None if recipient else data(generate_contract_address(Address(sender), tx.nonce))
    fields["cumulativeGasUsed"] = quantity(receipt.gas_used)
    fields["effectiveGasPrice"] = quantity(effective_gas_price(tx, block.base_fee))
    fields["from"] = data(sender)
    fields["gasUsed"] = quantity(block.gas_used(index))
    fields["logs"] = receipt_logs(block, index)
    fields["logsBloom"] = data(receipt.bloom.to_bytes(256, "big"))
    outcome = receipt.state_root
    if len(outcome) == 32:
        fields["root"] = data(outcome)
    else:
        fields["status"] = "0x1" if outcome == b"\x01" else "0x0"
    fields["to"] = address_or_none(recipient)
    fields["transactionHash"] = data(block.transaction_hash(index))
    fields["transactionIndex"] = quantity(index)
    fields["type"] = quantity(kind)
    return fields
