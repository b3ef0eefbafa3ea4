"""Sessions for the stateless web tier: log in, refresh, log out, and request authorization."""
from __future__ import annotations

from dataclasses import asdict

from chalicelib import identity, quotas, sessions, tokens, users
from chalicelib.errors import InvalidCredentials, Unauthorized


def confirm(username: str, code: str) -> None:
    identity.confirm_sign_up(username, code)


def log_in(username: str, password: str, client_ip: str) -> dict:
    """Password login. Wrong passwords count against the client IP's failed-login quota; once it is
    used up, every login from that IP is refused until the window ends (the right password too, so
    the quota cannot be used as an oracle)."""
    quotas.ensure_below(quotas.FAILED_LOGINS, client_ip)
    try:
        token_set = identity.log_in(username, password)
    except InvalidCredentials:
        quotas.record(quotas.FAILED_LOGINS, client_ip)
        raise
    users.ensure_profile(username)
    return asdict(token_set)


def refresh(refresh_token: str) -> dict:
    token_set = identity.refresh(refresh_token)
    body = asdict(token_set)
    body.pop("refresh_token", None)
    return body


def authorize(authorization_header: str | None) -> tokens.AccessClaims:
    """Claims of a valid, unrevoked access token; :class:`Unauthorized` otherwise."""
    claims = tokens.verify_access_token(tokens.bearer_token(authorization_header))
    if sessions.is_revoked(claims.token_id):
        raise Unauthorized("Access token has been revoked (signed out).")
    return claims


def log_out(username: str, token_id: str, expires_at: int, authorization_header: str | None) -> None:
    """Refuse this access token from now on, and end the user's refresh tokens in Cognito."""
    sessions.revoke(token_id, username, expires_at)
    identity.sign_out(tokens.bearer_token(authorization_header))
