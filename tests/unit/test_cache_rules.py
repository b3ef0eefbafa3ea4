"""The in-process read cache's rules: TTL per kind, bounds, own-write invalidation, thread safety."""
from __future__ import annotations

import threading

import pytest

from chalicelib.cache import MAX_ENTRIES, TTL_SECONDS, ReadCache


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def loader(values: list):
    calls: list[int] = []

    def load():
        calls.append(1)
        return values[len(calls) - 1]

    return load, calls


def test_an_entry_is_served_until_its_kinds_ttl_then_read_again(clock):
    cache = ReadCache({"profile": 30.0, "counter": 10.0}, clock=clock)
    load, calls = loader(["v1", "v2"])
    assert cache.get("profile", "ann", load) == "v1"
    clock.now += 29.9
    assert cache.get("profile", "ann", load) == "v1"
    assert len(calls) == 1
    clock.now += 0.1
    assert cache.get("profile", "ann", load) == "v2"
    assert len(calls) == 2


def test_each_kind_has_its_own_ttl(clock):
    cache = ReadCache({"profile": 30.0, "counter": 10.0}, clock=clock)
    cache.get("profile", "x", lambda: "p")
    cache.get("counter", "x", lambda: 1)
    clock.now += 15
    assert cache.peek("profile", "x") == "p"
    assert cache.peek("counter", "x") is None


def test_an_entry_from_the_future_counts_as_expired_when_the_clock_steps_back(clock):
    cache = ReadCache({"profile": 30.0}, clock=clock)
    cache.get("profile", "ann", lambda: "old")
    clock.now -= 5
    assert cache.peek("profile", "ann") is None


def test_none_is_a_value_worth_caching(clock):
    # a counter without a meta item ("not found") is cached like any value
    cache = ReadCache({"shard_count": 60.0}, clock=clock)
    load, calls = loader([None, None])
    assert cache.get("shard_count", "k", load) is None
    assert cache.get("shard_count", "k", load) is None
    assert len(calls) == 1


def test_the_cache_holds_at_most_max_entries_dropping_the_least_recently_used(clock):
    cache = ReadCache({"profile": 30.0}, max_entries=3, clock=clock)
    for name in "abc":
        cache.get("profile", name, lambda name=name: name.upper())
    cache.peek("profile", "a")  # a is used again: b is now the oldest
    cache.get("profile", "d", lambda: "D")
    assert len(cache) == 3
    assert cache.peek("profile", "b") is None
    assert [cache.peek("profile", k) for k in "acd"] == ["A", "C", "D"]


def test_own_writes_replace_update_or_drop_entries(clock):
    cache = ReadCache({"profile": 30.0, "counter": 10.0}, clock=clock)
    cache.get("profile", "ann", lambda: "before")
    cache.put("profile", "ann", "after")
    assert cache.peek("profile", "ann") == "after"
    cache.get("counter", "likes", lambda: 5)
    cache.update("counter", "likes", lambda n: n + 1)
    assert cache.peek("counter", "likes") == 6
    cache.update("counter", "absent", lambda n: n + 1)  # nothing to update: stays absent
    assert cache.peek("counter", "absent") is None
    cache.drop("profile", "ann")
    assert cache.peek("profile", "ann") is None


def test_an_update_keeps_the_entrys_expiry(clock):
    cache = ReadCache({"counter": 10.0}, clock=clock)
    cache.get("counter", "likes", lambda: 5)
    clock.now += 9
    cache.update("counter", "likes", lambda n: n + 1)
    clock.now += 1
    assert cache.peek("counter", "likes") is None


def test_drop_where_drops_every_matching_key_of_the_kind(clock):
    cache = ReadCache({"timeline": 10.0, "profile": 10.0}, clock=clock)
    cache.get("timeline", ("ann", 20), lambda: ("p1",))
    cache.get("timeline", ("ann", 5), lambda: ("p1",))
    cache.get("timeline", ("bob", 20), lambda: ("p2",))
    cache.get("profile", ("ann", 20), lambda: "kept")
    cache.drop_where("timeline", lambda key: key[0] == "ann")
    assert cache.peek("timeline", ("ann", 20)) is None and cache.peek("timeline", ("ann", 5)) is None
    assert cache.peek("timeline", ("bob", 20)) == ("p2",)
    assert cache.peek("profile", ("ann", 20)) == "kept"


