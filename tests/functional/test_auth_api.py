"""Sign-up, login, refresh, profiles and sign-out through the real app (chalice.test.Client + moto).

The authorizer is the app's own ``bearer_auth``, run by chalice's local gateway with API Gateway's
401 behaviour; tokens are moto's Cognito tokens, verified against moto's published key set.
"""
from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from chalicelib import sessions, tokens
from chalicelib.errors import Unauthorized

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PASSWORD = "Passw0rdOK"
JSON = {"Content-Type": "application/json"}


def new_username() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def call(client, method: str, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None):
    headers = dict(JSON)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return client.http.request(method, path, headers=headers, body=data)


def body_of(response) -> Any:
    return json.loads(response.body)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    error = body_of(response)["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def sign_up(client, username: str | None = None, password: str = PASSWORD) -> str:
    username = username or new_username()
    response = call(client, "POST", "/auth/signup",
                    {"username": username, "email": f"{username}@example.com", "password": password})
    assert response.status_code == 201, response.body
    return username


def log_in(client, username: str, password: str = PASSWORD) -> dict:
    response = call(client, "POST", "/auth/login", {"username": username, "password": password})
    assert response.status_code == 200, response.body
    return body_of(response)


# --- sign-up ----------------------------------------------------------------------------------

def test_signup_creates_a_confirmed_account(client):
    # Given a new username
    username = new_username()
    # When signing up
    response = call(client, "POST", "/auth/signup",
                    {"username": username, "email": f"{username}@example.com", "password": PASSWORD})
    # Then the account exists and (stage setting) is confirmed already
    assert response.status_code == 201
    assert body_of(response) == {"username": username, "confirmed": True}


def test_signup_with_a_taken_username_is_409_username_taken(client):
    # Given an existing account
    username = sign_up(client)
    # When someone signs up with the same name in another case
    response = call(client, "POST", "/auth/signup",
                    {"username": username.upper(), "email": f"other-{username}@example.com", "password": PASSWORD})
    # Then it is a conflict
    assert_error(response, 409, "username_taken")


@pytest.mark.parametrize(("field", "value"), [
    ("password", "weak"),
    ("password", "alllowercase1"),
    ("email", "not-an-email"),
    ("username", "no spaces allowed"),
    ("username", "ab"),
])
def test_invalid_signups_are_400_with_field_details(client, field, value):
    # Given a sign-up with one invalid field
    username = new_username()
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD, field: value}
    # When submitted
    response = call(client, "POST", "/auth/signup", body)
    # Then it is a validation failure naming the field
    error = assert_error(response, 400, "validation_failed")
    assert [d["field"] for d in error["details"]] == [field]


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"\"text\"", b"", b"\xff\xfe"])
def test_malformed_bodies_are_400_never_500(client, raw):
    # Given a body that is not a JSON object
    # When posted to each body-taking route
    for path in ("/auth/signup", "/auth/login", "/auth/refresh"):
        response = call(client, "POST", path, raw=raw)
        # Then it is a 400 in the error shape
        assert_error(response, 400, "bad_request")


# --- login and refresh ------------------------------------------------------------------------

