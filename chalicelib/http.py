"""HTTP edge of the API: request parsing and the single error-to-response mapping.

Every error leaves the API as ``{"error": {"code", "message"[, "details"]}}``: domain errors from
:mod:`chalicelib.errors`, request validation failures, malformed JSON, and Chalice's own error
responses (which this middleware rewrites into the same shape).

Every response the app produces, success or error, names the region that served it in
``X-Photoscale-Region`` (set here and nowhere else), so clients, the drill and support can see
where a request landed after latency routing and failover.
"""
from __future__ import annotations

import functools
import json
import os
import re
from typing import Any, TypeVar

from chalice.app import Response

from chalicelib.errors import BadRequest, PayloadTooLarge, PhotoscaleError, ServiceUnavailable, ValidationFailed
from chalicelib.observability import logger

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}

_CHALICE_ERROR_CODES = {
    "BadRequestError": "bad_request",
    "UnauthorizedError": "unauthorized",
    "ForbiddenError": "forbidden",
    "NotFoundError": "not_found",
    "ConflictError": "conflict",
    "UnprocessableEntityError": "unprocessable_entity",
    "TooManyRequestsError": "too_many_requests",
    "RequestTimeoutError": "request_timeout",
    "InternalServerError": "internal_error",
    "UnsupportedMediaType": "unsupported_media_type",
    "MethodNotAllowedError": "method_not_allowed",
}

T = TypeVar("T")

#: The response header naming the region that served the request (multi-region contract, issue 10).
REGION_HEADER = "X-Photoscale-Region"

#: Largest request body any route takes (the longest caption, escaped, fits ten times over).
MAX_BODY_BYTES = 64 * 1024
#: Deepest nesting of arrays and objects any route's body needs (edits are two levels deep).
MAX_JSON_DEPTH = 16


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Response(body={"error": body}, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def no_content() -> Response:
    return Response(body="", status_code=204, headers={"Cache-Control": "no-store"})


def serving_region() -> str:
    """The region this function runs in (Lambda sets ``AWS_REGION``; read per call, never cached)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""


def error_middleware(event, get_response):
    """Chalice ``http`` middleware: map domain errors, normalise Chalice's error bodies, and name the
    serving region on every response (:data:`REGION_HEADER`)."""
    response = _mapped_response(event, get_response)
    # A write forwarded to its home region was served there: that region's answer keeps its header.
    response.headers.setdefault(REGION_HEADER, serving_region())
    return response


def _mapped_response(event, get_response):
    try:
        response = get_response(event)
    except PhotoscaleError as exc:
        if exc.status >= 500:
            logger.exception("request failed", extra={"error_code": exc.code})
        else:
            logger.info("request rejected", extra={"status": exc.status, "error_code": exc.code})
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = _CHALICE_ERROR_CODES.get(body["Code"], "error")
        message = body["Message"]
        if message.startswith("Error Parsing JSON"):
            message = "Request body is not valid JSON."
        return error_response(response.status_code, code, message)
    return response


def path_parameter_middleware(event, get_response):
    """Chalice ``http`` middleware: every path parameter meets its rule (:mod:`chalicelib.keys`)
    before any handler (or DynamoDB) sees it; otherwise a field-level 400."""
    from chalicelib.keys import path_parameter_problems

    problems = path_parameter_problems(getattr(event, "uri_params", None))
    if problems:
        raise ValidationFailed(
            "Invalid request: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems
        )
    return get_response(event)


def translate_transient_errors(app) -> None:
    """Make every route answer a transient DynamoDB failure (throttling, a conflict still failing
    after retries) or a transient failure of any other AWS call (SQS refusing a message, S3 or
    Cognito unavailable) with 503 and ``Retry-After`` instead of Chalice's 500: what could not be
    done is never acknowledged, and the client knows to send it again.

    Chalice turns a view's exception into its own 500 before any middleware sees it (unless it is a
    ``ChaliceUnhandledError``), so the translation wraps the views themselves: call this once, after
    every route is registered. Errors that are not transient pass unchanged.
    """
    from chalicelib import aws, ddb

    def translating(view):
        if getattr(view, "_translates_transient_errors", False):
            return view

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except PhotoscaleError:
                raise
            except Exception as exc:
                translated = ddb.translate(exc)
                if translated is exc and aws.is_transient(exc):  # SQS, S3, Cognito...: not acknowledged
                    translated = ServiceUnavailable("A dependency is unavailable; try again shortly.",
                                                    retry_after=ddb.RETRY_AFTER_SECONDS)
                if translated is exc:
                    raise
                logger.warning("dependency busy",
                               extra={"error_code": ddb.error_code(exc), "error": type(exc).__name__})
                raise translated from exc

        wrapper._translates_transient_errors = True  # type: ignore[attr-defined]
        return wrapper

    for methods in app.routes.values():
        for entry in methods.values():
            entry.view_function = translating(entry.view_function)


def parse_json(raw_body: bytes | None) -> Any:
    """Decode a JSON request body within the size and nesting limits; never a 500.

    Oversized bodies are a 413; bodies nested deeper than :data:`MAX_JSON_DEPTH` (which would
    otherwise exhaust ``json.loads``' recursion), malformed or non-UTF-8 input are a 400. Both
    limits are checked before parsing, so the cost of a hostile body is one linear scan.
    """
    if not raw_body:
        raise BadRequest("Request body must be a JSON object.")
    if len(raw_body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        text = raw_body.decode("utf-8") if isinstance(raw_body, bytes) else raw_body
    except UnicodeDecodeError:
        raise BadRequest("Request body is not valid JSON.") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise BadRequest(f"Request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(text)
    except ValueError:
        raise BadRequest("Request body is not valid JSON.") from None


_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, ignoring brackets inside strings (pure).

    Stops counting once the depth is known to be too deep, so a hostile body costs one scan.
    """
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    break
        elif token in "]}":
            depth -= 1
    return deepest


def parse_body(model: type[T], raw_body: bytes | None, *, optional: bool = False) -> T:
    """Validate a JSON body against a pydantic model, reporting every bad field.

    With ``optional``, an empty body stands for ``{}`` (every field of the model has a default).
    """
    from pydantic import ValidationError

    data = {} if optional and not raw_body else parse_json(raw_body)
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.")
    try:
        return model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise ValidationFailed(_summarise(exc), details=field_errors(exc)) from None


def field_errors(exc) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "email", "message": "..."}]``."""
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "Unknown field."
        problems.append({"field": field, "message": message})
    return problems


def _summarise(exc) -> str:
    problems = field_errors(exc)
    return "Invalid request: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems)


def query_int(params: dict[str, str] | None, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``[low, high]``; anything else is a field-level 400."""
    raw = (params or {}).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ValidationFailed(
            f"Invalid request: {name}: must be an integer from {low} to {high}.",
            details=[{"field": name, "message": f"must be an integer from {low} to {high}"}],
        )
    return value
