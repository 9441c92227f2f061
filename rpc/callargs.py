"""eth_call's inputs: transaction arguments, state overrides, block overrides.

Decoded with geth's types and messages (``TransactionArgs``, ``override.StateOverride``,
``override.BlockOverrides``), then turned into the message the EVM runs with geth's
``CallDefaults`` + ``ToMessage`` rules: a missing gas means the gas cap, missing fees
mean zero, and zero fees mean the block's base fee is treated as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from eth.vm.forks.prague.transactions import Authorization

from rpc import params as p
from rpc.errors import ServerError
from rpc.params import ArgumentError, TypeMismatch, decode_struct

# --- decoded arguments ----------------------------------------------------------------

AccessList = tuple[tuple[bytes, tuple[int, ...]], ...]


@dataclass(frozen=True)
class CallArgs:
    """geth's ``TransactionArgs`` (None: not given)."""

    sender: bytes | None = None
    to: bytes | None = None
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int | None = None
    nonce: int | None = None
    data: bytes | None = None
    input: bytes | None = None
    access_list: AccessList | None = None
    chain_id: int | None = None
    max_fee_per_blob_gas: int | None = None
    blob_hashes: tuple[bytes, ...] | None = None
    authorizations: tuple[Authorization, ...] | None = None

    @property
    def payload(self) -> bytes:
        """geth prefers "input" over the older "data"."""
        if self.input is not None:
            return self.input
        return self.data or b""

    def with_access_list(self, access_list: AccessList) -> CallArgs:
        return replace(self, access_list=access_list)


def _u256(value: Any) -> int:
    """``hexutil.U256`` (authorization fields)."""
    if not isinstance(value, str):
        raise TypeMismatch("non-string", "*uint256.Int")
    try:
        return p.big(value)
    except TypeMismatch as error:
        raise TypeMismatch(error.value, "*uint256.Int") from None


