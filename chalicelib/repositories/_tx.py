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
