"""Parallel requests through the local site give exact counts (the embedded AWS serialises moto).

These were flaky thread-based tests against in-process moto, which is not thread-safe; here every
request is a real HTTP request through the site origin to chalice local and the embedded AWS
(:mod:`devstack.embedded_aws`), the way parallel clients and load tests reach a developer's stack.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import images
from api_client import ApiClient
from devstack.stack import LocalStack
from test_photo_pipeline import PhotoClient, User, wait_until

pytestmark = pytest.mark.integration

PARALLEL = 10


@pytest.fixture
def site(api: ApiClient, local_stack: LocalStack) -> PhotoClient:
    return PhotoClient(api, local_stack.site_url)


def in_parallel(local_stack: LocalStack, jobs: Iterable[Callable[[PhotoClient], Any]]) -> list[Any]:
    """Run every job at once, each with its own HTTP connection; returns their results in order."""
    jobs = list(jobs)

    def run(job: Callable[[PhotoClient], Any]) -> Any:
        client = ApiClient(local_stack.site_url + "/api", timeout=120.0)
        try:
            return job(PhotoClient(client, local_stack.site_url))
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def profile(site: PhotoClient, user: User) -> dict:
    response = site.call("GET", f"/users/{user.username}", user)  # her own page: read fresh
    assert response.status_code == 200, response.text
    return response.json()


def status_of(method: str, path: str, user: User) -> Callable[[PhotoClient], int]:
    return lambda client: client.call(method, path, user).status_code


def test_parallel_follows_of_one_user_count_every_follower_once(site: PhotoClient, local_stack: LocalStack):
    # Given a user and several would-be followers, each of whom sends her follow twice (a retry)
    star = site.new_user()
    fans = [site.new_user() for _ in range(PARALLEL)]
    follow = f"/users/{star.username}/follow"
    # When all the follows arrive at once
    statuses = in_parallel(local_stack, [status_of("PUT", follow, fan) for fan in fans * 2])
    # Then every request succeeded and each follower is counted exactly once, on both sides
    assert statuses == [204] * (PARALLEL * 2)
    assert wait_until(lambda: profile(site, star)["followers"] == PARALLEL, what="the count to settle", timeout=90)
    assert wait_until(lambda: [profile(site, fan)["following"] for fan in fans] == [1] * PARALLEL,
                      what="the counts to settle", timeout=90)
    listed = site.call("GET", f"/users/{star.username}/followers", params={"limit": 50}).json()["items"]
    assert sorted(item["username"] for item in listed) == sorted(fan.username for fan in fans)
    # When they all unfollow at once, twice each
    statuses = in_parallel(local_stack, [status_of("DELETE", follow, fan) for fan in fans * 2])
    # Then the counts are back to exactly zero, never negative
    assert statuses == [204] * (PARALLEL * 2)
    assert wait_until(lambda: profile(site, star)["followers"] == 0, what="the count to settle", timeout=90)
    assert wait_until(lambda: [profile(site, fan)["following"] for fan in fans] == [0] * PARALLEL,
                      what="the counts to settle", timeout=90)


def test_parallel_likes_and_unlikes_of_one_photo_give_exact_counts(site: PhotoClient, local_stack: LocalStack):
    # Given a ready photo and several fans, each of whom taps like twice
    owner = site.new_user()
    photo_id = site.upload_ready(owner, images.solid_jpeg(320, 240))["id"]
    fans = [site.new_user() for _ in range(PARALLEL)]
    like = f"/photos/{photo_id}/like"
    # When all the likes arrive at once
    statuses = in_parallel(local_stack, [status_of("PUT", like, fan) for fan in fans * 2])
    # Then each fan's like counts exactly once
    assert statuses == [200] * (PARALLEL * 2)
    assert site.photo(photo_id)["likes"] == PARALLEL
    # When they all unlike at once, twice each
    statuses = in_parallel(local_stack, [status_of("DELETE", like, fan) for fan in fans * 2])
    # Then the count is exactly zero, not negative
    assert statuses == [200] * (PARALLEL * 2)
    assert site.photo(photo_id)["likes"] == 0


def test_parallel_uploads_by_one_user_all_become_ready_and_count_exactly(site: PhotoClient,
                                                                        local_stack: LocalStack):
    # Given a user
    owner = site.new_user()
    # When they upload several photos at once
    photo_ids = in_parallel(local_stack, [
        (lambda client, n=n: client.upload(owner, images.solid_jpeg(200 + n, 150), caption=f"burst {n}"))
        for n in range(PARALLEL)])
    # Then every one becomes ready, and the profile counts each exactly once
    assert len(set(photo_ids)) == PARALLEL
    assert [site.wait_processed(photo_id)["status"] for photo_id in photo_ids] == ["ready"] * PARALLEL
    assert wait_until(lambda: site.photo_count(owner) == PARALLEL, what="the photo count to settle")
    listed = site.call("GET", f"/users/{owner.username}/photos", params={"limit": 50}).json()["items"]
    assert sorted(item["id"] for item in listed) == sorted(photo_ids)
