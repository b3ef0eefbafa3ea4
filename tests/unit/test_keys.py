"""Key design: ULIDs, stable shards, counter shard ids, upload and media keys."""
from __future__ import annotations

import re
import uuid
from collections import Counter

import pytest

from chalicelib import keys

CROCKFORD_ULID = re.compile(r"^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{26}$")


def random_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_ids_are_26_characters_of_crockford_base32():
    # Given many fresh ids
    ids = [keys.new_id() for _ in range(500)]
    # Then each is 26 Crockford characters (no I, L, O, U) and all are distinct
    assert all(CROCKFORD_ULID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_ids_sort_by_creation_time_whatever_their_randomness():
    # Given ids for increasing milliseconds, where later ones have smaller random parts
    times = [1, 2, 1_000, 1_700_000_000_000, 1_700_000_000_001, 2**48 - 1]
    ids = [keys.new_id(now_ms=ms, randomness=bytes([255 - i] * 10)) for i, ms in enumerate(times)]
    # When sorted as strings
    # Then the order is the creation order
    assert sorted(ids) == ids


def test_ids_of_the_same_millisecond_sort_by_randomness():
    # Given two ids of the same millisecond
    low = keys.new_id(now_ms=1_700_000_000_000, randomness=b"\x00" * 10)
    high = keys.new_id(now_ms=1_700_000_000_000, randomness=b"\xff" * 10)
    # Then they share the time prefix and order by the random part
    assert low[:10] == high[:10]
    assert low < high


def test_an_id_encodes_its_time_in_the_first_ten_characters():
    # Given an id with known time and zero randomness
    ulid = keys.new_id(now_ms=0, randomness=b"\x00" * 10)
    # Then it is all zeros
    assert ulid == "0" * 26


def test_stable_shard_is_stable_and_in_range():
    # Given a value and shard counts
    value = random_name("user-")
    for shards in (1, 2, 7, 64, 1000):
        # When computed twice
        first, second = keys.stable_shard(value, shards), keys.stable_shard(value, shards)
        # Then it is the same and within range
        assert first == second
        assert 0 <= first < shards


def test_stable_shard_of_a_single_shard_or_less_is_zero():
    # Given a single shard (or a degenerate count)
    # When / Then every value maps to shard 0
    assert keys.stable_shard(random_name("x"), 1) == 0
    assert keys.stable_shard(random_name("x"), 0) == 0


def test_stable_shard_spreads_many_values_evenly():
    # Given 16,000 distinct values over 16 shards
    shards = 16
    counts = Counter(keys.stable_shard(f"user-{n}", shards) for n in range(16_000))
    # Then every shard gets a fair share (expected 1000 each; allow +-20%)
    assert set(counts) == set(range(shards))
    assert min(counts.values()) > 800
    assert max(counts.values()) < 1200


def test_counter_shard_ids_are_scoped_to_the_writing_region():
    # Given one counter
    entity = random_name("alice")
    # When shard ids are built for two regions
    east = keys.counter_shard_id("followers", entity, "us-east-1", 0)
    west = keys.counter_shard_id("followers", entity, "eu-west-1", 0)
    # Then the same shard number is a different item per region
    assert east == f"followers#{entity}#us-east-1#0"
    assert east != west


def test_a_read_covers_every_shard_of_every_region_and_not_the_meta_item():
    # Given a counter spread over 3 shards in 2 regions
    entity = random_name("bob")
    ids = keys.counter_shard_ids("photos", entity, ("us-east-1", "eu-west-1"), 3)
    # Then the read includes 6 distinct shard items and never the meta item
    assert len(ids) == len(set(ids)) == 6
    assert keys.counter_meta_id("photos", entity) not in ids
    assert {i.rsplit("#", 2)[1] for i in ids} == {"us-east-1", "eu-west-1"}


def test_an_upload_key_round_trips():
    # Given an owner and a photo id
    owner, photo_id = random_name("carol"), keys.new_id()
    # When the key is built and parsed back
    key = keys.upload_key(owner, photo_id)
    # Then the original is private under uploads/ and parses to the same pair
    assert key.startswith(keys.UPLOADS_PREFIX)
    assert keys.parse_upload_key(key) == (owner, photo_id)


@pytest.mark.parametrize("key", [
    "media/renditions/abc/v1/small.jpg",
    "uploads/",
    "uploads/owner-only",
    "uploads/owner/",
    "uploads//photo",
    "uploads/owner/photo/extra",
    "other/owner/photo",
    "",
])
def test_keys_that_are_not_upload_keys_are_rejected(key: str):
    # Given a key outside uploads/{owner}/{photo_id}
    # When / Then it does not parse as an upload
    assert keys.parse_upload_key(key) is None


def test_media_url_serves_renditions_under_the_media_base_url():
    # Given a rendition key
    photo_id = keys.new_id()
    key = keys.rendition_key(photo_id, "v1", "small", "jpg")
    # When its public URL is built
    url = keys.media_url("https://cdn.example.com/media/", key)
    # Then it is under the base URL without the media/ prefix
    assert key.startswith(keys.rendition_prefix(photo_id))
    assert url == f"https://cdn.example.com/media/renditions/{photo_id}/v1/small.jpg"


@pytest.mark.parametrize("key", ["uploads/alice/01ABC", "renditions/x/v1/small.jpg", "mediax/a.jpg"])
def test_media_url_refuses_non_media_keys_so_originals_are_never_public(key: str):
    # Given an original or any key outside media/
    # When / Then no public URL is ever built for it
    with pytest.raises(ValueError, match="not a public media key"):
        keys.media_url("/media", key)


def test_an_original_is_read_here_first_then_from_the_bucket_it_was_uploaded_to():
    from chalicelib.keys import original_locations

    assert original_locations("eu-west-1", "media-eu", "us-east-1", "media-us") == [
        ("eu-west-1", "media-eu"), ("us-east-1", "media-us")]
    assert original_locations("us-east-1", "media-us", "us-east-1", "media-us") == [("us-east-1", "media-us")]
    assert original_locations("us-east-1", "media-us", None, None) == [("us-east-1", "media-us")]


def test_counter_item_ids_parse_back_to_their_counter():
    from chalicelib.keys import counter_meta_id, counter_shard_id, parse_counter_item_id

    assert parse_counter_item_id(counter_shard_id("likes", "P1", "eu-west-1", 3)) == ("likes", "P1")
    assert parse_counter_item_id(counter_meta_id("followers", "ann")) == ("followers", "ann")
    assert parse_counter_item_id("heartbeat#x") is None
    assert parse_counter_item_id("a#b#c#d#e") is None
