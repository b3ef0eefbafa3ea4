"""Following someone fills your feed with their recent photos, through the real local stack."""
from __future__ import annotations

import pytest

import images
from api_client import ApiClient
from devstack.stack import LocalStack
from test_photo_pipeline import PhotoClient, User, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def site(api: ApiClient, local_stack: LocalStack) -> PhotoClient:
    return PhotoClient(api, local_stack.site_url)


def feed_ids(site: PhotoClient, reader: User) -> list[str]:
    response = site.call("GET", "/feed", reader, params={"limit": 20})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_a_new_follower_sees_the_authors_existing_photos_within_seconds(site: PhotoClient):
    # Given an author who posted two photos before anyone followed them, and a reader with an empty feed
    author = site.new_user()
    posted = [site.upload_ready(author, images.solid_jpeg(320, 240), caption=f"before {n}")["id"] for n in range(2)]
    reader = site.new_user()
    assert feed_ids(site, reader) == []
    # When the reader follows the author
    assert site.call("PUT", f"/users/{author.username}/follow", reader).status_code == 204
    # Then within seconds the feed shows both photos, newest first
    def both_shown() -> list[str] | None:
        ids = feed_ids(site, reader)
        return ids if len(ids) == 2 else None

    shown = wait_until(both_shown, what="the backfilled photos to reach the feed")
    assert shown == list(reversed(posted))
    # When the reader unfollows / Then the feed no longer shows them
    assert site.call("DELETE", f"/users/{author.username}/follow", reader).status_code == 204
    assert feed_ids(site, reader) == []
