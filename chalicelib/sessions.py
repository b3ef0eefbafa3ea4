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

from chalicelib.errors import Unauthorized
from chalicelib.repositories import sessions as records
from chalicelib.repositories.sessions import Cutoff, session_key, user_key
from chalicelib.tokens import AccessClaims

__all__ = ["Cutoff", "check", "end_all_sessions", "end_session", "exempt_from", "note_sign_in", "refusal",
           "session_key", "user_key"]

#: RefreshTokenValidity (30 days) + AccessTokenValidity (60 minutes) of the app client in
#: ``infra/stateful.yaml`` (a unit test keeps the two in step).
SESSION_LIFETIME_SECONDS = 30 * 86400 + 60 * 60


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


def check(claims: AccessClaims, now: float | None = None) -> None:
    """Refuse a verified token whose session ended; one consistent BatchGetItem, no cache."""
    now = time.time() if now is None else now
    session_ended, cutoff = records.revocations(claims.session_id, claims.username, now)
    reason = refusal(claims, session_ended, cutoff)
    if reason:
        raise Unauthorized(reason)


def end_session(claims: AccessClaims, now: float | None = None) -> None:
    """End the token's session: every access token of its sign-in, past and future (idempotent)."""
    now = time.time() if now is None else now
    records.end_session(claims.session_id, claims.username, int(now) + SESSION_LIFETIME_SECONDS)


def end_all_sessions(username: str, now_ms: int | None = None) -> int:
    """Set the user's cut-off to now: every session signed in before it ends. Returns the cut-off.

    A cut-off never moves backwards (two concurrent calls leave the later one).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    records.raise_cutoff(username, now_ms, now_ms // 1000 + SESSION_LIFETIME_SECONDS + 1)
    return now_ms


def note_sign_in(claims: AccessClaims, started_ms: int) -> None:
    """List a new sign-in as after the user's cut-off when it falls in the cut-off's second."""
    for _ in range(3):  # a newer cut-off written meanwhile is judged afresh
        cutoff = records.cutoff(claims.username)
        if not exempt_from(cutoff, claims, started_ms):
            return
        if records.exempt(claims.username, claims.session_id, cutoff.at_ms):
            return
