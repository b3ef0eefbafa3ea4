"""Helpers for functional tests that speak to the app through ``chalice.test.Client``."""
from __future__ import annotations

import json
import uuid
from typing import Any

PASSWORD = "Passw0rdOK"
JSON = {"Content-Type": "application/json"}


def new_username() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def call(client, method: str, path: str, body: Any = None, token: str | None = None):
    headers = dict(JSON)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = b"" if body is None else json.dumps(body).encode()
    return client.http.request(method, path, headers=headers, body=data)


def body_of(response) -> Any:
    return json.loads(response.body)


def member(client, username: str | None = None, log_in: bool = True) -> tuple[str, str | None]:
    """A signed-up (and unless told otherwise logged-in) user: ``(username, access token)``."""
    username = username or new_username()
    response = call(client, "POST", "/auth/signup",
                    {"username": username, "email": f"{username}@example.com", "password": PASSWORD})
    assert response.status_code == 201, response.body
    if not log_in:
        return username, None
    response = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.body
    return username, body_of(response)["access_token"]


def stage_cdn(monkeypatch) -> str:
    """A CloudFront distribution in moto, configured as the stage's CDN (``CDN_DISTRIBUTION_ID``);
    returns its id. Call inside the functional stack (the ``client`` fixture)."""
    from chalicelib import aws, settings

    distribution_id = aws.client("cloudfront").create_distribution(DistributionConfig={
        "CallerReference": uuid.uuid4().hex, "Comment": "media", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "media", "DomainName": "media.s3.amazonaws.com",
                                               "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "media", "ViewerProtocolPolicy": "https-only",
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "MinTTL": 0, "TrustedSigners": {"Enabled": False, "Quantity": 0}},
    })["Distribution"]["Id"]
    monkeypatch.setenv("CDN_DISTRIBUTION_ID", distribution_id)
    settings.reset_settings()
    return distribution_id
