"""Photos never get stuck, deletes are safe to retry, edits are checked, throttling is a 503.

The real app (``chalice.test.Client``) and the real workers (``pipeline.handle_uploads`` /
``handle_edits`` called with Lambda's SQS event) on in-process moto provisioned from the template.
DynamoDB failures are injected at the botocore client boundary (:mod:`faults`), so everything
above the client (PynamoDB, the retry helpers, the workers, the HTTP mapping) runs for real.
"""
from __future__ import annotations

import io
import json
import time
import uuid

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from api_helpers import body_of, call, member, stage_cdn
from faults import dynamodb_client, failing, intercept
from PIL import Image

from chalicelib import aws, keys, settings
from chalicelib.models import GraphEdgeRecord, PhotoRecord, bound
from devstack.event_pump import build_sqs_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:photoscale-local-edits"


# --- helpers ------------------------------------------------------------------------------------

def jpeg(width: int = 640, height: int = 480) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 160, 90)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def deliver_uploads(client, event: dict) -> dict:
    """One delivery of an uploads-queue event to the real worker function (with its middleware).

    A batch whose every record failed makes Powertools raise, so Lambda returns the whole batch to
    the queue: reported here as every message failed, like a partial failure of each.
    """
    try:
        return client.lambda_.invoke("process_uploads", event).payload
    except BatchProcessingError:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


def uploaded_photo(client, token: str, owner: str, data: bytes | None = None) -> tuple[str, dict]:
    """A photo created through the API whose original is in S3; returns its id and the S3 event."""
    data = data if data is not None else jpeg()
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": len(data)}, token=token)
    assert response.status_code == 201, response.body
    photo_id = body_of(response)["photo"]["id"]
    bucket = settings.get_settings().media_bucket
    key = keys.upload_key(owner, photo_id)
    put = aws.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
    notification = {"Records": [{"s3": {"bucket": {"name": bucket},
                                        "object": {"key": key, "eTag": put["ETag"].strip('"'),
                                                   "sequencer": uuid.uuid4().hex}}}]}
    event = {"Records": [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps(notification),
                          "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                          "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN,
                          "awsRegion": "us-east-1"}]}
    return photo_id, event


def ready_photo(client, token: str, owner: str, data: bytes | None = None) -> str:
    photo_id, event = uploaded_photo(client, token, owner, data)
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    assert record(photo_id).status == "ready"
    return photo_id


def record(photo_id: str) -> PhotoRecord | None:
    model = bound(PhotoRecord)
    try:
        return model.get(photo_id, consistent_read=True)
    except model.DoesNotExist:
        return None


def photo_count(client, username: str) -> int:
    response = call(client, "GET", f"/users/{username}")
    assert response.status_code == 200, response.body
    return body_of(response)["photos"]


def media_keys(owner: str, photo_id: str) -> list[str]:
    s3 = aws.client("s3")
    bucket = settings.get_settings().media_bucket
    found = []
    for prefix in (keys.upload_key(owner, photo_id), keys.rendition_prefix(photo_id)):
        found += [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return found


def run_edits_worker(client) -> dict:
    """One delivery of everything on the edits queue to the real worker; successes are deleted,
    failures stay on the queue (received with visibility 0, so they are visible again at once)."""
    sqs = aws.client("sqs")
    url = settings.get_settings().edits_queue_url
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                  MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in got if m["MessageId"] not in {n["MessageId"] for n in messages}]
        if not fresh:
            break
        messages += fresh
    if not messages:
        return {"batchItemFailures": [], "messages": 0}
    result = client.lambda_.invoke(
        "process_edits", build_sqs_event(messages, queue_arn=QUEUE_ARN, region="us-east-1")).payload
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return {**result, "messages": len(messages)}


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The namespace Lambda gives Powertools at import (``POWERTOOLS_METRICS_NAMESPACE`` in the stage
    config): the shared ``Metrics`` may have been created by an earlier test without it."""
    from chalicelib.observability import metrics

    monkeypatch.setattr(metrics, "namespace", "Photoscale")


@pytest.fixture
def edits_queue(client) -> None:
    """Start with an empty edits queue (the module shares one stack; moto limits PurgeQueue too)."""
    sqs = aws.client("sqs")
    url = settings.get_settings().edits_queue_url
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def distribution(client, monkeypatch: pytest.MonkeyPatch) -> str:
    """A CloudFront distribution in moto, configured as the stage's CDN."""
    return stage_cdn(monkeypatch)


