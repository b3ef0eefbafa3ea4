"""Per-user and per-IP quotas through the API: each one answers 429 with Retry-After once used up.

Each test sets a low limit through the environment (as a stage would) and pins the quota clock
10.5 s into an hour (and minute), so a window boundary can never fall inside a test and
``Retry-After`` is exact. Per-IP tests give each test its own client IP through the CDN's
client-IP header.
"""
from __future__ import annotations

import random
import time

import pytest
from api_helpers import PASSWORD, body_of, call, member, new_username

from chalicelib import aws, quotas, settings
from chalicelib.models import PhotoRecord, QuotaRecord, bound

PINNED = 1_800_000_000 + 10.5  # 1_800_000_000 is a whole hour (and minute) in epoch seconds
VIEWER_ADDRESS = "CloudFront-Viewer-Address"
NEW_PHOTO = {"content_type": "image/jpeg", "size": 1000}


@pytest.fixture
def limits(client, monkeypatch: pytest.MonkeyPatch):
    """``limits(FOLLOWS="3/60")`` sets quotas for this test (settings re-read), clock pinned."""
    monkeypatch.setattr(quotas, "clock", lambda: PINNED)

    def apply(**values: str) -> None:
        for action, value in values.items():
            monkeypatch.setenv(f"QUOTA_{action}", value)
        settings.reset_settings()

    yield apply
    settings.reset_settings()


def viewer_ip() -> str:
    return f"203.0.113.{random.randrange(1, 255)}:{random.randrange(1024, 65535)}"


def assert_too_many(response, retry_after: int, mentions: str) -> None:
    assert response.status_code == 429, response.body
    assert response.headers["Retry-After"] == str(retry_after)
    error = body_of(response)["error"]
    assert error["code"] == "too_many_requests"
    assert mentions in error["message"]


def ready_photo(client, token: str) -> str:
    response = call(client, "POST", "/photos", NEW_PHOTO, token=token)
    assert response.status_code == 201, response.body
    photo_id = body_of(response)["photo"]["id"]
    bound(PhotoRecord).get(photo_id).update(actions=[
        PhotoRecord.status.set("ready"), PhotoRecord.width.set(800), PhotoRecord.height.set(600),
        PhotoRecord.version.set("v1")])
    return photo_id


# --- uploads -----------------------------------------------------------------------------------------

def test_upload_grants_over_the_hourly_quota_get_429_until_the_hour_ends(client, limits, monkeypatch):
    # Given a stage allowing 2 upload grants an hour (and plenty of pending uploads)
    limits(UPLOAD_GRANTS="2/3600", PENDING_UPLOADS="100")
    _, token = member(client)
    # When the user asks for three grants
    statuses = [call(client, "POST", "/photos", NEW_PHOTO, token=token).status_code for _ in range(2)]
    third = call(client, "POST", "/photos", NEW_PHOTO, token=token)
    # Then the first two are granted and the third is refused until the hour ends
    assert statuses == [201, 201]
    assert_too_many(third, 3600 - 10, "at most 2 every hour")
    # And in the next hour the user gets grants again
    monkeypatch.setattr(quotas, "clock", lambda: PINNED + 3600)
    assert call(client, "POST", "/photos", NEW_PHOTO, token=token).status_code == 201


def test_an_invalid_upload_request_uses_no_upload_grant(client, limits):
    # Given 1 grant an hour
    limits(UPLOAD_GRANTS="1/3600", PENDING_UPLOADS="100")
    _, token = member(client)
    # When the user first sends an invalid request, then a valid one
    bad = call(client, "POST", "/photos", {"content_type": "image/gif", "size": 1000}, token=token)
    good = call(client, "POST", "/photos", NEW_PHOTO, token=token)
    # Then the invalid one is a 400 and the valid one still gets the grant
    assert (bad.status_code, good.status_code) == (400, 201)


def test_upload_grant_quotas_are_per_user(client, limits):
    # Given 1 grant an hour and a user who used it
    limits(UPLOAD_GRANTS="1/3600", PENDING_UPLOADS="100")
    _, first = member(client)
    _, second = member(client)
    assert call(client, "POST", "/photos", NEW_PHOTO, token=first).status_code == 201
    # When another user asks / Then they get their own grant
    assert call(client, "POST", "/photos", NEW_PHOTO, token=second).status_code == 201
    assert call(client, "POST", "/photos", NEW_PHOTO, token=first).status_code == 429


def test_at_most_the_pending_quota_of_uploads_wait_for_processing_at_once(client, limits):
    # Given at most 2 pending uploads at once
    limits(UPLOAD_GRANTS="100/3600", PENDING_UPLOADS="2")
    _, token = member(client)
    created = [body_of(call(client, "POST", "/photos", NEW_PHOTO, token=token))["photo"]["id"] for _ in range(2)]
    # When a third upload is asked for while both are pending
    refused = call(client, "POST", "/photos", NEW_PHOTO, token=token)
    # Then it is refused with a short Retry-After
    assert_too_many(refused, quotas.PENDING_RETRY_AFTER_SECONDS, "at most 2 at once")
    # And once one of them is processed, a new upload is granted
    bound(PhotoRecord).get(created[0]).update(actions=[PhotoRecord.status.set("ready")])
    assert call(client, "POST", "/photos", NEW_PHOTO, token=token).status_code == 201