def test_login_returns_bearer_tokens(client, moto_jwks, api_env):
    # Given an account
    username = sign_up(client)
    # When logging in (any case)
    tokens = log_in(client, username.upper())
    # Then an access token, a refresh token and the expiry come back
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0
    assert tokens["refresh_token"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["username"] == username
    assert claims["token_use"] == "access"
    assert claims["client_id"] == api_env["UserPoolClientId"]


def test_login_with_a_wrong_password_is_401(client):
    # Given an account
    username = sign_up(client)
    # When logging in with another password
    response = call(client, "POST", "/auth/login", {"username": username, "password": "Wr0ngPassword"})
    # Then it is refused without saying which part was wrong
    error = assert_error(response, 401, "invalid_credentials")
    assert error["message"] == "Wrong username or password."


def test_login_as_an_unknown_user_is_401_like_a_wrong_password(client):
    # Given a username nobody has
    # When logging in
    # Then the answer does not reveal that the account does not exist
    response = call(client, "POST", "/auth/login", {"username": new_username(), "password": PASSWORD})
    error = assert_error(response, 401, "invalid_credentials")
    assert error["message"] == "Wrong username or password."


def test_refresh_returns_a_new_working_access_token(client):
    # Given a logged-in user
    username = sign_up(client)
    tokens = log_in(client, username)
    # When the session is refreshed
    response = call(client, "POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    # Then a new access token (and no new refresh token) comes back, and it works
    assert response.status_code == 200
    refreshed = body_of(response)
    assert set(refreshed) == {"access_token", "expires_in", "token_type"}
    assert refreshed["token_type"] == "Bearer"
    me = call(client, "GET", "/me", token=refreshed["access_token"])
    assert me.status_code == 200
    assert body_of(me)["username"] == username


def test_refresh_with_an_unknown_token_is_401(client):
    # Given a refresh token the pool never issued
    # When it is used
    response = call(client, "POST", "/auth/refresh", {"refresh_token": uuid.uuid4().hex})
    # Then it is refused (Cognito's NotAuthorizedException maps to invalid_credentials, a 401)
    assert response.status_code == 401
    error = body_of(response)["error"]
    assert error["code"] in {"unauthorized", "invalid_credentials"}
    assert error["message"] == "Refresh token is invalid or has been revoked."


# --- profiles -----------------------------------------------------------------------------------

def test_me_returns_the_callers_profile(client, moto_jwks, api_env):
    # Given a logged-in user
    username = sign_up(client)
    token = log_in(client, username)["access_token"]
    # When asking for /me
    response = call(client, "GET", "/me", token=token)
    # Then it is the user's own profile with zero counts
    assert response.status_code == 200
    profile = body_of(response)
    assert profile["username"] == username
    assert profile["display_name"] == username
    assert (profile["followers"], profile["following"], profile["photos"]) == (0, 0, 0)
    # And the authorizer fetched the pool's key set from its AWS URL
    assert moto_jwks and set(moto_jwks) == {
        f"https://cognito-idp.us-east-1.amazonaws.com/{api_env['UserPoolId']}/.well-known/jwks.json"
    }


def test_patch_me_updates_the_profile_within_limits(client):
    # Given a logged-in user
    username = sign_up(client)
    token = log_in(client, username)["access_token"]
    # When they set a display name and a bio of the maximum lengths
    display_name, bio = "D" * 50, "b" * 300
    response = call(client, "PATCH", "/me", {"display_name": display_name, "bio": bio}, token=token)
    # Then the updated profile comes back and is what everyone sees
    assert response.status_code == 200
    assert (body_of(response)["display_name"], body_of(response)["bio"]) == (display_name, bio)
    public = body_of(call(client, "GET", f"/users/{username}"))
    assert (public["display_name"], public["bio"]) == (display_name, bio)
    # And changing only the bio keeps the display name; clearing the display name falls back to the username
    body_of(call(client, "PATCH", "/me", {"bio": "short"}, token=token))
    assert body_of(call(client, "GET", "/me", token=token))["display_name"] == display_name
    cleared = body_of(call(client, "PATCH", "/me", {"display_name": ""}, token=token))
    assert cleared["display_name"] == username
    assert cleared["bio"] == "short"


@pytest.mark.parametrize(("body", "field"), [
    ({"display_name": "D" * 51}, "display_name"),
    ({"bio": "b" * 301}, "bio"),
    ({"bio": "ring\x07bell"}, "bio"),
    ({"followers": 1_000_000}, "followers"),
])
def test_patch_me_rejects_invalid_fields_with_details(client, body, field):
    # Given a logged-in user
    username = sign_up(client)
    token = log_in(client, username)["access_token"]
    # When sending an invalid update
    response = call(client, "PATCH", "/me", body, token=token)
    # Then it is refused field by field and nothing changed
    error = assert_error(response, 400, "validation_failed")
    assert [d["field"] for d in error["details"]] == [field]
    assert body_of(call(client, "GET", "/me", token=token))["bio"] == ""


def test_patch_me_with_malformed_json_is_400(client):
    # Given a logged-in user
    # When / Then a malformed update is a 400, never a 500
    username = sign_up(client)
    token = log_in(client, username)["access_token"]
    assert_error(call(client, "PATCH", "/me", raw=b"{bio:", token=token), 400, "bad_request")


def test_public_profile_has_exactly_the_public_fields(client):
    # Given an account
    username = sign_up(client)
    # When anyone (no token) reads it, in any case
    response = call(client, "GET", f"/users/{username.upper()}")
    # Then the shape is exactly the public profile: no email
    assert response.status_code == 200
    profile = body_of(response)
    assert set(profile) == {"username", "display_name", "bio", "followers", "following", "photos", "created_at"}
    assert profile["username"] == username
    assert (profile["followers"], profile["following"], profile["photos"]) == (0, 0, 0)
    assert profile["created_at"].endswith("Z")


def test_an_unknown_user_is_404(client):
    # Given a username nobody has
    # When / Then its profile is 404
    assert_error(call(client, "GET", f"/users/{new_username()}"), 404, "user_not_found")


# --- authorization and sign-out -------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not.a.token"}, {"Authorization": "Basic abc"}])
def test_protected_routes_refuse_missing_or_garbage_tokens(client, headers):
    # Given no token, a garbage token or another scheme
    # When / Then every protected route answers 401 from the authorizer
    for method, path in (("GET", "/me"), ("PATCH", "/me"), ("POST", "/auth/logout")):
        response = client.http.request(method, path, headers={**JSON, **headers}, body=b"{}")
        assert response.status_code == 401, (method, path)


def test_logout_refuses_the_token_everywhere_while_a_fresh_login_works(client):
    # Given a logged-in user
    username = sign_up(client)
    tokens = log_in(client, username)
    token = tokens["access_token"]
    assert call(client, "GET", "/me", token=token).status_code == 200
    # When they log out
    response = call(client, "POST", "/auth/logout", token=token)
    # Then the logout is 204 and the same token is refused by the authorizer on every protected route
    assert response.status_code == 204
    assert call(client, "GET", "/me", token=token).status_code == 401
    assert call(client, "PATCH", "/me", {"bio": "x"}, token=token).status_code == 401
    assert call(client, "POST", "/auth/logout", token=token).status_code == 401
    # And the refresh token ended too (Cognito global sign-out)
    assert call(client, "POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status_code == 401
    # And a fresh login works
    fresh = log_in(client, username)["access_token"]
    assert call(client, "GET", "/me", token=fresh).status_code == 200


def test_an_expired_sign_out_record_counts_as_absent(client, api_env):
    # Given a session ended now, whose record lives for the session's longest possible life
    now = time.time()
    claims = tokens.AccessClaims(username=new_username(), subject="", token_id=str(uuid.uuid4()),
                                 expires_at=int(now) + 3600, session_id=str(uuid.uuid4()),
                                 authenticated_at=int(now))
    sessions.end_session(claims, now=now)
    lifetime_end = int(now) + sessions.SESSION_LIFETIME_SECONDS
    # Then its tokens are refused until then and accepted after it (TTL deletion is lazy)
    with pytest.raises(Unauthorized):
        sessions.check(claims, now=lifetime_end - 1)
    sessions.check(claims, now=lifetime_end)
    # And a session nobody ended is accepted
    sessions.check(dataclasses.replace(claims, session_id=str(uuid.uuid4())))