def invalidated_paths(distribution_id: str) -> list[list[str]]:
    cloudfront = aws.client("cloudfront")
    listed = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"].get("Items", [])
    return [sorted(cloudfront.get_invalidation(DistributionId=distribution_id, Id=i["Id"])
                   ["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]) for i in listed]


# --- the upload worker: conflicts and throttling are retried, never "already processed" ----------

CONFLICT = ("TransactionCanceledException", ["None", "TransactionConflict"])
THROTTLED = ("TransactionCanceledException", ["ThrottlingError", "None"])


@pytest.mark.parametrize("code, reasons", [CONFLICT, THROTTLED], ids=["conflict", "throttling"])
def test_upload_whose_transaction_is_cancelled_by_a_conflict_or_throttling_once_is_retried_and_ready(
        client, code, reasons):
    # GIVEN an uploaded photo whose "ready" transaction is cancelled once (another upload of the
    # same user hit the same counter shard, or DynamoDB throttled)
    owner, token = member(client)
    photo_id, event = uploaded_photo(client, token, owner)
    # WHEN the worker processes the upload
    with failing(dynamodb_client(PhotoRecord), "TransactWriteItems", code, reasons=reasons, times=1) as seen:
        result = deliver_uploads(client, event)
    # THEN it retried the transaction and the photo is ready and counted once
    assert result == {"batchItemFailures": []}
    assert len(seen) == 2
    assert record(photo_id).status == "ready"
    assert photo_count(client, owner) == 1


@pytest.mark.parametrize("code, reasons", [CONFLICT, THROTTLED, ("ProvisionedThroughputExceededException", None)],
                         ids=["conflict", "throttling", "request-throttled"])
def test_upload_still_failing_after_retries_goes_back_to_the_queue_and_completes_on_redelivery(
        client, code, reasons):
    # GIVEN an uploaded photo whose transaction keeps failing transiently
    owner, token = member(client)
    photo_id, event = uploaded_photo(client, token, owner)
    message_id = event["Records"][0]["messageId"]
    # WHEN the worker processes it
    with failing(dynamodb_client(PhotoRecord), "TransactWriteItems", code, reasons=reasons):
        result = deliver_uploads(client, event)
    # THEN the message is reported failed (back to the queue), not stored as done, photo still pending
    assert result == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert record(photo_id).status == "pending"
    assert photo_count(client, owner) == 0
    # AND the redelivery (same message, DynamoDB healthy again) finishes it, counted once
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    assert record(photo_id).status == "ready"
    assert photo_count(client, owner) == 1


def test_upload_of_a_photo_deleted_while_processing_leaves_no_renditions_behind(client, edits_queue):
    # GIVEN an uploaded photo that its owner deletes while the worker renders it
    owner, token = member(client)
    photo_id, event = uploaded_photo(client, token, owner)

    def delete_meanwhile(_params: dict) -> None:
        assert call(client, "DELETE", f"/photos/{photo_id}", token=token).status_code == 204

    with intercept(dynamodb_client(PhotoRecord), "TransactWriteItems", delete_meanwhile):
        assert deliver_uploads(client, event) == {"batchItemFailures": []}
    # WHEN the cleanup runs
    run_edits_worker(client)
    # THEN nothing of the photo is left: record, original, renditions; and it was never counted
    assert record(photo_id) is None
    assert media_keys(owner, photo_id) == []
    assert photo_count(client, owner) == 0


# --- pending photos expire ----------------------------------------------------------------------

def test_pending_photo_expires_and_then_reads_as_gone(client):
    # GIVEN a photo whose upload never arrives
    owner, token = member(client)
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000}, token=token)
    photo_id = body_of(response)["photo"]["id"]
    # THEN its record carries the table's TTL attribute, and it reads as pending until then
    pending = record(photo_id)
    assert pending.expires_at > time.time() + 300
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["status"] == "pending"
    # WHEN its expiry passes (DynamoDB deletes lazily; moto never does)
    pending.update(actions=[PhotoRecord.expires_at.set(int(time.time()) - 1)])
    # THEN it is gone for readers, uncounted, and not listed
    response = call(client, "GET", f"/photos/{photo_id}")
    assert response.status_code == 404 and body_of(response)["error"]["code"] == "photo_not_found"
    assert photo_count(client, owner) == 0
    assert body_of(call(client, "GET", f"/users/{owner}/photos"))["items"] == []


def test_upload_arriving_after_its_photo_expired_is_discarded(client):
    owner, token = member(client)
    photo_id, event = uploaded_photo(client, token, owner)
    record(photo_id).update(actions=[PhotoRecord.expires_at.set(int(time.time()) - 1)])
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    assert record(photo_id) is None
    assert media_keys(owner, photo_id) == []
    assert photo_count(client, owner) == 0


def test_processed_photo_no_longer_expires(client):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    assert record(photo_id).expires_at is None


def test_rejected_photo_no_longer_expires_and_keeps_its_reason(client):
    owner, token = member(client)
    photo_id, event = uploaded_photo(client, token, owner, b"this is not an image " * 50)
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    rejected = record(photo_id)
    assert rejected.status == "failed" and rejected.error and rejected.expires_at is None


# --- error paths never re-create a deleted photo ------------------------------------------------

def test_edit_failing_on_a_photo_deleted_meanwhile_does_not_recreate_a_half_item(client):
    # GIVEN a ready photo whose original no longer matches (the edit will fail) ...
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    record(photo_id).update(actions=[PhotoRecord.original_etag.set('"not-the-original"')])
    job = {"photo_id": photo_id, "edit_id": keys.new_id(), "edits": {"rotate": 90}, "base_version": None}

    # ... and that is deleted while the edit worker reads the original
    def delete_row(_params: dict) -> None:
        bound(PhotoRecord)(photo_id).delete()

    from chalicelib import pipeline  # imported late: Powertools reads its namespace at import

    with intercept(aws.client("s3"), "GetObject", delete_row):
        outcome = pipeline.process_edit(job)
    # THEN the failure is not written onto a re-created, ownerless row
    assert outcome == "photo-deleted"
    assert record(photo_id) is None


def test_caption_update_racing_a_delete_is_a_404(client):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)

    def delete_row(_params: dict) -> None:
        bound(PhotoRecord)(photo_id).delete()

    with intercept(dynamodb_client(PhotoRecord), "UpdateItem", delete_row):
        response = call(client, "PATCH", f"/photos/{photo_id}", {"caption": "late"}, token=token)
    assert response.status_code == 404, response.body
    assert body_of(response)["error"]["code"] == "photo_not_found"
    assert record(photo_id) is None


