"""The fault suite: failures injected at a real boundary (the botocore client), nothing lost or doubled.

The real app and workers on in-process moto (see ``test_photo_lifecycle``); :mod:`faults` answers one
AWS operation with an error before the request leaves the client, so everything above it (PynamoDB,
the retries, the batch processing, the HTTP mapping) runs for real.

Covered: DynamoDB throttling on reads (API and worker) and on transactions (more of both, for uploads
and follows, in ``test_photo_lifecycle``), SQS send failures on the
edit and follow paths, a poison message among good ones in each queue, S3 unavailable while an upload
is processed. Not here: the cache down and a region down (neither the cache nor the multi-region
setup exists yet).
"""
from __future__ import annotations

import json
import uuid

import pytest
from api_helpers import body_of, call, member
from faults import dynamodb_client, failing
from test_photo_lifecycle import (  # noqa: F401  (edits_queue: a fixture used by name)
    QUEUE_ARN,
    deliver_uploads,
    edits_queue,
    photo_count,
    ready_photo,
    record,
    run_edits_worker,
    uploaded_photo,
)

from chalicelib import aws, cache, settings
from chalicelib.models import GraphEdgeRecord, PhotoRecord, UserRecord
from devstack.event_pump import build_sqs_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

FANOUT_ARN = "arn:aws:sqs:us-east-1:123456789012:photoscale-local-fanout"


def queued(url: str) -> list[dict]:
    """Every message on a queue now (received with visibility 0, so they stay queued)."""
    sqs = aws.client("sqs")
    seen: dict[str, dict] = {}
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        fresh = [m for m in got if m["MessageId"] not in seen]
        if not fresh:
            return list(seen.values())
        seen.update((m["MessageId"], m) for m in fresh)


def drain(url: str) -> None:
    sqs = aws.client("sqs")
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def poison(message_id: str | None = None) -> dict:
    """An SQS record whose body no worker can read."""
    return {"messageId": message_id or str(uuid.uuid4()), "receiptHandle": "r", "body": "{not json",
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "awsRegion": "us-east-1"}


# --- DynamoDB throttling on reads ---------------------------------------------------------------

@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded"])
def test_throttled_read_is_a_503_with_retry_after_and_the_clients_retry_succeeds(client, code):
    # (botocore's own retries run inside the HTTP send, which the injection replaces: this is the
    # answer once they are used up)
    alice, _ = member(client, log_in=False)
    cache.reset()  # a container that has not cached the profile yet: the read reaches DynamoDB
    with failing(dynamodb_client(UserRecord), "GetItem", code, times=1):
        response = call(client, "GET", f"/users/{alice}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert body_of(response)["error"]["code"] == "service_unavailable"
    assert call(client, "GET", f"/users/{alice}").status_code == 200


def test_upload_whose_photo_read_is_throttled_goes_back_to_the_queue_and_is_ready_once_on_redelivery(client):
    # GIVEN an uploaded photo, and the worker's read of its record throttled throughout
    owner, token = member(client)
    photo_id, event = uploaded_photo(client, token, owner)
    with failing(dynamodb_client(PhotoRecord), "GetItem", "ProvisionedThroughputExceededException"):
        result = deliver_uploads(client, event)
    # THEN the message goes back to the queue and the photo is still pending, uncounted
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert record(photo_id).status == "pending"
    assert photo_count(client, owner) == 0
    # AND the redelivery finishes it, counted once; a duplicate delivery changes nothing
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    assert record(photo_id).status == "ready"
    assert photo_count(client, owner) == 1


# --- DynamoDB throttling on transactions ---------------------------------------------------------

def test_like_whose_transaction_is_throttled_once_succeeds_and_counts_once(client):
    alice, token = member(client)
    bob, bob_token = member(client)
    photo_id = ready_photo(client, bob_token, bob)
    with failing(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", "TransactionCanceledException",
                 reasons=["None", "ThrottlingError", "None"], times=1) as seen:
        response = call(client, "PUT", f"/photos/{photo_id}/like", token=token)
    assert response.status_code == 200, response.body
    assert len(seen) == 2
    assert body_of(response) == {"likes": 1, "liked": True}


def test_like_whose_transaction_stays_throttled_is_a_503_and_the_retry_counts_once(client):
    alice, token = member(client)
    bob, bob_token = member(client)
    photo_id = ready_photo(client, bob_token, bob)
    with failing(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", "TransactionCanceledException",
                 reasons=["None", "ThrottlingError", "None"]):
        refused = call(client, "PUT", f"/photos/{photo_id}/like", token=token)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["likes"] == 0
    assert body_of(call(client, "PUT", f"/photos/{photo_id}/like", token=token)) == {"likes": 1, "liked": True}
    assert body_of(call(client, "PUT", f"/photos/{photo_id}/like", token=token)) == {"likes": 1, "liked": True}


# --- SQS send failures: nothing acknowledged that was not queued --------------------------------

@pytest.mark.parametrize("code", ["InternalError", "AWS.SimpleQueueService.ServiceUnavailable", "RequestThrottled"])
def test_edit_that_cannot_be_queued_is_a_503_and_the_retry_is_queued_once(client, edits_queue, code):
    # GIVEN a ready photo, and SQS refusing to take the edit
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    edits_url = settings.get_settings().edits_queue_url
    with failing(aws.client("sqs"), "SendMessage", code):
        refused = call(client, "POST", f"/photos/{photo_id}/edits", {"rotate": 90}, token=token)
    # THEN the API does not acknowledge it: a 503 with Retry-After, and nothing is queued
    assert refused.status_code == 503, refused.body
    assert refused.headers["Retry-After"] == "1"
    assert body_of(refused)["error"]["code"] == "service_unavailable"
    assert queued(edits_url) == []
    # AND the client's retry is accepted, queued once and rendered
    accepted = call(client, "POST", f"/photos/{photo_id}/edits", {"rotate": 90}, token=token)
    assert accepted.status_code == 202, accepted.body
    assert len(queued(edits_url)) == 1
    version = record(photo_id).version
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert record(photo_id).version != version


def test_follow_whose_backfill_cannot_be_queued_is_a_503_and_the_retry_queues_it(client):
    # GIVEN two users, and SQS refusing the follow's backfill message
    alice, token = member(client)
    bob, _ = member(client, log_in=False)
    fanout_url = settings.get_settings().fanout_queue_url
    drain(fanout_url)
    with failing(aws.client("sqs"), "SendMessage", "InternalError"):
        refused = call(client, "PUT", f"/users/{bob}/follow", token=token)
    assert refused.status_code == 503, refused.body
    assert queued(fanout_url) == []
    # WHEN the client retries THEN the follow counts once and the backfill is queued
    assert call(client, "PUT", f"/users/{bob}/follow", token=token).status_code == 204
    assert body_of(call(client, "GET", f"/users/{bob}"))["followers"] == 1
    assert [json.loads(m["Body"])["type"] for m in queued(fanout_url)] == ["follow_backfill"]
    drain(fanout_url)


# --- a poison message fails alone (partial batch) -----------------------------------------------

def test_poison_message_among_good_uploads_is_the_only_failure_of_the_batch(client):
    owner, token = member(client)
    first_id, first = uploaded_photo(client, token, owner)
    second_id, second = uploaded_photo(client, token, owner)
    bad = poison()
    event = {"Records": [first["Records"][0], bad, second["Records"][0]]}
    assert deliver_uploads(client, event) == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert record(first_id).status == "ready" and record(second_id).status == "ready"
    assert photo_count(client, owner) == 2


def test_poison_message_among_good_edits_is_the_only_failure_of_the_batch(client, edits_queue):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    version = record(photo_id).version
    assert call(client, "POST", f"/photos/{photo_id}/edits", {"rotate": 180}, token=token).status_code == 202
    sqs = aws.client("sqs")
    url = settings.get_settings().edits_queue_url
    good = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                               AttributeNames=["All"])["Messages"]
    event = build_sqs_event(good, queue_arn=QUEUE_ARN, region="us-east-1")
    bad = poison()
    event["Records"].insert(0, bad)
    result = client.lambda_.invoke("process_edits", event).payload
    assert result["batchItemFailures"] == [{"itemIdentifier": bad["messageId"]}]
    assert record(photo_id).version != version