def test_expired_or_abandoned_pending_uploads_do_not_count_as_pending(client, limits):
    # Given at most 1 pending upload, and a user whose pending upload has expired (TTL passed)
    limits(UPLOAD_GRANTS="100/3600", PENDING_UPLOADS="1")
    _, token = member(client)
    expired = body_of(call(client, "POST", "/photos", NEW_PHOTO, token=token))["photo"]["id"]
    aws.client("dynamodb").update_item(
        TableName=settings.get_settings().photos_table, Key={"photo_id": {"S": expired}},
        UpdateExpression="SET expires_at = :t", ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 1)}})
    # When the user asks for another upload / Then it is granted
    second = call(client, "POST", "/photos", NEW_PHOTO, token=token)
    assert second.status_code == 201, second.body
    # And that one, still pending and not expired, does count
    assert call(client, "POST", "/photos", NEW_PHOTO, token=token).status_code == 429


# --- follows and likes -------------------------------------------------------------------------------

def test_follows_and_unfollows_over_the_per_minute_quota_get_429(client, limits):
    # Given 3 follow actions a minute
    limits(FOLLOWS="3/60")
    follower, token = member(client)
    star, _ = member(client, log_in=False)
    other, _ = member(client, log_in=False)
    # When the user follows, unfollows and follows again, then follows someone else
    statuses = [call(client, method, f"/users/{star}/follow", token=token).status_code
                for method in ("PUT", "DELETE", "PUT")]
    fourth = call(client, "PUT", f"/users/{other}/follow", token=token)
    # Then the first three succeed and the fourth waits for the minute to end
    assert statuses == [204, 204, 204]
    assert_too_many(fourth, 60 - 10, "at most 3 every minute")
    # And the refused follow did nothing
    assert body_of(call(client, "GET", f"/users/{other}"))["followers"] == 0


def test_likes_and_unlikes_over_the_per_minute_quota_get_429(client, limits):
    # Given 2 like actions a minute
    limits(LIKES="2/60")
    _, owner_token = member(client)
    photo_id = ready_photo(client, owner_token)
    _, token = member(client)
    # When a user likes, unlikes, and likes again
    first = call(client, "PUT", f"/photos/{photo_id}/like", token=token)
    second = call(client, "DELETE", f"/photos/{photo_id}/like", token=token)
    third = call(client, "PUT", f"/photos/{photo_id}/like", token=token)
    # Then the third is refused and counted nothing
    assert (first.status_code, second.status_code) == (200, 200)
    assert_too_many(third, 60 - 10, "at most 2 every minute")
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["likes"] == 0
    # And another user may still like it
    _, someone = member(client)
    assert body_of(call(client, "PUT", f"/photos/{photo_id}/like", token=someone))["likes"] == 1


def test_a_repeated_like_and_a_like_of_a_missing_or_pending_photo_use_no_like_quota(client, limits):
    # Given 2 like actions a minute (the count is taken in the like's own transaction)
    limits(LIKES="2/60")
    _, owner_token = member(client)
    photo_id, other_id = ready_photo(client, owner_token), ready_photo(client, owner_token)
    pending = body_of(call(client, "POST", "/photos", NEW_PHOTO, token=owner_token))["photo"]["id"]
    _, token = member(client)
    # When the user likes a photo twice, likes a missing and a pending photo, then another photo
    repeated = [call(client, "PUT", f"/photos/{photo_id}/like", token=token).status_code for _ in range(2)]
    missing = call(client, "PUT", "/photos/01HZZZZZZZZZZZZZZZZZZZZZZZ/like", token=token)
    not_ready = call(client, "PUT", f"/photos/{pending}/like", token=token)
    other = call(client, "PUT", f"/photos/{other_id}/like", token=token)
    # Then only the two likes that changed something were counted: the other photo's is the second
    assert repeated == [200, 200]
    assert (missing.status_code, not_ready.status_code) == (404, 409)
    assert other.status_code == 200, other.body
    assert body_of(other)["likes"] == 1
    # And the next change is refused
    assert_too_many(call(client, "DELETE", f"/photos/{other_id}/like", token=token), 60 - 10, "at most 2 every minute")


