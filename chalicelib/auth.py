"""Sessions for the stateless web tier: log in, refresh, log out, and request authorization."""
from __future__ import annotations

import time
from dataclasses import asdict

from chalicelib import identity, quotas, sessions, tokens, users
from chalicelib.errors import InvalidCredentials, ServiceUnavailable, Unauthorized
from chalicelib.observability import logger


def confirm(username: str, code: str) -> None:
    identity.confirm_sign_up(username, code)


def log_in(username: str, password: str, client_ip: str) -> dict:
    """Password login. Wrong passwords count against the client IP's failed-login quota; once it is
    used up, every login from that IP is refused until the window ends (the right password too, so
    the quota cannot be used as an oracle)."""
    quotas.ensure_below(quotas.FAILED_LOGINS, client_ip)
    started_ms = int(time.time() * 1000)  # read before Cognito issues the token (see sessions.note_sign_in)
    try:
        token_set = identity.log_in(username, password)
    except InvalidCredentials:
        quotas.record(quotas.FAILED_LOGINS, client_ip)
        raise
    users.ensure_profile(username)
    sessions.note_sign_in(tokens.issued_claims(token_set.access_token), started_ms)
    return asdict(token_set)


def refresh(refresh_token: str) -> dict:
    """A new access token for a session that has not ended (Cognito's refresh token may outlive it)."""
    token_set = identity.refresh(refresh_token)
    try:
        sessions.check(tokens.issued_claims(token_set.access_token))
    except Unauthorized:
        raise Unauthorized("Refresh token is invalid or has been revoked.") from None
    body = asdict(token_set)
    body.pop("refresh_token", None)
    return body


def authorize(authorization_header: str | None) -> tokens.AccessClaims:
    """Claims of a valid access token of a session that has not ended; :class:`Unauthorized` otherwise."""
    claims = tokens.verify_access_token(tokens.bearer_token(authorization_header))
    sessions.check(claims)
    return claims


def optional_caller(authorization_header: str | None) -> str | None:
    """The caller on a public route: the username of a valid bearer token, else None (anonymous).

    A public route never fails because of its optional credentials: a bad token, or an outage of
    the key set or the session records, serves the request anonymously.
    """
    if not authorization_header:
        return None
    try:
        return authorize(authorization_header).username
    except Unauthorized:
        return None
    except ServiceUnavailable as exc:
        logger.warning("serving a public route anonymously", extra={"reason": exc.message})
        return None


def reader(authorization_header: str | None) -> str | None:
    """Who reads a public route, only to serve a user her own things fresh (not from the cache): the
    username of an access token with a valid signature, else None. The session is not checked (no
    read): a signed-out token gains nothing here but a fresh read of public data."""
    if not authorization_header:
        return None
    try:
        return tokens.verify_access_token(tokens.bearer_token(authorization_header)).username
    except (Unauthorized, ServiceUnavailable):
        return None


def authorizer_context(claims: tokens.AccessClaims) -> dict[str, str]:
    """The claims as API Gateway's authorizer context (string values only)."""
    return {
        "username": claims.username,
        "token_id": claims.token_id,
        "expires_at": str(claims.expires_at),
        "session_id": claims.session_id,
        "authenticated_at": str(claims.authenticated_at),
    }


def caller_claims(context: dict) -> tokens.AccessClaims:
    """The authorizer context of a request back as claims."""
    return tokens.AccessClaims(
        username=context["username"], subject="", token_id=context["token_id"],
        expires_at=int(context["expires_at"]), session_id=context.get("session_id") or context["token_id"],
        authenticated_at=int(context.get("authenticated_at") or 0),
    )


def log_out(caller: tokens.AccessClaims, refresh_token: str | None) -> None:
    """End this session: its access tokens (however often refreshed) and its refresh token."""
    sessions.end_session(caller)
    if refresh_token:
        identity.revoke_refresh_token(refresh_token)


def log_out_everywhere(caller: tokens.AccessClaims, authorization_header: str | None) -> None:
    """End every session of the caller on every device, this one included."""
    sessions.end_all_sessions(caller.username)
    identity.sign_out_everywhere(tokens.bearer_token(authorization_header))
