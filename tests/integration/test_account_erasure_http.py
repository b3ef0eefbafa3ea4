"""Deleting an account over HTTP, through the real local stack (API, pump, workers, embedded AWS)."""
from __future__ import annotations

import json
from typing import Any

import pytest

import images
from api_client import PASSWORD
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


def allowed_residue(entry: str, gone: str, photo_id: str) -> bool:
    """The sign-out cut-off (expires one access-token lifetime after the erasure: access tokens are
    verified offline) and another user's like edge naming the erased photo's id (no likers index yet)."""
    cutoff = f'"token_id": {{"S": "user#{gone}"}}' in entry
    foreign_like = '"pk": {"S": "liked#' in entry and f'"sk": {{"S": "{photo_id}"}}' in entry and gone not in entry
    return cutoff or foreign_like


def profile(site: PhotoClient, user: User) -> dict[str, Any]:
    response = site.call("GET", f"/users/{user.username}")
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
    assert profile(site, friend)["followers"] == 1 and site.photo(friend_photo["id"])["likes"] == 1

    # When one of them deletes the account (re-confirming the password)
    response = site.call("DELETE", "/me", gone, json={"password": PASSWORD})
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]
    assert status_url.startswith("/api/me/deletion?job=")

    # Then the erasure completes, and nothing in any table or bucket refers to the user or their photo
    def finished() -> dict | None:
        progress = site.api.session.get(site.site_url + status_url, timeout=30).json()
        return progress if progress["status"] == "done" else None

    progress = wait_until(finished, what="the account erasure to finish")
    assert progress["steps_done"] == progress["steps_total"]
    left = [e for e in everything_mentioning(aws, [gone.username, gone_photo["id"]])
            if not allowed_residue(e, gone.username, gone_photo["id"])]
    assert left == []
    # And the other user's counts are exact (once the API container's cached totals have aged out:
    # the counter and photo TTLs of chalicelib.cache; the erasure ran in the worker's process)
    def counts_exact() -> bool:
        shown = profile(site, friend)
        return shown["followers"] == 0 and shown["following"] == 0 and site.photo(friend_photo["id"])["likes"] == 0

    assert wait_until(counts_exact, what="the other user's counts to show the erasure")
    # And the deleted user's token is refused, and the name cannot be signed up again
    assert site.call("GET", "/me", gone).status_code == 401
    assert site.api.signup(gone.username).status_code == 409
    assert site.api.login(gone.username).status_code in (401, 403)
