"""The OpenAPI description and app.py agree both ways, and the document is valid OpenAPI 3.1."""
from __future__ import annotations

import importlib

import pytest
from openapi_spec_validator import validate

from chalicelib import openapi


def _app_routes() -> dict[tuple[str, str], object]:
    # app.py names its worker queues at import (Chalice reads event sources then); any names do here.
    with pytest.MonkeyPatch.context() as env:
        for variable in ("UPLOADS_QUEUE_NAME", "EDITS_QUEUE_NAME", "FANOUT_QUEUE_NAME"):
            env.setenv(variable, "unit-test-queue")
        env.setenv("COUNTERS_STREAM_ARN", "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/unit-test")
        app = importlib.import_module("app").app
    return {(method, path): entry for path, methods in app.routes.items() for method, entry in methods.items()}


def _described() -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): operation
            for path, operations in openapi.document()["paths"].items() for method, operation in operations.items()}


def test_every_route_of_the_app_is_described():
    missing = sorted(set(_app_routes()) - set(_described()))
    assert missing == []


def test_everything_described_exists_in_the_app():
    invented = sorted(set(_described()) - set(_app_routes()))
    assert invented == []


def test_described_auth_matches_each_routes_authorizer():
    routes, described = _app_routes(), _described()
    for key, operation in described.items():
        protected = routes[key].authorizer is not None
        assert (operation["security"] == [{"bearerAuth": []}]) is protected, key
        assert ("401" in operation["responses"]) is protected or key[1].startswith("/auth/"), key


def test_described_request_bodies_are_the_handlers_models():
    described = _described()
    body = described[("POST", "/auth/signup")]["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"username", "email", "password"}
    assert described[("POST", "/auth/logout")]["requestBody"]["required"] is False


def test_every_error_response_has_the_error_shape():
    for key, operation in _described().items():
        for status, response in operation["responses"].items():
            if int(status) >= 400 and key != ("GET", "/health"):
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_busy_dependency_answers_are_described_on_every_route_with_retry_after():
    for key, operation in _described().items():
        assert "503" in operation["responses"], key
        if key != ("GET", "/health"):
            assert "Retry-After" in operation["responses"]["503"]["headers"], key


def test_document_is_valid_openapi_3_1():
    document = openapi.document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_operation_ids_are_unique():
    ids = [operation["operationId"] for operation in _described().values()]
    assert len(ids) == len(set(ids))
