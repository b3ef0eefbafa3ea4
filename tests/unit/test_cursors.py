"""Pagination cursors: tamper-proof, scoped to their listing, and surviving a key rotation."""
from __future__ import annotations

import os

import pytest

from chalicelib import cursors, secrets

OLD, NEW = os.urandom(32), os.urandom(32)


def test_a_cursor_round_trips_and_names_its_key():
    cursor = cursors.encode({"k": {"pk": "a"}}, key=OLD, scope="photos:ann")
    assert cursor.split(".")[0] == cursors.key_id(OLD)
    assert cursors.decode(cursor, key=OLD, scope="photos:ann") == {"k": {"pk": "a"}}


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
    lambda c: ".".join([c.split(".")[0], cursors._b64(b'{"k":"x"}'), c.split(".")[2]]),
    lambda c: c.replace(".", "..", 1),
    lambda c: "",
])
def test_an_altered_cursor_is_refused(tamper):
    cursor = cursors.encode({"k": 1}, key=OLD, scope="s")
    with pytest.raises(cursors.CursorError):
        cursors.decode(tamper(cursor), key=OLD, scope="s")


def test_a_cursor_of_another_listing_is_refused():
    cursor = cursors.encode({"k": 1}, key=OLD, scope="photos:ann")
    with pytest.raises(cursors.CursorError):
        cursors.decode(cursor, key=OLD, scope="photos:bob")


def test_after_a_rotation_cursors_of_the_previous_key_still_verify_and_new_ones_use_the_new_key():
    # Given a cursor signed before the rotation
    in_flight = cursors.encode({"k": 1}, key=OLD, scope="s")
    # When the key rotates (new current, old previous)
    rotated = cursors.StaticKeyring(current=NEW, previous=OLD)
    # Then the cursor in flight still verifies, and new cursors are signed with the new key
    assert cursors.decode(in_flight, key=rotated, scope="s") == {"k": 1}
    fresh = cursors.encode({"k": 2}, key=rotated, scope="s")
    assert fresh.split(".")[0] == cursors.key_id(NEW)
    # And once the old key is gone (a second rotation) its cursors are refused
    with pytest.raises(cursors.CursorError):
        cursors.decode(in_flight, key=cursors.StaticKeyring(current=os.urandom(32), previous=NEW), scope="s")


def test_a_cursor_naming_one_key_is_not_checked_against_the_other():
    # Given a cursor signed with the old key but labelled with the new key's id
    _, payload, mac = cursors.encode({"k": 1}, key=OLD, scope="s").split(".")
    relabelled = f"{cursors.key_id(NEW)}.{payload}.{mac}"
    # Then it is refused even though the keyring knows both keys
    with pytest.raises(cursors.CursorError):
        cursors.decode(relabelled, key=cursors.StaticKeyring(NEW, OLD), scope="s")


def test_cursors_from_before_key_ids_verify_with_any_known_key():
    # Given a two-part cursor (the format before key ids), signed with what is now the previous key
    _, payload, mac = cursors.encode({"k": 1}, key=OLD, scope="s").split(".")
    legacy = f"{payload}.{mac}"
    assert cursors.decode(legacy, key=cursors.StaticKeyring(NEW, OLD), scope="s") == {"k": 1}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedKeyring(secrets.CursorKeyring):
    """The real keyring with Secrets Manager replaced by a list of (current, previous) answers."""

    def __init__(self, versions, clock) -> None:
        super().__init__(clock=clock)
        self.versions, self.loads = versions, 0

    def _load(self) -> cursors.StaticKeyring:
        current, previous = self.versions[min(self.loads, len(self.versions) - 1)]
        self.loads += 1
        return cursors.StaticKeyring(current, previous)


def test_a_warm_container_learns_a_rotated_key_when_a_cursor_names_it():
    # Given a container that loaded the keys before the rotation
    clock = FakeClock()
    warm = ScriptedKeyring([(OLD, None), (NEW, OLD)], clock)
    assert warm.signing_key() == OLD
    # When another container signs a cursor with the new key
    cursor = cursors.encode({"k": 1}, key=cursors.StaticKeyring(NEW, OLD), scope="s")
    clock.now += secrets.MIN_RELOAD_SECONDS
    # Then the warm container reloads and accepts it, and signs with the new key from then on
    assert cursors.decode(cursor, key=warm, scope="s") == {"k": 1}
    assert warm.signing_key() == NEW and warm.loads == 2


def test_unknown_key_ids_reload_at_most_once_per_interval():
    # Given a loaded keyring
    clock = FakeClock()
    keyring = ScriptedKeyring([(OLD, None)], clock)
    keyring.signing_key()
    clock.now += secrets.MIN_RELOAD_SECONDS
    # When many cursors name keys nobody has
    for n in range(20):
        with pytest.raises(cursors.CursorError):
            cursors.decode(f"forged{n}.e30.AAAA", key=keyring, scope="s")
    # Then the keys were reloaded once, not twenty times
    assert keyring.loads == 2


def test_keys_are_reloaded_when_they_are_older_than_the_maximum_age():
    clock = FakeClock()
    keyring = ScriptedKeyring([(OLD, None), (NEW, OLD)], clock)
    assert keyring.signing_key() == OLD
    clock.now += secrets.KEYS_MAX_AGE_SECONDS - 1
    assert keyring.signing_key() == OLD
    clock.now += 1
    assert keyring.signing_key() == NEW
