"""Fixed-window quota counts (``QuotasTable``): one item per action, subject and window.

Writes are retried on transient failures (:func:`chalicelib.ddb.with_retries`); what is still
failing is raised unchanged for the service to translate.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import TransactWriteError

from chalicelib import ddb
from chalicelib.models import QuotaRecord, bound

#: The name of the quota's item in a transaction that counts it (:func:`commit_counting`).
TRANSACTION_ITEM = "quota"


@dataclass(frozen=True)
class Take:
    """One count of a window's quota, to be taken inside another write's transaction."""

    key: str
    limit: int
    expires_at: int


class QuotaRefused(Exception):
    """The transaction was cancelled because the window's quota is used up (nothing was written)."""


def commit_counting(tx, take: Take | None) -> None:
    """Send the transaction ``tx`` (a :class:`~chalicelib.repositories._tx.Transaction`) with ``take``
    as one more item: the same conditional ``ADD 1`` as :func:`add_if_below`, so the count and the
    write it counts commit together or not at all (a refused, repeated or failed write counts nothing).

    :class:`QuotaRefused` if the quota item's condition failed; any other cancellation is raised as is
    (PynamoDB's ``TransactWriteError``) for the caller to read with ``tx.failed``. ``take`` None: the
    write counts no quota (tools, tests)."""
    if take is not None:
        tx.update(TRANSACTION_ITEM, bound(QuotaRecord)(take.key), actions=_count_one(take.expires_at),
                  condition=_below(take.limit))
    try:
        tx.commit()
    except TransactWriteError as exc:
        if tx.failed(exc, TRANSACTION_ITEM):
            raise QuotaRefused() from None
        raise


def _count_one(expires_at: int) -> list:
    return [QuotaRecord.n.add(1), QuotaRecord.expires_at.set(expires_at)]


def _below(limit: int):
    return QuotaRecord.n.does_not_exist() | (QuotaRecord.n < limit)


def add_if_below(key: str, limit: int, expires_at: int) -> bool:
    """Count one in ``key``'s window if it holds fewer than ``limit``; False (nothing counted) if not."""
    item = bound(QuotaRecord)(key)
    try:
        ddb.with_retries(lambda: item.update(actions=_count_one(expires_at), condition=_below(limit)))
    except Exception as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    return True


def count(key: str) -> int:
    """The window's count (consistent read; 0 if nothing was counted)."""
    model = bound(QuotaRecord)
    try:
        record = ddb.with_retries(lambda: model.get(key, consistent_read=True))
    except model.DoesNotExist:
        return 0
    return int(record.n or 0)


def add(key: str, expires_at: int) -> None:
    """Count one in ``key``'s window unconditionally."""
    item = bound(QuotaRecord)(key)
    ddb.with_retries(lambda: item.update(actions=_count_one(expires_at)))
