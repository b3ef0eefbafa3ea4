"""Follows, follower/following listings and likes through the real app (chalice.test.Client + moto).

Counts are read back through the public profile (``GET /users/{name}``), which sums the sharded,
region-scoped counters: every follow/like is one transaction, so the counts must stay exact under
repeats and resharding. Concurrent duplicates are proven over HTTP against the local stack
(``tests/integration/test_concurrency.py``): in-process moto is not thread-safe.
"""
from __future__ import annotations

import json

import pytest
from api_helpers import body_of, call, member, new_username
from faults import dynamodb_client, intercept

from chalicelib import cache, celebrities, follows, keys, likes
from chalicelib.repositories import counters
from chalicelib.models import GraphEdgeRecord, PhotoRecord, bound
from chalicelib.users import FOLLOWERS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")



# --- helpers ------------------------------------------------------------------------------------

def profile(client, username: str) -> dict:
    response = call(client, "GET", f"/users/{username}")
    assert response.status_code == 200, response.body
    return body_of(response)


def ready_photo(client, token: str, caption: str = "") -> str:
    """A photo created through the API and marked ready as the pipeline would (no image work here)."""
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000, "caption": caption},
                    token=token)
    assert response.status_code == 201, response.body
    photo_id = body_of(response)["photo"]["id"]
    record = bound(PhotoRecord).get(photo_id)
    record.update(actions=[PhotoRecord.status.set("ready"), PhotoRecord.width.set(800),
                           PhotoRecord.height.set(600), PhotoRecord.version.set("v1")])
    return photo_id


def all_pages(client, path: str, limit: int) -> list[list[str]]:
    """Every page of a user listing, as usernames per page."""
    pages, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = call(client, "GET", path + query)
        assert response.status_code == 200, response.body
        page = body_of(response)
        pages.append([item["username"] for item in page["items"]])
        cursor = page["next_cursor"]
        if not cursor:
            return pages


@pytest.fixture(autouse=True)
def _fresh_registry_cache():
    celebrities.reset_cache()
    yield
    celebrities.reset_cache()


# --- follow / unfollow --------------------------------------------------------------------------

def test_following_twice_counts_once(client):
    # Given two users
    alice, alice_token = member(client)
    bob, _ = member(client)
    # When alice follows bob twice
    first = call(client, "PUT", f"/users/{bob}/follow", token=alice_token)
    second = call(client, "PUT", f"/users/{bob}/follow", token=alice_token)
    # Then both answer 204 and the edge is counted once on each side
    assert (first.status_code, second.status_code) == (204, 204)
    assert profile(client, bob)["followers"] == 1
    assert profile(client, alice)["following"] == 1


