"""Access-token verification against a key set, with no network.

A fresh RSA key pair plays the user pool; a real ``jwt.PyJWKClient`` serves its JWKS from memory
(``fetch_data`` patched), so kid lookup, signature, expiry, issuer and claim checks are the real ones.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import settings as settings_module
from chalicelib import errors, tokens
from chalicelib.errors import Unauthorized
from chalicelib.settings import _REQUIRED

REGION = "us-east-1"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture
def kid() -> str:
    return f"kid-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Settings for a random pool and app client (no endpoint override)."""
    ids = {"pool_id": f"{REGION}_{uuid.uuid4().hex[:9]}", "client_id": uuid.uuid4().hex[:26]}
    for name in _REQUIRED.values():
        monkeypatch.setenv(name, f"{name.lower()}-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("USER_POOL_ID", ids["pool_id"])
    monkeypatch.setenv("USER_POOL_CLIENT_ID", ids["client_id"])
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("PHOTOSCALE_AWS_ENDPOINT", raising=False)
    settings_module.reset_settings()
    ids["issuer"] = f"https://cognito-idp.{REGION}.amazonaws.com/{ids['pool_id']}"
    yield ids
    settings_module.reset_settings()


@pytest.fixture
def jwks_requests(monkeypatch: pytest.MonkeyPatch, signing_key: rsa.RSAPrivateKey, kid: str, pool) -> list[str]:
    """Serve the pool's JWKS from memory through a real PyJWKClient; records the URLs asked for."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    key_set = {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}
    asked: list[str] = []

    def make_client(url: str) -> jwt.PyJWKClient:
        asked.append(url)
        client = jwt.PyJWKClient(url, cache_keys=True)
        monkeypatch.setattr(client, "fetch_data", lambda: key_set)
        return client

    monkeypatch.setattr(tokens, "_jwks_client", make_client)
    return asked


@pytest.fixture
def make_token(signing_key: rsa.RSAPrivateKey, kid: str, pool: dict[str, str]) -> Callable[..., str]:
    """Factory for a Cognito-shaped access token; keyword overrides replace claims (None drops one)."""

    def make(*, key: Any = None, headers: dict[str, Any] | None = None, algorithm: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": pool["issuer"], "sub": str(uuid.uuid4()), "client_id": pool["client_id"], "token_use": "access",
            "iat": now, "auth_time": now, "exp": now + 3600, "jti": str(uuid.uuid4()),
            "username": f"user_{uuid.uuid4().hex[:8]}", "scope": "aws.cognito.signin.user.admin",
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key or signing_key, algorithm=algorithm, headers={"kid": kid, **(headers or {})})

    return make


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# --- valid tokens ------------------------------------------------------------------------------

def test_a_valid_access_token_yields_its_claims(make_token, jwks_requests, pool):
    # Given an access token issued by the pool to our client
    username, jti, sub = f"user_{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), str(uuid.uuid4())
    origin, signed_in = str(uuid.uuid4()), int(time.time()) - 1200
    exp = int(time.time()) + 600
    token = make_token(username=username, jti=jti, sub=sub, exp=exp, origin_jti=origin, auth_time=signed_in)
    # When it is verified
    claims = tokens.verify_access_token(token)
    # Then the claims name the user, the token, its expiry, its session and when the session signed in
    assert claims == tokens.AccessClaims(username=username, subject=sub, token_id=jti, expires_at=exp,
                                         session_id=origin, authenticated_at=signed_in)
    # And the keys were fetched from the pool's published key set
    assert jwks_requests == [f"{pool['issuer']}/.well-known/jwks.json"]


def test_a_token_expired_within_the_leeway_is_still_accepted(make_token, jwks_requests):
    # Given a token that expired two seconds ago (clock skew)
    token = make_token(exp=int(time.time()) - 2)
    # When / Then it is accepted
    assert tokens.verify_access_token(token).token_id


# --- refused tokens ----------------------------------------------------------------------------

def test_an_expired_token_is_unauthorized(make_token, jwks_requests):
    # Given a token that expired a minute ago
    token = make_token(exp=int(time.time()) - 60, iat=int(time.time()) - 3660)
    # When / Then it is refused as expired
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify_access_token(token)


def test_a_token_signed_by_another_key_is_unauthorized(make_token, jwks_requests):
    # Given a token forged with another private key under the pool's kid
    token = make_token(key=new_rsa_key())
    # When / Then the signature check refuses it
    with pytest.raises(Unauthorized, match="invalid"):
        tokens.verify_access_token(token)


def test_a_token_with_a_flipped_signature_character_is_unauthorized(make_token, jwks_requests):
    # Given a valid token whose signature was altered
    token = make_token()
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1:]
    # When / Then it is refused
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(f"{head}.{flipped}")


def test_a_token_with_an_unknown_key_id_is_unauthorized(make_token, jwks_requests):
    # Given a token naming a key the pool never published
    # When / Then it is refused
    token = make_token(headers={"kid": "not-in-the-key-set"})
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(token)


def test_an_unsigned_alg_none_token_is_unauthorized(make_token, jwks_requests, kid):
    # Given an unsigned token claiming alg none
    claims = jwt.decode(make_token(), options={"verify_signature": False})
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    # When / Then it is refused
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(token)


def test_an_hs256_token_keyed_with_the_public_key_is_unauthorized(make_token, jwks_requests, signing_key, kid):
    # Given a token "signed" with HMAC using the pool's public key as the secret (key confusion)
    claims = jwt.decode(make_token(), options={"verify_signature": False})
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hs256_token(public_pem, {"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    # When / Then only RS256 is accepted
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(token)


def test_a_token_from_another_issuer_is_unauthorized(make_token, jwks_requests):
    # Given a token issued by another user pool
    # When / Then it is refused
    token = make_token(iss=f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_other{uuid.uuid4().hex[:4]}")
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(token)


def test_an_id_token_is_unauthorized(make_token, jwks_requests, pool):
    # Given an id token as Cognito shapes it (aud instead of client_id)
    token = make_token(token_use="id", client_id=None, aud=pool["client_id"], username=None,
                       **{"cognito:username": f"user_{uuid.uuid4().hex[:6]}"})
    # When / Then it is not accepted as an access token
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(token)


def test_a_token_claiming_another_token_use_is_unauthorized_even_with_a_client_id(make_token, jwks_requests):
    # Given an id token that also carries our client_id
    # When / Then it is still not an access token
    token = make_token(token_use="id")
    with pytest.raises(Unauthorized, match="not an access token"):
        tokens.verify_access_token(token)


def test_a_token_issued_to_another_app_client_is_unauthorized(make_token, jwks_requests):
    # Given a token the pool issued to another app client
    # When / Then it is refused
    token = make_token(client_id=uuid.uuid4().hex[:26])
    with pytest.raises(Unauthorized, match="another client"):
        tokens.verify_access_token(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "token_use", "client_id", "jti"])
def test_a_token_missing_a_required_claim_is_unauthorized(make_token, jwks_requests, claim):
    # Given a token without one required claim
    # When / Then it is refused
    token = make_token(**{claim: None})
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(token)


def test_a_token_naming_no_user_is_unauthorized(make_token, jwks_requests):
    # Given an otherwise valid token without a username
    # When / Then it is refused
    token = make_token(username=None)
    with pytest.raises(Unauthorized, match="names no user"):
        tokens.verify_access_token(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJSUzI1NiJ9.e30.", "Bearer x.y.z"])
def test_malformed_token_strings_are_unauthorized(jwks_requests, token):
    # Given a string that is not a JWT
    # When / Then it is refused (never a crash)
    with pytest.raises(Unauthorized):
        tokens.verify_access_token(token)


def test_an_unreachable_key_set_is_a_server_failure_not_the_callers(make_token, pool, monkeypatch):
    # Given a key set that cannot be fetched
    def make_client(url: str) -> jwt.PyJWKClient:
        client = jwt.PyJWKClient(url)

        def unreachable():
            raise jwt.PyJWKClientConnectionError("connection refused")

        monkeypatch.setattr(client, "fetch_data", unreachable)
        return client

    monkeypatch.setattr(tokens, "_jwks_client", make_client)
    # When / Then verification fails as the service's outage (503), not as the caller's fault (401)
    with pytest.raises(errors.ServiceUnavailable):
        tokens.verify_access_token(make_token())


def test_a_token_without_origin_jti_is_a_session_of_its_own(make_token, jwks_requests):
    # Given a token naming no origin_jti and no auth_time
    jti, issued = str(uuid.uuid4()), int(time.time()) - 5
    token = make_token(jti=jti, origin_jti=None, auth_time=None, iat=issued)
    # When / Then its session is the token itself, signed in when it was issued
    claims = tokens.verify_access_token(token)
    assert (claims.session_id, claims.authenticated_at) == (jti, issued)


# --- the Authorization header --------------------------------------------------------------------

@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc.def.ghi", "abc.def.ghi"),
    ("bearer abc.def.ghi", "abc.def.ghi"),
    ("BEARER   abc.def.ghi  ", "abc.def.ghi"),
])
def test_bearer_token_takes_the_token_from_the_header(header, token):
    # Given a Bearer header in any case and spacing
    # When / Then the token is extracted
    assert tokens.bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "abc.def.ghi", "Token x"])
def test_bearer_token_refuses_a_missing_or_malformed_header(header):
    # Given no header, an empty one or another scheme
    # When / Then it is refused
    with pytest.raises(Unauthorized):
        tokens.bearer_token(header)


# --- trusted issuers (several regions' pools) ----------------------------------------------------

@pytest.fixture
def two_pools(pool: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This region's pool plus a replica region's pool, both on the allow-list with their own clients."""
    replica = {"pool_id": f"eu-west-1_{uuid.uuid4().hex[:9]}", "client_id": uuid.uuid4().hex[:26]}
    replica["issuer"] = f"https://cognito-idp.eu-west-1.amazonaws.com/{replica['pool_id']}"
    monkeypatch.setenv("TRUSTED_ISSUERS", json.dumps({pool["issuer"]: pool["client_id"],
                                                       replica["issuer"]: replica["client_id"]}))
    settings_module.reset_settings()
    return replica


def test_a_token_of_another_trusted_pool_is_verified_against_that_pools_key_set(make_token, jwks_requests, two_pools):
    # Given a token issued by the other region's pool to its own app client
    token = make_token(iss=two_pools["issuer"], client_id=two_pools["client_id"])
    # When it is verified
    claims = tokens.verify_access_token(token)
    # Then it is accepted, with the keys of that issuer
    assert claims.username
    assert jwks_requests == [f"{two_pools['issuer']}/.well-known/jwks.json"]


def test_a_pool_off_the_allow_list_is_refused_by_its_issuer_though_its_signature_verifies(
        make_token, jwks_requests, two_pools):
    # Given a token signed with the very key every trusted pool uses (as moto signs every pool), from a
    # pool that is not on the allow-list but with a trusted client id
    stranger = f"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_{uuid.uuid4().hex[:9]}"
    token = make_token(iss=stranger, client_id=two_pools["client_id"])
    # When / Then it is refused by its issuer, and no key set is fetched for it
    with pytest.raises(Unauthorized, match="untrusted issuer"):
        tokens.verify_access_token(token)
    assert jwks_requests == []


def test_a_trusted_pools_token_must_carry_that_pools_own_client(make_token, jwks_requests, pool, two_pools):
    # Given a token of the replica pool carrying the primary pool's client id
    token = make_token(iss=two_pools["issuer"], client_id=pool["client_id"])
    # When / Then it is refused
    with pytest.raises(Unauthorized, match="another client"):
        tokens.verify_access_token(token)


@pytest.mark.parametrize("issuer", [None, 42, ["x"]])
def test_an_issuer_that_is_not_a_string_is_untrusted(issuer):
    assert tokens.trusted_client(issuer, {"https://a": "c"}) is None