# --- retry-safe delete --------------------------------------------------------------------------

def test_deleted_photo_disappears_at_once_uncounted_once_and_media_goes_with_the_cleanup(client, edits_queue):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    assert photo_count(client, owner) == 1
    assert call(client, "DELETE", f"/photos/{photo_id}", token=token).status_code == 204
    # the record stays (deleting) until the media is gone, but readers never see it
    assert record(photo_id).status == "deleting"
    assert call(client, "GET", f"/photos/{photo_id}").status_code == 404
    assert body_of(call(client, "GET", f"/users/{owner}/photos"))["items"] == []
    # a retry answers like the first delete and does not uncount twice
    assert call(client, "DELETE", f"/photos/{photo_id}", token=token).status_code == 204
    assert photo_count(client, owner) == 0
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert record(photo_id) is None
    assert media_keys(owner, photo_id) == []
    assert photo_count(client, owner) == 0


def test_the_cleanup_of_a_deleted_photo_removes_everyones_likes_of_it_and_nothing_else(client, edits_queue):
    # Given a photo liked by two users, one of whom also likes another photo
    owner, token = member(client)
    doomed, kept = ready_photo(client, token, owner), ready_photo(client, token, owner)
    fans = [member(client) for _ in range(2)]
    for _, fan_token in fans:
        assert call(client, "PUT", f"/photos/{doomed}/like", token=fan_token).status_code == 200
    assert call(client, "PUT", f"/photos/{kept}/like", token=fans[0][1]).status_code == 200
    # When the photo is deleted and the cleanup worker runs (twice: a redelivery is harmless)
    assert call(client, "DELETE", f"/photos/{doomed}", token=token).status_code == 204
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert run_edits_worker(client)["batchItemFailures"] == []
    # Then no like edge or likers mirror names the deleted photo, and the other like is untouched
    edges = [(r.pk, r.sk) for r in bound(GraphEdgeRecord).scan()]
    assert [e for e in edges if doomed in e[0] or e[1] == doomed] == []
    assert (f"liked#{fans[0][0]}", kept) in edges
    assert body_of(call(client, "GET", f"/photos/{kept}", token=fans[0][1]))["liked"] is True


