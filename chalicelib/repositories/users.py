"""User profiles (``UsersTable``): one item per username. Identity lives in Cognito."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.exceptions import PutError

from chalicelib import aws, ddb
from chalicelib.models import UserRecord, bound, reading
from chalicelib.settings import get_settings


@dataclass(frozen=True)
class User:
    username: str
    email: str | None
    display_name: str | None
    bio: str | None
    created_at: str


def _user(record: UserRecord) -> User:
    return User(record.username, record.email, record.display_name, record.bio, record.created_at)


def create(user: User) -> bool:
    """Write a new profile; False if the username is taken (nothing written)."""
    record = bound(UserRecord)(user.username, email=user.email, display_name=user.display_name, bio=user.bio,
                               created_at=user.created_at)
    try:
        record.save(condition=UserRecord.username.does_not_exist())
    except PutError as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    return True


def get(username: str) -> User | None:
    model = reading(UserRecord)
    try:
        return _user(model.get(username))
    except model.DoesNotExist:
        return None


def update(username: str, display_name: str | None = None, bio: str | None = None) -> bool:
    """Set the given fields of an existing profile; False if there is no such profile."""
    actions = []
    if display_name is not None:
        actions.append(UserRecord.display_name.set(display_name))
    if bio is not None:
        actions.append(UserRecord.bio.set(bio))
    if not actions:
        return True
    try:
        bound(UserRecord)(username).update(actions=actions, condition=UserRecord.username.exists())
    except Exception as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    return True


def display_name(username: str) -> str:
    """``username``'s display name (the username if none is set or there is no profile)."""
    model = reading(UserRecord)
    try:
        return model.get(username, attributes_to_get=["display_name"]).display_name or username
    except model.DoesNotExist:
        return username


def display_names(usernames: Iterable[str]) -> dict[str, str]:
    """Display names of several users in one BatchGetItem (the username if none is set)."""
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    found = {r.username: r.display_name or r.username
             for r in reading(UserRecord).batch_get(wanted, attributes_to_get=["username", "display_name"])}
    return {name: found.get(name, name) for name in wanted}


def probe() -> None:
    """One cheap read of the users table (``GET /health``); raises botocore's errors unchanged."""
    aws.client("dynamodb").get_item(TableName=get_settings().users_table, Key={"username": {"S": "__health__"}})
