"""Accounts and profiles: sign-up ties a Cognito identity to a profile row."""
from __future__ import annotations

from datetime import datetime, timezone

from pynamodb.exceptions import PutError

from chalicelib import counters, ddb, identity, quotas
from chalicelib.errors import UsernameTaken, UserNotFound
from chalicelib.models import UserRecord, bound
from chalicelib.observability import metrics

FOLLOWERS, FOLLOWING, PHOTOS = "followers", "following", "photos"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign_up(username: str, email: str, password: str, client_ip: str) -> dict:
    """Create the identity in Cognito, then the profile (username is unique in both).

    Each attempt counts against the client IP's sign-up quota (taken ones too: probing names costs).
    """
    quotas.consume(quotas.SIGNUPS, client_ip)
    confirmed = identity.sign_up(username, email, password)
    record = bound(UserRecord)(username, email=email, display_name=username, bio="", created_at=now_iso())
    try:
        record.save(condition=UserRecord.username.does_not_exist())
    except PutError as exc:
        if ddb.condition_failed(exc):
            raise UsernameTaken("That username is taken.") from exc
        raise
    metrics.add_metric(name="SignUps", unit="Count", value=1)
    return {"username": username, "confirmed": confirmed}


def ensure_profile(username: str, email: str | None = None) -> None:
    """Create a missing profile (heals a sign-up whose profile write failed after Cognito's)."""
    record = bound(UserRecord)(username, email=email, display_name=username, bio="", created_at=now_iso())
    try:
        record.save(condition=UserRecord.username.does_not_exist())
    except PutError as exc:
        if not ddb.condition_failed(exc):
            raise


def get_record(username: str) -> UserRecord:
    model = bound(UserRecord)
    try:
        return model.get(username.lower())
    except model.DoesNotExist:
        raise UserNotFound(f"No user named {username!r}.") from None


def profile(username: str) -> dict:
    """The public profile with exact follower, following and photo counts."""
    record = get_record(username)
    totals = counters.read_totals([(kind, record.username) for kind in (FOLLOWERS, FOLLOWING, PHOTOS)])
    return _profile_view(record, {kind: total for (kind, _), total in totals.items()})


def update_profile(username: str, display_name: str | None, bio: str | None) -> dict:
    record = get_record(username)
    actions = []
    if display_name is not None:
        actions.append(UserRecord.display_name.set(display_name or username))
    if bio is not None:
        actions.append(UserRecord.bio.set(bio))
    if actions:
        record.update(actions=actions, condition=UserRecord.username.exists())
    return profile(username)


def _profile_view(record: UserRecord, counts: dict[str, int]) -> dict:
    return {
        "username": record.username,
        "display_name": record.display_name or record.username,
        "bio": record.bio or "",
        "followers": counts[FOLLOWERS],
        "following": counts[FOLLOWING],
        "photos": counts[PHOTOS],
        "created_at": record.created_at,
    }
