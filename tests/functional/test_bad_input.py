"""Bad input gets a 4xx in the error shape, never a 500, on every route that takes it.

Tried the way it was found (issue 8): deeply nested JSON and oversized bodies on every route that
takes a body, control characters and bidi overrides in every text field, malformed path
parameters on every route that takes one, and a key-set outage on public routes.
"""
from __future__ import annotations

import json
import re

import jwt
import pytest
from api_helpers import PASSWORD, body_of, call, member, new_username

from chalicelib import http, tokens

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PHOTO_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"  # well-formed, owned by nobody

#: Every route that takes a JSON body, with a valid body for it ({} where any body is checked first).
BODY_ROUTES = [
    ("POST", "/auth/signup", False),
    ("POST", "/auth/confirm", False),
    ("POST", "/auth/login", False),
    ("POST", "/auth/refresh", False),
    ("POST", "/auth/logout", True),
    ("PATCH", "/me", True),
    ("POST", "/photos", True),
    ("PATCH", f"/photos/{PHOTO_ID}", True),
    ("POST", f"/photos/{PHOTO_ID}/edits", True),
]


def raw_call(client, method: str, path: str, raw: bytes, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.http.request(method, path, headers=headers, body=raw)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.body[:300])
    error = body_of(response)["error"]
    assert error["code"] == code and error["message"]
    return error


def test_every_body_route_is_in_the_list(client):
    # Given the app's routes / Then every route taking a body is exercised below (new ones must be added)
    import app

    taking_bodies = {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, entries in app.app.routes.items() for method in entries if method in ("POST", "PUT", "PATCH")
    } - {("PUT", "/users/{}/follow"), ("PUT", "/photos/{}/like"), ("POST", "/auth/logout-all"), ("POST", "/me/export")}
    listed = {(method, re.sub(PHOTO_ID, "{}", path)) for method, path, _ in BODY_ROUTES}
    assert taking_bodies == listed


@pytest.mark.parametrize(("method", "path", "needs_token"), BODY_ROUTES)
def test_deeply_nested_json_is_400_on_every_body_route(client, method, path, needs_token):
    # Given a caller (for protected routes) and a body nesting arrays thousands deep inside a field
    _, token = member(client) if needs_token else (None, None)
    nested = b'{"caption": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert len(nested) <= http.MAX_BODY_BYTES
    # When it is posted / Then it is refused before parsing, never a RecursionError and a 500
    error = assert_error(raw_call(client, method, path, nested, token), 400, "bad_request")
    assert "nested" in error["message"]


@pytest.mark.parametrize(("method", "path", "needs_token"), BODY_ROUTES)
def test_an_oversized_body_is_413_on_every_body_route(client, method, path, needs_token):
    # Given about 100 KB of unclosed brackets in a field (the body), and a merely long body
    _, token = member(client) if needs_token else (None, None)
    for raw in (b'{"caption": ' + b"[" * 100_000, json.dumps({"caption": "x" * 70_000}).encode()):
        # When / Then it is 413 in the error shape
        assert_error(raw_call(client, method, path, raw, token), 413, "payload_too_large")


def test_a_body_within_the_limits_still_works(client):
    # Given a caption near its length limit whose every character needs a JSON escape
    _, token = member(client)
    caption = "é\n" * 1100
    # When the photo is created / Then it is accepted
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000, "caption": caption},
                    token=token)
    assert response.status_code == 201, response.body


# --- one rule for every text field -------------------------------------------------------------

BAD_TEXT = {
    "NUL": "a\x00b", "ESC": "a\x1b[31mb", "DEL": "a\x7fb", "C1 NEL": "a\x85b", "C1 CSI": "a\x9bb",
    "RLO U+202E": "a\u202eb", "LRE U+202A": "a\u202ab", "RLI U+2067": "a\u2067b", "PDI U+2069": "a\u2069b",
}


