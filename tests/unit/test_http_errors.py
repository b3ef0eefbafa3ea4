"""The one mapping from errors to HTTP responses, and request-body parsing."""
from __future__ import annotations

import json
import uuid

import pytest
from chalice.app import Response

from chalicelib import errors, http
from chalicelib.schemas import ProfileUpdate, SignUp

EVENT = object()  # the middleware passes the event through untouched


def raising(exc: Exception):
    def get_response(event):
        assert event is EVENT
        raise exc

    return get_response


def returning(response: Response):
    return lambda event: response


@pytest.mark.parametrize(("error_class", "status", "code"), [
    (errors.BadRequest, 400, "bad_request"),
    (errors.ValidationFailed, 400, "validation_failed"),
    (errors.InvalidCursor, 400, "invalid_cursor"),
    (errors.Unauthorized, 401, "unauthorized"),
    (errors.InvalidCredentials, 401, "invalid_credentials"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.AccountNotConfirmed, 403, "account_not_confirmed"),
    (errors.UserNotFound, 404, "user_not_found"),
    (errors.PhotoNotFound, 404, "photo_not_found"),
    (errors.UsernameTaken, 409, "username_taken"),
    (errors.StaleVersion, 409, "stale_version"),
    (errors.PayloadTooLarge, 413, "payload_too_large"),
    (errors.UnsupportedMediaType, 415, "unsupported_media_type"),
    (errors.TooManyRequests, 429, "too_many_requests"),
    (errors.ServiceUnavailable, 503, "service_unavailable"),
    (errors.PhotoscaleError, 500, "internal_error"),
])
def test_a_domain_error_becomes_its_status_and_the_error_shape(error_class, status, code):
    # Given a handler raising a domain error
    message = f"message {uuid.uuid4().hex[:6]}"
    # When the middleware runs it
    response = http.error_middleware(EVENT, raising(error_class(message)))
    # Then the response carries the error's status and {"error": {"code", "message"}} as JSON
    assert response.status_code == status
    assert response.body == {"error": {"code": code, "message": message}}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"


def test_error_details_are_included_when_present():
    # Given a validation failure with field details
    details = [{"field": "email", "message": "must be a valid email address"}]
    # When mapped
    response = http.error_middleware(EVENT, raising(errors.ValidationFailed("Invalid request", details=details)))
    # Then the details are part of the error
    assert response.status_code == 400
    assert response.body["error"]["details"] == details


def test_errors_that_are_not_domain_errors_are_not_swallowed():
    # Given a handler with a bug
    # When / Then the middleware lets it propagate (Chalice answers 500 without leaking details)
    with pytest.raises(KeyError):
        http.error_middleware(EVENT, raising(KeyError("boom")))


@pytest.mark.parametrize(("chalice_code", "status", "code"), [
    ("BadRequestError", 400, "bad_request"),
    ("UnauthorizedError", 401, "unauthorized"),
    ("ForbiddenError", 403, "forbidden"),
    ("NotFoundError", 404, "not_found"),
    ("ConflictError", 409, "conflict"),
    ("UnprocessableEntityError", 422, "unprocessable_entity"),
    ("TooManyRequestsError", 429, "too_many_requests"),
    ("InternalServerError", 500, "internal_error"),
    ("SomethingNewError", 418, "error"),
])
def test_chalices_own_error_bodies_are_rewritten_into_the_error_shape(chalice_code, status, code):
    # Given a Chalice error response {"Code", "Message"}
    message = f"detail {uuid.uuid4().hex[:6]}"
    chalice_response = Response(body={"Code": chalice_code, "Message": message}, status_code=status)
    # When the middleware sees it
    response = http.error_middleware(EVENT, returning(chalice_response))
    # Then it leaves in our shape with the same status
    assert response.status_code == status
    assert response.body == {"error": {"code": code, "message": message}}
    assert response.headers["Content-Type"] == "application/json"


def test_chalices_json_parse_error_gets_a_plain_message():
    # Given Chalice's own JSON parse error
    # When the middleware sees it
    # Then the message does not leak parser internals
    chalice_response = Response(
        body={"Code": "BadRequestError", "Message": "Error Parsing JSON: Expecting value: line 1 column 1"},
        status_code=400,
    )
    response = http.error_middleware(EVENT, returning(chalice_response))
    assert response.body == {"error": {"code": "bad_request", "message": "Request body is not valid JSON."}}


@pytest.mark.parametrize("response", [
    Response(body={"Code": "x", "Message": "a successful body that happens to look like an error"}, status_code=200),
    Response(body={"error": {"code": "already", "message": "shaped"}}, status_code=404),
    Response(body={"username": "someone"}, status_code=200),
    Response(body="", status_code=204),
])
def test_other_responses_pass_through_unchanged(response):
    # Given a success, an already-shaped error or an empty response
    # When / Then the middleware returns it untouched
    assert http.error_middleware(EVENT, returning(response)) is response


# --- parse_body ----------------------------------------------------------------------------------

def test_parse_body_returns_the_validated_model():
    # Given a valid sign-up body
    # When / Then it parses into the model, normalised
    name = f"user_{uuid.uuid4().hex[:8]}"
    raw = json.dumps({"username": name.upper(), "email": "a@example.com", "password": "Passw0rdOK"}).encode()
    body = http.parse_body(SignUp, raw)
    assert isinstance(body, SignUp)
    assert body.username == name


