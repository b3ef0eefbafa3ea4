"""Shared fixtures for integration tests: one real moto server per test session.

Rules: the server is shared, so nothing here (or in a test) resets moto state; every test creates its own
resources under unique names (random suffix). Credentials are fake and the region is us-east-1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Start a real moto server on 127.0.0.1 (ephemeral port) for the session; yield its endpoint URL.

    It is the local stack's embedded AWS (:mod:`devstack.embedded_aws`): moto serving one request at a
    time, because moto itself is not thread-safe and tests that send it parallel requests would
    otherwise test moto's races instead of our code.

    Fake credentials and region us-east-1 are put into the environment for the session and restored after.
    Nothing is ever reset: tests isolate themselves with unique resource names.
    """
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_AWS_ENV.items():
            env.setenv(name, value)
        from devstack.embedded_aws import EmbeddedAws

        with EmbeddedAws("127.0.0.1", 0) as server:
            yield server.endpoint


@pytest.fixture(scope="session")
def aws_client(moto_server: str) -> Callable[[str], Any]:
    """Factory: ``aws_client("sqs")`` is a boto3 client for the moto server (fake credentials, us-east-1)."""

    def make(service: str, **kwargs: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=moto_server,
            region_name=REGION,
            aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            **kwargs,
        )

    return make


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Factory: ``unique_name("uploads")`` -> ``"uploads-1a2b3c4d"``, distinct per call."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- the whole local stack (moto server + provisioning + chalice local + pump + site) ----------------


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The dev stack exactly as ``make run`` starts it, on free ports; started once per session.

    Logs of the child processes (moto, api, pump) go to a temporary ``stack`` directory.
    """
    from devstack.stack import LocalStack, StackConfig

    # Every test reaches the API from 127.0.0.1 through one session-long stack: per-IP quotas get
    # room for the whole session's sign-ups and wrong passwords (per-user quotas keep their defaults).
    stack = LocalStack(StackConfig.ephemeral(
        regions=("us-east-1",),  # one region: only the failover drill runs two
        log_dir=tmp_path_factory.mktemp("stack"),
        extra_env={"QUOTA_SIGNUPS": "100000/3600", "QUOTA_FAILED_LOGINS": "100000/900"},
    ))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def api(local_stack: Any) -> Iterator[Any]:
    """An HTTP client for ``{site}/api``: the site proxies /api to chalice local, as CloudFront will."""
    from api_client import ApiClient

    client = ApiClient(local_stack.site_url + "/api")
    try:
        yield client
    finally:
        client.close()
