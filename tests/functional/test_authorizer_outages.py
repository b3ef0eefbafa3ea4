"""An authorizer that cannot decide answers 503 with ``Retry-After``, not API Gateway's bare 500.

``bearer_auth`` raises when the user pool's key set is unreachable or the sessions table throttles
(anything but ``Exception("Unauthorized")``); API Gateway then uses the ``AUTHORIZER_*`` gateway
responses from ``infra/gateway_responses.json``. Here the real ``chalice local`` HTTP server
(``chalice.local.LocalDevServer``, with ``devstack.chalice_local``'s API Gateway behaviour installed
by the ``client`` fixture) serves the real app on in-process moto; each test sends one request over
HTTP, and the server handles exactly that one request. Failures are injected at the botocore client
(sessions) and at the key set's download (JWKS), nothing above them is patched.
"""
from __future__ import annotations

import http.client
import json
import threading

import jwt
import pytest
from api_helpers import member
from chalice import local as chalice_local
from faults import dynamodb_client, failing

from chalicelib import tokens
from chalicelib.models import RevokedTokenRecord
from infra.post_deploy import load_gateway_responses

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class OneRequestServer:
    """``chalice local``'s HTTP server on a free port, answering one request per :meth:`get`."""

    def __init__(self, client) -> None:
        self._server = chalice_local.LocalDevServer(client.http._app, client.http._config, "127.0.0.1", 0)
        self.port = self._server.server.server_address[1]

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, str], dict]:
        serving = threading.Thread(target=self._server.handle_single_request)
        serving.start()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
            response = connection.getresponse()
            status, headers, body = response.status, dict(response.getheaders()), json.loads(response.read())
        finally:
            connection.close()
            serving.join()
        return status, headers, body

    def close(self) -> None:
        self._server.server.server_close()


@pytest.fixture
def local_server(client):
    server = OneRequestServer(client)
    yield server
    server.close()


def key_set_unreachable(url: str) -> jwt.PyJWKClient:
    client = jwt.PyJWKClient(url, cache_keys=True)

    def fetch_data():
        raise jwt.PyJWKClientConnectionError(f"Fail to fetch data from the url, err: timed out ({url})")

    client.fetch_data = fetch_data
    return client


def assert_outage_answer(status: int, headers: dict[str, str], body: dict) -> None:
    assert (status, body["error"]["code"]) == (503, "service_unavailable"), (status, body)
    expected = load_gateway_responses()["AUTHORIZER_CONFIGURATION_ERROR"]
    assert headers["Retry-After"] == dict(expected.headers)["Retry-After"] and int(headers["Retry-After"]) > 0
    assert headers["Content-Type"] == "application/json"
    assert body == {"error": {"code": "service_unavailable", "message": expected.message}}


def test_a_protected_route_answers_503_with_retry_after_while_the_key_set_is_unreachable(
        client, local_server, monkeypatch):
    # GIVEN a signed-in user, and the user pool's JWKS endpoint timing out
    _username, token = member(client)
    monkeypatch.setattr(tokens, "_jwks_client", key_set_unreachable)
    # WHEN they call a protected route through chalice local
    status, headers, body = local_server.get("/me", token)
    # THEN the gateway answers 503 with Retry-After and our error body (not a bare 500)
    assert_outage_answer(status, headers, body)


def test_a_protected_route_answers_503_with_retry_after_while_the_sessions_table_throttles(client, local_server):
    # GIVEN a signed-in user, and the sessions table throttling every read
    _username, token = member(client)
    with failing(dynamodb_client(RevokedTokenRecord), "BatchGetItem", "ProvisionedThroughputExceededException") as seen:
        # WHEN they call a protected route through chalice local
        status, headers, body = local_server.get("/feed", token)
    # THEN the authorizer did try the sessions table, and the gateway answers 503 with Retry-After
    assert seen
    assert_outage_answer(status, headers, body)


def test_a_refused_token_is_still_a_401_through_chalice_local(client, local_server):
    # GIVEN a token that is not valid (everything up)
    # WHEN it is used on a protected route
    status, headers, body = local_server.get("/me", "not-a-jwt")
    # THEN the answer is the UNAUTHORIZED gateway response, without Retry-After
    assert status == 401 and "Retry-After" not in headers
    assert body["error"]["code"] == "unauthorized"
