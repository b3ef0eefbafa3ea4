"""Pure rules of account erasure: the keyed name hash, the step order, the quota windows."""
from __future__ import annotations

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


def test_the_identity_goes_last_so_a_crash_leaves_the_lock_out_in_force():
    assert erasure.STEPS[0] == "lock_out" and erasure.STEPS[-1] == "identity"


def test_quota_windows_cover_the_current_and_previous_window_of_each_per_user_quota():
    now = 10_000.0
    limits = {action: quotas.DEFAULT_LIMITS[action] for action in erasure.PER_USER_QUOTAS}
    found = erasure.quota_windows("bob", now, {**limits, quotas.PENDING_UPLOADS: quotas.Limit(10, 0)})
    follows = limits[quotas.FOLLOWS].window
    start = quotas.window_start(now, follows)
    assert quotas.quota_key(quotas.FOLLOWS, "bob", start) in found
    assert quotas.quota_key(quotas.FOLLOWS, "bob", start - follows) in found
    assert len(found) == 2 * len(erasure.PER_USER_QUOTAS)
