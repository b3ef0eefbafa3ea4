"""The in-process read cache through the real app: this container sees its own writes at once,
changes made elsewhere show within the kind's TTL, and sign-outs are never cached.

"Another container" is a write straight to the table (the way another Lambda sandbox's write
looks to this one); time passing is the cache's clock moved forward, never a sleep.
"""
from __future__ import annotations

import pytest
from api_helpers import body_of, call, member

from chalicelib import cache, keys, tokens
from chalicelib.models import CounterRecord, PhotoRecord, RevokedTokenRecord, UserRecord, bound

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(cache.shared.clock())
    monkeypatch.setattr(cache.shared, "clock", fake)
    return fake


def get(client, path: str, token: str | None = None) -> dict:
    response = call(client, "GET", path, token=token)
    assert response.status_code == 200, response.body
    return body_of(response)


def ready_photo(client, token: str, caption: str = "") -> str:
    """A photo created through the API and marked ready as the pipeline would (no image work here)."""
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000, "caption": caption},
                    token=token)
    assert response.status_code == 201, response.body
    photo_id = body_of(response)["photo"]["id"]
    bound(PhotoRecord)(photo_id).update(actions=[PhotoRecord.status.set("ready"), PhotoRecord.width.set(800),
                                                 PhotoRecord.height.set(600), PhotoRecord.version.set("v1")])
    return photo_id


def test_my_profile_edit_shows_on_my_next_request(client, clock):
    username, token = member(client)
    assert get(client, f"/users/{username}")["display_name"] == username  # cached now
    # When I change my display name / Then the answer and my next reads show it, before any TTL
    response = call(client, "PATCH", "/me", {"display_name": "Ann Example", "bio": "hi"}, token=token)
    assert body_of(response)["display_name"] == "Ann Example"
    assert get(client, f"/users/{username}")["display_name"] == "Ann Example"
    assert get(client, "/me", token=token)["bio"] == "hi"


def test_a_profile_changed_by_another_container_shows_within_the_profile_ttl(client, clock):
    username, _ = member(client)
    assert get(client, f"/users/{username}")["bio"] == ""
    # When another container changes the bio
    bound(UserRecord)(username).update(actions=[UserRecord.bio.set("changed elsewhere")])
    # Then this container serves its cached profile until the profile TTL has passed, then the new one
    clock.now += cache.TTL_SECONDS["profile"] - 1
    assert get(client, f"/users/{username}")["bio"] == ""
    clock.now += 1
    assert get(client, f"/users/{username}")["bio"] == "changed elsewhere"


def test_my_like_and_unlike_show_in_the_response_and_the_next_views(client, clock):
    author, author_token = member(client)
    _, fan_token = member(client)
    photo_id = ready_photo(client, author_token)
    assert get(client, f"/photos/{photo_id}", token=fan_token)["likes"] == 0  # count and "liked" cached
    # When I like it / Then the response, the photo and the author's page count it, and say I liked it
    assert body_of(call(client, "PUT", f"/photos/{photo_id}/like", token=fan_token)) == {"likes": 1, "liked": True}
    view = get(client, f"/photos/{photo_id}", token=fan_token)
    assert (view["likes"], view["liked"]) == (1, True)
    assert get(client, f"/users/{author}/photos")["items"][0]["likes"] == 1
    # When I unlike it / Then the same, at once
    assert body_of(call(client, "DELETE", f"/photos/{photo_id}/like", token=fan_token)) == {"likes": 0,
                                                                                           "liked": False}
    view = get(client, f"/photos/{photo_id}", token=fan_token)
    assert (view["likes"], view["liked"]) == (0, False)


def test_my_follow_and_unfollow_show_in_both_profiles_at_once(client, clock):
    alice, alice_token = member(client)
    bob, _ = member(client)
    assert get(client, f"/users/{bob}")["followers"] == 0
    assert get(client, f"/users/{alice}")["following"] == 0
    assert call(client, "PUT", f"/users/{bob}/follow", token=alice_token).status_code == 204
    assert get(client, f"/users/{bob}")["followers"] == 1
    assert get(client, f"/users/{alice}")["following"] == 1
    assert call(client, "DELETE", f"/users/{bob}/follow", token=alice_token).status_code == 204
    assert get(client, f"/users/{bob}")["followers"] == 0
    assert get(client, f"/users/{alice}")["following"] == 0


def test_counts_changed_by_another_container_show_within_the_counter_ttl(client, clock):
    bob, _ = member(client)
    assert get(client, f"/users/{bob}")["followers"] == 0
    # When another container counts a follower (one more on a shard)
    shard = keys.counter_shard_id("followers", bob, "us-east-1", 0)
    bound(CounterRecord)(shard).update(actions=[CounterRecord.n.add(1), CounterRecord.version.add(1)])
    clock.now += cache.TTL_SECONDS["counter"] - 1
    assert get(client, f"/users/{bob}")["followers"] == 0
    clock.now += 1
    assert get(client, f"/users/{bob}")["followers"] == 1


def test_my_own_profile_and_counts_show_changes_made_elsewhere_at_once(client, clock):
    bob, bob_token = member(client)
    _, other_token = member(client)
    assert get(client, f"/users/{bob}")["bio"] == ""  # cached, with its counts
    # When another container changes Bob's bio and counts a follower of his
    bound(UserRecord)(bob).update(actions=[UserRecord.bio.set("changed elsewhere")])
    shard = keys.counter_shard_id("followers", bob, "us-east-1", 0)
    bound(CounterRecord)(shard).update(actions=[CounterRecord.n.add(1), CounterRecord.version.add(1)])
    # Then another reader, signed in or not, is served the cached profile and count within the TTLs
    for token in (None, other_token):
        seen = get(client, f"/users/{bob}", token=token)
        assert (seen["bio"], seen["followers"]) == ("", 0)
    # But Bob himself reads both from the table at once, on his profile page and on /me
    for path in (f"/users/{bob}", "/me"):
        mine = get(client, path, token=bob_token)
        assert (mine["bio"], mine["followers"]) == ("changed elsewhere", 1)
    # And his fresh read replaced this container's entries: others see it now too
    seen = get(client, f"/users/{bob}")
    assert (seen["bio"], seen["followers"]) == ("changed elsewhere", 1)


