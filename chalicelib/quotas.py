"""Per-user and per-IP quotas: how much of an action a subject may do in a window.

Enforced by the app itself in every stage (local included), behind the edge's coarser layers
(AWS WAF rate-based rules per IP on the CloudFront distribution, ``infra/waf.yaml``; API Gateway
stage throttling). Over a limit the API answers 429 ``too_many_requests`` with ``Retry-After`` =
the seconds until the window ends.

Two parts:

- Pure rules (no I/O): the limits table (action -> (limit, window seconds), overridable per stage
  with ``QUOTA_<ACTION>=<limit>/<seconds>``), the fixed-window bucket of an instant, the item key,
  ``Retry-After`` and the client IP of a request.
- A small store on the ``QuotasTable``: one item per (action, subject, window) holding a count,
  taken with one atomic ``UpdateItem`` — ``ADD n :1`` on condition ``n < limit`` (or no item yet) —
  and a TTL (``expires_at``) so the table never grows. A failed condition is the 429. Likes and
  follows put that same update into their own transaction (:func:`taken_in_transaction`): one
  round trip fewer, and a like or follow that changes nothing (a repeat, a missing target) or fails
  counts nothing.

Why no hot key forms: the key is ``quota#{action}#{subject}#{window_start}``. Every subject (a user
or a client IP) has its own item, and every window a new one, so load spreads over as many
partitions as there are active users and IPs. The only way to heat one item is for one subject to
hammer it — and then it heats *only its own* key, which is the point: its neighbours never share
a partition key with it. Once a subject is over its limit this container remembers the window's
end (:data:`_blocked`) and rejects it without touching DynamoDB at all, and a flood from one IP is
cut at the edge by the WAF rate-based rules long before it reaches the app (a single key takes up
to 1,000 writes/s, far above any per-IP WAF limit spread over the Lambda fleet).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from chalicelib import ddb
from chalicelib.errors import TooManyRequests

if TYPE_CHECKING:
    from chalicelib.repositories.quotas import Take

UPLOAD_GRANTS = "upload_grants"
PENDING_UPLOADS = "pending_uploads"
FOLLOWS = "follows"
LIKES = "likes"
SIGNUPS = "signups"
FAILED_LOGINS = "failed_logins"
EXPORTS = "exports"

#: Seconds a quota item outlives its window before DynamoDB's TTL may delete it.
TTL_GRACE_SECONDS = 3600
#: ``Retry-After`` of the un-windowed pending-uploads quota (a slot frees when processing ends).
PENDING_RETRY_AFTER_SECONDS = 30
#: Containers forget remembered rejections beyond this many (memory stays bounded under a flood).
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` per ``window`` seconds (``window`` 0: at once, not windowed)."""

    limit: int
    window: int


#: The defaults of every stage (env ``QUOTA_<ACTION>`` overrides one, e.g. ``QUOTA_FOLLOWS=60/60``).
DEFAULT_LIMITS: dict[str, Limit] = {
    UPLOAD_GRANTS: Limit(60, 3600),    # per user: upload grants (POST /photos) an hour
    PENDING_UPLOADS: Limit(10, 0),     # per user: uploads granted but not yet processed, at once
    FOLLOWS: Limit(30, 60),            # per user: follows and unfollows a minute
    LIKES: Limit(60, 60),              # per user: likes and unlikes a minute
    SIGNUPS: Limit(20, 3600),          # per client IP: sign-ups an hour (NATs share an IP)
    FAILED_LOGINS: Limit(20, 900),     # per client IP: wrong passwords per 15 minutes
    EXPORTS: Limit(5, 86400),          # per user: data exports a day (each reads every photo)
}

MESSAGES = {
    UPLOAD_GRANTS: "Too many uploads: at most {limit} every {window}.",
    PENDING_UPLOADS: "Too many uploads in progress: at most {limit} at once; wait for them to finish.",
    FOLLOWS: "Too many follows: at most {limit} every {window}.",
    LIKES: "Too many likes: at most {limit} every {window}.",
    SIGNUPS: "Too many sign-ups from your network: at most {limit} every {window}.",
    FAILED_LOGINS: "Too many failed logins from your network: at most {limit} every {window}.",
    EXPORTS: "Too many data exports: at most {limit} every {window}.",
}


