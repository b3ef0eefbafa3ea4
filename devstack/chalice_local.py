"""``chalice local`` with API Gateway's authorizer and gateway-response behaviour.

Local stand-in, dev-only. Three things API Gateway does that chalice local does not:

1. A built-in authorizer that raises ``Exception("Unauthorized")`` makes API Gateway answer 401.
   Chalice local instead lets the exception escape and drops the connection.
2. Errors produced by API Gateway itself (401 from the authorizer, 403 denied, unknown route) use
   the gateway responses that ``infra/post_deploy.py`` installs from ``infra/gateway_responses.json``.
   Here the same file shapes the same errors, so clients see identical bodies in both places.
3. An authorizer that raises anything else (its key set or the sessions table is down) is API
   Gateway's ``AuthorizerConfigurationException``: gateway response ``AUTHORIZER_CONFIGURATION_ERROR``,
   which our file (like ``AUTHORIZER_FAILURE``) turns into a 503 with ``Retry-After``.
4. (chaos, not API Gateway) While ``devstack.chaos region-down <this region>`` is in force, ``/health``
   answers 503 and every other request is read and then dropped unanswered (the connection closes),
   what a client sees of a region that has gone away.
5. API Gateway gives every request an id (``requestContext.requestId``, the correlation id the
   API's logs and queued messages carry); chalice local's events have none.

Run exactly like the real command: ``python -m devstack.chalice_local local --stage local --port 8001``.
"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from chalice import local as chalice_local

from infra.post_deploy import load_gateway_responses


def _response_type(error: chalice_local.LocalGatewayException) -> str:
    body = error.body or b""
    if isinstance(error, chalice_local.NotAuthorizedError):
        return "UNAUTHORIZED"
    if isinstance(error, AuthorizerFailure):
        return "AUTHORIZER_CONFIGURATION_ERROR"
    if b"Missing Authentication Token" in body:
        return "MISSING_AUTHENTICATION_TOKEN"
    if isinstance(error, chalice_local.ForbiddenError):
        return "ACCESS_DENIED"
    return "DEFAULT_5XX" if error.CODE >= 500 else "DEFAULT_4XX"


class AuthorizerFailure(chalice_local.LocalGatewayException):
    """The authorizer crashed: API Gateway answers 500 (AuthorizerConfigurationException)."""

    CODE = 500


def install() -> None:
    """Patch chalice local's gateway to behave as API Gateway does (see module docstring)."""
    original_authorize = chalice_local.LocalGatewayAuthorizer.authorize

    def authorize(self, raw_path, lambda_event, lambda_context):
        try:
            return original_authorize(self, raw_path, lambda_event, lambda_context)
        except chalice_local.LocalGatewayException:
            raise
        except Exception as exc:  # the authorizer's own failure
            headers = {"x-amzn-RequestId": lambda_context.aws_request_id}
            if str(exc) == "Unauthorized":
                raise chalice_local.NotAuthorizedError(headers, b'{"message":"Unauthorized"}') from None
            raise AuthorizerFailure(headers, b'{"message":null}') from exc

    chalice_local.LocalGatewayAuthorizer.authorize = authorize
    responses = load_gateway_responses()

    def send_error_response(self, error):
        response = responses.get(_response_type(error)) or responses["DEFAULT_4XX"]
        status = response.status_code or error.CODE
        body = json.dumps(response.body()).encode()
        headers = {**error.headers, "Content-Type": "application/json", **dict(response.headers)}
        self._send_http_response(status, headers, body)

    chalice_local.ChaliceRequestHandler._send_error_response = send_error_response
    original_event = chalice_local.LambdaEventConverter.create_lambda_event

    def create_lambda_event(self, *args, **kwargs):
        event = original_event(self, *args, **kwargs)
        event["requestContext"].setdefault("requestId", str(uuid.uuid4()))
        return event

    chalice_local.LambdaEventConverter.create_lambda_event = create_lambda_event
    _install_region_down()


def _install_region_down() -> None:
    """Answer as a region that is down while the chaos flag for ``AWS_REGION`` is set (see module docstring)."""
    import os

    from devstack.chaos import ChaosFlags

    flags = ChaosFlags.from_env()
    region = os.environ.get("AWS_REGION", "")
    if flags is None:
        return
    original_handle = chalice_local.ChaliceRequestHandler._generic_handle

    def generic_handle(self):
        if not flags.region_down(region):
            return original_handle(self)
        self._parse_payload()  # the request was sent; its answer never comes
        if self.path.split("?")[0].rstrip("/") == "/health":
            body = json.dumps({"status": "down", "region": region}).encode()
            self._send_http_response(503, {"Content-Type": "application/json", "X-Photoscale-Region": region}, body)
            return None
        self.close_connection = True
        return None

    handler = chalice_local.ChaliceRequestHandler
    handler._generic_handle = generic_handle
    for method in ("GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS"):  # aliases of _generic_handle
        setattr(handler, f"do_{method}", generic_handle)


def main(argv: list[str]) -> int:
    install()
    from chalice.cli import main as chalice_main

    sys.argv = ["chalice", *argv]
    return chalice_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
