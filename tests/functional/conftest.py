"""Fixtures for functional tests: the real template provisioned into in-process moto, and the API.

One stack per test module (provisioning takes a second or two); every test isolates itself with
random usernames and counter entities. Each test gets a fresh environment, fresh settings and fresh
AWS clients, so a test may change its own environment (region, shard defaults) freely.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from chalice import local as chalice_local
from chalice.test import Client
from moto import mock_aws
from moto.utilities.utils import load_resource

from chalicelib import aws, cache, quotas, secrets, settings, tokens
from devstack import chalice_local as gateway
from devstack import moto_cognito, moto_dynamodb
from devstack.provision import provision
from infra.cfn import STATEFUL_TEMPLATE, load_template, output_env_name

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STAGE = "local"  # the template's Stage parameter allows local|dev|prod only
#: The key set moto signs its Cognito tokens with (in AWS: https://cognito-idp.../jwks.json).
MOTO_JWKS = load_resource("cognitoidp/resources/jwks-public.json")


def client_factory(region: str = REGION) -> Callable[[str], Any]:
    """A cached ``service -> boto3 client`` factory (call inside the mock)."""
    cache: dict[str, Any] = {}

    def make(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(service, region_name=region)
        return cache[service]

    return make


@pytest.fixture(scope="module")
def deployed() -> Iterator[dict[str, Any]]:
    """``infra/stateful.yaml`` provisioned into in-process moto.

    Yields ``outputs`` (CloudFormation output name -> value), ``clients`` (boto3 client factory inside
    the mock) and ``provision`` (provision again: idempotent, restores deleted resources).
    """
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "PHOTOSCALE_AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        moto_cognito.install()  # RevokeToken, which moto lacks (see the module)
        moto_dynamodb.install()  # a cancelled transaction leaves tables and streams in place (see the module)
        with mock_aws():
            clients = client_factory()
            template = load_template(STATEFUL_TEMPLATE)

            def provision_again() -> dict[str, str]:
                return provision(template, stage=STAGE, clients=clients)

            yield {"outputs": provision_again(), "clients": clients, "provision": provision_again}


class CounterStream:
    """Lambda's mapping of the counters table's stream onto ``aggregate_counters``, delivered at once.

    In AWS the aggregator runs within about a second of a counted write. Here every eventually
    consistent counter read (a DynamoDB ``BatchGetItem``) first delivers the stream records written
    so far in the serving region's replica to :func:`chalicelib.aggregator.handle_stream` for that
    region, and so does every transaction that wrote to the counters table, once it has committed
    (a write read nowhere afterwards in its region, say before the regions replicate, is still
    aggregated there, as it would be in AWS).
    """

    def __init__(self, table: str) -> None:
        self.table = table
        #: Entered around each delivery: the aggregator is its own function, even when a read of the API
        #: function triggers its delivery (the IAM audit attributes its calls to ``aggregate_counters``).
        self.as_function: Callable[[], Any] = contextlib.nullcontext
        self.positions: dict[str, tuple[Any, int]] = {}  # region -> (its replica's stream shard, records delivered)
        self.delivering = False
        self.written = False  # the transaction being sent writes to the counters table
        self.hooked: set[int] = set()

    def hook(self, client: Any) -> Any:
        if id(client) not in self.hooked:
            self.hooked.add(id(client))
            client.meta.events.register("provide-client-params.dynamodb.BatchGetItem", self._before_read)
            client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", self._before_write)
            client.meta.events.register("after-call.dynamodb.TransactWriteItems", self._after_write)
        return client

    def _before_read(self, params: dict | None = None, **_: Any) -> None:
        if self.table in (params or {}).get("RequestItems", {}):
            self.deliver()  # returns None: botocore would take any other value for the response

    def _before_write(self, params: dict | None = None, **_: Any) -> None:
        self.written = any(self.table == next(iter(item.values()), {}).get("TableName")
                           for item in (params or {}).get("TransactItems", []))

    def _after_write(self, http_response: Any = None, **_: Any) -> None:
        if self.written and getattr(http_response, "status_code", 500) < 300:
            self.written = False
            self.deliver()

    def deliver(self) -> int:
        if self.delivering:
            return 0
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from chalicelib import aggregator

        self.delivering = True
        try:
            # moto 5.2.5's in-process DynamoDB Streams API answers "Not yet implemented" (server mode
            # works: devstack/event_pump.py); the records are read from moto's own stream shard.
            # Each region's aggregator reads its own replica's stream (the serving region's here); other
            # regions' totals arrive by replication, as in AWS.
            # The aggregator's own writes of group subtotals are stream records in turn (summed into
            # their totals): delivered until the stream has nothing new (two rounds at most, plus
            # one whose records, the totals' own, change nothing).
            region = settings.get_settings().region
            delivered = 0
            for _ in range(5):
                shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(self.table).stream_shard
                seen, position = self.positions.get(region, (None, 0))
                if shard is not seen:  # the table was created again (provision_again): a new stream
                    position = 0
                records = [record.to_json() for record in shard.items[position:]]
                self.positions[region] = (shard, position + len(records))
                if not records:
                    break
                with self.as_function():
                    result = aggregator.handle_stream({"Records": records}, None, region=region)
                assert result == {"batchItemFailures": []}, result
                delivered += len(records)
            return delivered
        finally:
            self.delivering = False


@pytest.fixture
def counter_stream(deployed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> CounterStream:
    """The counters stream delivered to the aggregator before every counter read (see :class:`CounterStream`)."""
    stream = deployed.setdefault("counter_stream", CounterStream(deployed["outputs"]["CountersTable"]))
    stream.hooked.clear()
    make_client = aws.client

    def client(service: str, region: str | None = None) -> Any:
        made = make_client(service, region)
        return stream.hook(made) if service == "dynamodb" else made

    monkeypatch.setattr(aws, "client", client)
    return stream


@pytest.fixture
def api_env(deployed: dict[str, Any], aws_credentials: None, monkeypatch: pytest.MonkeyPatch,
            counter_stream: CounterStream) -> Iterator[dict[str, str]]:
    """The Lambda environment of the stage: every stack output as its env var, plus plain settings."""
    outputs = deployed["outputs"]
    for name, value in outputs.items():
        monkeypatch.setenv(output_env_name(name), value)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("PHOTOSCALE_STAGE", STAGE)
    monkeypatch.setenv("AUTO_CONFIRM_SIGNUP", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "photoscale")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Photoscale")
    monkeypatch.setenv("UPLOADS_QUEUE_NAME", outputs["UploadsQueueName"])
    monkeypatch.setenv("EDITS_QUEUE_NAME", outputs["EditsQueueName"])
    monkeypatch.setenv("FANOUT_QUEUE_NAME", outputs["FanoutQueueName"])
    monkeypatch.delenv("ACTIVE_REGIONS", raising=False)
    monkeypatch.delenv("COUNTER_DEFAULT_SHARDS", raising=False)
    for name in list(os.environ):
        if name.startswith("QUOTA_"):
            monkeypatch.delenv(name)
    # Every request of chalice's test client comes from 127.0.0.1, and the stack lives for the whole
    # module: per-IP quotas get room for a module's sign-ups (tests of those quotas set their own).
    monkeypatch.setenv("QUOTA_SIGNUPS", "100000/3600")
    monkeypatch.setenv("QUOTA_FAILED_LOGINS", "100000/900")
    monkeypatch.delenv("CLIENT_IP_HEADER", raising=False)
    settings.reset_settings()
    aws.reset()
    quotas.reset()
    cache.reset()
    secrets.cursor_key().forget()
    secrets.exports_signing_key().forget()
    yield outputs
    settings.reset_settings()
    aws.reset()
    quotas.reset()
    cache.reset()
    secrets.cursor_key().forget()
    secrets.exports_signing_key().forget()


@pytest.fixture
def moto_jwks(api_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Serve moto's public key set at the pool's JWKS URL (in-process moto does not intercept urllib).

    A real ``PyJWKClient`` does the kid lookup; only its download is replaced. Records the URLs asked for.
    """
    asked: list[str] = []

    def make_client(url: str) -> jwt.PyJWKClient:
        asked.append(url)
        client = jwt.PyJWKClient(url, cache_keys=True)
        monkeypatch.setattr(client, "fetch_data", lambda: MOTO_JWKS)
        return client

    monkeypatch.setattr(tokens, "_jwks_client", make_client)
    return asked


