"""Verification of Cognito access tokens, for real.

The token's ``iss`` must be one of the stage's trusted issuers (``TRUSTED_ISSUERS``: every region's
pool, each with its app client), never "any pool": an issuer not on the list is refused before its
key set is even fetched. Then the RS256 signature against that issuer's JWKS (fetched once per
issuer and cached across invocations, refreshed when an unknown ``kid`` appears), ``exp``, ``iss``,
``token_use == "access"`` and the issuer's app client id. Anything else is
:class:`~chalicelib.errors.Unauthorized`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from chalicelib.errors import ServiceUnavailable, Unauthorized
from chalicelib.settings import get_settings

_LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class AccessClaims:
    """What the service needs from an access token.

    ``session_id`` is Cognito's ``origin_jti``: the same for every access token minted from one
    sign-in's refresh token (the token's own ``jti`` for a token without one). ``authenticated_at``
    is ``auth_time``, the second of the sign-in itself, which refreshes keep (``iat`` if absent).
    """

    username: str
    subject: str
    token_id: str
    expires_at: int
    session_id: str = ""
    authenticated_at: int = 0


@functools.lru_cache(maxsize=4)
def _jwks_client(url: str):
    import jwt  # PyJWT + cryptography (~60 ms): only the authorizer function pays for it

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def bearer_token(header: str | None) -> str:
    """The token from an ``Authorization: Bearer <token>`` header."""
    if not header:
        raise Unauthorized("Missing Authorization header.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <access token>'.")
    return token.strip()


def trusted_client(issuer: object, trusted: dict[str, str]) -> str | None:
    """The app client id tokens of ``issuer`` must carry, or None when the issuer is not trusted (pure)."""
    return trusted.get(issuer) if isinstance(issuer, str) else None


def verify_access_token(token: str) -> AccessClaims:
    """Verify an access token issued by one of the stage's trusted pools to that pool's app client."""
    import jwt

    settings = get_settings()
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"Access token is invalid: {exc}.") from None
    client_id = trusted_client(issuer, settings.trusted_issuers)
    if client_id is None:
        raise Unauthorized("Access token was issued by an untrusted issuer.")
    try:
        signing_key = _jwks_client(settings.jwks_url_of(issuer)).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            issuer=issuer,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "token_use", "client_id", "jti"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Access token has expired.") from None
    except jwt.PyJWKClientConnectionError:
        # the key set is unreachable: a server-side failure, not the caller's
        raise ServiceUnavailable("The identity provider's signing keys are unreachable.", retry_after=5) from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"Access token is invalid: {exc}.") from None
    if claims.get("token_use") != "access":
        raise Unauthorized("Token is not an access token.")
    if claims.get("client_id") != client_id:
        raise Unauthorized("Token was issued to another client.")
    username = claims.get("username") or claims.get("cognito:username")
    if not username:
        raise Unauthorized("Token names no user.")
    return _claims(claims, username)


def _claims(claims: dict, username: str) -> AccessClaims:
    return AccessClaims(
        username=username, subject=claims.get("sub", ""), token_id=claims["jti"], expires_at=int(claims["exp"]),
        session_id=claims.get("origin_jti") or claims["jti"],
        authenticated_at=int(claims.get("auth_time") or claims["iat"]),
    )


def issued_claims(token: str) -> AccessClaims:
    """Claims of an access token Cognito has just handed us over TLS, read without verification.

    Only for tokens that came straight from the ``cognito-idp`` API in this request (log-in and
    refresh), never for tokens from clients: those go through :func:`verify_access_token`.
    """
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    return _claims(claims, claims.get("username") or claims.get("cognito:username") or "")