def test_my_photo_changed_by_a_worker_shows_to_me_at_once_and_to_others_within_the_photo_ttl(client, clock):
    _, owner_token = member(client)
    _, fan_token = member(client)
    photo_id = ready_photo(client, owner_token, caption="before")
    assert get(client, f"/photos/{photo_id}")["caption"] == "before"  # cached
    # When a worker (another container) changes the photo's record
    bound(PhotoRecord)(photo_id).update(actions=[PhotoRecord.caption.set("after")])
    # Then other readers are served the cached record until the photo TTL has passed
    clock.now += cache.TTL_SECONDS["photo"] - 1
    assert get(client, f"/photos/{photo_id}", token=fan_token)["caption"] == "before"
    # But its owner reads it from the table at once (and refreshes the entry for everyone)
    assert get(client, f"/photos/{photo_id}", token=owner_token)["caption"] == "after"
    assert get(client, f"/photos/{photo_id}")["caption"] == "after"


def test_a_photo_made_ready_elsewhere_shows_to_members_at_once_and_to_anonymous_readers_within_the_page_ttl(
        client, clock):
    author, token = member(client)
    _, other_token = member(client)
    assert get(client, f"/users/{author}/photos")["items"] == []  # the first page, cached
    # When the worker (another container) makes a photo ready
    photo_id = ready_photo(client, token)
    # Then an anonymous reader sees the cached page until the photos_page TTL has passed
    clock.now += cache.TTL_SECONDS["photos_page"] - 1
    assert get(client, f"/users/{author}/photos")["items"] == []
    # But the owner and any other member list it at once (and their read refreshes the entry for everyone)
    for reader in (token, other_token):
        assert [p["id"] for p in get(client, f"/users/{author}/photos", token=reader)["items"]] == [photo_id]
    assert [p["id"] for p in get(client, f"/users/{author}/photos")["items"]] == [photo_id]


def test_the_listings_first_page_expires_after_the_page_ttl(client, clock):
    author, token = member(client)
    assert get(client, f"/users/{author}/photos")["items"] == []
    photo_id = ready_photo(client, token)
    clock.now += cache.TTL_SECONDS["photos_page"]
    assert [p["id"] for p in get(client, f"/users/{author}/photos")["items"]] == [photo_id]


def test_my_caption_edit_and_delete_show_at_once_on_the_photo_and_my_page(client, clock):
    author, token = member(client)
    photo_id = ready_photo(client, token, caption="before")
    assert get(client, f"/photos/{photo_id}")["caption"] == "before"
    assert [p["caption"] for p in get(client, f"/users/{author}/photos")["items"]] == ["before"]
    assert get(client, f"/users/{author}")["photos"] == 0  # (marked ready behind the pipeline's back)
    assert call(client, "PATCH", f"/photos/{photo_id}", {"caption": "after"}, token=token).status_code == 200
    assert get(client, f"/photos/{photo_id}")["caption"] == "after"
    assert [p["caption"] for p in get(client, f"/users/{author}/photos")["items"]] == ["after"]
    assert call(client, "DELETE", f"/photos/{photo_id}", token=token).status_code == 204
    assert call(client, "GET", f"/photos/{photo_id}").status_code == 404
    assert get(client, f"/users/{author}/photos")["items"] == []


def test_a_photo_still_processing_is_never_served_from_the_cache(client, clock):
    _, token = member(client)
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000}, token=token)
    photo_id = body_of(response)["photo"]["id"]
    assert get(client, f"/photos/{photo_id}")["status"] == "pending"
    # When the worker (another container) finishes it / Then the next read shows it ready, TTL or not
    bound(PhotoRecord)(photo_id).update(actions=[PhotoRecord.status.set("ready")])
    assert get(client, f"/photos/{photo_id}")["status"] == "ready"


def test_a_sign_out_elsewhere_is_refused_at_once_whatever_is_cached(client, clock):
    username, token = member(client)
    assert get(client, "/me", token=token)["username"] == username  # profile cached
    # When another container ends the session (its revocation record written there)
    claims = tokens.issued_claims(token)
    bound(RevokedTokenRecord)(f"session#{claims.session_id}", username=username,
                              expires_at=int(clock.now) + 3600).save()
    # Then the very next request is refused
    assert call(client, "GET", "/me", token=token).status_code == 401


def test_my_follow_shows_in_my_feed_at_once(client, clock):
    from chalicelib import feed
    from chalicelib.repositories import photos

    reader, reader_token = member(client)
    author, author_token = member(client)
    photo_id = ready_photo(client, author_token)
    assert get(client, "/feed", token=reader_token)["items"] == []  # who I follow is cached (nobody)
    # Given the author's photo pushed into my feed (as the follow's backfill will) before I follow them
    feed._write_feed_items([reader], feed._feed_fields(photos.get(photo_id, consistent=True), author))
    assert get(client, "/feed", token=reader_token)["items"] == []  # authors I do not follow are hidden
    # When I follow the author / Then my next feed read shows the photo, before any TTL
    assert call(client, "PUT", f"/users/{author}/follow", token=reader_token).status_code == 204
    assert [item["id"] for item in get(client, "/feed", token=reader_token)["items"]] == [photo_id]