def test_parse_body_reports_every_bad_field():
    # Given a body with three invalid fields and an unknown one
    raw = json.dumps({"username": "x", "email": "nope", "password": "weak", "admin": True}).encode()
    # When parsed
    with pytest.raises(errors.ValidationFailed) as raised:
        http.parse_body(SignUp, raw)
    # Then each field has its own message and the summary names them all
    details = {d["field"]: d["message"] for d in raised.value.details}
    assert set(details) == {"username", "email", "password", "admin"}
    assert details["admin"] == "Unknown field."
    assert details["email"] == "must be a valid email address"
    assert not details["username"].startswith("Value error")
    assert raised.value.status == 400
    assert raised.value.message.startswith("Invalid request: ")
    for field in details:
        assert f"{field}: " in raised.value.message


def test_parse_body_reports_missing_fields():
    # Given an empty object
    # When / Then every required field is in the details
    with pytest.raises(errors.ValidationFailed) as raised:
        http.parse_body(SignUp, b"{}")
    assert {d["field"] for d in raised.value.details} == {"username", "email", "password"}


@pytest.mark.parametrize("raw", [b"{", b"not json", b"{'single': 'quotes'}", b"\xff\xfe\x00", b"{\"a\": 1,}"])
def test_malformed_json_is_a_bad_request(raw):
    # Given bytes that are not JSON (or not UTF-8)
    # When / Then it is a plain 400 bad_request
    with pytest.raises(errors.BadRequest) as raised:
        http.parse_body(ProfileUpdate, raw)
    assert type(raised.value) is errors.BadRequest
    assert raised.value.status == 400
    assert raised.value.message == "Request body is not valid JSON."


@pytest.mark.parametrize("raw", [b"[]", b"[{\"bio\": \"x\"}]", b"\"text\"", b"42", b"null", b"true"])
def test_a_body_that_is_not_an_object_is_a_bad_request(raw):
    # Given valid JSON that is not an object
    # When / Then it is a 400
    with pytest.raises(errors.BadRequest) as raised:
        http.parse_body(ProfileUpdate, raw)
    assert raised.value.status == 400
    assert raised.value.message == "Request body must be a JSON object."


@pytest.mark.parametrize("raw", [None, b""])
def test_a_missing_body_is_a_bad_request(raw):
    # Given no body at all
    # When / Then it is a 400
    with pytest.raises(errors.BadRequest, match="must be a JSON object"):
        http.parse_body(ProfileUpdate, raw)


def test_a_malformed_body_error_maps_to_a_400_response_through_the_middleware():
    # Given a handler parsing a malformed body
    def handler(event):
        http.parse_body(ProfileUpdate, b"{oops")

    # When run through the middleware
    response = http.error_middleware(EVENT, handler)
    # Then the client gets a 400 in the error shape, never a 500
    assert response.status_code == 400
    assert response.body == {"error": {"code": "bad_request", "message": "Request body is not valid JSON."}}


# --- query_int -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [(None, 20), ({}, 20), ({"limit": ""}, 20), ({"limit": "5"}, 5)])
def test_query_int_defaults_and_parses(params, expected):
    # Given an absent, empty or valid parameter
    # When / Then the default or the value is used
    assert http.query_int(params, "limit", 20, 1, 100) == expected


@pytest.mark.parametrize("value", ["0", "101", "ten", "1.5"])
def test_query_int_out_of_range_is_a_field_level_400(value):
    # Given a parameter out of range or not an integer
    # When / Then it is a field-level validation failure
    with pytest.raises(errors.ValidationFailed) as raised:
        http.query_int({"limit": value}, "limit", 20, 1, 100)
    assert raised.value.details == [{"field": "limit", "message": "must be an integer from 1 to 100"}]


# --- body limits -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "depth"), [
    ("{}", 1), ('{"a": [1, {"b": []}]}', 4), ('"[[[["', 0), ('["\\"[[", {}]', 2), ("[" * 40, http.MAX_JSON_DEPTH + 1),
])
def test_json_depth_counts_brackets_outside_strings_only(text, depth):
    assert http.json_depth(text) == depth


def test_a_body_at_the_depth_limit_parses_and_one_deeper_is_400():
    limit = http.MAX_JSON_DEPTH
    assert http.parse_json(("[" * limit + "]" * limit).encode()) is not None
    with pytest.raises(errors.BadRequest, match="nested deeper"):
        http.parse_json(("[" * (limit + 1) + "]" * (limit + 1)).encode())


def test_a_body_over_the_size_limit_is_413_before_parsing():
    with pytest.raises(errors.PayloadTooLarge):
        http.parse_json(b" " * (http.MAX_BODY_BYTES + 1))
    assert http.parse_json(b"{}" + b" " * (http.MAX_BODY_BYTES - 2)) == {}


def test_every_response_names_the_region_that_served_it(monkeypatch):
    # Given the function runs in eu-west-1
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    # When a handler succeeds, raises a domain error or returns one of Chalice's own errors
    ok = http.error_middleware(EVENT, returning(Response(body={"ok": True}, status_code=200)))
    failed = http.error_middleware(EVENT, raising(errors.ServiceUnavailable("busy")))
    chalice_error = http.error_middleware(
        EVENT, returning(Response(body={"Code": "NotFoundError", "Message": "x"}, status_code=404)))
    # Then each carries X-Photoscale-Region: eu-west-1
    assert {r.headers[http.REGION_HEADER] for r in (ok, failed, chalice_error)} == {"eu-west-1"}


def test_a_response_forwarded_from_another_region_keeps_that_regions_name(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    forwarded = Response(body={}, status_code=201, headers={http.REGION_HEADER: "us-east-1"})
    assert http.error_middleware(EVENT, returning(forwarded)).headers[http.REGION_HEADER] == "us-east-1"
