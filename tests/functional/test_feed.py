"""The home feed: hybrid fan-out (push for ordinary authors, pull for celebrities) and reading it.

The fan-out worker is the app's real ``fan_out_feed`` SQS handler, invoked with an SQS event like the
one Lambda builds from the pipeline's ``photo_ready`` message.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from api_helpers import body_of, call, member
from chalicelib import celebrities, feed, follows, keys, settings
from chalicelib.models import FanoutJobRecord, FeedItemRecord, PhotoRecord, bound

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

THRESHOLD = 3


# --- helpers ------------------------------------------------------------------------------------

def post_ready_photo(client, token: str, caption: str = "") -> PhotoRecord:
    """A photo created through the API and marked ready as the pipeline does (no image work here)."""
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000, "caption": caption},
                    token=token)
    assert response.status_code == 201, response.body
    record = bound(PhotoRecord).get(body_of(response)["photo"]["id"])
    record.update(actions=[
        PhotoRecord.status.set("ready"), PhotoRecord.width.set(800), PhotoRecord.height.set(600),
        PhotoRecord.version.set("v1"),
        PhotoRecord.renditions.set({"small": {"key": f"media/renditions/{record.photo_id}/v1/small.jpeg",
                                              "width": 400, "height": 300, "content_type": "image/jpeg"}}),
    ])
    return record


def sqs_event(*bodies: dict) -> dict:
    """The event Lambda hands an SQS-triggered function (one record per body, unique message ids)."""
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "handle", "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "sender",
                       "ApproximateFirstReceiveTimestamp": "1"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:photoscale-local-fanout", "awsRegion": "us-east-1",
    } for body in bodies]}


def ready_message(photo: PhotoRecord) -> dict:
    """What ``pipeline._announce_ready`` sends."""
    return {"type": "photo_ready", "photo_id": photo.photo_id, "owner": photo.owner, "created_at": photo.created_at}


def fan_out(client, photo: PhotoRecord) -> Any:
    return client.lambda_.invoke("fan_out_feed", sqs_event(ready_message(photo))).payload


def feed_pages(client, token: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = call(client, "GET", "/feed" + query, token=token)
        assert response.status_code == 200, response.body
        page = body_of(response)
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if not cursor:
            return pages


def newest_first(photos: list[PhotoRecord]) -> list[str]:
    return [p.photo_id for p in sorted(photos, key=lambda p: (p.created_at, p.photo_id), reverse=True)]


def pushed_to(reader: str) -> list[str]:
    return [item.photo_id for item in bound(FeedItemRecord).query(reader)]


@pytest.fixture
def social_client(client, monkeypatch: pytest.MonkeyPatch):
    """The API with a low celebrity threshold (3 followers) and an empty registry cache."""
    monkeypatch.setenv("CELEBRITY_FOLLOWER_THRESHOLD", str(THRESHOLD))
    settings.reset_settings()
    celebrities.reset_cache()
    yield client
    celebrities.reset_cache()


@pytest.fixture
def worker_client(client):
    """The API with the default celebrity threshold (authors with a few followers are pushed)."""
    celebrities.reset_cache()
    yield client
    celebrities.reset_cache()


def celebrity(client) -> tuple[str, str]:
    """A user with enough followers to be a celebrity (registered by the follow that crossed it)."""
    star, token = member(client)
    for _ in range(THRESHOLD):
        follows.follow(member(client, log_in=False)[0], star)
    assert star in celebrities.celebrities()
    return star, token


# --- tests --------------------------------------------------------------------------------------

def test_feed_merges_pushed_and_pulled_photos_newest_first_without_duplicates_or_gaps(social_client):
    client = social_client
    # Given a reader following an ordinary author and a celebrity, and a stranger nobody follows
    reader, reader_token = member(client)
    author, author_token = member(client)
    star, star_token = celebrity(client)
    stranger, stranger_token = member(client)
    for followee in (author, star):
        assert call(client, "PUT", f"/users/{followee}/follow", token=reader_token).status_code == 204
    # When they post interleaved photos (the reader too), each announced to the fan-out worker
    photos = []
    for token in (author_token, star_token, reader_token, author_token, star_token, author_token, star_token):
        photos.append(post_ready_photo(client, token))
        fan_out(client, photos[-1])
    fan_out(client, post_ready_photo(client, stranger_token))
    # Then the ordinary author's and the reader's photos were pushed, the celebrity's were not
    star_ids = {p.photo_id for p in photos if p.owner == star}
    assert set(pushed_to(reader)) == {p.photo_id for p in photos} - star_ids
    assert set(pushed_to(star)) == star_ids  # a celebrity's own feed still gets their photos
    # And the feed read 3 at a time holds every photo once, newest first, and nothing of the stranger
    pages = feed_pages(client, reader_token, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [photo_id for page in pages for photo_id in page] == newest_first(photos)


def test_feed_items_are_photo_views_with_likes_and_display_names(social_client):
    client = social_client
    # Given a reader following an author who set a display name and posted a liked photo
    reader, reader_token = member(client)
    author, author_token = member(client)
    call(client, "PATCH", "/me", {"display_name": "Ann Author"}, token=author_token)
    call(client, "PUT", f"/users/{author}/follow", token=reader_token)
    photo = post_ready_photo(client, author_token, caption="sunset")
    fan_out(client, photo)
    call(client, "PUT", f"/photos/{photo.photo_id}/like", token=reader_token)
    # When the reader reads the feed
    item = body_of(call(client, "GET", "/feed", token=reader_token))["items"][0]
    # Then the entry is the photo view with its exact like count and the author's display name
    assert item["id"] == photo.photo_id and item["owner"] == author
    assert (item["caption"], item["likes"], item["owner_display_name"]) == ("sunset", 1, "Ann Author")
    assert item["renditions"]["small"].endswith(f"/renditions/{photo.photo_id}/v1/small.jpeg")
    assert item["rendition_sizes"]["small"] == {"width": 400, "height": 300}


def test_feed_skips_deleted_photos_and_authors_no_longer_followed(social_client):
    client = social_client
    # Given a reader whose feed got photos from two authors
    reader, reader_token = member(client)
    kept_author, kept_token = member(client)
    gone_author, gone_token = member(client)
    for followee in (kept_author, gone_author):
        call(client, "PUT", f"/users/{followee}/follow", token=reader_token)
    kept = post_ready_photo(client, kept_token)
    deleted = post_ready_photo(client, kept_token)
    unfollowed = post_ready_photo(client, gone_token)
    for photo in (kept, deleted, unfollowed):
        fan_out(client, photo)
    # When one photo is deleted and the reader unfollows the other author
    assert call(client, "DELETE", f"/photos/{deleted.photo_id}", token=kept_token).status_code == 204
    call(client, "DELETE", f"/users/{gone_author}/follow", token=reader_token)
    # Then the feed shows only the remaining photo, even with pages of one
    assert [i for page in feed_pages(client, reader_token, 1) for i in page] == [kept.photo_id]


def test_fan_out_resumes_after_a_crash_mid_way_without_rewriting_feeds(worker_client, monkeypatch):
    client = worker_client
    # Given an author with 8 followers, fanned out 3 per page, and a worker that crashes on its third write
    author, author_token = member(client)
    fans = [member(client, log_in=False)[0] for _ in range(8)]
    for fan in fans:
        follows.follow(fan, author)
    photo = post_ready_photo(client, author_token)
    monkeypatch.setattr(feed, "PAGE_SIZE", 3)
    real_write = feed._write_feed_items
    writes: list[str] = []

    def crashing_write(readers, fields):
        if len(writes) == 1 + 3:  # own feed + the first page are done
            raise RuntimeError("worker crashed")
        real_write(readers, fields)
        writes.extend(readers)

    monkeypatch.setattr(feed, "_write_feed_items", crashing_write)
    # When the message is delivered and the worker crashes after the first page
    event = sqs_event(ready_message(photo))
    with pytest.raises(BatchProcessingError, match="worker crashed"):
        client.lambda_.invoke("fan_out_feed", event)
    # Then the invocation failed (SQS will redeliver the message), with the first page checkpointed
    checkpoint = json.loads(bound(FanoutJobRecord).get(keys.fanout_job_id(photo.photo_id)).position)
    assert checkpoint["own"] and checkpoint["shards"]["0"] == sorted(fans)[2]
    # And the same message is redelivered to a healthy worker
    monkeypatch.setattr(feed, "_write_feed_items", lambda readers, fields: (real_write(readers, fields),
                                                                              writes.extend(readers)))
    response = client.lambda_.invoke("fan_out_feed", event).payload
    # Then it resumed from the checkpoint: every feed was written exactly once
    assert response == {"batchItemFailures": []}
    assert sorted(writes) == sorted([author, *fans])
    assert all(pushed_to(fan) == [photo.photo_id] for fan in fans)
    assert bound(FanoutJobRecord).get(keys.fanout_job_id(photo.photo_id)).status == "done"
    # And a third delivery (duplicate announcement) writes nothing
    client.lambda_.invoke("fan_out_feed", event)
    assert sorted(writes) == sorted([author, *fans])


def test_fan_out_hands_the_rest_to_a_continuation_message_after_its_budget(worker_client, deployed, monkeypatch):
    client = worker_client
    # Given an author with 7 followers on two shards and a budget of 4 feeds per invocation
    author, author_token = member(client)
    follows.reshard_user(author, 2)
    fans = [member(client, log_in=False)[0] for _ in range(7)]
    for fan in fans:
        follows.follow(fan, author)
    photo = post_ready_photo(client, author_token)
    monkeypatch.setattr(feed, "PAGE_SIZE", 2)
    monkeypatch.setattr(feed, "MAX_FOLLOWERS_PER_INVOCATION", 4)
    sqs = deployed["clients"]("sqs")
    queue_url = deployed["outputs"]["FanoutQueueUrl"]
    sqs.purge_queue(QueueUrl=queue_url)
    # When the announcement is processed, then every continuation it queues
    fan_out(client, photo)
    continuations = 0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            assert body["type"] == "fanout_continue" and body["photo_id"] == photo.photo_id
            continuations += 1
            client.lambda_.invoke("fan_out_feed", sqs_event(body))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    # Then the work was split over several invocations and every follower got the photo once
    assert continuations >= 1
    assert all(pushed_to(fan) == [photo.photo_id] for fan in fans)
    assert bound(FanoutJobRecord).get(keys.fanout_job_id(photo.photo_id)).status == "done"


def test_feed_needs_a_token_and_refuses_a_forged_cursor(social_client):
    client = social_client
    # Given a reader with two photos in the feed
    _, token = member(client)
    for _ in range(2):
        fan_out(client, post_ready_photo(client, token))
    cursor = body_of(call(client, "GET", "/feed?limit=1", token=token))["next_cursor"]
    _, other_token = member(client)
    # When the feed is read anonymously, with a forged cursor, or with another reader's cursor
    anonymous = call(client, "GET", "/feed")
    forged = call(client, "GET", f"/feed?limit=1&cursor={cursor[:-2]}xx", token=token)
    borrowed = call(client, "GET", f"/feed?limit=1&cursor={cursor}", token=other_token)
    # Then 401, 400 invalid_cursor, 400 invalid_cursor
    assert anonymous.status_code == 401
    for response in (forged, borrowed):
        assert response.status_code == 400 and body_of(response)["error"]["code"] == "invalid_cursor"


# --- follow backfill / unfollow cleanup -----------------------------------------------------------

def take_fanout_messages(deployed, kind: str) -> list[dict]:
    """Receive (and delete) every message on the fanout queue; return the bodies of type ``kind``."""
    sqs = deployed["clients"]("sqs")
    queue_url = deployed["outputs"]["FanoutQueueUrl"]
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return [body for body in bodies if body["type"] == kind]
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def run_worker(client, *bodies: dict) -> None:
    response = client.lambda_.invoke("fan_out_feed", sqs_event(*bodies)).payload
    assert response == {"batchItemFailures": []}, response


def age_photo(photo: PhotoRecord, days: int) -> PhotoRecord:
    """Make a photo look ``days`` old (its listing key moves with it)."""
    created_at = feed.backfill_since(time.time(), days=days)
    photo.update(actions=[PhotoRecord.created_at.set(created_at),
                          PhotoRecord.owner_sort.set(keys.owner_sort_key(created_at, photo.photo_id))])
    return photo


def test_following_an_author_backfills_their_recent_ready_photos_into_the_feed(worker_client, deployed):
    client = worker_client
    # Given an author with two recent ready photos, one from 40 days ago and one still pending
    take_fanout_messages(deployed, "any")
    author, author_token = member(client)
    recent = [post_ready_photo(client, author_token, caption=f"recent {n}") for n in range(2)]
    old = age_photo(post_ready_photo(client, author_token), days=40)
    pending = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000}, token=author_token)
    assert pending.status_code == 201
    reader, reader_token = member(client)
    # When a reader follows them
    assert call(client, "PUT", f"/users/{author.upper()}/follow", token=reader_token).status_code == 204
    # Then the request itself only queued the backfill (the feed is still empty) ...
    messages = take_fanout_messages(deployed, feed.BACKFILL)
    assert messages == [{"type": feed.BACKFILL, "reader": reader, "author": author}]
    assert body_of(call(client, "GET", "/feed", token=reader_token))["items"] == []
    # ... and once the worker has run, the feed shows the recent ready photos, newest first, only those
    run_worker(client, *messages)
    items = body_of(call(client, "GET", "/feed", token=reader_token))["items"]
    assert [item["id"] for item in items] == newest_first(recent)
    assert [item["caption"] for item in items] == ["recent 1", "recent 0"]
    assert old.photo_id not in pushed_to(reader)


def test_a_redelivered_backfill_and_the_photos_own_fan_out_write_each_photo_once(worker_client, deployed):
    client = worker_client
    # Given an author with a ready photo whose fan-out has not run yet, and a new follower
    take_fanout_messages(deployed, "any")
    author, author_token = member(client)
    photo = post_ready_photo(client, author_token)
    reader, reader_token = member(client)
    call(client, "PUT", f"/users/{author}/follow", token=reader_token)
    # When the backfill is delivered twice and the photo's own fan-out runs as well
    backfill = take_fanout_messages(deployed, feed.BACKFILL)
    run_worker(client, *backfill)
    run_worker(client, *backfill)
    fan_out(client, photo)
    # Then the reader's feed holds the photo exactly once
    assert pushed_to(reader) == [photo.photo_id]
    assert [i for page in feed_pages(client, reader_token, 5) for i in page] == [photo.photo_id]


def test_a_backfill_processed_after_an_unfollow_writes_nothing(worker_client, deployed):
    client = worker_client
    # Given a reader who followed and at once unfollowed an author with a photo
    take_fanout_messages(deployed, "any")
    author, author_token = member(client)
    post_ready_photo(client, author_token)
    reader, reader_token = member(client)
    call(client, "PUT", f"/users/{author}/follow", token=reader_token)
    call(client, "DELETE", f"/users/{author}/follow", token=reader_token)
    # When the queued backfill runs only now
    run_worker(client, *take_fanout_messages(deployed, feed.BACKFILL))
    # Then nothing of the author was written into the reader's feed
    assert pushed_to(reader) == []


def test_unfollowing_removes_the_authors_entries_from_the_feed(worker_client, deployed):
    client = worker_client
    # Given a reader whose feed holds photos of two followed authors
    take_fanout_messages(deployed, "any")
    kept_author, kept_token = member(client)
    gone_author, gone_token = member(client)
    reader, reader_token = member(client)
    for followee in (kept_author, gone_author):
        call(client, "PUT", f"/users/{followee}/follow", token=reader_token)
    kept = post_ready_photo(client, kept_token)
    gone = [post_ready_photo(client, gone_token) for _ in range(3)]
    for photo in (kept, *gone):
        fan_out(client, photo)
    assert sorted(i for page in feed_pages(client, reader_token, 2) for i in page) == sorted(
        p.photo_id for p in (kept, *gone))
    # When the reader unfollows one author
    take_fanout_messages(deployed, "any")
    assert call(client, "DELETE", f"/users/{gone_author}/follow", token=reader_token).status_code == 204
    # Then later pages no longer show that author, even before the cleanup ran
    assert [i for page in feed_pages(client, reader_token, 2) for i in page] == [kept.photo_id]
    # And once the worker ran the cleanup, their entries are gone from the feed itself
    cleanup = take_fanout_messages(deployed, feed.CLEANUP)
    assert cleanup == [{"type": feed.CLEANUP, "reader": reader, "author": gone_author}]
    run_worker(client, *cleanup)
    assert pushed_to(reader) == [kept.photo_id]


def test_a_cleanup_that_runs_after_a_new_follow_keeps_the_entries(worker_client, deployed):
    client = worker_client
    # Given a reader who unfollowed an author and followed them again before the cleanup ran
    take_fanout_messages(deployed, "any")
    author, author_token = member(client)
    reader, reader_token = member(client)
    call(client, "PUT", f"/users/{author}/follow", token=reader_token)
    photo = post_ready_photo(client, author_token)
    fan_out(client, photo)
    call(client, "DELETE", f"/users/{author}/follow", token=reader_token)
    call(client, "PUT", f"/users/{author}/follow", token=reader_token)
    # When the late cleanup runs / Then the entry stays and the feed shows it
    run_worker(client, *take_fanout_messages(deployed, feed.CLEANUP))
    assert pushed_to(reader) == [photo.photo_id]
    assert [i for page in feed_pages(client, reader_token, 5) for i in page] == [photo.photo_id]


def test_the_backfill_window_starts_thirty_days_back():
    # Given a moment / When the backfill bound is computed / Then it is 30 days earlier, as a listing key
    assert feed.backfill_since(86_400 * 31) == "1970-01-02T00:00:00.000Z"


@pytest.fixture
def shared_query_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Swap the shared query reader (DAX's query cache in prod) for a client of its own and record
    the partition keys of the Queries sent with it."""
    import boto3

    from chalicelib import aws

    seen: list[str] = []
    reader = boto3.client("dynamodb", region_name="us-east-1")
    reader.meta.events.register("provide-client-params.dynamodb.*", lambda params, event_name, **_: seen.append(
        f"{event_name.rsplit('.', 1)[-1]} {params.get('ExpressionAttributeValues', {}).get(':0', {}).get('S')}"))
    monkeypatch.setattr(aws, "shared_query_reader", lambda: reader)
    aws.reset()
    yield seen
    aws.reset()


