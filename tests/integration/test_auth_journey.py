"""The sign-up / sign-in journey over HTTP through the site origin (``/api`` proxied to chalice local).

Runs against the real local stack: moto server, the provisioned template, chalice local with API
Gateway's authorizer and gateway-response behaviour, and the edge server in front.
"""
from __future__ import annotations

from typing import Any

import boto3
import pytest
import requests
from api_client import PASSWORD, ApiClient, new_username

pytestmark = pytest.mark.integration


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Every error is JSON ``{"error": {"code", "message"}}``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message"} <= set(error)
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def assert_refused_everywhere(api: ApiClient, token: str) -> None:
    """The token gets 401 in the error shape from every protected route."""
    assert_error(api.get("/me", token=token), 401, "unauthorized")
    assert_error(api.patch("/me", token=token, json={"bio": "nope"}), 401, "unauthorized")
    assert_error(api.post("/auth/logout", token=token), 401, "unauthorized")


def test_the_full_account_journey(api: ApiClient):
    # Given a new visitor
    username = new_username()

    # When they sign up, then the account is created (and confirmed locally)
    signed_up = api.signup(username)
    assert signed_up.status_code == 201
    assert signed_up.json() == {"username": username, "confirmed": True}

    # When someone else takes the same name, then it is a conflict
    assert_error(api.signup(username.upper(), email=f"other-{username}@example.com"), 409, "username_taken")

    # When the sign-up is invalid, then each problem is a 400 with field details
    for body_field, value in (("password", "weak"), ("email", "nope"), ("username", "no spaces")):
        fields = {"username": new_username(), "email": "ok@example.com", "password": PASSWORD, body_field: value}
        error = assert_error(api.post("/auth/signup", json=fields), 400, "validation_failed")
        assert [d["field"] for d in error["details"]] == [body_field]
    # And malformed JSON is a 400, never a 500
    assert_error(api.post("/auth/signup", data=b"{not json"), 400, "bad_request")

    # When they log in with a wrong password, then it is 401
    assert_error(api.login(username, "Wr0ngPassword"), 401, "invalid_credentials")

    # When they log in, then they get bearer tokens
    logged_in = api.login(username)
    assert logged_in.status_code == 200
    tokens = logged_in.json()
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0

    # When they refresh, then a new access token works
    refreshed = api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert api.get("/me", token=refreshed.json()["access_token"]).status_code == 200

    # When they read and edit their own profile
    me = api.get("/me", token=tokens["access_token"])
    assert me.status_code == 200
    assert me.json()["username"] == username
    patched = api.patch("/me", token=tokens["access_token"], json={"display_name": "Ada L.", "bio": "Hello there"})
    assert patched.status_code == 200
    assert (patched.json()["display_name"], patched.json()["bio"]) == ("Ada L.", "Hello there")
    too_long = api.patch("/me", token=tokens["access_token"], json={"bio": "x" * 301})
    assert [d["field"] for d in assert_error(too_long, 400, "validation_failed")["details"]] == ["bio"]

    # Then everyone sees the public profile, exactly these fields
    public = api.get(f"/users/{username}")
    assert public.status_code == 200
    assert public.headers["Content-Type"].startswith("application/json")
    profile = public.json()
    assert set(profile) == {"username", "display_name", "bio", "followers", "following", "photos", "created_at"}
    assert (profile["username"], profile["display_name"], profile["bio"]) == (username, "Ada L.", "Hello there")
    assert (profile["followers"], profile["following"], profile["photos"]) == (0, 0, 0)
    assert_error(api.get(f"/users/{new_username()}"), 404, "user_not_found")

    # When they log out, then the old token is refused everywhere
    assert api.post("/auth/logout", token=tokens["access_token"]).status_code == 204
    assert_refused_everywhere(api, tokens["access_token"])
    # And a fresh login works
    fresh = api.login(username).json()["access_token"]
    assert api.get("/me", token=fresh).status_code == 200


def test_a_forged_token_is_refused(api: ApiClient):
    # Given a valid token with one signature character flipped
    _, tokens = api.new_user()
    head, _, signature = tokens["access_token"].rpartition(".")
    middle = len(signature) // 2
    forged = f"{head}.{signature[:middle]}{'A' if signature[middle] != 'A' else 'B'}{signature[middle + 1:]}"
    # When / Then it is refused everywhere, while the genuine one works
    assert_refused_everywhere(api, forged)
    assert api.get("/me", token=tokens["access_token"]).status_code == 200


def test_a_token_issued_to_another_app_client_is_refused(api: ApiClient, local_stack):
    # Given a second app client in the same user pool, and a user who logs in through it directly
    username, _ = api.new_user()
    idp = boto3.client("cognito-idp", endpoint_url=local_stack.aws_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    pool_id = local_stack.outputs["UserPoolId"]
    other = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName=f"other-{new_username()}",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    result = idp.initiate_auth(ClientId=other, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
    token = result["AuthenticationResult"]["AccessToken"]
    # When / Then our API refuses that pool-signed token
    assert_refused_everywhere(api, token)


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer"])
def test_a_garbage_authorization_header_is_refused(api: ApiClient, header: str):
    # Given a header that carries no valid token
    # When / Then every protected route answers 401 in the error shape
    for method, path in (("GET", "/me"), ("PATCH", "/me"), ("POST", "/auth/logout")):
        response = api.request(method, path, headers={"Authorization": header}, json={})
        assert_error(response, 401, "unauthorized")


def test_a_missing_token_is_refused(api: ApiClient):
    # Given no Authorization header
    # When / Then /me is 401 in the error shape
    assert_error(api.get("/me"), 401, "unauthorized")


def test_an_unknown_route_is_a_json_404(api: ApiClient):
    # Given a path the API does not have
    # When / Then API Gateway's answer is a JSON 404 (not 403 Missing Authentication Token)
    assert_error(api.get(f"/no-such-route-{new_username()}"), 404, "not_found")


def test_health_is_ok_through_the_site(api: ApiClient):
    # Given the running stack
    # When / Then /api/health reports every dependency ok
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "dynamodb": "ok", "sqs": "ok", "s3": "ok",
    }
