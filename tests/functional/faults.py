"""Inject DynamoDB failures at the client boundary.

A botocore ``before-call`` handler that returns a response short-circuits the HTTP request, so the
real client raises exactly what it would raise for that answer from DynamoDB (PynamoDB then wraps
it as it would in AWS). Nothing above the botocore client is patched.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse

from chalicelib.models import bound


def dynamodb_client(model: type) -> Any:
    """The botocore client a PynamoDB model (bound to its stage table) sends its requests with."""
    return bound(model)._get_connection().connection.client


def error_answer(code: str, reasons: list[str] | None = None) -> tuple[AWSResponse, dict]:
    parsed: dict[str, Any] = {"Error": {"Code": code, "Message": f"injected {code}"},
                              "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}}}
    if reasons is not None:
        parsed["CancellationReasons"] = [{"Code": r} for r in reasons]
    return AWSResponse("https://dynamodb.invalid/", 400, {}, None), parsed


@contextmanager
def failing(client: Any, operation: str, code: str, *, reasons: list[str] | None = None,
            times: int | None = None, before: Callable[[dict], None] | None = None) -> Iterator[list[dict]]:
    """Answer ``operation`` on ``client`` with error ``code`` (the first ``times`` calls; all if None).

    ``before(params)`` runs first on every call (e.g. to make a concurrent change). Yields the list
    of request parameters seen, so a test can tell how often the call was made.
    """
    seen: list[dict] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(params: dict, **_: Any):
        seen.append(params)
        if before is not None:
            before(params)
        if times is None or len(seen) <= times:
            return error_answer(code, reasons)
        return None

    event = f"before-call.{service}.{operation}"
    client.meta.events.register(event, handler, unique_id=f"fault-{id(handler)}")
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, unique_id=f"fault-{id(handler)}")


@contextmanager
def intercept(client: Any, operation: str, action: Callable[[dict], None]) -> Iterator[list[dict]]:
    """Run ``action(params)`` just before each ``operation`` call (which then proceeds normally)."""
    seen: list[dict] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(params: dict, **_: Any):
        seen.append(params)
        action(params)
        return None

    event = f"before-call.{service}.{operation}"
    client.meta.events.register(event, handler, unique_id=f"intercept-{id(handler)}")
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, unique_id=f"intercept-{id(handler)}")
