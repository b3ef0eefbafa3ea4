"""The photo pipeline end to end, through the real local stack over HTTP.

What runs: a real moto server (provisioned from ``infra/stateful.yaml``), chalice local behind the site
origin (``/api/*``), the SQS event pump delivering batches to the app's workers, and ``/media/*`` served
by the site from the media bucket. Clients talk HTTP only; the tests read SQS/S3 directly only where a
client cannot (queue depths, the DLQ, redelivering a notification).

One stack serves the session (``local_stack`` in ``conftest.py``); every test signs up its own random
users, so tests never depend on each other's data. Waiting is always bounded polling (:func:`wait_until`).
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import boto3
import pytest
import requests
from botocore.config import Config

import images
from api_client import ApiClient
from devstack.stack import REGION, LocalStack

pytestmark = pytest.mark.integration

IMMUTABLE = "public, max-age=31536000, immutable"
RENDITION_NAMES = ("thumb", "medium", "large")
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
PROCESSING_TIMEOUT = 30.0


# ------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], *, timeout: float = PROCESSING_TIMEOUT, interval: float = 0.1,
               what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class User:
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class PhotoClient:
    """The photo journeys over the site origin: ``/api/*`` through the shared :class:`ApiClient`, plus the
    ``/media/*`` URLs the API hands out."""

    def __init__(self, api: ApiClient, site_url: str) -> None:
        self.api = api
        self.site_url = site_url

    def call(self, method: str, path: str, user: User | None = None, *, json: Any = None,
             params: dict[str, Any] | None = None) -> requests.Response:
        query = f"?{urlencode(params)}" if params else ""
        return self.api.request(method, path + query, token=user.token if user else None, json=json)

    def media(self, url: str) -> requests.Response:
        """GET a rendition URL exactly as the API returned it (``/media/...``, relative to the site)."""
        return self.api.session.get(self.site_url + url, timeout=30)

    def new_user(self) -> User:
        """Sign up and log in a random user (the local stage auto-confirms sign-ups)."""
        username, tokens = self.api.new_user()
        return User(username, tokens["access_token"])

    def photo(self, photo_id: str, user: User | None = None) -> dict:
        """The photo as ``user`` (anonymous: None) sees it; its owner, as the web client sends her token,
        is served it fresh, other readers within the photo TTL of chalicelib.cache."""
        response = self.call("GET", f"/photos/{photo_id}", user)
        assert response.status_code == 200, response.text
        return response.json()

    def photo_count(self, user: User) -> int:
        """The count on the user's own profile page (as she sees it: read fresh, not from the cache)."""
        response = self.call("GET", f"/users/{user.username}", user)
        assert response.status_code == 200, response.text
        return response.json()["photos"]

    def create_photo(self, user: User, data: bytes, content_type: str = "image/jpeg", caption: str = "") -> dict:
        """Reserve a photo and authorise its upload; returns the 201 body (``photo`` + ``upload``)."""
        response = self.call("POST", "/photos", user,
                             json={"content_type": content_type, "size": len(data), "caption": caption})
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, user: User, data: bytes, content_type: str = "image/jpeg", caption: str = "") -> str:
        """The client's whole upload: reserve, then POST the bytes straight to S3. Returns the photo id."""
        created = self.create_photo(user, data, content_type, caption)
        upload = created["upload"]
        stored = requests.post(upload["url"], data=upload["fields"],
                               files={"file": ("upload.bin", data, content_type)}, timeout=30)
        assert stored.status_code == 204, stored.text
        return created["photo"]["id"]

    def wait_processed(self, photo_id: str, timeout: float = PROCESSING_TIMEOUT) -> dict:
        """Poll the photo until the pipeline has finished with it (ready or failed); returns its view."""
        def finished() -> dict | None:
            photo = self.photo(photo_id)
            return photo if photo["status"] != "pending" else None

        return wait_until(finished, timeout=timeout, what=f"photo {photo_id} to leave 'pending'")

    def upload_ready(self, user: User, data: bytes, caption: str = "") -> dict:
        photo = self.wait_processed(self.upload(user, data, caption=caption))
        assert photo["status"] == "ready", photo
        return photo


@pytest.fixture
def site(api: ApiClient, local_stack: LocalStack) -> PhotoClient:
    """``local_stack`` and ``api`` come from ``conftest.py`` (one stack per session)."""
    return PhotoClient(api, local_stack.site_url)


@pytest.fixture(scope="session")
def aws(local_stack: LocalStack) -> Callable[[str], Any]:
    """Factory of boto3 clients for the stack's embedded AWS (fake credentials)."""

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=local_stack.aws_endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(s3={"addressing_style": "path"}))

    return make


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    """``response`` is ``status`` with the API's error shape ``{"error": {"code", "message"}}``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages in the queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def s3_notification(bucket: str, key: str, size: int, etag: str, sequencer: str) -> str:
    """An SQS body shaped like S3's ``ObjectCreated`` event notification for ``key``."""
    return json.dumps({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventName": "ObjectCreated:Post",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key), "size": size, "eTag": etag, "sequencer": sequencer},
        },
    }]})


def upload_key(owner: str, photo_id: str) -> str:
    return f"uploads/{owner}/{photo_id}"


def is_portrait_2_by_3(size: tuple[int, int]) -> bool:
    width, height = size
    return height > width and abs(width * 3 - height * 2) <= 3


# ------------------------------------------------------------------------------------------------------------
# 1. The phone photo journey
# ------------------------------------------------------------------------------------------------------------
def test_a_phone_photo_becomes_upright_metadata_free_renditions_served_immutably(site: PhotoClient) -> None:
    # Given a new user and a 1200×800 phone JPEG that says "turn me 90° clockwise" (EXIF 6) and carries GPS
    user = site.new_user()
    jpeg = images.phone_photo_jpeg(1200, 800)

    # When they reserve the photo, upload the bytes straight to S3 and wait for the pipeline
    created = site.create_photo(user, jpeg, caption="Sunset over the dunes")
    assert created["photo"]["status"] == "pending"
    assert created["upload"]["url"] and created["upload"]["fields"], created
    upload = created["upload"]
    stored = requests.post(upload["url"], data=upload["fields"],
                           files={"file": ("IMG_0001.jpg", jpeg, "image/jpeg")}, timeout=30)
    assert stored.status_code == 204, stored.text
    photo = site.wait_processed(created["photo"]["id"])

    # Then the photo is ready, upright (portrait) and owned by them
    assert photo["status"] == "ready", photo
    assert (photo["owner"], photo["caption"]) == (user.username, "Sunset over the dunes")
    assert (photo["width"], photo["height"]) == (800, 1200)
    assert set(RENDITION_NAMES) <= set(photo["renditions"]), photo

    # And every rendition is served by the site as an immutable, upright, metadata-free JPEG
    for name in RENDITION_NAMES:
        response = site.media(photo["renditions"][name])
        assert response.status_code == 200, (name, response.status_code)
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["Cache-Control"] == IMMUTABLE
        image = images.open_image(response.content)
        assert image.format == "JPEG"
        expected = photo["rendition_sizes"][name]
        assert image.size == (expected["width"], expected["height"]), name
        assert is_portrait_2_by_3(image.size), (name, image.size)
        for actual, wanted in zip(images.quadrant_colours(image), images.UPRIGHT_QUADRANTS):
            assert images.close_to(actual, wanted), (name, images.quadrant_colours(image))
        assert not image.getexif(), (name, dict(image.getexif()))
        assert "exif" not in image.info, name
        assert b"Exif\x00\x00" not in response.content and b"PhotoscaleTestCam" not in response.content, name
    assert photo["rendition_sizes"]["thumb"] == {"width": 213, "height": 320}

    # And WebP variants, where offered, are metadata-free too
    for name, url in photo.get("webp", {}).items():
        response = site.media(url)
        assert response.status_code == 200, (name, response.status_code)
        assert response.headers["Content-Type"] == "image/webp"
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert b"EXIF" not in response.content and b"PhotoscaleTestCam" not in response.content, name

    # And the profile counts the photo once, and the user's listing shows it
    assert wait_until(lambda: site.photo_count(user) == 1, what="the photo count to settle")
    listing = site.call("GET", f"/users/{user.username}/photos")
    assert listing.status_code == 200, listing.text
    assert [item["id"] for item in listing.json()["items"]] == [photo["id"]]


# ------------------------------------------------------------------------------------------------------------
# 2. Untrustworthy bytes
# ------------------------------------------------------------------------------------------------------------
def test_bytes_that_are_not_an_image_fail_with_a_readable_reason(site: PhotoClient) -> None:
    # Given a user whose "JPEG" is really a text file
    user = site.new_user()
    not_an_image = b"Dear diary, today I uploaded a text file as a photo.\n" * 40

    # When it is uploaded as image/jpeg and processed
    photo = site.wait_processed(site.upload(user, not_an_image, "image/jpeg"))

    # Then the photo failed with a human-readable reason, has no renditions and is not counted
    assert photo["status"] == "failed", photo
    assert isinstance(photo.get("error"), str) and len(photo["error"]) > 10, photo
    assert "Traceback" not in photo["error"] and "Exception" not in photo["error"], photo["error"]
    assert "JPEG" in photo["error"], photo["error"]
    assert photo["renditions"] == {}
    assert wait_until(lambda: site.photo_count(user) == 0, what="the photo count to settle")


def test_a_decompression_bomb_fails_without_stopping_the_pipeline(site: PhotoClient) -> None:
    # Given a ~110 KB PNG whose header claims 30000×30000 pixels (2.7 GB once decoded)
    user = site.new_user()
    bomb = images.decompression_bomb_png(30_000, 30_000)
    assert len(bomb) < 200_000

    # When it is uploaded, followed by an ordinary photo
    bomb_id = site.upload(user, bomb, "image/png")
    good_id = site.upload(user, images.solid_jpeg(640, 480))

    # Then the bomb is rejected by its pixel count with a readable reason
    bombed = site.wait_processed(bomb_id)
    assert bombed["status"] == "failed", bombed
    assert "pixels" in bombed["error"], bombed["error"]
    # And the worker kept going: the next upload still becomes ready
    good = site.wait_processed(good_id)
    assert good["status"] == "ready", good
    assert (good["width"], good["height"]) == (640, 480)
    assert wait_until(lambda: site.photo_count(user) == 1, what="the photo count to settle")


# ------------------------------------------------------------------------------------------------------------
# 3. Upload authorisation refuses bad requests up front
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "size", "field"),
    [
        ("image/gif", 1024, "content_type"),
        ("image/jpeg", 0, "size"),
        ("image/jpeg", MAX_UPLOAD_BYTES + 1, "size"),
    ],
    ids=["gif", "empty", "over-25MB"],
)
def test_a_disallowed_type_or_size_is_refused_before_any_upload_url(site: PhotoClient, content_type: str, size: int,
                                                                    field: str) -> None:
    # Given a logged-in user
    user = site.new_user()

    # When they ask to upload a disallowed type or size
    response = site.call("POST", "/photos", user, json={"content_type": content_type, "size": size})

    # Then the API answers 400 in the error shape, naming the field, and issues no upload URL
    error = assert_error(response, 400)
    assert field in error["message"], error
    assert "upload" not in response.json()
    # And nothing was reserved for them
    assert site.call("GET", f"/users/{user.username}/photos").json()["items"] == []


def test_the_largest_allowed_size_is_accepted(site: PhotoClient) -> None:
    # Given a logged-in user; When they declare exactly 25 MB; Then an upload URL is issued
    user = site.new_user()
    response = site.call("POST", "/photos", user, json={"content_type": "image/png", "size": MAX_UPLOAD_BYTES})
    assert response.status_code == 201, response.text
    assert response.json()["upload"]["url"]


# ------------------------------------------------------------------------------------------------------------
# 4. / 5. Queue semantics: duplicates and poison messages
# ------------------------------------------------------------------------------------------------------------
def test_a_duplicate_s3_notification_does_the_work_once(site: PhotoClient, aws, local_stack: LocalStack) -> None:
    # Given a ready photo
    user = site.new_user()
    photo = site.upload_ready(user, images.solid_jpeg(800, 600))
    assert wait_until(lambda: site.photo_count(user) == 1, what="the photo count to settle")
    s3, sqs = aws("s3"), aws("sqs")
    bucket = local_stack.outputs["MediaBucket"]
    key = upload_key(user.username, photo["id"])
    head = s3.head_object(Bucket=bucket, Key=key)
    queue_url = local_stack.outputs["UploadsQueueUrl"]

    # When S3's notification for the same object is delivered again (twice, at once)
    body = s3_notification(bucket, key, head["ContentLength"], head["ETag"].strip('"'), uuid.uuid4().hex[:16])
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": "a", "MessageBody": body},
                                                        {"Id": "b", "MessageBody": body}])
    wait_until(lambda: queue_depth(sqs, queue_url) == 0, what="the uploads queue to drain")

    # Then nothing changed: still counted once, same version, same renditions
    again = site.photo(photo["id"])
    assert again["status"] == "ready"
    assert again["version"] == photo["version"]
    assert again["renditions"] == photo["renditions"]
    assert wait_until(lambda: site.photo_count(user) == 1, what="the photo count to settle")
    assert [item["id"] for item in site.call("GET", f"/users/{user.username}/photos").json()["items"]] == [photo["id"]]
    # And nothing ended up in the DLQ for it
    assert queue_depth(sqs, local_stack.outputs["UploadsQueueUrl"]) == 0


def dlq_bodies(sqs: Any, dlq_url: str) -> list[str]:
    """Peek at the DLQ's messages (they stay there: visibility timeout 0)."""
    received = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0)
    return [m["Body"] for m in received.get("Messages", [])]


def test_a_poison_message_goes_to_the_dlq_while_its_batch_mate_succeeds(site: PhotoClient, aws,
                                                                       local_stack: LocalStack) -> None:
    # Given a pending photo whose original is put straight into the media bucket
    user = site.new_user()
    jpeg = images.solid_jpeg(500, 500)
    photo_id = site.create_photo(user, jpeg)["photo"]["id"]
    s3, sqs = aws("s3"), aws("sqs")
    bucket = local_stack.outputs["MediaBucket"]
    key = upload_key(user.username, photo_id)
    put = s3.put_object(Bucket=bucket, Key=key, Body=jpeg, ContentType="image/jpeg")
    queue_url, dlq_url = local_stack.outputs["UploadsQueueUrl"], local_stack.outputs["UploadsDlqUrl"]
    poison = f"this is not JSON {{ poison-{uuid.uuid4().hex}"
    valid = s3_notification(bucket, key, len(jpeg), put["ETag"].strip('"'), uuid.uuid4().hex[:16])

    # When one batch carries a body that is not JSON next to a valid notification for that photo
    sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": "poison", "MessageBody": poison},
                                                               {"Id": "valid", "MessageBody": valid}])
    assert not sent.get("Failed"), sent

    # Then the photo becomes ready
    ready = site.wait_processed(photo_id)
    assert ready["status"] == "ready", ready
    # And after maxReceiveCount (5) failed receives the poison, and only it, lands in the DLQ
    dead = wait_until(lambda: [b for b in dlq_bodies(sqs, dlq_url) if b in (poison, valid)], timeout=45,
                      interval=0.5, what="the poison message to reach the uploads DLQ")
    assert dead == [poison]
    # And the uploads queue is left empty (the valid message was not retried into the DLQ)
    wait_until(lambda: queue_depth(sqs, queue_url) == 0, what="the uploads queue to drain")
    assert valid not in dlq_bodies(sqs, dlq_url)
    assert wait_until(lambda: site.photo_count(user) == 1, what="the photo count to settle")


# ------------------------------------------------------------------------------------------------------------
# 6. Only the owner changes a photo
# ------------------------------------------------------------------------------------------------------------
def test_only_the_owner_can_change_edit_and_delete_a_photo(site: PhotoClient, aws, local_stack: LocalStack) -> None:
    # Given Alice's ready phone photo (800×1200 upright) and another user, Bob
    alice, bob = site.new_user(), site.new_user()
    photo = site.upload_ready(alice, images.phone_photo_jpeg(1200, 800), caption="mine")
    path = f"/photos/{photo['id']}"
    crop = {"crop": {"x": 0, "y": 0, "width": 400, "height": 400}}

    # When Bob tries to change, edit or delete it; Then each is 403 not_photo_owner
    assert_error(site.call("PATCH", path, bob, json={"caption": "stolen"}), 403, "not_photo_owner")
    assert_error(site.call("POST", f"{path}/edits", bob, json=crop), 403, "not_photo_owner")
    assert_error(site.call("DELETE", path, bob), 403, "not_photo_owner")
    # When nobody is logged in; Then each is 401 in the error shape
    assert_error(site.call("PATCH", path, json={"caption": "anon"}), 401)
    assert_error(site.call("POST", f"{path}/edits", json=crop), 401)
    assert_error(site.call("DELETE", path), 401)
    # And the photo is untouched
    assert site.photo(photo["id"])["caption"] == "mine"

    # When Alice changes the caption; Then it is 200 with the new caption
    patched = site.call("PATCH", path, alice, json={"caption": "Dunes, cropped soon"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["caption"] == "Dunes, cropped soon"
    assert site.photo(photo["id"])["caption"] == "Dunes, cropped soon"

    # When Alice asks for a crop outside the photo; Then it is 400 before anything is queued
    outside = site.call("POST", f"{path}/edits", alice, json={"crop": {"x": 500, "y": 0, "width": 400, "height": 400}})
    error = assert_error(outside, 400)
    assert "crop" in error["message"], error

    # When Alice crops the top-left 400×400 of the upright photo
    accepted = site.call("POST", f"{path}/edits", alice, json=crop)
    assert accepted.status_code == 202, accepted.text
    edited = wait_until(lambda: (p := site.photo(photo["id"], alice))["version"] != photo["version"] and p,
                        what="the edit to produce a new version")

    # Then a new version exists whose large rendition is the 400×400 red corner
    assert (edited["width"], edited["height"]) == (400, 400)
    assert edited["rendition_sizes"]["large"] == {"width": 400, "height": 400}
    assert edited["renditions"]["large"] != photo["renditions"]["large"]
    large = site.media(edited["renditions"]["large"])
    assert large.status_code == 200
    image = images.open_image(large.content)
    assert abs(image.width - 400) <= 2 and abs(image.height - 400) <= 2, image.size
    assert all(images.close_to(c, images.RED) for c in images.quadrant_colours(image)), images.quadrant_colours(image)
    assert wait_until(lambda: site.photo_count(alice) == 1, what="the photo count to settle")

    # When Alice deletes it
    deleted = site.call("DELETE", path, alice)
    assert deleted.status_code == 204, deleted.text

    # Then it is gone at once: 404 for the photo, and the profile count is back to 0
    assert_error(site.call("GET", path), 404, "photo_not_found")
    assert wait_until(lambda: site.photo_count(alice) == 0, what="the photo count to settle")
    # And the cleanup worker (queued by the delete) removes every rendition and the private original
    urls = [*edited["renditions"].values(), *edited.get("webp", {}).values()]
    wait_until(lambda: all(site.media(url).status_code == 404 for url in urls), what="renditions removed")

    def original_gone() -> bool:
        listed = aws("s3").list_objects_v2(Bucket=local_stack.outputs["MediaBucket"],
                                           Prefix=upload_key(alice.username, photo["id"]))
        return listed.get("KeyCount", 0) == 0

    wait_until(original_gone, what="the original removed")
    assert site.call("GET", f"/users/{alice.username}/photos").json()["items"] == []


# ------------------------------------------------------------------------------------------------------------
# 7. Listing pagination
# ------------------------------------------------------------------------------------------------------------
def test_a_users_photos_page_newest_first_with_a_tamper_proof_cursor(site: PhotoClient) -> None:
    # Given a user with three ready photos
    user = site.new_user()
    ids = [site.upload(user, images.solid_jpeg(320 + 10 * n, 240)) for n in range(3)]
    for photo_id in ids:
        assert site.wait_processed(photo_id)["status"] == "ready"
    listing = f"/users/{user.username}/photos"

    # When the first page of two is read
    first = site.call("GET", listing, params={"limit": 2})
    assert first.status_code == 200, first.text
    first_page = first.json()
    # Then it holds the two newest and a cursor
    assert [item["id"] for item in first_page["items"]] == [ids[2], ids[1]]
    assert first_page["next_cursor"]

    # When the next page is read with that cursor
    second = site.call("GET", listing, params={"limit": 2, "cursor": first_page["next_cursor"]})
    assert second.status_code == 200, second.text
    second_page = second.json()
    # Then it holds the remaining (oldest) photo and no further cursor; no photo appears twice
    assert [item["id"] for item in second_page["items"]] == [ids[0]]
    assert not second_page.get("next_cursor")

    # When the cursor is altered by one character
    cursor = first_page["next_cursor"]
    position = len(cursor) // 3
    tampered = cursor[:position] + ("A" if cursor[position] != "A" else "B") + cursor[position + 1:]
    # Then the listing refuses it
    assert_error(site.call("GET", listing, params={"limit": 2, "cursor": tampered}), 400, "invalid_cursor")

    # When a genuine cursor of this listing is used on another user's listing; Then it is refused too
    other = site.new_user()
    assert_error(site.call("GET", f"/users/{other.username}/photos", params={"limit": 2, "cursor": cursor}), 400,
                 "invalid_cursor")


# ------------------------------------------------------------------------------------------------------------
# 8. The processed original cannot be swapped afterwards
# ------------------------------------------------------------------------------------------------------------
def test_reusing_the_upload_authorisation_cannot_swap_the_original_behind_a_ready_photo(
        site: PhotoClient, aws, local_stack: LocalStack) -> None:
    # Given a ready, all-red photo and the upload authorisation the client got for it (valid for minutes)
    user = site.new_user()
    red, blue = images.solid_jpeg(400, 400, images.RED), images.solid_jpeg(400, 400, images.BLUE)
    size = max(len(red), len(blue)) + 16  # same declared size: JPEG decoders ignore bytes after EOI
    red, blue = red + b"\0" * (size - len(red)), blue + b"\0" * (size - len(blue))
    created = site.create_photo(user, red)
    upload = created["upload"]
    first = requests.post(upload["url"], data=upload["fields"], files={"file": ("a.jpg", red, "image/jpeg")},
                          timeout=30)
    assert first.status_code == 204, first.text
    photo = site.wait_processed(created["photo"]["id"])
    assert photo["status"] == "ready", photo

    # When the same authorisation is used again to upload different bytes of the same size and type
    # (S3 presigned POST policies are not single-use: this works in AWS too until the policy expires)
    second = requests.post(upload["url"], data=upload["fields"], files={"file": ("b.jpg", blue, "image/jpeg")},
                           timeout=30)
    sqs = aws("sqs")
    wait_until(lambda: queue_depth(sqs, local_stack.outputs["UploadsQueueUrl"]) == 0, what="the uploads queue")

    # Then the photo still shows what was processed (red)
    shown = site.photo(photo["id"])
    assert shown["version"] == photo["version"]
    large = images.open_image(site.media(shown["renditions"]["large"]).content)
    assert images.close_to(images.colour_at(large, 0.5, 0.5), images.RED)

    # And an edit renders from the processed original, never from the swapped bytes (or refuses the edit)
    accepted = site.call("POST", f"/photos/{photo['id']}/edits", user,
                        json={"crop": {"x": 0, "y": 0, "width": 200, "height": 200}})
    assert accepted.status_code == 202, accepted.text
    wait_until(lambda: (p := site.photo(photo["id"], user))["version"] != photo["version"] or p.get("error"),
               what="the edit to finish")
    edited = site.photo(photo["id"], user)
    if edited["version"] != photo["version"]:
        image = images.open_image(site.media(edited["renditions"]["large"]).content)
        centre = images.colour_at(image, 0.5, 0.5)
        assert images.close_to(centre, images.RED), (
            f"second upload ({second.status_code}) swapped the original: the edit rendered {centre}, "
            f"not the red photo that was processed and shown")
