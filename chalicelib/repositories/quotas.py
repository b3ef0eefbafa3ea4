"""Fixed-window quota counts (``QuotasTable``): one item per action, subject and window.

Writes are retried on transient failures (:func:`chalicelib.ddb.with_retries`); what is still
failing is raised unchanged for the service to translate.
"""
from __future__ import annotations

from chalicelib import ddb
from chalicelib.models import QuotaRecord, bound


def add_if_below(key: str, limit: int, expires_at: int) -> bool:
    """Count one in ``key``'s window if it holds fewer than ``limit``; False (nothing counted) if not."""
    item = bound(QuotaRecord)(key)
    try:
        ddb.with_retries(lambda: item.update(
            actions=[QuotaRecord.n.add(1), QuotaRecord.expires_at.set(expires_at)],
            condition=QuotaRecord.n.does_not_exist() | (QuotaRecord.n < limit),
        ))
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
    ddb.with_retries(lambda: item.update(actions=[QuotaRecord.n.add(1), QuotaRecord.expires_at.set(expires_at)]))
