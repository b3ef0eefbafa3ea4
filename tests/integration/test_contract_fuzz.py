"""Property-based fuzzing of the running local stack from its own OpenAPI description (schemathesis).

Every operation of ``GET /api/openapi.json`` is called with generated requests, valid and invalid
(a bounded, derandomised number per operation), anonymously and as a signed-in user. Every answer
must be a non-5xx that conforms to the description: a documented status, content type, headers and
body schema.

The fuzz stack is its own (not the session's ``local_stack``): generated sign-ups, likes and follows
would use up the quotas other tests count on, so this one gets roomy limits through its environment
(the quota checks themselves stay on). No event pump: the workers are not what is fuzzed here.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_client import ApiClient, auth
from chalicelib import openapi

#: Generated requests per operation, variant and mode (valid / invalid): enough to reach every validator, small enough for
#: the suite's time budget on two cores (``FUZZ_MAX_EXAMPLES`` raises it for a deeper run by hand).
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
ROOMY = "1000000/60"
FUZZ_ENV = {f"QUOTA_{action}": ROOMY for action in
            ("UPLOAD_GRANTS", "PENDING_UPLOADS", "FOLLOWS", "LIKES", "SIGNUPS", "FAILED_LOGINS")}
FUZZ_ENV["QUOTA_PENDING_UPLOADS"] = "1000000"  # not windowed


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from devstack.stack import LocalStack, StackConfig

    stack = LocalStack(StackConfig.ephemeral(regions=("us-east-1",), log_dir=tmp_path_factory.mktemp("fuzz-stack"), run_pump=False,
                                             extra_env=FUZZ_ENV))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def fuzz_api(fuzz_stack: Any) -> Iterator[ApiClient]:
    client = ApiClient(fuzz_stack.site_url + "/api")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def fuzz_user(fuzz_api: ApiClient) -> dict[str, Any]:
    """A signed-in user (and a second one to follow) for the signed-in variant."""
    username, tokens = fuzz_api.new_user()
    return {"username": username, "token": tokens["access_token"]}


@pytest.fixture(scope="module")
def api_schema(fuzz_stack: Any, fuzz_api: ApiClient) -> Any:
    """The description exactly as the stack serves it, loaded from ``/api/openapi.json``."""
    served = fuzz_api.get("/openapi.json")
    assert served.status_code == 200, served.text
    config = schemathesis.Config.from_dict({
        "seed": 11,
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
    })
    schema = schemathesis.openapi.from_dict(served.json(), config=config)
    schema.config.update(base_url=fuzz_stack.site_url + "/api")
    return schema


FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
#: (method, path, mode): invalid requests only where there is something to get wrong.
CASES = [(op.method, op.path, mode) for op in openapi.OPERATIONS for mode in GenerationMode
         if mode is GenerationMode.POSITIVE or "{" in op.path or op.body or op.query]
IDS = [f"{method} {path} {mode}" for method, path, mode in CASES]


def fuzz(schema: Any, method: str, path: str, mode: GenerationMode, send: Callable[[Any], None],
         path_parameters: dict[str, str] | None = None) -> None:
    """Run ``send(case)`` on generated cases of one operation; hypothesis shrinks any failure."""
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @FUZZ_SETTINGS
    def run(case: Any) -> None:
        send(case)

    run()


# Plain pytest parametrisation (schemathesis' own pytest plugin needs a pytest private this one lacks).
@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=IDS)
def test_anonymous_requests_never_fail_and_conform_to_the_description(api_schema, method, path, mode):
    def send(case: Any) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.call_and_validate(checks=CHECKS)

    fuzz(api_schema, method, path, mode, send)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=IDS)
def test_signed_in_requests_never_fail_and_conform_to_the_description(api_schema, fuzz_api, fuzz_user,
                                                                       method, path, mode):
    def send(case: Any) -> None:
        token = fuzz_user["token"]
        if path.startswith("/auth/logout"):
            # Logging out (everywhere) would end the shared user's session: a user of its own each time.
            token = fuzz_api.new_user()[1]["access_token"]
        case.headers = {**(case.headers or {}), **auth(token)}
        case.call_and_validate(checks=CHECKS)

    fuzz(api_schema, method, path, mode, send)
    # The shared user is still signed in, so every case above was really a signed-in one.
    assert fuzz_api.get("/me", token=fuzz_user["token"]).status_code == 200



#: Operations on a photo or a user: random ids mostly find nothing (404), so these also run on real ones.
ON_RESOURCES = [(op.method, op.path, mode) for op in openapi.OPERATIONS for mode in GenerationMode
                if "{" in op.path and (mode is GenerationMode.POSITIVE or op.body or op.query)]


@pytest.mark.parametrize(("method", "path", "mode"), ON_RESOURCES, ids=[f"{m} {p} {g}" for m, p, g in ON_RESOURCES])
def test_signed_in_requests_on_existing_photos_and_users_conform_to_the_description(api_schema, fuzz_api,
                                                                                    fuzz_user, method, path, mode):
    # Given a photo of the caller's (pending: no pump here) and another user
    created = fuzz_api.post("/photos", token=fuzz_user["token"], json={"content_type": "image/jpeg", "size": 1000})
    assert created.status_code == 201, created.text
    other, _ = fuzz_api.new_user()
    existing = {"photo_id": created.json()["photo"]["id"], "username": other,
                "job": "0" * 32}  # no such export job: the route's 404 must conform too
    parameters = {name: existing[name] for name in openapi.path_parameters(path)}

    def send(case: Any) -> None:
        case.headers = {**(case.headers or {}), **auth(fuzz_user["token"])}
        case.call_and_validate(checks=CHECKS)

    fuzz(api_schema, method, path, mode, send, path_parameters=parameters)