@pytest.mark.parametrize("read", ["get", "refresh"])
def test_a_load_overlapping_an_own_write_is_returned_but_not_stored(clock, read):
    # A read-through get and a fresh read (refresh) alike
    cache = ReadCache({"profile": 30.0}, clock=clock)

    def load_then_write_meanwhile():
        cache.drop("profile", "ann")  # this container's write lands while the read is in flight
        return "read before the write"

    assert getattr(cache, read)("profile", "ann", load_then_write_meanwhile) == "read before the write"
    assert cache.peek("profile", "ann") is None


def test_get_many_loads_only_the_missing_keys_in_one_call(clock):
    cache = ReadCache({"display_name": 60.0}, clock=clock)
    cache.put("display_name", "ann", "Ann")
    asked: list[list[str]] = []

    def load(missing):
        asked.append(list(missing))
        return {key: key.title() for key in missing if key != "ghost"}

    assert cache.get_many("display_name", ["ann", "bob", "ghost", "bob"], load) == {"ann": "Ann", "bob": "Bob"}
    assert asked == [["bob", "ghost"]]
    assert cache.get_many("display_name", ["bob"], load) == {"bob": "Bob"}
    assert asked == [["bob", "ghost"]]


def test_concurrent_readers_and_writers_never_corrupt_the_cache_or_exceed_its_bound(clock):
    cache = ReadCache({"counter": 60.0}, max_entries=50, clock=clock)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(2_000):
                key = (worker * 7 + i) % 120
                cache.get("counter", key, lambda key=key: key)
                if i % 3 == 0:
                    cache.update("counter", key, lambda n: n)
                if i % 5 == 0:
                    cache.drop("counter", (key + 1) % 120)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50
    # every value still matches its key: no entry was written under another key
    for key in range(120):
        assert cache.peek("counter", key) in (None, key)


def test_the_ttl_table_covers_every_kind_the_repositories_use_and_the_docs_list_it():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "caching.md").read_text()
    for kind, seconds in TTL_SECONDS.items():
        assert f"| `{kind}` | {seconds:g} s |" in doc, kind
    assert f"{MAX_ENTRIES:,}" in doc


def test_a_bypassed_or_refreshed_read_loads_again_and_stores_the_fresh_value(clock):
    cache = ReadCache({"photo": 30.0, "counter": 30.0}, clock=clock)
    load, calls = loader([("ann", "v1"), ("ann", "v2"), ("ann", "v3")])
    assert cache.get("photo", "p1", load) == ("ann", "v1")
    # Given a cached value: a reader the bypass names (its owner) gets it loaded again
    assert cache.get("photo", "p1", load, bypass=lambda photo: photo[0] == "bob") == ("ann", "v1")
    assert cache.get("photo", "p1", load, bypass=lambda photo: photo[0] == "ann") == ("ann", "v2")
    # And the fresh value is what everyone is served next
    assert cache.get("photo", "p1", load) == ("ann", "v2")
    assert cache.refresh("photo", "p1", load) == ("ann", "v3")
    assert cache.get("photo", "p1", load) == ("ann", "v3") and len(calls) == 3
    # And a fresh get_many loads every key, cached or not, and stores them
    batches: list[list] = []

    def totals(missing):
        batches.append(sorted(missing))
        return {key: len(batches) for key in missing}

    assert cache.get_many("counter", ["a"], totals) == {"a": 1}
    assert cache.get_many("counter", ["a", "b"], totals, fresh=True) == {"a": 2, "b": 2}
    assert cache.get_many("counter", ["a", "b"], totals) == {"a": 2, "b": 2}
    assert batches == [["a"], ["a", "b"]]