def _required_struct(value: Any, struct: str, fields: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """A gencodec struct: every field must be present ("missing required field")."""
    decoded = decode_struct(value, struct, fields)
    for name in fields:
        if name not in decoded:
            raise ArgumentError(f"missing required field '{name}' for {struct}")
    return decoded


def _access_tuple(value: Any) -> tuple[bytes, tuple[int, ...]]:
    fields = _required_struct(value, "AccessTuple", {
        "address": p.address,
        "storageKeys": p.list_of(p.hash32, "[]common.Hash"),
    })
    slots = tuple(int.from_bytes(key, "big") for key in fields["storageKeys"] or ())
    return fields["address"], slots


def _authorization(value: Any) -> Authorization:
    fields = _required_struct(value, "SetCodeAuthorization", {
        "chainId": _u256,
        "address": p.address,
        "nonce": p.uint64,
        "yParity": p.uint64,
        "r": _u256,
        "s": _u256,
    })
    return Authorization(fields["chainId"], fields["address"], fields["nonce"],
                         fields["yParity"], fields["r"], fields["s"])


def _tuple_of(item: Callable[[Any], Any], go_type: str) -> Callable[[Any], tuple[Any, ...] | None]:
    decode_list = p.list_of(item, go_type)

    def decode(value: Any) -> tuple[Any, ...] | None:
        decoded = decode_list(value)
        return None if decoded is None else tuple(decoded)

    return decode


_ARG_FIELDS: dict[str, Callable[[Any], Any]] = {
    "from": p.address,
    "to": p.address,
    "gas": p.uint64,
    "gasPrice": p.big,
    "maxFeePerGas": p.big,
    "maxPriorityFeePerGas": p.big,
    "value": p.big,
    "nonce": p.uint64,
    "data": p.data,
    "input": p.data,
    "accessList": _tuple_of(_access_tuple, "types.AccessList"),
    "chainId": p.big,
    "maxFeePerBlobGas": p.big,
    "blobVersionedHashes": _tuple_of(p.hash32, "[]common.Hash"),
    "authorizationList": _tuple_of(_authorization, "[]types.SetCodeAuthorization"),
}
_ATTRIBUTES = {
    "from": "sender", "gasPrice": "gas_price", "maxFeePerGas": "max_fee_per_gas",
    "maxPriorityFeePerGas": "max_priority_fee_per_gas", "accessList": "access_list",
    "chainId": "chain_id", "maxFeePerBlobGas": "max_fee_per_blob_gas",
    "blobVersionedHashes": "blob_hashes", "authorizationList": "authorizations",
}


def call_args(value: Any) -> CallArgs:
    """Decode a ``TransactionArgs`` object (null: all fields unset)."""
    if value is None:
        return CallArgs()
    if not isinstance(value, dict):
        raise TypeMismatch(p.json_kind(value), "ethapi.TransactionArgs")
    fields = decode_struct(value, "TransactionArgs", _ARG_FIELDS)
    return CallArgs(**{_ATTRIBUTES.get(name, name): decoded for name, decoded in fields.items()})


# --- state overrides --------------------------------------------------------------------


@dataclass(frozen=True)
class AccountOverride:
    """geth's ``OverrideAccount``."""

    nonce: int | None = None
    code: bytes | None = None
    balance: int | None = None
    state: dict[bytes, bytes] | None = None
    state_diff: dict[bytes, bytes] | None = None
    move_precompile_to: bytes | None = None


StateOverride = dict[bytes, AccountOverride]


def _storage_map(value: Any) -> dict[bytes, bytes]:
    if not isinstance(value, dict):
        raise TypeMismatch(p.json_kind(value), "map[common.Hash]common.Hash", soft=True)
    result = {}
    for key, slot_value in value.items():
        try:
            slot = p.hash32(key)
        except TypeMismatch as error:
            raise TypeMismatch(error.value, "common.Hash") from None
        result[slot] = p.hash32(slot_value)
    return result


def _account_override(value: Any) -> AccountOverride:
    fields = decode_struct(value, "OverrideAccount", {
        "nonce": p.uint64,
        "code": p.data,
        "balance": p.big,
        "state": _storage_map,
        "stateDiff": _storage_map,
        "movePrecompileToAddress": p.address,
    })
    return AccountOverride(
        nonce=fields.get("nonce"), code=fields.get("code"), balance=fields.get("balance"),
        state=fields.get("state"), state_diff=fields.get("stateDiff"),
        move_precompile_to=fields.get("movePrecompileToAddress"),
    )


def state_override(value: Any) -> StateOverride:
    """Decode ``map[common.Address]OverrideAccount``."""
    if not isinstance(value, dict):
        raise TypeMismatch(p.json_kind(value), "override.StateOverride")
    overrides: StateOverride = {}
    for key, account in value.items():
        overrides[p.address(key)] = _account_override(account) if account is not None else AccountOverride()
    return overrides


# --- block overrides ------------------------------------------------------------------


@dataclass(frozen=True)
class BlockOverrides:
    """geth's ``override.BlockOverrides`` (beaconRoot/withdrawals refused for calls)."""

    number: int | None = None
    difficulty: int | None = None
    time: int | None = None
    gas_limit: int | None = None
    fee_recipient: bytes | None = None
    prev_randao: bytes | None = None
    base_fee_per_gas: int | None = None
    blob_base_fee: int | None = None
    extra: frozenset[str] = field(default_factory=frozenset)
    """Overrides given that eth_call cannot apply."""


def block_overrides(value: Any) -> BlockOverrides:
    fields = decode_struct(value, "BlockOverrides", {
        "number": p.big,
        "difficulty": p.big,
        "time": p.uint64,
        "gasLimit": p.uint64,
        "feeRecipient": p.address,
        "prevRandao": p.hash32,
        "baseFeePerGas": p.big,
        "blobBaseFee": p.big,
        "beaconRoot": p.hash32,
        "withdrawals": lambda v: v,
    })
    return BlockOverrides(
        number=fields.get("number"), difficulty=fields.get("difficulty"), time=fields.get("time"),
        gas_limit=fields.get("gasLimit"), fee_recipient=fields.get("feeRecipient"),
        prev_randao=fields.get("prevRandao"), base_fee_per_gas=fields.get("baseFeePerGas"),
        blob_base_fee=fields.get("blobBaseFee"),
        extra=frozenset(name for name in ("beaconRoot", "withdrawals") if name in fields),
    )


def check_block_overrides(overrides: BlockOverrides | None) -> None:
    """geth's ``BlockOverrides.Apply`` refusals for single calls."""
    if overrides is None:
        return
    for name in ("beaconRoot", "withdrawals"):
        if name in overrides.extra:
            raise ServerError(f'block override "{name}" is not supported for this RPC method')


# --- the message ----------------------------------------------------------------------


@dataclass(frozen=True)
class CallMessage:
    """geth's ``core.Message`` for a call: what the EVM runs.

    Also the object py-evm's transaction executor reads as its "transaction", so its
    attribute names are py-evm's (``sender``, ``gas``, ``max_fee_per_gas``...).
    """

    sender: bytes
    to: bytes | None
    value: int
    nonce: int
    gas: int
    gas_price: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    data: bytes
    access_list: AccessList | None
    max_fee_per_blob_gas: int | None
    blob_versioned_hashes: tuple[bytes, ...] | None
    authorization_list: tuple[Authorization, ...] | None
    chain_id: int
    intrinsic_gas: int = 0
    """Set by the runner (py-evm charges initcode words itself, geth does not)."""

    @property
    def type_id(self) -> int:
        """The transaction type py-evm switches on (blob and set-code paths)."""
        if self.authorization_list is not None:
            return 4
        if self.blob_versioned_hashes is not None:
            return 3
        return 2

    @property
    def is_create(self) -> bool:
        return self.to is None

    def with_gas(self, gas: int) -> CallMessage:
        return replace(self, gas=gas)


def to_message(args: CallArgs, gas_cap: int, context_base_fee: int | None,
               header_base_fee: int | None, chain_id: int) -> CallMessage:
    """geth's ``CallDefaults`` then ``ToMessage``; raises geth's argument errors."""
    if args.gas_price is not None and (args.max_fee_per_gas is not None
                                       or args.max_priority_fee_per_gas is not None):
        raise ServerError("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
    if args.chain_id is not None and args.chain_id != chain_id:
        raise ServerError(f"chainId does not match node's (have={args.chain_id}, want={chain_id})")
    gas = args.gas if args.gas is not None else (gas_cap or 2**63 - 1)
    if gas_cap and gas > gas_cap:
        gas = gas_cap
    gas_price, fee_cap, tip_cap = _fees(args, context_base_fee, header_base_fee)
    blob_cap = args.max_fee_per_blob_gas
    if blob_cap is None and args.blob_hashes is not None:
        blob_cap = 0
    return CallMessage(
        sender=args.sender or bytes(20),
        to=args.to,
        value=args.value or 0,
        nonce=args.nonce or 0,
        gas=gas,
        gas_price=gas_price,
        max_fee_per_gas=fee_cap,
        max_priority_fee_per_gas=tip_cap,
        data=args.payload,
        access_list=args.access_list,
        max_fee_per_blob_gas=blob_cap,
        blob_versioned_hashes=args.blob_hashes,
        authorization_list=args.authorizations,
        chain_id=chain_id,
    )


def _fees(args: CallArgs, context_base_fee: int | None, header_base_fee: int | None) -> tuple[int, int, int]:
    """(gas price, fee cap, tip cap) as geth's ``ToMessage`` derives them."""
    gas_price = args.gas_price
    if context_base_fee is None and gas_price is None:
        gas_price = 0  # CallDefaults: no base fee means legacy pricing
    if header_base_fee is None or gas_price is not None:
        price = gas_price or 0
        return price, price, price
    fee_cap = args.max_fee_per_gas or 0
    tip_cap = args.max_priority_fee_per_gas or 0
    if fee_cap == 0 and tip_cap == 0:
        return 0, 0, 0
    return min(tip_cap + header_base_fee, fee_cap), fee_cap, tip_cap
