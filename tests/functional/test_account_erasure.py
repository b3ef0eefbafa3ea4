"""DELETE /me: the account is locked out at once and a resumable worker erases everything of it."""
from __future__ import annotations

import json

import pytest

from api_helpers import PASSWORD, body_of, call, member
from chalicelib import celebrities, erasure, settings
from chalicelib.models import (CounterRecord, FanoutJobRecord, FeedItemRecord, GraphEdgeRecord, PhotoRecord,
                               QuotaRecord, RevokedTokenRecord, UserRecord, bound)
from chalicelib.repositories import counters
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING, LIKES
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from faults import dynamodb_client, intercept
from test_feed import post_ready_photo, run_worker, take_fanout_messages

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

TABLES = (UserRecord, RevokedTokenRecord, CounterRecord, PhotoRecord, GraphEdgeRecord, FeedItemRecord,
          FanoutJobRecord, QuotaRecord)


@pytest.fixture
def erasure_client(client):
    celebrities.reset_cache()
    yield client
    celebrities.reset_cache()


def put_media(deployed, photo: PhotoRecord) -> None:
    s3 = deployed["clients"]("s3")
    bucket = deployed["outputs"]["MediaBucket"]
    s3.put_object(Bucket=bucket, Key=f"uploads/{photo.owner}/{photo.photo_id}", Body=b"original")
    s3.put_object(Bucket=bucket, Key=f"media/renditions/{photo.photo_id}/v1/small.jpeg", Body=b"small")


def two_friends_and_a_fan(client, deployed):
    """``gone`` and ``friend`` follow each other and like each other's photo; ``fan`` follows and likes both."""
    gone, gone_token = member(client)
    friend, friend_token = member(client)
    fan, fan_token = member(client)
    gone_photo, friend_photo = post_ready_photo(client, gone_token), post_ready_photo(client, friend_token)
    put_media(deployed, gone_photo)
    put_media(deployed, friend_photo)
    for token, other in ((gone_token, friend), (friend_token, gone), (fan_token, gone), (fan_token, friend)):
        assert call(client, "PUT", f"/users/{other}/follow", token=token).status_code == 204
    for token, photo in ((gone_token, friend_photo), (friend_token, gone_photo), (fan_token, gone_photo),
                         (fan_token, friend_photo)):
        assert call(client, "PUT", f"/photos/{photo.photo_id}/like", token=token).status_code == 200
    run_worker(client, *take_fanout_messages(deployed, "follow_backfill"))
    return (gone, gone_token, gone_photo), (friend, friend_token, friend_photo), (fan, fan_token)


def mentions(deployed, needles: list[str]) -> list[str]:
    """Every item of every table and every object of every bucket that contains one of ``needles``."""
    found = []
    for model in TABLES:
        for item in bound(model).scan():
            text = json.dumps(item.attribute_values, default=str)
            if any(n in text for n in needles):
                found.append(f"{model.__name__}: {text}")
    s3 = deployed["clients"]("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            if any(n in obj["Key"] for n in needles):
                found.append(f"s3://{bucket['Name']}/{obj['Key']}")
    return found


def expected_residue(item: str, gone: str, gone_photo: PhotoRecord) -> bool:
    """What may stay: the sign-out cut-off until the last access token expires (nothing else, not
    even other users' likes of the erased photos)."""
    return f'"token_id": "user#{gone}"' in item


def delete_account(client, token: str, password: str = PASSWORD):
    return call(client, "DELETE", "/me", {"password": password}, token=token)


def test_deleting_an_account_needs_the_current_password(erasure_client):
    _, token = member(erasure_client)
    response = delete_account(erasure_client, token, "Wrong0password")
    assert response.status_code == 401
    assert body_of(response)["error"]["code"] == "invalid_credentials"
    assert call(erasure_client, "GET", "/me", token=token).status_code == 200
    assert call(erasure_client, "DELETE", "/me", {}, token=token).status_code == 400


def test_wrong_passwords_at_deletion_count_against_the_failed_login_quota(erasure_client, monkeypatch):
    # Given 2 failed logins per 15 minutes per client IP, and a signed-in user on a fresh IP
    monkeypatch.setenv("QUOTA_FAILED_LOGINS", "2/900")
    monkeypatch.setenv("CLIENT_IP_HEADER", "CloudFront-Viewer-Address")
    settings.reset_settings()
    _, token = member(erasure_client)
    address = "198.51.100.213:443"  # no other test of this module (one stack) uses it
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
               "CloudFront-Viewer-Address": address}

    def attempt(password: str) -> int:
        return erasure_client.http.request("DELETE", "/me", headers=headers,
                                           body=json.dumps({"password": password}).encode()).status_code

    # When a wrong password is tried three times / Then the third is refused before Cognito is asked,
    # the right one too (the quota is no oracle), and the account is untouched
    assert [attempt("Wrong0password") for _ in range(3)] == [401, 401, 429]
    assert attempt(PASSWORD) == 429
    assert call(erasure_client, "GET", "/me", token=token).status_code == 200
    settings.reset_settings()


