"""Pure rules of the social graph and feeds: resharding policy, sampling, and the k-way page merge."""
from __future__ import annotations

import random

import pytest

from chalicelib.follows import MAX_SHARDS, shards_for, should_check_count
from chalicelib.listings import merge_page


def key(value: str) -> str:
    return value


# --- resharding policy ----------------------------------------------------------------------------

@pytest.mark.parametrize(("followers", "shards"), [
    (0, 1), (999, 1), (1_000, 8), (9_999, 8), (10_000, 32), (99_999, 32), (100_000, 128),
    (999_999, 128), (1_000_000, MAX_SHARDS), (50_000_000, MAX_SHARDS),
])
def test_shards_grow_with_followers_in_steps(followers, shards):
    # Given a follower count / When the policy is asked / Then it names the step's shard count
    assert shards_for(followers) == shards


def test_shards_never_shrink_as_followers_grow():
    # Given increasing follower counts / Then the shard count is monotonic
    counts = [shards_for(n) for n in range(0, 2_000_000, 997)]
    assert counts == sorted(counts)


@pytest.mark.parametrize(("shards", "draw", "check"), [
    (1, 0.99, True), (8, 0.1, True), (8, 0.125, False), (128, 0.005, True), (128, 0.5, False),
])
def test_a_follow_rereads_the_count_with_probability_one_over_shards(shards, draw, check):
    # Given a shard count and a uniform draw / Then the count is re-read with probability 1/shards
    assert should_check_count(shards, draw) is check


# --- merge of sources ----------------------------------------------------------------------------

def test_merge_takes_the_smallest_keys_across_shards_in_order():
    # Given three follower shards (each sorted), none truncated
    shards = [["amy", "dan"], ["bob", "eve", "fay"], ["cat"]]
    # When a page of 4 is merged
    items, frontier, more = merge_page(shards, [False, False, False], 4, key)
    # Then it holds the 4 smallest in order, the frontier is the last one, and more remain
    assert items == ["amy", "bob", "cat", "dan"]
    assert (frontier, more) == ("dan", True)


def test_merge_newest_first_for_feeds_and_drops_duplicate_keys():
    # Given a pushed feed and a pulled celebrity listing sharing one photo (pushed before she was famous)
    pulled = ["2024-05-03#C", "2024-05-01#A"]
    pushed = ["2024-05-02#B", "2024-05-01#A", "2024-04-30#Z"]
    # When merged newest first
    items, frontier, more = merge_page([pulled, pushed], [False, False], 10, key, descending=True)
    # Then each photo appears once, newest first, and nothing is left
    assert items == ["2024-05-03#C", "2024-05-02#B", "2024-05-01#A", "2024-04-30#Z"]
    assert (frontier, more) == ("2024-04-30#Z", False)


def test_merge_stops_where_a_truncated_source_runs_out():
    # Given a source that was read only up to "c" (it may hold "d" next) and a complete one
    truncated_source = ["a", "c"]
    complete = ["b", "e", "f"]
    # When a page of 5 is merged
    items, frontier, more = merge_page([truncated_source, complete], [True, False], 5, key)
    # Then it stops at "c": "e" must not be emitted before the unread rest of the first source
    assert items == ["a", "b", "c"]
    assert (frontier, more) == ("c", True)


def test_merge_of_empty_sources_is_an_empty_last_page():
    # Given no items anywhere / Then the page is empty, with no frontier and nothing more
    assert merge_page([[], []], [False, False], 5, key) == ([], None, False)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_paging_by_frontier_visits_every_item_once_in_order(limit):
    # Given 25 items spread over 8 shards at random
    rng = random.Random(limit)
    names = sorted(f"user_{rng.randrange(10**9):09d}" for _ in range(25))
    shards: list[list[str]] = [[] for _ in range(8)]
    for name in names:
        shards[rng.randrange(8)].append(name)
    # When pages are read as the listing does: every shard read up to `limit` items after the frontier
    seen: list[str] = []
    frontier = None
    while True:
        reads = [[n for n in shard if frontier is None or n > frontier][:limit] for shard in shards]
        truncated = [len(r) == limit for r in reads]
        page, frontier, more = merge_page(reads, truncated, limit, key)
        assert len(page) <= limit
        seen.extend(page)
        if not more:
            break
    # Then every item was listed exactly once, in order: no duplicates, no gaps
    assert seen == names
