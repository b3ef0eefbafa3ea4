"""GET /health probes DynamoDB, SQS and S3 and reports the region."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def test_health_is_ok_when_every_dependency_answers(client, api_env):
    # Given the provisioned stack
    # When the health endpoint is asked
    response = client.http.get("/health")
    # Then it is 200 with every check ok and the function's region
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = json.loads(response.body)
    assert body["status"] == "ok"
    assert body["region"] == "us-east-1"
    assert set(body["checks"]) == {"dynamodb", "sqs", "s3"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert isinstance(body["checks"]["sqs"]["uploads_backlog"], int)  # S3 sent its s3:TestEvent there


def test_health_is_503_with_s3_failing_when_the_media_bucket_is_gone(client, api_env, deployed):
    # Given the media bucket has been deleted
    s3 = deployed["clients"]("s3")
    s3.delete_bucket(Bucket=api_env["MediaBucket"])
    try:
        # When the health endpoint is asked
        response = client.http.get("/health")
        # Then it is 503, degraded, with only s3 failing
        assert response.status_code == 503
        body = json.loads(response.body)
        assert body["status"] == "degraded"
        assert body["checks"]["s3"]["status"] == "failing"
        assert body["checks"]["s3"]["error"] == "ClientError"
        assert body["checks"]["dynamodb"]["status"] == "ok"
        assert body["checks"]["sqs"]["status"] == "ok"
    finally:
        # And provisioning again (idempotent) restores the bucket for the module's other tests
        deployed["provision"]()
    assert client.http.get("/health").status_code == 200