def test_concurrent_duplicate_follows_count_once(client):
    # Given two users, and a duplicate of alice's follow that commits while hers is in flight
    # (injected just before her transaction is sent: deterministic, unlike threads on moto, which
    # is not thread-safe; at the service layer, since chalice.test.Client has one current_request)
    alice, _ = member(client)
    bob, _ = member(client)
    duplicates: list[int] = []

    def duplicate_commits_first(_params: dict) -> None:
        if not duplicates:
            duplicates.append(1)
            follows.follow(alice, bob)

    # When alice's follow is sent
    with intercept(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", duplicate_commits_first):
        follows.follow(alice, bob)
    # Then both succeeded and exactly one follow was counted
    assert profile(client, bob)["followers"] == 1
    assert profile(client, alice)["following"] == 1


def test_unfollowing_twice_is_fine_and_counts_once(client):
    # Given alice follows bob
    alice, alice_token = member(client)
    bob, _ = member(client)
    assert call(client, "PUT", f"/users/{bob}/follow", token=alice_token).status_code == 204
    # When she unfollows twice
    first = call(client, "DELETE", f"/users/{bob}/follow", token=alice_token)
    second = call(client, "DELETE", f"/users/{bob}/follow", token=alice_token)
    # Then both answer 204 and the counts are back to zero (not negative)
    assert (first.status_code, second.status_code) == (204, 204)
    assert profile(client, bob)["followers"] == 0
    assert profile(client, alice)["following"] == 0


def test_following_yourself_is_400(client):
    # Given a user / When she follows herself (in another case) / Then it is refused, nothing counted
    alice, token = member(client)
    response = call(client, "PUT", f"/users/{alice.upper()}/follow", token=token)
    assert response.status_code == 400
    assert body_of(response)["error"]["code"] == "bad_request"
    assert profile(client, alice)["following"] == 0


def test_following_an_unknown_user_is_404(client):
    # Given a user / When she follows a name nobody has / Then 404 user_not_found
    _, token = member(client)
    response = call(client, "PUT", f"/users/{new_username()}/follow", token=token)
    assert response.status_code == 404
    assert body_of(response)["error"]["code"] == "user_not_found"


def test_following_a_user_this_container_has_not_seen_checks_her_profile_in_the_follow(client):
    # Given a user and a name nobody has, neither of them in this container's cache
    fan, token = member(client)
    star, _ = member(client, log_in=False)
    nobody = new_username()
    cache.reset()
    # When she follows both, and unfollows the unknown name
    followed = call(client, "PUT", f"/users/{star}/follow", token=token)
    unknown = call(client, "PUT", f"/users/{nobody}/follow", token=token)
    unfollowed = call(client, "DELETE", f"/users/{nobody}/follow", token=token)
    # Then the existing user is followed and counted, the unknown name is a 404 both ways
    assert followed.status_code == 204, followed.body
    assert profile(client, star)["followers"] == 1
    assert [r.status_code for r in (unknown, unfollowed)] == [404, 404]
    assert body_of(unknown)["error"]["code"] == body_of(unfollowed)["error"]["code"] == "user_not_found"
    # And no edge was written for the unknown name
    assert not follows.graph.follows(fan, nobody)


def test_following_requires_a_bearer_token(client):
    # Given a user / When someone follows her without a token / Then 401
    bob, _ = member(client)
    assert call(client, "PUT", f"/users/{bob}/follow").status_code == 401


def test_counts_stay_exact_after_a_mix_of_follows_and_unfollows(client):
    # Given a star and four fans
    star, _ = member(client)
    fans = [member(client) for _ in range(4)]
    # When all follow, two unfollow, one of those follows again and one follows twice
    for _, token in fans:
        call(client, "PUT", f"/users/{star}/follow", token=token)
    for _, token in fans[:2]:
        call(client, "DELETE", f"/users/{star}/follow", token=token)
    call(client, "PUT", f"/users/{star}/follow", token=fans[0][1])
    call(client, "PUT", f"/users/{star}/follow", token=fans[3][1])
    # Then the star has exactly three followers and each fan's following count is right
    assert profile(client, star)["followers"] == 3
    assert [profile(client, name)["following"] for name, _ in fans] == [1, 0, 1, 1]
    # And the listing agrees with the count
    assert sorted(n for page in all_pages(client, f"/users/{star}/followers", 20) for n in page) == sorted(
        [fans[0][0], fans[2][0], fans[3][0]])


# --- listings -----------------------------------------------------------------------------------

def test_followers_listing_paginates_across_shards_without_duplicates_or_gaps(client):
    # Given a user whose followers are spread over 8 shards, and 25 followers
    star, _ = member(client)
    assert follows.reshard_user(star, 8) == 8
    fans = sorted(member(client, log_in=False)[0] for _ in range(25))
    for fan in fans:
        follows.follow(fan, star)  # the service call behind PUT /follow (tokens for 25 users add nothing)
    # (the edges really are spread over several shards)
    per_shard = [len(list(bound(GraphEdgeRecord).query(keys.followers_pk(star, shard)))) for shard in range(8)]
    assert sum(per_shard) == 25 and sum(1 for n in per_shard if n) > 1
    # When the followers are listed 7 at a time
    pages = all_pages(client, f"/users/{star}/followers", 7)
    # Then every follower appears exactly once, in username order, in pages of 7
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [n for page in pages for n in page] == fans
    # And each item carries the display name from the profile
    first = body_of(call(client, "GET", f"/users/{star}/followers?limit=1"))["items"][0]
    assert first == {"username": fans[0], "display_name": fans[0]}


def test_following_listing_paginates_with_display_names(client):
    # Given a fan following 9 users, one of whom set a display name
    fan, token = member(client)
    stars = []
    for index in range(9):
        star, star_token = member(client)
        stars.append(star)
        call(client, "PUT", f"/users/{star}/follow", token=token)
        if index == 0:
            call(client, "PATCH", "/me", {"display_name": "The First"}, token=star_token)
    # When the fan's following list is read 4 at a time
    pages = all_pages(client, f"/users/{fan}/following", 4)
    # Then every followee appears once, in username order
    assert [n for page in pages for n in page] == sorted(stars)
    assert [len(p) for p in pages] == [4, 4, 1]
    # And items carry display names (the username when none was set)
    listed = {i["username"]: i["display_name"]
              for i in body_of(call(client, "GET", f"/users/{fan}/following?limit=100"))["items"]}
    assert listed == {star: ("The First" if star == stars[0] else star) for star in stars}


def test_a_forged_cursor_is_400_invalid_cursor(client):
    # Given a user with followers listing page cursors
    star, _ = member(client)
    for _ in range(3):
        _, token = member(client)
        call(client, "PUT", f"/users/{star}/follow", token=token)
    cursor = body_of(call(client, "GET", f"/users/{star}/followers?limit=1"))["next_cursor"]
    other, _ = member(client)
    # When the cursor is altered, or used on another listing
    forged = call(client, "GET", f"/users/{star}/followers?limit=1&cursor={cursor[:-2]}xx")
    elsewhere = call(client, "GET", f"/users/{other}/followers?limit=1&cursor={cursor}")
    following = call(client, "GET", f"/users/{star}/following?limit=1&cursor={cursor}")
    # Then each is refused
    for response in (forged, elsewhere, following):
        assert response.status_code == 400
        assert body_of(response)["error"]["code"] == "invalid_cursor"


def test_listing_an_unknown_users_followers_is_404_and_limit_is_validated(client):
    # Given / When / Then
    assert call(client, "GET", f"/users/{new_username()}/followers").status_code == 404
    star, _ = member(client)
    response = call(client, "GET", f"/users/{star}/following?limit=101")
    assert response.status_code == 400
    assert body_of(response)["error"]["code"] == "validation_failed"


# --- resharding -------------------------------------------------------------------------------------

def test_counts_stay_exact_across_resharding_a_hot_counter(client):
    # Given a user with 3 followers on one shard, and a liked photo
    star, star_token = member(client)
    photo_id = ready_photo(client, star_token)
    fans = [member(client) for _ in range(6)]
    for _, token in fans[:3]:
        call(client, "PUT", f"/users/{star}/follow", token=token)
        call(client, "PUT", f"/photos/{photo_id}/like", token=token)
    assert profile(client, star)["followers"] == 3
    # When the user (followers list, followers counter, recent photos' like counters) is resharded
    assert follows.reshard_user(star, 32) == 32
    assert counters.shard_count("likes", photo_id) == 32
    # And more follows, likes and an unfollow of a pre-reshard edge happen
    for _, token in fans[3:]:
        call(client, "PUT", f"/users/{star}/follow", token=token)
        call(client, "PUT", f"/photos/{photo_id}/like", token=token)
    call(client, "DELETE", f"/users/{star}/follow", token=fans[0][1])
    call(client, "DELETE", f"/photos/{photo_id}/like", token=fans[0][1])
    # Then the counts are exact: before + after - withdrawn
    assert profile(client, star)["followers"] == 5
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["likes"] == 5
    # And the pre-reshard edge was removed from the shard it lived in (the listing has no ghost)
    listed = [n for page in all_pages(client, f"/users/{star}/followers", 2) for n in page]
    assert sorted(listed) == sorted(name for name, _ in fans[1:])


def test_a_follow_crossing_a_boundary_reshards_and_registers_a_celebrity(client, monkeypatch):
    # Given small boundaries: 2 followers need 8 shards, 3 make a celebrity
    monkeypatch.setattr(follows, "SHARD_STEPS", ((2, 1), (10, 8)))
    monkeypatch.setenv("CELEBRITY_FOLLOWER_THRESHOLD", "3")
    from chalicelib import settings

    settings.reset_settings()
    star, _ = member(client)
    fans = [member(client) for _ in range(3)]
    # When the first follow arrives / Then nothing changes
    call(client, "PUT", f"/users/{star}/follow", token=fans[0][1])
    assert counters.shard_count(FOLLOWERS, star) == 1
    # When the second pushes the count over the boundary / Then the user is resharded
    call(client, "PUT", f"/users/{star}/follow", token=fans[1][1])
    assert counters.shard_count(FOLLOWERS, star) == 8
    assert star not in celebrities.celebrities()
    # When the third follow arrives (sampled check is forced) / Then she joins every registry copy
    monkeypatch.setattr(celebrities.random, "random", lambda: 0.0)
    call(client, "PUT", f"/users/{star}/follow", token=fans[2][1])
    assert star in celebrities.celebrities()
    celebrities.reset_cache()
    for copy in range(8):
        monkeypatch.setattr(celebrities.random, "randrange", lambda n, copy=copy: copy)
        celebrities.reset_cache()
        assert star in celebrities.celebrities()
    assert profile(client, star)["followers"] == 3


# --- likes ----------------------------------------------------------------------------------------

def test_liking_twice_counts_once_and_unliking_twice_is_fine(client):
    # Given a ready photo and a fan
    _, owner_token = member(client)
    photo_id = ready_photo(client, owner_token)
    _, fan_token = member(client)
    # When the fan likes it twice
    first = call(client, "PUT", f"/photos/{photo_id}/like", token=fan_token)
    second = call(client, "PUT", f"/photos/{photo_id}/like", token=fan_token)
    # Then it counts once
    assert (first.status_code, second.status_code) == (200, 200)
    assert body_of(first) == body_of(second) == {"likes": 1, "liked": True}
    # When the fan unlikes it twice / Then the count is back to zero, not negative
    first = call(client, "DELETE", f"/photos/{photo_id}/like", token=fan_token)
    second = call(client, "DELETE", f"/photos/{photo_id}/like", token=fan_token)
    assert body_of(first) == body_of(second) == {"likes": 0, "liked": False}


def test_concurrent_duplicate_likes_count_once(client):
    # Given a ready photo, a fan, and a duplicate of the fan's like that commits while the first is
    # in flight (injected just before its transaction is sent)
    _, owner_token = member(client)
    photo_id = ready_photo(client, owner_token)
    fan, fan_token = member(client)
    duplicates: list[dict] = []
    raced: list[bool] = []

    def duplicate_commits_first(_params: dict) -> None:
        if not raced:
            raced.append(True)
            duplicates.append(likes.like(fan, photo_id))

    # When the fan's like is sent
    with intercept(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", duplicate_commits_first):
        response = call(client, "PUT", f"/photos/{photo_id}/like", token=fan_token)
    # Then both answer liked, and exactly one like is counted
    assert duplicates == [{"likes": 1, "liked": True}]
    assert body_of(response) == {"likes": 1, "liked": True}
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["likes"] == 1


def test_get_photo_says_whether_the_caller_liked_it(client):
    # Given a photo liked by one user and not by another
    _, owner_token = member(client)
    photo_id = ready_photo(client, owner_token)
    _, fan_token = member(client)
    _, other_token = member(client)
    call(client, "PUT", f"/photos/{photo_id}/like", token=fan_token)
    # When each reads the photo, and an anonymous reader and one with a bad token
    fan_view = body_of(call(client, "GET", f"/photos/{photo_id}", token=fan_token))
    other_view = body_of(call(client, "GET", f"/photos/{photo_id}", token=other_token))
    anonymous = body_of(call(client, "GET", f"/photos/{photo_id}"))
    bad_token = call(client, "GET", f"/photos/{photo_id}", token="not-a-token")
    # Then liked is per caller, omitted when anonymous, and every view has the exact count
    assert (fan_view["liked"], fan_view["likes"]) == (True, 1)
    assert (other_view["liked"], other_view["likes"]) == (False, 1)
    assert "liked" not in anonymous and anonymous["likes"] == 1
    assert bad_token.status_code == 200 and "liked" not in body_of(bad_token)


def test_a_like_of_a_photo_this_container_has_cached_writes_nothing_on_the_photos_item(client):
    # Given a ready photo this container has served (so it is cached as ready), and one it has not
    _, owner_token = member(client)
    viewed, unseen = ready_photo(client, owner_token), ready_photo(client, owner_token)
    cache.reset()
    assert call(client, "GET", f"/photos/{viewed}").status_code == 200
    _, token = member(client)
    with intercept(dynamodb_client(GraphEdgeRecord), "TransactWriteItems", lambda params: None) as sent:
        # When a user likes both
        assert call(client, "PUT", f"/photos/{viewed}/like", token=token).status_code == 200
        assert call(client, "PUT", f"/photos/{unseen}/like", token=token).status_code == 200
    # Then only the like of the unseen photo checks the photo's item in its transaction
    checked = [[item["ConditionCheck"]["Key"]["photo_id"]["S"] for item in json.loads(request["body"])["TransactItems"]
                if "ConditionCheck" in item] for request in sent]
    assert checked == [[], [unseen]]


def test_a_like_that_lands_after_its_photo_was_purged_is_swept_by_the_purges_second_pass(client):
    # Given a ready photo this container has cached, deleted and purged (the purge's first pass)
    from chalicelib import cleanup

    owner, owner_token = member(client)
    photo_id = ready_photo(client, owner_token)
    assert call(client, "GET", f"/photos/{photo_id}").status_code == 200
    served = cache.shared.peek("photo", photo_id)
    assert served is not None and served.status == "ready"
    assert call(client, "DELETE", f"/photos/{photo_id}", token=owner_token).status_code == 204
    cache.shared.put("photo", photo_id, served)  # another container's entry, not yet expired
    cleanup.run({"type": cleanup.PURGE_PHOTO, "photo_id": photo_id, "owner": owner})
    # When a user likes it from a container that still has it cached as ready
    fan, token = member(client)
    assert call(client, "PUT", f"/photos/{photo_id}/like", token=token).status_code == 200
    assert likes.liked_photos(fan, [photo_id]) == {photo_id}
    # Then the second pass removes that like and its likers mirror
    assert cleanup.run({"type": cleanup.SWEEP_LIKES, "photo_id": photo_id}) == []
    cache.reset()
    assert likes.liked_photos(fan, [photo_id]) == set()
    assert list(bound(GraphEdgeRecord).query(keys.likers_pk(photo_id, 0))) == []


def test_liking_an_unknown_photo_is_404_and_a_pending_one_409(client):
    # Given a pending photo
    _, token = member(client)
    response = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 10}, token=token)
    pending_id = body_of(response)["photo"]["id"]
    # When liking it, and a photo that does not exist
    pending = call(client, "PUT", f"/photos/{pending_id}/like", token=token)
    unknown = call(client, "PUT", "/photos/01HZZZZZZZZZZZZZZZZZZZZZZZ/like", token=token)
    # Then 409 photo_not_ready and 404 photo_not_found
    assert pending.status_code == 409 and body_of(pending)["error"]["code"] == "photo_not_ready"
    assert unknown.status_code == 404 and body_of(unknown)["error"]["code"] == "photo_not_found"