def test_poison_message_among_good_fanout_messages_is_the_only_failure_of_the_batch(client):
    alice, token = member(client)
    bob, bob_token = member(client)
    photo_id = ready_photo(client, bob_token, bob)
    fanout_url = settings.get_settings().fanout_queue_url
    drain(fanout_url)
    assert call(client, "PUT", f"/users/{bob}/follow", token=token).status_code == 204
    good = aws.client("sqs").receive_message(QueueUrl=fanout_url, MaxNumberOfMessages=10,
                                             MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    event = build_sqs_event(good, queue_arn=FANOUT_ARN, region="us-east-1")
    bad = poison()
    event["Records"].append(bad)
    result = client.lambda_.invoke("fan_out_feed", event).payload
    assert result["batchItemFailures"] == [{"itemIdentifier": bad["messageId"]}]
    feed = body_of(call(client, "GET", "/feed", token=token))
    assert [item["id"] for item in feed["items"]] == [photo_id]
    drain(fanout_url)


# --- S3 unavailable while an upload is processed: retried later, never "failed" -----------------

@pytest.mark.parametrize("operation, code", [("HeadObject", "ServiceUnavailable"), ("GetObject", "SlowDown"),
                                             ("PutObject", "InternalError")])
def test_upload_processed_while_s3_is_unavailable_stays_pending_and_is_ready_on_redelivery(client, operation, code):
    # GIVEN an uploaded photo, and S3 failing one of the worker's calls throughout
    owner, token = member(client)
    photo_id, event = uploaded_photo(client, token, owner)
    with failing(aws.client("s3"), operation, code) as seen:
        result = deliver_uploads(client, event)
    # THEN the message goes back to the queue; the photo is pending (never failed) and uncounted
    assert seen, f"the worker never called {operation}"
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert record(photo_id).status == "pending"
    assert call(client, "GET", f"/photos/{photo_id}").status_code == 200
    assert photo_count(client, owner) == 0
    # AND once S3 is back the redelivered message makes it ready, counted once
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    ready = body_of(call(client, "GET", f"/photos/{photo_id}"))
    assert ready["status"] == "ready" and "error" not in ready
    assert photo_count(client, owner) == 1