def test_from_the_202_on_the_account_is_locked_out_and_its_name_reserved(erasure_client, deployed):
    (gone, token, photo), _, _ = two_friends_and_a_fan(erasure_client, deployed)
    response = delete_account(erasure_client, token)
    assert response.status_code == 202, response.body
    accepted = body_of(response)
    assert accepted["status_url"] == f"/api/me/deletion?job={accepted['job']}"

    assert call(erasure_client, "GET", "/me", token=token).status_code == 401
    assert call(erasure_client, "GET", f"/users/{gone}").status_code == 404
    assert call(erasure_client, "GET", f"/photos/{photo.photo_id}").status_code == 404
    login = call(erasure_client, "POST", "/auth/login", {"username": gone, "password": PASSWORD})
    assert login.status_code in (401, 403)
    signup = call(erasure_client, "POST", "/auth/signup",
                  {"username": gone, "email": "someone@example.com", "password": PASSWORD})
    assert signup.status_code == 409
    status = call(erasure_client, "GET", f"/me/deletion?job={accepted['job']}")
    assert body_of(status)["status"] == "requested"


def test_the_worker_erases_everything_of_the_user_and_keeps_other_counts_exact(erasure_client, deployed):
    (gone, token, gone_photo), (friend, _, friend_photo), (fan, _) = two_friends_and_a_fan(erasure_client, deployed)
    assert call(erasure_client, "POST", "/me/export", token=token).status_code == 202  # a zip to erase too
    run_worker(erasure_client, *take_fanout_messages(deployed, "export_account"))
    job = body_of(delete_account(erasure_client, token))["job"]
    run_worker(erasure_client, *take_fanout_messages(deployed, "erase_account"))

    assert body_of(call(erasure_client, "GET", f"/me/deletion?job={job}"))["status"] == "done"
    left = [m for m in mentions(deployed, [gone, gone_photo.photo_id])
            if not expected_residue(m, gone, gone_photo)]
    assert left == []
    assert counters.read(FOLLOWERS, friend) == 1 and counters.read(FOLLOWING, friend) == 0  # the fan follows on
    assert counters.read(FOLLOWING, fan) == 1
    assert counters.read(LIKES, friend_photo.photo_id) == 1
    assert erasure.is_reserved(gone)
    reservation = [r for r in bound(RevokedTokenRecord).scan() if r.token_id.startswith("erased#")
                   and r.token_id == f"erased#{erasure.name_hashes(gone)[0]}"]
    assert len(reservation) == 1 and gone not in json.dumps(reservation[0].attribute_values)