def test_delete_retried_after_media_removal_failed_answers_204_and_everything_is_removed(client, edits_queue):
    # GIVEN a ready photo, and S3 failing to delete objects
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    assert media_keys(owner, photo_id)
    with failing(aws.client("s3"), "DeleteObjects", "InternalError"):
        first = call(client, "DELETE", f"/photos/{photo_id}", token=token)
        assert run_edits_worker(client)["batchItemFailures"]  # the cleanup goes back to the queue
        # WHEN the client retries the delete
        retried = call(client, "DELETE", f"/photos/{photo_id}", token=token)
    # THEN both answers are 204, the photo is gone for readers and counted off once
    assert (first.status_code, retried.status_code) == (204, 204)
    assert call(client, "GET", f"/photos/{photo_id}").status_code == 404
    assert photo_count(client, owner) == 0
    # AND once S3 works again every object and the record are removed
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert media_keys(owner, photo_id) == []
    assert record(photo_id) is None


def test_delete_retried_after_queueing_the_cleanup_failed_answers_204_and_removes_everything(client, edits_queue):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    with failing(aws.client("sqs"), "SendMessage", "InternalError"):
        first = call(client, "DELETE", f"/photos/{photo_id}", token=token)
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"  # not acknowledged: retry
    assert call(client, "GET", f"/photos/{photo_id}").status_code == 404
    assert call(client, "DELETE", f"/photos/{photo_id}", token=token).status_code == 204
    assert photo_count(client, owner) == 0
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert media_keys(owner, photo_id) == [] and record(photo_id) is None


# --- CDN invalidations are batched --------------------------------------------------------------

def test_a_burst_of_deletes_makes_one_invalidation_with_every_rendition_path(client, edits_queue, distribution):
    owner, token = member(client)
    photo_ids = [ready_photo(client, token, owner) for _ in range(3)]
    expected = sorted("/" + key for p in photo_ids for key in media_keys(owner, p) if key.startswith("media/"))
    for photo_id in photo_ids:
        assert call(client, "DELETE", f"/photos/{photo_id}", token=token).status_code == 204
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert invalidated_paths(distribution) == [expected]
    assert "*" not in "".join(expected)  # exact paths: wildcard paths are limited to 15 in flight


def test_invalidations_refused_by_cloudfront_are_retried_later_and_never_fail_the_delete(
        client, edits_queue, distribution):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    with failing(aws.client("cloudfront"), "CreateInvalidation", "TooManyInvalidationsInProgress"):
        assert call(client, "DELETE", f"/photos/{photo_id}", token=token).status_code == 204
        assert len(run_edits_worker(client)["batchItemFailures"]) == 1
    assert invalidated_paths(distribution) == []
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert len(invalidated_paths(distribution)) == 1
    assert record(photo_id) is None and media_keys(owner, photo_id) == []


def test_edit_that_replaces_a_version_invalidates_the_old_version_at_the_edge(client, edits_queue, distribution):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    old = sorted("/" + k for k in media_keys(owner, photo_id) if k.startswith("media/"))
    old_version = record(photo_id).version
    response = call(client, "POST", f"/photos/{photo_id}/edits", {"rotate": 90, "base_version": old_version},
                    token=token)
    assert response.status_code == 202, response.body
    run_edits_worker(client)  # applies the edit, which queues the invalidation of the old version
    assert record(photo_id).version != old_version
    assert run_edits_worker(client)["batchItemFailures"] == []
    assert invalidated_paths(distribution) == [old]


# --- edits: the original's frame, and base_version ----------------------------------------------

def test_crop_is_validated_against_the_original_frame_the_worker_crops(client, edits_queue):
    # GIVEN a 640x480 photo already cropped to its top-left 320x240
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner, jpeg(640, 480))
    crop = {"crop": {"x": 0, "y": 0, "width": 320, "height": 240}}
    assert call(client, "POST", f"/photos/{photo_id}/edits", crop, token=token).status_code == 202
    run_edits_worker(client)
    assert (int(record(photo_id).width), int(record(photo_id).height)) == (320, 240)
    # WHEN the owner crops the original's right half (outside the current 320x240, inside 640x480)
    right = {"crop": {"x": 320, "y": 0, "width": 320, "height": 480}}
    response = call(client, "POST", f"/photos/{photo_id}/edits", right, token=token)
    # THEN it is accepted and applied to the original
    assert response.status_code == 202, response.body
    assert body_of(response)["photo"]["frame"] == {"width": 640, "height": 480}
    run_edits_worker(client)
    assert (int(record(photo_id).width), int(record(photo_id).height)) == (320, 480)
    # AND a crop outside the original is refused
    outside = {"crop": {"x": 400, "y": 0, "width": 320, "height": 480}}
    response = call(client, "POST", f"/photos/{photo_id}/edits", outside, token=token)
    assert response.status_code == 400 and "640" in body_of(response)["error"]["message"]


