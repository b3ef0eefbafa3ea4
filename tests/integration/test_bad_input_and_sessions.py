"""Issue 8, tried again the way it was found, over HTTP through the site origin on the real local stack:
nested JSON and oversized bodies, control characters in text fields, malformed path parameters, and
logout / logout-all with several sessions (RevokeToken reaches the embedded AWS's Cognito)."""
from __future__ import annotations

import pytest
from api_client import PASSWORD, ApiClient

pytestmark = pytest.mark.integration

PHOTO_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def error_code(response) -> str:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return response.json()["error"]["code"]


def test_nested_and_oversized_bodies_are_4xx_on_every_body_route(api: ApiClient):
    # Given a signed-in user
    _, tokens = api.new_user()
    token = tokens["access_token"]
    nested = '{"caption": ' + "[" * 20_000 + "]" * 20_000 + "}"
    oversized = '{"caption": ' + "[" * 100_000
    routes = [("POST", "/auth/signup", None), ("POST", "/auth/confirm", None), ("POST", "/auth/login", None),
              ("POST", "/auth/refresh", None), ("POST", "/auth/logout", token), ("PATCH", "/me", token),
              ("POST", "/photos", token), ("PATCH", f"/photos/{PHOTO_ID}", token),
              ("POST", f"/photos/{PHOTO_ID}/edits", token)]
    for method, path, auth in routes:
        # When / Then deep nesting is a 400 and 100 KB of brackets a 413, never a 500
        response = api.request(method, path, token=auth, data=nested)
        assert (response.status_code, error_code(response)) == (400, "bad_request"), (method, path)
        response = api.request(method, path, token=auth, data=oversized)
        assert (response.status_code, error_code(response)) == (413, "payload_too_large"), (method, path)


@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\x85", "\u202e", "\u2066"])
def test_control_characters_are_refused_in_text_fields(api: ApiClient, bad: str):
    # Given a signed-in user
    username, tokens = api.new_user()
    token = tokens["access_token"]
    cases = [
        ("POST", "/auth/signup", None, {"username": "fresh_user_1", "email": f"a{bad}@example.com",
                                        "password": PASSWORD}, "email"),
        ("POST", "/photos", token, {"content_type": "image/jpeg", "size": 10, "caption": f"hi{bad}"}, "caption"),
        ("PATCH", "/me", token, {"display_name": f"Ann{bad}"}, "display_name"),
        ("PATCH", "/me", token, {"bio": f"bio{bad}"}, "bio"),
    ]
    for method, path, auth, body, field in cases:
        # When / Then the field is refused with a field-level 400
        response = api.request(method, path, token=auth, json=body)
        assert response.status_code == 400, (path, field, response.text)
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]


def test_malformed_path_parameters_are_400(api: ApiClient):
    for path in ("/users/ab", "/users/semi:colon/photos", "/photos/nope", f"/photos/{PHOTO_ID.lower()}"):
        response = api.get(path)
        assert (response.status_code, error_code(response)) == (400, "validation_failed"), path


def test_logout_with_several_sessions_ends_only_its_own_and_logout_all_ends_the_rest(api: ApiClient):
    # Given one user with three sessions, the first refreshed once
    username, first = api.new_user()
    second, third = api.login(username).json(), api.login(username).json()
    first_refreshed = api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()["access_token"]
    # When the first session logs out (handing back its refresh token)
    response = api.post("/auth/logout", token=first_refreshed, json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 204
    # Then both of its access tokens and its refresh token are refused
    assert api.get("/me", token=first["access_token"]).status_code == 401
    assert api.get("/me", token=first_refreshed).status_code == 401
    assert api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
    # And the other two sessions still work
    assert api.get("/me", token=second["access_token"]).status_code == 200
    assert api.get("/me", token=third["access_token"]).status_code == 200
    # When the second logs out everywhere
    assert api.post("/auth/logout-all", token=second["access_token"]).status_code == 204
    # Then no session works or refreshes, and a new login does
    for tokens in (second, third):
        assert api.get("/me", token=tokens["access_token"]).status_code == 401
        assert api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert api.get("/me", token=api.login(username).json()["access_token"]).status_code == 200
