"""Deleting an account over HTTP, through the real local stack (API, pump, workers, embedded AWS)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import images
from api_client import PASSWORD
from crashing_pump import CRASH_STATUS
from test_photo_pipeline import PhotoClient, User, aws, site, wait_until  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def everything_mentioning(aws_client, needles: list[str]) -> list[str]:
    """Every item of every table and every object of every bucket in the embedded AWS naming a needle."""
    found = []
    dynamodb = aws_client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                text = json.dumps(item, sort_keys=True)
                if any(n in text for n in needles):
                    found.append(f"{table}: {text}")
    s3 = aws_client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                if any(n in obj["Key"] for n in needles):
                    found.append(f"s3://{bucket['Name']}/{obj['Key']}")
    return found


def allowed_residue(entry: str, gone: str) -> bool:
    """Only the sign-out cut-off (expires one access-token lifetime after the erasure: access tokens
    are verified offline); other users' likes of the erased photos go too."""
    return f'"token_id": {{"S": "user#{gone}"}}' in entry


def progress_of(site: PhotoClient, status_url: str) -> dict[str, Any]:
    return site.api.session.get(site.site_url + status_url, timeout=30).json()


def finished(site: PhotoClient, status_url: str) -> dict | None:
    progress = progress_of(site, status_url)
    return progress if progress["status"] == "done" else None


def profile(site: PhotoClient, user: User) -> dict[str, Any]:
    response = site.call("GET", f"/users/{user.username}", user)  # her own page: read fresh
    assert response.status_code == 200, response.text
    return response.json()


def test_a_deleted_account_leaves_nothing_behind_and_other_counts_stay_exact(site: PhotoClient, aws) -> None:
    # Given two users who follow each other and like each other's photo
    gone, friend = site.new_user(), site.new_user()
    gone_photo = site.upload_ready(gone, images.solid_jpeg(320, 240), caption="mine")
    friend_photo = site.upload_ready(friend, images.solid_jpeg(320, 240), caption="theirs")
    for user, other in ((gone, friend), (friend, gone)):
        assert site.call("PUT", f"/users/{other.username}/follow", user).status_code == 204
    for user, photo in ((gone, friend_photo), (friend, gone_photo)):
        assert site.call("PUT", f"/photos/{photo['id']}/like", user).status_code == 200
    assert wait_until(lambda: profile(site, friend)["followers"] == 1 and site.photo(friend_photo["id"], friend)["likes"] == 1,
                      what="the counts to settle (counter aggregator and cache delay)")

    # When one of them deletes the account (re-confirming the password)
    response = site.call("DELETE", "/me", gone, json={"password": PASSWORD})
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]
    assert status_url.startswith("/api/me/deletion?job=")

    # Then the erasure completes, and nothing in any table or bucket refers to the user or their photo
    progress = wait_until(lambda: finished(site, status_url), what="the account erasure to finish")
    assert progress["steps_done"] == progress["steps_total"]
    left = [e for e in everything_mentioning(aws, [gone.username, gone_photo["id"]])
            if not allowed_residue(e, gone.username)]
    assert left == []
    # And the other user's counts are exact as she sees them (her own profile and photo are read fresh,
    # not from the API container's cache: the erasure ran in the worker's process), once aggregated
    def counts_exact() -> bool:
        shown = profile(site, friend)
        return shown["followers"] == 0 and shown["following"] == 0 and site.photo(friend_photo["id"], friend)["likes"] == 0

    assert wait_until(counts_exact, what="the other user's counts to show the erasure")
    # And the deleted user's token is refused, and the name cannot be signed up again
    assert site.call("GET", "/me", gone).status_code == 401
    assert site.api.signup(gone.username).status_code == 409
    assert site.api.login(gone.username).status_code in (401, 403)


def test_an_erasure_whose_worker_is_killed_mid_way_resumes_and_erases_everything_once(site: PhotoClient, aws,
                                                                                      local_stack) -> None:
    # Given a user followed by two others who like their photo, who follows and likes one of them back
    gone, friend, fan = site.new_user(), site.new_user(), site.new_user()
    gone_photo = site.upload_ready(gone, images.solid_jpeg(320, 240), caption="mine")
    friend_photo = site.upload_ready(friend, images.solid_jpeg(320, 240), caption="theirs")
    for user, other in ((gone, friend), (friend, gone), (fan, gone)):
        assert site.call("PUT", f"/users/{other.username}/follow", user).status_code == 204
    for user, photo in ((gone, friend_photo), (friend, gone_photo), (fan, gone_photo), (fan, friend_photo)):
        assert site.call("PUT", f"/photos/{photo['id']}/like", user).status_code == 200
    # And the stack's worker process replaced by one that dies on the erasure's second follower
    # transaction (the first follower's edge and counts are gone, the second's request never leaves)
    local_stack.stop_pump()
    doomed = local_stack.start_pump(
        [sys.executable, str(Path(__file__).with_name("crashing_pump.py"))],
        {"CRASH_OPERATION": "TransactWriteItems", "CRASH_NEEDLE": f"followers#{gone.username}#", "CRASH_AFTER": "1"})
    try:
        # When the user deletes the account and the worker is killed part-way
        response = site.call("DELETE", "/me", gone, json={"password": PASSWORD})
        assert response.status_code == 202, response.text
        status_url = response.json()["status_url"]
        assert doomed.wait(timeout=120) == CRASH_STATUS
        # Then the job stands part-way: one follower edge (and its count) erased, the other still there
        progress = progress_of(site, status_url)
        assert progress["status"] == "running" and progress["steps_done"] < progress["steps_total"]
        left = everything_mentioning(aws, [f"followers#{gone.username}#"])
        assert len([e for e in left if '"pk": {"S": "followers#' in e]) == 1, left
        assert sum(int(json.loads(e.split(": ", 1)[1])["n"]["N"]) for e in left if '"counter_id"' in e and '#total"' not in e) == 1, left
    finally:
        local_stack.stop_pump()
        local_stack.start_pump()  # the restarted worker (SQS redelivers the dead one's message)

    # And once restarted, the erasure finishes, and nothing refers to the user or their photo
    progress = wait_until(lambda: finished(site, status_url), what="the resumed account erasure to finish")
    assert progress["steps_done"] == progress["steps_total"]
    assert [e for e in everything_mentioning(aws, [gone.username, gone_photo["id"]])
            if not allowed_residue(e, gone.username)] == []

    # And every count was adjusted exactly once (the crashed follower's included)
    def counts_exact() -> bool:
        shown_friend, shown_fan = profile(site, friend), profile(site, fan)
        return (shown_friend["followers"], shown_friend["following"], shown_fan["following"],
                site.photo(friend_photo["id"], friend)["likes"]) == (0, 0, 0, 1)

    assert wait_until(counts_exact, what="the other users' counts to show the erasure")
