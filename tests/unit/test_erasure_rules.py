"""Pure rules of account erasure: the keyed name hash, the step order, the quota windows."""
from __future__ import annotations

import pytest

from chalicelib import erasure, quotas


def test_the_reservation_hash_is_keyed_case_insensitive_and_hides_the_name():
    first = erasure.name_hash("Alice", b"key-one")
    assert first == erasure.name_hash("alice", b"key-one")
    assert first != erasure.name_hash("alice", b"key-two")
    assert "alice" not in first and len(first) == 64


def test_the_next_step_is_the_first_one_not_yet_done_and_none_at_the_end():
    assert erasure.next_step({}) == erasure.STEPS[0]
    assert erasure.next_step({"done": list(erasure.STEPS[:3])}) == erasure.STEPS[3]
    assert erasure.next_step({"done": list(erasure.STEPS)}) is None


def test_the_identity_goes_last_of_this_regions_steps_so_a_crash_leaves_the_lock_out_in_force():
    # only the request to the other regions to sweep theirs comes after it: a region that cannot be
    # reached then delays nothing of the erasure here
    assert erasure.STEPS[0] == "lock_out" and erasure.STEPS[-2:] == ("identity", "other_regions")


def test_an_erasure_asks_every_other_region_to_sweep_its_regional_data():
    urls = {"us-east-1": "q-us", "eu-west-1": "q-eu", "ap-south-1": "q-ap"}
    sweeps = erasure.regional_sweeps("ann", "eu-west-1", ("us-east-1", "eu-west-1", "ap-south-1"), urls)
    assert sweeps == [("us-east-1", "q-us", {"type": erasure.ERASE_REGIONAL, "user": "ann", "from": "eu-west-1"}),
                      ("ap-south-1", "q-ap", {"type": erasure.ERASE_REGIONAL, "user": "ann", "from": "eu-west-1"})]


def test_an_erasure_in_a_single_region_stage_queues_no_sweep():
    assert erasure.regional_sweeps("ann", "us-east-1", ("us-east-1",), {"us-east-1": "q-us"}) == []


def test_an_other_region_without_a_known_queue_is_an_error_not_a_skipped_sweep():
    with pytest.raises(ValueError, match="eu-west-1"):
        erasure.regional_sweeps("ann", "us-east-1", ("us-east-1", "eu-west-1"), {"us-east-1": "q-us"})


def test_quota_windows_cover_the_current_and_previous_window_of_each_per_user_quota():
    now = 10_000.0
    limits = {action: quotas.DEFAULT_LIMITS[action] for action in erasure.PER_USER_QUOTAS}
    found = erasure.quota_windows("bob", now, {**limits, quotas.PENDING_UPLOADS: quotas.Limit(10, 0)})
    follows = limits[quotas.FOLLOWS].window
    start = quotas.window_start(now, follows)
    assert quotas.quota_key(quotas.FOLLOWS, "bob", start) in found
    assert quotas.quota_key(quotas.FOLLOWS, "bob", start - follows) in found
    assert len(found) == 2 * len(erasure.PER_USER_QUOTAS)