# --- pure rules -----------------------------------------------------------------------------------

def parse_limit(text: str) -> Limit:
    """``"60/3600"`` -> ``Limit(60, 3600)``; ``"10"`` -> ``Limit(10, 0)`` (not windowed).

    Raises ``ValueError`` for anything else (a limit must be positive, a window not negative).
    """
    count, _, window = text.strip().partition("/")
    limit = Limit(int(count), int(window) if window else 0)
    if limit.limit <= 0 or limit.window < 0:
        raise ValueError(f"quota must be <positive limit>[/<window seconds>], got {text!r}")
    return limit


def limits_from(environ: Mapping[str, str]) -> dict[str, Limit]:
    """The limits table with ``QUOTA_<ACTION>`` overrides applied (``ValueError`` if one is bad)."""
    limits = dict(DEFAULT_LIMITS)
    for action in DEFAULT_LIMITS:
        name = f"QUOTA_{action.upper()}"
        raw = environ.get(name)
        if raw:
            try:
                limits[action] = parse_limit(raw)
            except ValueError:
                raise ValueError(f"{name} must be <positive limit>[/<window seconds>], got {raw!r}") from None
    return limits


def window_start(now: float, window: int) -> int:
    """Start (epoch seconds) of the fixed window holding ``now``: windows align to multiples of ``window``."""
    return int(now // window) * window


def retry_after(now: float, window: int) -> int:
    """Whole seconds until the window holding ``now`` ends (at least 1), for ``Retry-After``."""
    return max(1, math.ceil(window_start(now, window) + window - now))


def quota_key(action: str, subject: str, start: int) -> str:
    """The item of ``subject``'s count of ``action`` in the window starting at ``start``."""
    return f"quota#{action}#{subject.lower()}#{start}"


def describe_window(seconds: int) -> str:
    """``3600`` -> ``"hour"``, ``60`` -> ``"minute"``, ``900`` -> ``"15 minutes"``, ``45`` -> ``"45 seconds"``."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds == size:
            return unit
        if seconds % size == 0:
            return f"{seconds // size} {unit}s"
    return f"{seconds} seconds"


def message(action: str, limit: Limit) -> str:
    return MESSAGES[action].format(limit=limit.limit, window=describe_window(limit.window))


def client_ip(source_ip: str | None, headers: Mapping[str, str] | None, trusted_header: str | None) -> str:
    """The client IP a per-IP quota counts against.

    ``source_ip`` is API Gateway's ``identity.sourceIp``: the peer that connected to API Gateway.
    Behind CloudFront that is a CloudFront edge server shared by many viewers, so the stage names
    ``trusted_header`` (``CLIENT_IP_HEADER`` = ``CloudFront-Viewer-Address``): CloudFront sets it
    itself to ``ip:port`` of the viewer (replacing any value a viewer sends). ``X-Forwarded-For``
    is never read: its leftmost entries are whatever the client wrote. Without the setting (local
    stage: chalice local is the server the client connects to) ``source_ip`` is the client.

    Known gap: a caller that skips CloudFront and calls the execute-api endpoint directly can send
    any ``CloudFront-Viewer-Address``; that path also skips the WAF, and is bounded only by API
    Gateway's stage throttling until the API accepts CloudFront's traffic alone.
    """
    if trusted_header and headers:
        value = next((v for k, v in headers.items() if k.lower() == trusted_header.lower()), "").strip()
        host = value.rsplit(":", 1)[0].strip("[]") if ":" in value else value
        if host:
            return host
    return source_ip or "unknown"


# --- the store ------------------------------------------------------------------------------------

_lock = threading.Lock()
#: quota key -> window end: subjects this container saw over a limit (no DynamoDB call until then).
_blocked: dict[str, int] = {}
#: The clock (epoch seconds); tests pin it to stay away from window boundaries.
clock: Callable[[], float] = time.time


def limit_of(action: str) -> Limit:
    from chalicelib.settings import get_settings

    return get_settings().quota_limits.get(action) or DEFAULT_LIMITS[action]


def consume(action: str, subject: str) -> None:
    """Count one ``action`` by ``subject``; :class:`TooManyRequests` if the window's quota is used up.

    One conditional ``UpdateItem`` (ADD 1 if the count is below the limit): concurrent requests can
    never exceed the limit, and a rejected request counts nothing. (A write retried after a
    transient error that had in fact been applied counts twice: quotas err on the strict side.)
    """
    limit, now, start, key = _open_window(action, subject)
    from chalicelib.repositories import quotas as counts

    try:
        counted = counts.add_if_below(key, limit.limit, start + limit.window + TTL_GRACE_SECONDS)
    except Exception as exc:
        _reraise(exc)
    if not counted:
        _remember(key, start + limit.window)
        raise _over(action, limit, now)


@contextmanager
def taken_in_transaction(action: str, subject: str) -> Iterator[Take]:
    """Count one ``action`` by ``subject`` inside the write it limits (one round trip fewer than
    :func:`consume`): yields the :class:`~chalicelib.repositories.quotas.Take` the write's repository
    adds to its transaction; a transaction refused on the quota item (``QuotaRefused``) becomes
    :class:`TooManyRequests`. A write that is cancelled for any other reason (already done, its
    target gone) counts nothing, nor does a transaction retried after a conflict."""
    limit, now, start, key = _open_window(action, subject)
    from chalicelib.repositories import quotas as counts

    try:
        yield counts.Take(key, limit.limit, start + limit.window + TTL_GRACE_SECONDS)
    except counts.QuotaRefused:
        _remember(key, start + limit.window)
        raise _over(action, limit, now) from None


def ensure_below(action: str, subject: str) -> None:
    """:class:`TooManyRequests` if ``subject`` already reached the window's quota (counts nothing).

    For quotas on outcomes known only afterwards (failed logins): check first, :func:`record` after.
    Attempts racing each other can pass the check together (each is still counted), so a burst can
    overshoot by its concurrency once; every later attempt in the window is refused.
    """
    limit, now, start, key = _open_window(action, subject)
    from chalicelib.repositories import quotas as counts

    try:
        current = counts.count(key)
    except Exception as exc:
        _reraise(exc)
    if current >= limit.limit:
        _remember(key, start + limit.window)
        raise _over(action, limit, now)


def record(action: str, subject: str) -> None:
    """Count one ``action`` by ``subject`` unconditionally (the outcome already happened)."""
    limit = limit_of(action)
    start = window_start(clock(), limit.window)
    from chalicelib.repositories import quotas as counts

    try:
        counts.add(quota_key(action, subject, start), start + limit.window + TTL_GRACE_SECONDS)
    except Exception as exc:
        _reraise(exc)


def ensure_fewer_than_limit(action: str, current: int) -> None:
    """:class:`TooManyRequests` if ``current`` (an exact count of things in progress) is at the limit.

    For un-windowed quotas (pending uploads): ``Retry-After`` is a short, fixed pause, since what
    frees a slot (processing finishing) is not on a clock.
    """
    limit = limit_of(action)
    if current >= limit.limit:
        raise TooManyRequests(message(action, limit), retry_after=PENDING_RETRY_AFTER_SECONDS)


def _open_window(action: str, subject: str) -> tuple[Limit, float, int, str]:
    """``(limit, now, window start, item key)`` of ``subject``'s current window of ``action``;
    :class:`TooManyRequests` at once if this container saw that window's quota used up."""
    limit = limit_of(action)
    now = clock()
    start = window_start(now, limit.window)
    key = quota_key(action, subject, start)
    _raise_if_remembered(key, action, limit, now)
    return limit, now, start, key


def _reraise(exc: Exception) -> NoReturn:
    """Still transient after retries: a 503 with Retry-After (``ddb.translate``); else ``exc`` as is."""
    translated = ddb.translate(exc)
    if translated is exc:
        raise exc
    raise translated from exc


def _over(action: str, limit: Limit, now: float) -> TooManyRequests:
    return TooManyRequests(message(action, limit), retry_after=retry_after(now, limit.window))


def _raise_if_remembered(key: str, action: str, limit: Limit, now: float) -> None:
    end = _blocked.get(key)
    if end is not None and now < end:
        raise _over(action, limit, now)


def _remember(key: str, window_end: int) -> None:
    with _lock:
        if len(_blocked) >= MAX_REMEMBERED:
            _blocked.clear()
        _blocked[key] = window_end


def reset() -> None:
    """Forget remembered rejections (tests start each case with a fresh container)."""
    with _lock:
        _blocked.clear()
