"""A photo's lifecycle, as pure rules (no I/O).

``pending`` (upload authorised, not yet processed) → ``ready`` (renditions stored, counted) or
``failed`` (rejected); any of them → ``deleting`` (media being removed by the cleanup worker; the
record goes last). Only ``ready`` photos are counted and listed.

A pending photo whose upload never arrives expires: its record carries ``expires_at`` (the table's
TTL attribute). DynamoDB deletes expired items lazily (moto never does), so readers apply the same
rule: an expired pending photo reads as gone (404), never as pending forever.
"""
from __future__ import annotations

PENDING, READY, FAILED, DELETING = "pending", "ready", "failed", "deleting"

#: How long a pending photo waits for its upload and processing before it reads as gone.
PENDING_TTL_SECONDS = 24 * 3600


def pending_expires_at(now: float, upload_url_expiry_seconds: int, ttl_seconds: int = PENDING_TTL_SECONDS) -> int:
    """Epoch second after which a photo created at ``now`` and still pending is gone.

    Never before its upload URL has expired (plus the same again for processing).
    """
    return int(now) + max(ttl_seconds, 2 * upload_url_expiry_seconds)


def is_visible(status: str, expires_at: float | None, now: float) -> bool:
    """Whether a photo exists for readers: not being deleted, and not an expired pending upload."""
    if status == DELETING:
        return False
    return not (status == PENDING and expires_at is not None and float(expires_at) <= now)


def is_expired_pending(status: str, expires_at: float | None, now: float) -> bool:
    """A pending photo past its expiry: its upload never arrived (in time)."""
    return status == PENDING and expires_at is not None and float(expires_at) <= now
