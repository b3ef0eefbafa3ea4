"""Sign-out records (``SessionsTable``): ``session#{origin_jti}`` and ``user#{username}`` items.

Reads here are strongly consistent and never cached: a sign-out is refused everywhere at once.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import GetError, PutError, UpdateError

from chalicelib import ddb
from chalicelib.models import RevokedTokenRecord, bound


def session_key(session_id: str) -> str:
    return f"session#{session_id}"


def user_key(username: str) -> str:
    return f"user#{username}"


@dataclass(frozen=True)
class Cutoff:
    """A user's sign-out-everywhere moment (milliseconds) and the sessions begun just after it."""

    at_ms: int
    exempt_sessions: frozenset[str] = frozenset()


def _live(record: RevokedTokenRecord | None, now: float) -> RevokedTokenRecord | None:
    """Expired records count as absent: TTL deletion is lazy."""
    return record if record is not None and record.expires_at > now else None


def _cutoff(record: RevokedTokenRecord | None) -> Cutoff | None:
    if record is None or record.cutoff_ms is None:
        return None
    return Cutoff(int(record.cutoff_ms), frozenset(record.exempt_sessions or ()))


def revocations(session_id: str, username: str, now: float) -> tuple[bool, Cutoff | None]:
    """(whether the session ended, the user's live cut-off): one consistent BatchGetItem.

    Throttling still there after retries is a :class:`~chalicelib.errors.ServiceUnavailable`.
    """
    model = bound(RevokedTokenRecord)
    wanted = [session_key(session_id), user_key(username)]
    try:
        found = {r.token_id: r for r in model.batch_get(wanted, consistent_read=True)}
    except GetError as exc:
        raise ddb.translate(exc) from exc
    return _live(found.get(wanted[0]), now) is not None, _cutoff(_live(found.get(wanted[1]), now))


def end_session(session_id: str, username: str, expires_at: int) -> None:
    bound(RevokedTokenRecord)(session_key(session_id), username=username, expires_at=expires_at).save()


def raise_cutoff(username: str, at_ms: int, expires_at: int) -> None:
    """Set the user's cut-off to ``at_ms`` unless a later one is in force (a cut-off never moves back)."""
    model = bound(RevokedTokenRecord)
    record = model(user_key(username), username=username, cutoff_ms=at_ms, expires_at=expires_at)
    try:
        record.save(condition=model.cutoff_ms.does_not_exist() | (model.cutoff_ms < at_ms))
    except PutError as exc:
        if not ddb.condition_failed(exc):
            raise


def cutoff(username: str) -> Cutoff | None:
    """The user's cut-off as stored (consistent read), or None."""
    model = bound(RevokedTokenRecord)
    try:
        return _cutoff(model.get(user_key(username), consistent_read=True))
    except model.DoesNotExist:
        return None


def exempt(username: str, session_id: str, cutoff_at_ms: int) -> bool:
    """List ``session_id`` as after the cut-off ``cutoff_at_ms``; False if the cut-off changed meanwhile."""
    model = bound(RevokedTokenRecord)
    try:
        model(user_key(username)).update(
            actions=[model.exempt_sessions.add({session_id})], condition=model.cutoff_ms == cutoff_at_ms)
    except UpdateError as exc:
        if not ddb.condition_failed(exc):
            raise
        return False
    return True