def text_field_cases():
    """(method, path, protected, valid body, field) for every text field of every route."""
    user = "someone_ok"
    signup = {"username": user, "email": "someone@example.com", "password": PASSWORD}
    return [
        ("POST", "/auth/signup", False, signup, "username"),
        ("POST", "/auth/signup", False, signup, "email"),
        ("POST", "/auth/signup", False, signup, "password"),
        ("POST", "/auth/confirm", False, {"username": user, "code": "123456"}, "username"),
        ("POST", "/auth/confirm", False, {"username": user, "code": "123456"}, "code"),
        ("POST", "/auth/login", False, {"username": user, "password": PASSWORD}, "username"),
        ("POST", "/auth/login", False, {"username": user, "password": PASSWORD}, "password"),
        ("POST", "/auth/refresh", False, {"refresh_token": "token"}, "refresh_token"),
        ("POST", "/auth/logout", True, {"refresh_token": "token"}, "refresh_token"),
        ("PATCH", "/me", True, {"display_name": "Ann", "bio": "hi"}, "display_name"),
        ("PATCH", "/me", True, {"display_name": "Ann", "bio": "hi"}, "bio"),
        ("POST", "/photos", True, {"content_type": "image/jpeg", "size": 1000, "caption": "c"}, "content_type"),
        ("POST", "/photos", True, {"content_type": "image/jpeg", "size": 1000, "caption": "c"}, "caption"),
        ("PATCH", f"/photos/{PHOTO_ID}", True, {"caption": "c"}, "caption"),
    ]


@pytest.mark.parametrize("bad", list(BAD_TEXT), ids=list(BAD_TEXT))
@pytest.mark.parametrize(("method", "path", "protected", "body", "field"), text_field_cases(),
                         ids=[f"{c[0]} {c[1]} {c[4]}" for c in text_field_cases()])
def test_control_characters_and_bidi_overrides_are_refused_in_every_text_field(
        client, method, path, protected, body, field, bad):
    # Given a valid body whose one text field holds a control character or a bidi override
    _, token = member(client) if protected else (None, None)
    for value in (body[field] + BAD_TEXT[bad], body[field] + BAD_TEXT[bad][:2]):  # inside, and at the end
        bad_body = {**body, field: value}
        # When it is sent / Then that field, and only it, is refused
        error = assert_error(call(client, method, path, bad_body, token=token), 400, "validation_failed")
        assert [d["field"] for d in error["details"]] == [field]
        assert "control characters" in error["details"][0]["message"]


def test_text_is_stored_in_normal_form_c(client):
    # Given a display name, bio and caption written with combining accents (NFD)
    username, token = member(client)
    decomposed = "Cafe\u0301 Zoe\u0308"
    # When they are saved
    me = call(client, "PATCH", "/me", {"display_name": decomposed, "bio": decomposed}, token=token)
    photo = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 10, "caption": decomposed},
                 token=token)
    # Then they read back precomposed (NFC), the same as the user would have typed on another device
    assert (body_of(me)["display_name"], body_of(me)["bio"]) == ("Café Zoë", "Café Zoë")
    assert body_of(photo)["photo"]["caption"] == "Café Zoë"


def test_multiline_fields_keep_line_breaks_and_single_line_fields_do_not(client):
    # Given a bio and a display name with a line feed
    _, token = member(client)
    # When / Then the bio keeps it and the display name refuses it
    assert body_of(call(client, "PATCH", "/me", {"bio": "one\ntwo"}, token=token))["bio"] == "one\ntwo"
    error = assert_error(call(client, "PATCH", "/me", {"display_name": "one\ntwo"}, token=token),
                         400, "validation_failed")
    assert [d["field"] for d in error["details"]] == ["display_name"]


# --- path parameters ----------------------------------------------------------------------------

BAD_USERNAMES = ["ab", "a" * 31, "semi:colon", "dash-ed", "x%00y", "%E2%80%AEevil", "dot.ted"]
BAD_PHOTO_IDS = ["nope", PHOTO_ID.lower(), PHOTO_ID + "0", PHOTO_ID[:-1] + "U", "x" * 2000]
BAD_JOB_IDS = ["nope", "A" * 32, "a" * 31, "a" * 33, "g" * 32]


#: Routes with a path parameter, by parameter: "METHOD path" (a trailing " *": signed in).
PATH_ROUTES = {
    "username": ("GET /users/{}", "GET /users/{}/photos", "GET /users/{}/followers", "GET /users/{}/following",
                 "PUT /users/{}/follow *", "DELETE /users/{}/follow *"),
    "photo_id": ("GET /photos/{}", "PATCH /photos/{} *", "DELETE /photos/{} *", "POST /photos/{}/edits *",
                 "PUT /photos/{}/like *", "DELETE /photos/{}/like *"),
    "job": ("GET /me/export/{} *",),
}