def test_the_photo_tells_the_client_which_edits_its_current_version_has_in_original_pixels(client, edits_queue):
    # GIVEN a 640x480 photo, fresh from upload: the whole original, no edits yet
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner, jpeg(640, 480))
    fresh = body_of(call(client, "GET", f"/photos/{photo_id}"))
    assert fresh["frame"] == {"width": 640, "height": 480} and "edits" not in fresh
    # WHEN it is cropped to the original's right half and turned a quarter
    edits = {"crop": {"x": 320, "y": 0, "width": 320, "height": 480}, "rotate": 90}
    assert call(client, "POST", f"/photos/{photo_id}/edits", edits, token=token).status_code == 202
    run_edits_worker(client)
    # THEN the photo's view names those edits (what the web client places the current version with)
    view = body_of(call(client, "GET", f"/photos/{photo_id}"))
    assert view["edits"] == edits
    assert (view["width"], view["height"], view["frame"]) == (480, 320, {"width": 640, "height": 480})


def test_edit_based_on_a_stale_version_is_a_409(client, edits_queue):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    first_version = record(photo_id).version
    edit = {"rotate": 90, "base_version": first_version}
    assert call(client, "POST", f"/photos/{photo_id}/edits", edit, token=token).status_code == 202
    run_edits_worker(client)
    response = call(client, "POST", f"/photos/{photo_id}/edits", {"blur": 2, "base_version": first_version},
                    token=token)
    assert response.status_code == 409, response.body
    error = body_of(response)["error"]
    assert error["code"] == "stale_version" and error["details"]["current_version"] == record(photo_id).version


def test_two_edits_from_one_version_apply_only_the_first(client, edits_queue):
    # GIVEN two edits accepted on the same base version (both pass the API's check)
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    base = record(photo_id).version
    for edit in ({"rotate": 90}, {"rotate": 180}):
        response = call(client, "POST", f"/photos/{photo_id}/edits", {**edit, "base_version": base}, token=token)
        assert response.status_code == 202
    # WHEN the worker runs them
    assert run_edits_worker(client)["batchItemFailures"] == []
    # THEN the second, stale by then, is discarded with a visible reason; only the first's renditions exist
    photo = record(photo_id)
    assert photo.version != base and "changed since" in photo.error
    versions = {k.split("/")[3] for k in media_keys(owner, photo_id) if k.startswith("media/")}
    assert versions == {photo.version}


# --- throttling anywhere is a 503 with Retry-After ----------------------------------------------

def test_throttled_read_route_answers_503_with_retry_after(client):
    owner, token = member(client)
    photo_id = ready_photo(client, token, owner)
    with failing(dynamodb_client(PhotoRecord), "GetItem", "ProvisionedThroughputExceededException"):
        response = call(client, "GET", f"/photos/{photo_id}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert body_of(response)["error"]["code"] == "service_unavailable"


def test_throttled_transaction_route_is_retried_then_answers_503_with_retry_after(client):
    alice, token = member(client)
    bob, _ = member(client, log_in=False)
    with failing(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", "TransactionCanceledException",
                 reasons=["None", "None", "ThrottlingError", "None"]) as seen:
        response = call(client, "PUT", f"/users/{bob}/follow", token=token)
    assert response.status_code == 503, response.body
    assert response.headers["Retry-After"] == "1"
    assert len(seen) > 1  # retried with backoff before giving up
    assert body_of(call(client, "GET", f"/users/{bob}"))["followers"] == 0


def test_follow_whose_transaction_conflicts_once_succeeds_and_counts_once(client):
    alice, token = member(client)
    bob, _ = member(client, log_in=False)
    with failing(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", "TransactionCanceledException",
                 reasons=["None", "None", "TransactionConflict", "None"], times=1):
        assert call(client, "PUT", f"/users/{bob}/follow", token=token).status_code == 204
    assert body_of(call(client, "GET", f"/users/{bob}"))["followers"] == 1



def test_every_route_of_the_app_translates_transient_dynamodb_errors(client):
    import app as app_module

    views = [entry.view_function for methods in app_module.app.routes.values() for entry in methods.values()]
    assert views and all(getattr(view, "_translates_transient_errors", False) for view in views)