def test_a_repeated_follow_and_a_follow_of_an_unknown_user_use_no_follow_quota(client, limits):
    # Given 2 follow actions a minute
    limits(FOLLOWS="2/60")
    _, token = member(client)
    star, _ = member(client, log_in=False)
    other, _ = member(client, log_in=False)
    third, _ = member(client, log_in=False)
    # When the user follows a name nobody has, follows the star twice, then someone else
    unknown = call(client, "PUT", f"/users/{new_username()}/follow", token=token)
    repeated = [call(client, "PUT", f"/users/{star}/follow", token=token).status_code for _ in range(2)]
    second = call(client, "PUT", f"/users/{other}/follow", token=token)
    # Then the unknown name is a 404, and the repeat counted nothing: the follow of the other is allowed
    assert unknown.status_code == 404 and body_of(unknown)["error"]["code"] == "user_not_found"
    assert repeated == [204, 204] and second.status_code == 204, second.body
    # And the next one is refused, having followed nobody
    assert_too_many(call(client, "PUT", f"/users/{third}/follow", token=token), 60 - 10, "at most 2 every minute")
    assert body_of(call(client, "GET", f"/users/{third}"))["followers"] == 0


# --- per client IP -----------------------------------------------------------------------------------

def sign_up_from(client, address: str, username: str | None = None):
    username = username or new_username()
    return client.http.post("/auth/signup", headers={"Content-Type": "application/json", VIEWER_ADDRESS: address},
                            body=('{"username": "%s", "email": "%s@example.com", "password": "%s"}'
                                  % (username, username, PASSWORD)).encode())


def log_in_from(client, address: str, username: str, password: str):
    return client.http.post("/auth/login", headers={"Content-Type": "application/json", VIEWER_ADDRESS: address},
                            body=('{"username": "%s", "password": "%s"}' % (username, password)).encode())


def test_sign_ups_from_one_client_ip_over_the_hourly_quota_get_429(client, limits, monkeypatch):
    # Given 2 sign-ups an hour per IP, the client IP read from the CDN's viewer-address header
    monkeypatch.setenv("CLIENT_IP_HEADER", VIEWER_ADDRESS)
    limits(SIGNUPS="2/3600")
    address = viewer_ip()
    # When three accounts are created from one IP (different ports: one client behind one address)
    statuses = [sign_up_from(client, f"{address.split(':')[0]}:{port}").status_code for port in (1111, 2222)]
    third_name = new_username()
    third = sign_up_from(client, address, third_name)
    # Then the third is refused and no account was made for it
    assert statuses == [201, 201]
    assert_too_many(third, 3600 - 10, "at most 2 every hour")
    assert call(client, "GET", f"/users/{third_name}").status_code == 404
    # And another IP may still sign up
    assert sign_up_from(client, "198.51.100.9:4000").status_code == 201


def test_wrong_passwords_from_one_client_ip_over_the_quota_block_its_logins_until_the_window_ends(
        client, limits, monkeypatch):
    # Given 2 failed logins per 15 minutes per IP, and an account
    monkeypatch.setenv("CLIENT_IP_HEADER", VIEWER_ADDRESS)
    limits(FAILED_LOGINS="2/900")
    username, _ = member(client, log_in=False)
    address = viewer_ip()
    # When the right password is used twice (successes do not count), then a wrong one twice
    good = [log_in_from(client, address, username, PASSWORD).status_code for _ in range(3)]
    wrong = [log_in_from(client, address, username, "Wr0ngPassword").status_code for _ in range(2)]
    # Then every login from that IP is refused, the right password too, until the window ends
    assert good == [200, 200, 200] and wrong == [401, 401]
    assert_too_many(log_in_from(client, address, username, PASSWORD), 900 - 10, "failed logins")
    # And the same account logs in from another IP
    assert log_in_from(client, "198.51.100.77:4000", username, PASSWORD).status_code == 200


def test_without_the_cdn_header_setting_a_forged_viewer_address_is_ignored(client, limits, monkeypatch):
    # Given a stage that does not trust any client-IP header (local: chalice's sourceIp is the client),
    # in an hour of its own (the module's other sign-ups come from the same 127.0.0.1)
    limits(SIGNUPS="1/3600")
    monkeypatch.setattr(quotas, "clock", lambda: PINNED + 30 * 86400)
    # When two sign-ups claim different viewer addresses
    first = sign_up_from(client, viewer_ip())
    second = sign_up_from(client, viewer_ip())
    # Then both count against the connection's IP: the second one is refused
    assert first.status_code == 201
    assert second.status_code == 429


def test_a_subject_over_its_quota_is_refused_by_the_container_without_a_new_count(client, limits):
    # Given a user who used up 1 follow a minute and was refused once
    limits(FOLLOWS="1/60")
    follower, token = member(client)
    star, _ = member(client, log_in=False)
    assert call(client, "PUT", f"/users/{star}/follow", token=token).status_code == 204
    assert call(client, "DELETE", f"/users/{star}/follow", token=token).status_code == 429
    # When the stored count disappears (so only the container's memory can refuse)
    key = quotas.quota_key(quotas.FOLLOWS, follower, quotas.window_start(PINNED, 60))
    bound(QuotaRecord).get(key).delete()
    # Then the user is still refused for the rest of the window
    assert call(client, "DELETE", f"/users/{star}/follow", token=token).status_code == 429
