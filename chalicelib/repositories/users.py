"""User profiles (``UsersTable``): one item per username. Identity lives in Cognito."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.exceptions import PutError

from chalicelib import aws, cache, ddb
from chalicelib.models import UserRecord, bound, reading
from chalicelib.settings import get_settings


@dataclass(frozen=True)
class User:
    username: str
    email: str | None
    display_name: str | None
    bio: str | None
    created_at: str
    home_region: str | None = None


def _user(record: UserRecord) -> User:
    return User(record.username, record.email, record.display_name, record.bio, record.created_at,
                record.home_region)


def create(user: User) -> bool:
    """Write a new profile; False if the username is taken (nothing written)."""
    record = bound(UserRecord)(user.username, email=user.email, display_name=user.display_name, bio=user.bio,
                               created_at=user.created_at, home_region=user.home_region)
    try:
        record.save(condition=UserRecord.username.does_not_exist())
    except PutError as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    _remember(user)
    return True


def _remember(user: User) -> None:
    cache.shared.put("profile", user.username, user)
    cache.shared.put("display_name", user.username, user.display_name or user.username)


def get(username: str, fresh: bool = False) -> User | None:
    """The profile (cached; an absent user is not, so a new sign-up is seen at once everywhere).

    ``fresh``: read from the table, not the cache (the user reading her own profile)."""
    read = cache.shared.refresh if fresh else cache.shared.get
    return read("profile", username, lambda: _load(username), keep=lambda user: user is not None)


def known(username: str) -> bool:
    """Whether this container has the profile in its cache (it existed within the ``profile`` TTL);
    no read."""
    return cache.shared.peek("profile", username) is not None


def _load(username: str) -> User | None:
    model = reading(UserRecord)
    try:
        return _user(model.get(username))
    except model.DoesNotExist:
        return None


def get_consistent(username: str) -> User | None:
    """The profile read straight from this region's table, strongly consistent: no in-process cache,
    no DAX (whose item cache keeps negative results too). For decisions a cached absence must not
    make (:func:`chalicelib.users.home_region`); nothing is cached."""
    model = bound(UserRecord)
    try:
        return _user(model.get(username, consistent_read=True))
    except model.DoesNotExist:
        return None


def update(username: str, display_name: str | None = None, bio: str | None = None) -> User | None:
    """Set the given fields of an existing profile; returns it as written, None if there is none."""
    actions = []
    if display_name is not None:
        actions.append(UserRecord.display_name.set(display_name))
    if bio is not None:
        actions.append(UserRecord.bio.set(bio))
    if not actions:
        return get(username)
    record = bound(UserRecord)(username)
    try:
        record.update(actions=actions, condition=UserRecord.username.exists())  # ALL_NEW: the whole item
    except Exception as exc:
        if ddb.condition_failed(exc):
            cache.shared.drop("profile", username)
            return None
        raise
    user = _user(record)
    _remember(user)
    return user


def display_name(username: str) -> str:
    """``username``'s display name (the username if none is set or there is no profile)."""
    return display_names([username])[username]


def display_names(usernames: Iterable[str]) -> dict[str, str]:
    """Display names of several users in one BatchGetItem (the username if none is set)."""
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    found = cache.shared.get_many("display_name", wanted, _load_display_names)
    return {name: found.get(name, name) for name in wanted}


def _load_display_names(usernames: list[str]) -> dict[str, str]:
    """Display names of the users that have a profile (absent ones are left out: not cached)."""
    return {r.username: r.display_name or r.username
            for r in reading(UserRecord).batch_get(usernames, attributes_to_get=["username", "display_name"])}


def probe() -> None:
    """One cheap read of the users table (``GET /health``); raises botocore's errors unchanged."""
    aws.client("dynamodb").get_item(TableName=get_settings().users_table, Key={"username": {"S": "__health__"}})


#: Key of a region's heartbeat item (``#`` is never in a username, so it cannot name a profile).
def heartbeat_key(region: str) -> str:
    return f"heartbeat#{region}"


def write_heartbeat(region: str, at_ms: int) -> None:
    """Record that ``region`` was alive at ``at_ms``; the global table carries it to every region."""
    from datetime import datetime, timezone

    aws.client("dynamodb").put_item(TableName=get_settings().users_table, Item={
        "username": {"S": heartbeat_key(region)}, "heartbeat_ms": {"N": str(at_ms)},
        "created_at": {"S": datetime.fromtimestamp(at_ms / 1000, timezone.utc).isoformat()},
    })


def heartbeats(regions: Iterable[str]) -> dict[str, int]:
    """The newest heartbeat (ms) of each of ``regions`` this replica holds (absent ones left out)."""
    wanted = [heartbeat_key(r) for r in regions]
    if not wanted:
        return {}
    table = get_settings().users_table
    answer = aws.client("dynamodb").batch_get_item(RequestItems={table: {
        "Keys": [{"username": {"S": k}} for k in wanted], "ProjectionExpression": "username, heartbeat_ms"}})
    return {item["username"]["S"].split("#", 1)[1]: int(item["heartbeat_ms"]["N"])
            for item in answer.get("Responses", {}).get(table, []) if "heartbeat_ms" in item}