def test_followers_pull_a_celebritys_newest_photos_through_the_shared_query_reader_the_celebrity_never(
        social_client, shared_query_calls):
    from chalicelib import cache

    client = social_client
    # Given a reader following a celebrity who posted a photo
    reader, reader_token = member(client)
    star, star_token = celebrity(client)
    call(client, "PUT", f"/users/{star}/follow", token=reader_token)
    first = post_ready_photo(client, star_token)
    cache.reset()
    # When the reader reads their feed
    assert [item["id"] for item in body_of(call(client, "GET", "/feed", token=reader_token))["items"]] == [
        first.photo_id]
    # Then the celebrity's newest page came through the shared query reader (one Query of by_owner)
    assert shared_query_calls == [f"Query {star}"]
    # And when the celebrity posts again and reads their own feed, and their photo page, at once
    shared_query_calls.clear()
    second = post_ready_photo(client, star_token)
    own_feed = body_of(call(client, "GET", "/feed", token=star_token))["items"]
    own_page = body_of(call(client, "GET", f"/users/{star}/photos", token=star_token))["items"]
    # Then both show the new photo (read straight from DynamoDB: no DAX query cache for the owner)
    assert [item["id"] for item in own_feed][:2] == [second.photo_id, first.photo_id]
    assert [item["id"] for item in own_page][:2] == [second.photo_id, first.photo_id]
    assert shared_query_calls == []