def path_routes():
    """``(method, path, signed in, parameter)`` for every route of :data:`PATH_ROUTES`."""
    found = []
    for parameter, routes in PATH_ROUTES.items():
        for route in routes:
            method, path, *signed_in = route.split()
            found.append((method, path, bool(signed_in), parameter))
    return found


def test_every_route_with_a_path_parameter_is_in_the_list(client):
    # Given the app's routes / Then each path parameter is exercised below and has a rule
    import app
    from chalicelib.keys import PATH_PARAMETER_RULES

    templated = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for p, e in app.app.routes.items() for m in e if "{" in p}
    assert templated == {(m, p) for m, p, _, _ in path_routes()}
    names = {name for path in app.app.routes for name in re.findall(r"\{([^}]+)\}", path)}
    assert names <= set(PATH_PARAMETER_RULES)


@pytest.mark.parametrize(("method", "template", "protected", "name"), path_routes(),
                         ids=[f"{r[0]} {r[1]}" for r in path_routes()])
def test_malformed_path_parameters_are_400_on_every_route(client, method, template, protected, name):
    # Given a caller (for protected routes)
    _, token = member(client) if protected else (None, None)
    body = {"caption": "c"} if method == "PATCH" else ({"rotate": 90} if template.endswith("edits") else None)
    for value in {"username": BAD_USERNAMES, "job": BAD_JOB_IDS}.get(name, BAD_PHOTO_IDS):
        # When the route is called with a malformed parameter
        response = call(client, method, template.format(value), body, token=token)
        # Then it is a field-level 400 naming the parameter, before any lookup
        error = assert_error(response, 400, "validation_failed")
        assert [d["field"] for d in error["details"]] == [name], value


def test_well_formed_path_parameters_reach_the_handler(client):
    # Given well-formed names and ids nobody has
    # When / Then the handler answers (404), the validation let them through
    assert_error(call(client, "GET", f"/users/{new_username()}"), 404, "user_not_found")
    assert_error(call(client, "GET", f"/photos/{PHOTO_ID}"), 404, "photo_not_found")


# --- a key-set outage on public routes -----------------------------------------------------------

def test_a_key_set_outage_serves_public_routes_anonymously(client, monkeypatch):
    # Given a user with a valid token and a photo id, while the pool's key set cannot be fetched
    username, token = member(client)

    def unreachable_client(url: str) -> jwt.PyJWKClient:
        jwks = jwt.PyJWKClient(url)

        def fetch_data():
            raise jwt.PyJWKClientConnectionError("connection refused")

        monkeypatch.setattr(jwks, "fetch_data", fetch_data)
        return jwks

    monkeypatch.setattr(tokens, "_jwks_client", unreachable_client)
    # When public GET routes are called with the Authorization header
    profile = call(client, "GET", f"/users/{username}", token=token)
    listing = call(client, "GET", f"/users/{username}/photos", token=token)
    missing = call(client, "GET", f"/photos/{PHOTO_ID}", token=token)
    # Then they are served as to an anonymous caller, not failed
    assert profile.status_code == 200 and body_of(profile)["username"] == username
    assert listing.status_code == 200
    assert_error(missing, 404, "photo_not_found")


def test_throttled_session_records_serve_public_routes_anonymously(client, monkeypatch):
    # Given a user with a valid token, while the sessions table throttles every read
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import GetError

    from chalicelib.models import RevokedTokenRecord, bound

    _, token = member(client)
    model = bound(RevokedTokenRecord)

    def throttled(*args, **kwargs):
        raise GetError("throttled", cause=ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "BatchGetItem"))

    monkeypatch.setattr(model, "batch_get", throttled)
    # When a public route that looks at its caller is called with the Authorization header
    response = call(client, "GET", f"/photos/{PHOTO_ID}", token=token)
    # Then it is served as to an anonymous caller (here: the photo does not exist), not a 500
    assert_error(response, 404, "photo_not_found")
