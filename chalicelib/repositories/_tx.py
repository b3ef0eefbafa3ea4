"""Transactions on the repositories' side of the seam (PynamoDB's ``TransactWrite``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import ddb

T = TypeVar("T")


def transaction(model: type) -> TransactWrite:
    """A ``TransactWrite`` sent with ``model``'s connection (any bound model: one account, one region)."""
    return TransactWrite(connection=model._get_connection().connection)


class Transaction:
    """A ``TransactWrite`` whose items have names, so a cancellation says which item's condition
    failed (:meth:`failed`) without the caller counting positions.

    PynamoDB sends the items grouped by action (condition checks, deletes, puts, updates), each group
    in the order it was added, and DynamoDB's cancellation reasons follow the items on the wire;
    :meth:`index` applies that order to the names."""

    _ORDER = ("check", "delete", "put", "update")

    def __init__(self, model: type) -> None:
        self._write = transaction(model)
        self._names: dict[str, list[str]] = {action: [] for action in self._ORDER}

    def _named(self, action: str, name: str) -> None:
        if any(name in names for names in self._names.values()):
            raise ValueError(f"two transaction items named {name!r}")
        self._names[action].append(name)

    def condition_check(self, name: str, model_cls: type, hash_key, range_key=None, condition=None) -> None:
        self._named("check", name)
        self._write.condition_check(model_cls, hash_key, range_key, condition=condition)

    def delete(self, name: str, item, condition=None) -> None:
        self._named("delete", name)
        self._write.delete(item, condition=condition)

    def save(self, name: str, item, condition=None) -> None:
        self._named("put", name)
        self._write.save(item, condition=condition)

    def update(self, name: str, item, actions: list, condition=None) -> None:
        self._named("update", name)
        self._write.update(item, actions=actions, condition=condition)

    def index(self, name: str) -> int:
        """The position of item ``name`` on the wire (and in a cancellation's reasons)."""
        wire = [n for action in self._ORDER for n in self._names[action]]
        return wire.index(name)

    def has(self, name: str) -> bool:
        return any(name in names for names in self._names.values())

    def failed(self, exc: BaseException, name: str) -> bool:
        """Whether ``exc`` (this transaction's cancellation) reports item ``name``'s condition as failed."""
        return self.has(name) and ddb.condition_failed(exc, self.index(name))

    def commit(self) -> None:
        """Send the items as one ``TransactWriteItems`` (raises PynamoDB's ``TransactWriteError``)."""
        self._write._commit()


def run(write: Callable[[], T], already_done: int | None, attempts: int = 5) -> T | None:
    """Run ``write`` (which rebuilds its items each attempt) with retries on conflicts and throttling.

    Returns ``write``'s result, or None when item ``already_done``'s condition failed (the change had
    been made, or the item is no longer in the expected state). Other failures are raised.
    """
    def attempt() -> T | None:
        try:
            return write()
        except TransactWriteError as exc:
            if already_done is not None and ddb.condition_failed(exc, already_done):
                return None
            raise

    return ddb.with_retries(attempt, attempts=attempts)


def conditional(write: Callable[[], object]) -> bool:
    """Run one conditional write (save, update or delete); False if its condition failed, nothing
    written. Other failures are raised."""
    try:
        write()
    except Exception as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    return True
