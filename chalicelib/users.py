"""Accounts and profiles: sign-up ties a Cognito identity to a profile row."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from chalicelib import identity, quotas
from chalicelib.errors import UsernameTaken, UserNotFound
from chalicelib.repositories import counters
from chalicelib.repositories import users as profiles
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING, PHOTOS
from chalicelib.repositories.users import User
from chalicelib.observability import logger, metrics
from chalicelib.settings import get_settings

__all__ = ["FOLLOWERS", "FOLLOWING", "PHOTOS", "User"]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_user(username: str, email: str | None) -> User:
    """A new profile, at home in the region serving its creation (see :mod:`chalicelib.regions`)."""
    return User(username, email=email, display_name=username, bio="", created_at=now_iso(),
                home_region=get_settings().region)


def home_region(username: str) -> str | None:
    """The region that takes ``username``'s writes: the one recorded at sign-up (profiles from
    before regions were recorded: the primary); None while the user has no profile here yet.

    A cached profile is trusted (a home never changes after sign-up); a cached *absence* is not: it
    may predate the replication of a sign-up served by another region, so a miss is read again
    strongly consistent from the table (bypassing the in-process cache and DAX) before None.
    """
    key = username.lower()
    found = profiles.get(key) or profiles.get_consistent(key)
    if found is None:
        return None
    return found.home_region or get_settings().primary_region


def sign_up(username: str, email: str, password: str, client_ip: str) -> dict:
    """Create the identity in Cognito, then the profile (username is unique in both).

    Each attempt counts against the client IP's sign-up quota (taken ones too: probing names costs).
    """
    quotas.consume(quotas.SIGNUPS, client_ip)
    from chalicelib import erasure  # the reservation check needs the key ring: loaded on sign-up only

    if erasure.is_reserved(username):
        raise UsernameTaken("That username is taken.")
    confirmed = identity.sign_up(username, email, password)
    if not profiles.create(_new_user(username, email)):
        raise UsernameTaken("That username is taken.")
    metrics.add_metric(name="SignUps", unit="Count", value=1)
    return {"username": username, "confirmed": confirmed}


#: With several regions, a missing profile is healed at log-in only for an identity older than this:
#: a younger one's profile may still be replicating from the region that signed her up, and a profile
#: written here would replace it (last writer wins) with this region as her home and no email.
#: Global tables replicate in about a second; this leaves a wide margin.
PROFILE_HEAL_AFTER_SECONDS = 120


def ensure_profile(username: str, now: Callable[[], float] = time.time) -> None:
    """Heal a sign-up whose profile write failed after Cognito's: create the missing profile, with
    the identity's email, once no replication can still bring the original (see
    :data:`PROFILE_HEAL_AFTER_SECONDS`). The check reads the table itself (no cached absence)."""
    if profiles.get_consistent(username.lower()) is not None:
        return
    account = identity.account(username)
    if account is None:
        return
    age = now() - account.created_at
    if len(get_settings().serving_regions) > 1 and age < PROFILE_HEAL_AFTER_SECONDS:
        logger.info("profile not healed yet: it may still be replicating", extra={"identity_age_s": round(age, 1)})
        return
    profiles.create(_new_user(username.lower(), account.email))


def get_record(username: str, fresh: bool = False) -> User:
    found = profiles.get(username.lower(), fresh=fresh)
    if found is None:
        raise UserNotFound(f"No user named {username!r}.")
    return found


def display_names(usernames: Iterable[str]) -> dict[str, str]:
    """Display names of several users (the username if none is set)."""
    return profiles.display_names(usernames)


def profile(username: str, viewer: str | None = None) -> dict:
    """The public profile with its follower, following and photo counts.

    The user's own (``viewer`` is she) is read from the table, not this container's cache: her edits
    and her counts show at once, whichever container or worker made them."""
    own = viewer is not None and viewer.lower() == username.lower()
    return _profile(get_record(username, fresh=own), fresh=own)


def update_profile(username: str, display_name: str | None, bio: str | None) -> dict:
    """Change the caller's own profile; the answer (and this container's cache) is the item as written."""
    updated = profiles.update(username.lower(), None if display_name is None else (display_name or username), bio)
    if updated is None:
        raise UserNotFound(f"No user named {username!r}.")
    return _profile(updated, fresh=True)


def _profile(record: User, fresh: bool = False) -> dict:
    totals = counters.read_totals([(kind, record.username) for kind in (FOLLOWERS, FOLLOWING, PHOTOS)], fresh=fresh)
    return _profile_view(record, {kind: total for (kind, _), total in totals.items()})


def _profile_view(record: User, counts: dict[str, int]) -> dict:
    return {
        "username": record.username,
        "display_name": record.display_name or record.username,
        "bio": record.bio or "",
        "followers": counts[FOLLOWERS],
        "following": counts[FOLLOWING],
        "photos": counts[PHOTOS],
        "created_at": record.created_at,
    }
