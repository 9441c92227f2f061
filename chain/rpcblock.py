"""A block as JSON-RPC shows it (``eth_getBlockByNumber`` with full transactions) → its raw RLP.

Upstreams that do not offer ``debug_getRawBlock`` (anvil, several hosted nodes)
still serve every field a block is made of, so the exact consensus encoding can be
rebuilt: the header list in canonical field order, each transaction in its
EIP-2718 envelope, uncles and withdrawals. Each rebuilt part is checked against the
hash the upstream reports for it, so a field the upstream leaves out or misspells
is caught here, naming the block and the part, and never reaches execution.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import rlp
from eth_utils import keccak

from chain.errors import InvalidBlock

JSON = Mapping[str, Any]

_HEADER_FIELDS: tuple[tuple[str, bool], ...] = (
    ("parentHash", False),
    ("sha3Uncles", False),
    ("miner", False),
    ("stateRoot", False),
    ("transactionsRoot", False),
    ("receiptsRoot", False),
    ("logsBloom", False),
    ("difficulty", True),
    ("number", True),
    ("gasLimit", True),
    ("gasUsed", True),
    ("timestamp", True),
    ("extraData", False),
    ("mixHash", False),
    ("nonce", False),
)
"""(JSON name, is a quantity) of the fields every header has, in RLP order."""

_FORK_HEADER_FIELDS: tuple[tuple[str, bool], ...] = (
    ("baseFeePerGas", True),
    ("withdrawalsRoot", False),
    ("blobGasUsed", True),
    ("excessBlobGas", True),
    ("parentBeaconBlockRoot", False),
    ("requestsHash", False),
)
"""Fields later forks appended, in RLP order; a header has a prefix of them."""

_LEGACY, _ACCESS_LIST, _DYNAMIC_FEE, _BLOB, _SET_CODE = 0, 1, 2, 3, 4


def raw_block(block: JSON, uncles: Sequence[JSON] = ()) -> bytes:
    """The consensus RLP of ``block`` (full transactions) and its ``uncles`` (header objects).

    Raises ``InvalidBlock`` when a rebuilt header or transaction does not hash to
    what the upstream reported.
    """
    number = _quantity(block["number"])
    header = header_fields(block)
    transactions = [_transaction(number, tx) for tx in block.get("transactions", [])]
    body: list[Any] = [header, transactions, [header_fields(uncle) for uncle in uncles]]
    if "withdrawals" in block:
        body.append([_withdrawal(w) for w in block["withdrawals"]])
    return bytes(rlp.encode(body))


def header_fields(header: JSON) -> list[Any]:
    """The RLP list of a header; checked against the header's reported hash."""
    fields: list[Any] = [_value(header[name], is_quantity) for name, is_quantity in _HEADER_FIELDS]
    for name, is_quantity in _FORK_HEADER_FIELDS:
        if header.get(name) is None:
            break
        fields.append(_value(header[name], is_quantity))
    reported = _data(header["hash"])
    if keccak(rlp.encode(fields)) != reported:
        raise InvalidBlock(_quantity(header["number"]), reported, "the rebuilt header does not hash to the reported hash")
    return fields


def _transaction(number: int, tx: JSON) -> Any:
    """A legacy transaction as an RLP list, a typed one as its ``type || rlp(payload)`` bytes."""
    if not isinstance(tx, Mapping):
        raise InvalidBlock(number, None, "the upstream sent transaction hashes, not full transactions")
    kind = _quantity(tx.get("type", "0x0"))
    encoded: Any
    if kind == _LEGACY:
        encoded = [*_common(tx, "gasPrice"), _quantity(tx["v"]), _quantity(tx["r"]), _quantity(tx["s"])]
        canonical = rlp.encode(encoded)
    else:
        payload = _typed_payload(number, kind, tx)
        encoded = bytes([kind]) + rlp.encode(payload)
        canonical = encoded
    if keccak(canonical) != _data(tx["hash"]):
        raise InvalidBlock(number, None, f"transaction {tx['hash']} (type {kind}) does not rebuild to its hash")
    return encoded


def _typed_payload(number: int, kind: int, tx: JSON) -> list[Any]:
    chain_id = _quantity(tx["chainId"])
    signature = [_y_parity(tx), _quantity(tx["r"]), _quantity(tx["s"])]
    access_list = _access_list(tx.get("accessList", []))
    if kind == _ACCESS_LIST:
        return [chain_id, *_common(tx, "gasPrice"), access_list, *signature]
    fees = [_quantity(tx["maxPriorityFeePerGas"]), _quantity(tx["maxFeePerGas"])]
    rest = [_quantity(tx["gas"]), _to(tx), _quantity(tx["value"]), _data(tx["input"]), access_list]
    head = [chain_id, _quantity(tx["nonce"]), *fees, *rest]
    if kind == _DYNAMIC_FEE:
        return [*head, *signature]
    if kind == _BLOB:
        hashes = [_data(h) for h in tx["blobVersionedHashes"]]
        return [*head, _quantity(tx["maxFeePerBlobGas"]), hashes, *signature]
    if kind == _SET_CODE:
        return [*head, [_authorization(a) for a in tx["authorizationList"]], *signature]
    raise InvalidBlock(number, None, f"transaction {tx.get('hash')} has unknown type {kind}")


def _common(tx: JSON, price_field: str) -> list[Any]:
    """nonce, gas price, gas, to, value, input: the fields legacy and EIP-2930 share, in order."""
    return [_quantity(tx["nonce"]), _quantity(tx[price_field]), _quantity(tx["gas"]), _to(tx),
            _quantity(tx["value"]), _data(tx["input"])]


def _to(tx: JSON) -> bytes:
    return b"" if tx.get("to") is None else _data(tx["to"])


def _y_parity(tx: JSON) -> int:
    return _quantity(tx["yParity"] if tx.get("yParity") is not None else tx["v"])


def _access_list(entries: Sequence[JSON]) -> list[Any]:
    return [[_data(entry["address"]), [_data(key) for key in entry["storageKeys"]]] for entry in entries]


def _authorization(auth: JSON) -> list[Any]:
    return [_quantity(auth["chainId"]), _data(auth["address"]), _quantity(auth["nonce"]),
            _quantity(auth["yParity"]), _quantity(auth["r"]), _quantity(auth["s"])]


def _withdrawal(withdrawal: JSON) -> list[Any]:
    return [_quantity(withdrawal["index"]), _quantity(withdrawal["validatorIndex"]),
            _data(withdrawal["address"]), _quantity(withdrawal["amount"])]


def _value(text: str, is_quantity: bool) -> int | bytes:
    return _quantity(text) if is_quantity else _data(text)


def _quantity(text: str) -> int:
    return int(text, 16)


def _data(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)