def test_an_erasure_that_crashes_mid_way_resumes_without_counting_twice(erasure_client, deployed):
    (gone, token, gone_photo), (friend, _, friend_photo), (fan, _) = two_friends_and_a_fan(erasure_client, deployed)
    delete_account(erasure_client, token)
    messages = take_fanout_messages(deployed, "erase_account")
    # The worker dies in the followers step, after the first follower's edge went (the second one's
    # transaction never reaches DynamoDB): everything before it is done, the rest is not.
    followers_transactions = []

    def crash_on_the_second_follower(params: dict) -> None:
        if f"followers#{gone}#" in str(params):
            followers_transactions.append(params)
            if len(followers_transactions) == 2:
                raise ConnectionError("the worker died here")

    with intercept(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", crash_on_the_second_follower):
        with pytest.raises(BatchProcessingError):
            erasure_client.lambda_.invoke("fan_out_feed", _event(messages))
    assert len(followers_transactions) == 2
    assert counters.read(FOLLOWERS, gone) == 1  # one follower erased, one still there
    run_worker(erasure_client, *messages)  # the redelivery
    run_worker(erasure_client, *messages)  # and once more: harmless

    assert counters.read(FOLLOWERS, friend) == 1 and counters.read(FOLLOWING, friend) == 0
    assert counters.read(FOLLOWING, fan) == 1
    assert counters.read(LIKES, friend_photo.photo_id) == 1
    left = [m for m in mentions(deployed, [gone, gone_photo.photo_id])
            if not expected_residue(m, gone, gone_photo)]
    assert left == []


def likers_mirrors(photo_id: str) -> list[tuple[str, str]]:
    return sorted((r.pk, r.sk) for r in bound(GraphEdgeRecord).scan() if r.pk.startswith(f"likers#{photo_id}#"))


def test_a_like_writes_its_likers_mirror_and_an_unlike_removes_it(erasure_client):
    # Given a photo whose like counter was spread over 4 shards after some likes landed
    owner, owner_token = member(erasure_client)
    photo = post_ready_photo(erasure_client, owner_token)
    early = [member(erasure_client) for _ in range(2)]
    for _, token in early:
        assert call(erasure_client, "PUT", f"/photos/{photo.photo_id}/like", token=token).status_code == 200
    counters.reshard(LIKES, photo.photo_id, 4)
    late = [member(erasure_client) for _ in range(3)]
    for _, token in late:
        assert call(erasure_client, "PUT", f"/photos/{photo.photo_id}/like", token=token).status_code == 200
    # Then every like has exactly one mirror, in the shard its edge names
    edges = {r.pk[len("liked#"):]: int(r.shard) for r in bound(GraphEdgeRecord).scan()
             if r.pk.startswith("liked#") and r.sk == photo.photo_id}
    assert likers_mirrors(photo.photo_id) == sorted((f"likers#{photo.photo_id}#{shard}", user)
                                                    for user, shard in edges.items())
    # When the early likers unlike after the resharding (twice: the second is a no-op)
    for _, token in early + early:
        assert call(erasure_client, "DELETE", f"/photos/{photo.photo_id}/like", token=token).status_code == 200
    # Then their mirrors are gone wherever they were written, and the count is exact
    assert sorted(user for _, user in likers_mirrors(photo.photo_id)) == sorted(user for user, _ in late)
    assert counters.read(LIKES, photo.photo_id) == 3


def test_an_erasure_removes_other_users_likes_of_the_photos_in_every_likers_shard(erasure_client, deployed):
    # Given an owner's photo liked by users spread over 4 likers shards, one of whom likes another photo too
    gone, gone_token = member(erasure_client)
    gone_photo = post_ready_photo(erasure_client, gone_token)
    counters.reshard(LIKES, gone_photo.photo_id, 4)
    fans = [member(erasure_client) for _ in range(5)]
    _, other_token = member(erasure_client)
    other_photo = post_ready_photo(erasure_client, other_token)
    for _, token in fans:
        assert call(erasure_client, "PUT", f"/photos/{gone_photo.photo_id}/like", token=token).status_code == 200
    assert call(erasure_client, "PUT", f"/photos/{other_photo.photo_id}/like", token=fans[0][1]).status_code == 200
    assert len({r.pk for r in bound(GraphEdgeRecord).scan() if r.pk.startswith(f"likers#{gone_photo.photo_id}#")}) > 1
    # When the owner's account is erased (the message delivered twice)
    delete_account(erasure_client, gone_token)
    messages = take_fanout_messages(deployed, "erase_account")
    run_worker(erasure_client, *messages)
    run_worker(erasure_client, *messages)
    # Then no item refers to the photo any more, and the fans' other likes and counts are untouched
    assert [m for m in mentions(deployed, [gone, gone_photo.photo_id])
            if not expected_residue(m, gone, gone_photo)] == []
    liked = call(erasure_client, "GET", f"/photos/{other_photo.photo_id}", token=fans[0][1])
    assert body_of(liked)["liked"] is True and counters.read(LIKES, other_photo.photo_id) == 1


def _event(messages):
    from test_feed import sqs_event

    return sqs_event(*messages)


def test_progress_of_an_unknown_deletion_is_a_404(erasure_client):
    response = call(erasure_client, "GET", "/me/deletion?job=" + "0" * 32)
    assert response.status_code == 404
    assert body_of(response)["error"]["code"] == "not_found"