@pytest.fixture
def api_gateway_authorizers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make chalice's local gateway answer an authorizer's ``Exception("Unauthorized")`` with 401.

    ``chalice.test.Client`` does run built-in authorizers, but (like ``chalice local``) lets that
    exception escape; ``devstack.chalice_local.install`` adds API Gateway's behaviour. The patch is
    undone after the test.
    """
    monkeypatch.setattr(chalice_local.LocalGatewayAuthorizer, "authorize",
                        chalice_local.LocalGatewayAuthorizer.authorize)
    monkeypatch.setattr(chalice_local.ChaliceRequestHandler, "_send_error_response",
                        chalice_local.ChaliceRequestHandler._send_error_response)
    monkeypatch.setattr(chalice_local.LambdaEventConverter, "create_lambda_event",
                        chalice_local.LambdaEventConverter.create_lambda_event)
    gateway.install()


@pytest.fixture
def client(api_env: dict[str, str], moto_jwks: list[str], api_gateway_authorizers: None) -> Iterator[Client]:
    """``chalice.test.Client`` for the real app, stage ``local`` of ``.chalice/config.json``."""
    app_module = importlib.import_module("app")
    with Client(app_module.app, stage_name=STAGE, project_dir=str(ROOT)) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The namespace Lambda gives Powertools at import (``POWERTOOLS_METRICS_NAMESPACE``, set for every
    stage in ``.chalice/config.json``): the shared ``Metrics`` may have been created before a test set
    its environment, and a metric without a namespace fails the invocation that flushes it."""
    from chalicelib.observability import metrics

    monkeypatch.setattr(metrics, "namespace", "Photoscale")
