"""Server-side sign-out for stateless tokens.

Access tokens are self-contained JWTs, so signing out records the token's id (``jti``) as revoked
until the moment it would expire anyway. The authorizer checks that record on every request, which
keeps any Lambda instance able to serve any request while a signed-out token is refused everywhere.
"""
from __future__ import annotations

import time

from chalicelib.models import RevokedTokenRecord, bound


def revoke(token_id: str, username: str, expires_at: int) -> None:
    """Refuse the token from now until it expires (idempotent)."""
    bound(RevokedTokenRecord)(token_id, username=username, expires_at=expires_at).save()


def is_revoked(token_id: str, now: float | None = None) -> bool:
    """Whether the token was signed out. Expired records count as absent: TTL deletion is lazy."""
    model = bound(RevokedTokenRecord)
    try:
        record = model.get(token_id, consistent_read=True)
    except model.DoesNotExist:
        return False
    return record.expires_at > (time.time() if now is None else now)
