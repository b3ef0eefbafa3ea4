"""Server-side sign-out for stateless tokens: one session, or every session of a user.

Access tokens are self-contained JWTs, so signing out is a record the authorizer reads on every
request (one consistent BatchGetItem covering both records below), which keeps any Lambda
instance able to serve any request while a signed-out token is refused everywhere at once:

- ``session#{origin_jti}``: the session ended (``POST /auth/logout``). Cognito gives every access
  token minted from one sign-in's refresh token the same ``origin_jti``, so tokens refreshed
  before the logout are refused too, and so is any token refreshed after it.
- ``user#{username}``: the user's cut-off (``POST /auth/logout-all``). Sessions signed in before
  it are refused. ``auth_time`` has one-second resolution, so a session signed in during the
  cut-off's own second is refused unless :func:`note_sign_in` saw its sign-in start after the
  cut-off and listed it in ``exempt_sessions``.

The cut-off compares our clock (Lambda's) with Cognito's ``auth_time``; both are NTP-disciplined,
and a skew of a second would refuse a sign-in made within that second after a logout-all (safe side).

Records live until every token they refuse has expired: a session can mint access tokens for
the refresh token's validity, and the last of them lives one access-token validity longer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from pynamodb.exceptions import GetError, PutError, UpdateError

from chalicelib import ddb
from chalicelib.errors import Unauthorized
from chalicelib.models import RevokedTokenRecord, bound
from chalicelib.tokens import AccessClaims

#: RefreshTokenValidity (30 days) + AccessTokenValidity (60 minutes) of the app client in
#: ``infra/stateful.yaml`` (a unit test keeps the two in step).
SESSION_LIFETIME_SECONDS = 30 * 86400 + 60 * 60


def session_key(session_id: str) -> str:
    return f"session#{session_id}"


def user_key(username: str) -> str:
    return f"user#{username}"


@dataclass(frozen=True)
class Cutoff:
    """A user's sign-out-everywhere moment (milliseconds) and the sessions begun just after it."""

    at_ms: int
    exempt_sessions: frozenset[str] = frozenset()


def refusal(claims: AccessClaims, session_ended: bool, cutoff: Cutoff | None) -> str | None:
    """Why a verified access token is no longer accepted, or None (pure).

    A session signed in during the cut-off's second counts as after it only when exempted.
    """
    if session_ended:
        return "Access token has been revoked (signed out)."
    if cutoff is not None:
        cutoff_second = cutoff.at_ms // 1000
        if claims.authenticated_at < cutoff_second or (
            claims.authenticated_at == cutoff_second and claims.session_id not in cutoff.exempt_sessions
        ):
            return "Access token has been revoked (signed out everywhere)."
    return None


def exempt_from(cutoff: Cutoff | None, claims: AccessClaims, sign_in_started_ms: int) -> bool:
    """Whether a new sign-in must be listed as after ``cutoff`` (pure).

    Only a sign-in in the cut-off's own second needs it, and only one that provably began after
    the cut-off (our clock, read before asking Cognito, is later than the cut-off).
    """
    return (
        cutoff is not None
        and claims.authenticated_at == cutoff.at_ms // 1000
        and sign_in_started_ms > cutoff.at_ms
    )


def _live(record: RevokedTokenRecord | None, now: float) -> RevokedTokenRecord | None:
    """Expired records count as absent: TTL deletion is lazy."""
    return record if record is not None and record.expires_at > now else None


def _cutoff(record: RevokedTokenRecord | None) -> Cutoff | None:
    if record is None or record.cutoff_ms is None:
        return None
    return Cutoff(int(record.cutoff_ms), frozenset(record.exempt_sessions or ()))


def check(claims: AccessClaims, now: float | None = None) -> None:
    """Refuse a verified token whose session ended; one consistent BatchGetItem, no cache."""
    now = time.time() if now is None else now
    model = bound(RevokedTokenRecord)
    wanted = [session_key(claims.session_id), user_key(claims.username)]
    try:
        found = {r.token_id: r for r in model.batch_get(wanted, consistent_read=True)}
    except GetError as exc:
        raise ddb.translate(exc) from exc  # throttled: a 503, and public routes serve anonymously
    session = _live(found.get(wanted[0]), now)
    reason = refusal(claims, session is not None, _cutoff(_live(found.get(wanted[1]), now)))
    if reason:
        raise Unauthorized(reason)


def end_session(claims: AccessClaims, now: float | None = None) -> None:
    """End the token's session: every access token of its sign-in, past and future (idempotent)."""
    now = time.time() if now is None else now
    bound(RevokedTokenRecord)(
        session_key(claims.session_id), username=claims.username,
        expires_at=int(now) + SESSION_LIFETIME_SECONDS,
    ).save()


def end_all_sessions(username: str, now_ms: int | None = None) -> int:
    """Set the user's cut-off to now: every session signed in before it ends. Returns the cut-off.

    A cut-off never moves backwards (two concurrent calls leave the later one).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    model = bound(RevokedTokenRecord)
    record = model(
        user_key(username), username=username, cutoff_ms=now_ms,
        expires_at=now_ms // 1000 + SESSION_LIFETIME_SECONDS + 1,
    )
    try:
        record.save(condition=model.cutoff_ms.does_not_exist() | (model.cutoff_ms < now_ms))
    except PutError as exc:
        if not ddb.condition_failed(exc):
            raise
    return now_ms


def note_sign_in(claims: AccessClaims, started_ms: int) -> None:
    """List a new sign-in as after the user's cut-off when it falls in the cut-off's second."""
    model = bound(RevokedTokenRecord)
    for _ in range(3):  # a newer cut-off written meanwhile is judged afresh
        try:
            record = model.get(user_key(claims.username), consistent_read=True)
        except model.DoesNotExist:
            return
        cutoff = _cutoff(record)
        if not exempt_from(cutoff, claims, started_ms):
            return
        try:
            record.update(
                actions=[model.exempt_sessions.add({claims.session_id})],
                condition=model.cutoff_ms == cutoff.at_ms,
            )
            return
        except UpdateError as exc:
            if not ddb.condition_failed(exc):
                raise
