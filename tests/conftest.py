"""Fixtures shared by all test levels."""
from __future__ import annotations

import pytest

FAKE_REGION = "us-east-1"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials and region us-east-1, so boto3 never reaches a real account.

    Also drops profile/endpoint settings from the developer's environment that could redirect calls.
    """
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "PHOTOSCALE_AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", FAKE_REGION)
    monkeypatch.setenv("AWS_REGION", FAKE_REGION)
