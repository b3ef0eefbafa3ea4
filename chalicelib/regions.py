"""Home regions: where a user's writes go while several regions serve the stage.

Conditions and transactions are checked only in the local replica of a global table, so each user
has a **home region** (recorded on the profile at sign-up: the region that served it) that takes
their writes while it is healthy. A mutating request that reaches another region is forwarded to
the home region's API (same method, path, query, body and ``Authorization``) and its answer
returned. When the home region is unhealthy or unreachable, the request is accepted locally
(failover) and the counters it may change are recorded as suspects, which the reconciliation job
(:mod:`chalicelib.reconcile`) recounts from their edges first. Reads are always served locally.
A write of a caller with no profile in this region's replica, even read strongly consistent, is
refused with 503 ``home_region_unknown`` and ``Retry-After`` (:data:`UNKNOWN_HOME_RETRY_AFTER`)
while another region is healthy: every token comes from a log-in, which leaves a profile in the
region that served it, so the profile is still replicating from another region (typically under a
second) and serving the write here could take it away from a healthy home with nothing noted to
reconcile. When no other region is healthy, the home (wherever it is) is down: failover, as above.

The decision is pure (:func:`decide`, :func:`suspect_counters`); :func:`route` is the one wrapper
(an ``http`` middleware in ``app.py``) that applies it, so no handler knows about regions. Another
region's health is its own ``GET /health`` answer (200 healthy), cached for ``REGION_HEALTH_TTL``
seconds; forwarded requests carry :data:`FORWARDED_HEADER`, and a forwarded request is never
forwarded again (two regions that disagree about a home cannot bounce a request).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from chalicelib.errors import HomeRegionUnknown
from chalicelib.observability import logger
from chalicelib.settings import get_settings

#: Header naming the region a forwarded request came from (and marking it as forwarded).
FORWARDED_HEADER = "X-Photoscale-Forwarded-From"
#: Methods that never change state: served locally, whoever's home it is.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Statuses of a forwarded request meaning the home region did not take it (gateway or app outage).
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
#: Request headers passed on to the home region.
FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "x-correlation-id", "idempotency-key")
#: Response headers passed back from the home region.
RETURNED_HEADERS = ("content-type", "cache-control", "retry-after", "location", "x-photoscale-region")

#: Seconds a client waits before retrying a write refused because its home is not known here yet
#: (a global table replicates typically within a second).
UNKNOWN_HOME_RETRY_AFTER = 1

LOCAL, FORWARD, FAILOVER, UNKNOWN = "local", "forward", "failover", "unknown"


@dataclass(frozen=True)
class Decision:
    """What to do with a request: serve it ``local``-ly, ``forward`` it to ``region``, accept it
    locally because ``region`` (the home) is down (``failover``), or refuse it for now because the
    caller's home is not known here yet (``unknown``)."""

    action: str
    region: str | None = None


def decide(method: str, this_region: str, home_region: str | None, already_forwarded: bool,
           home_url: str | None, home_healthy: Callable[[], bool],
           another_region_healthy: Callable[[], bool] = lambda: True) -> Decision:
    """Where a request is served (pure but for ``home_healthy`` and ``another_region_healthy``,
    asked only when they matter).

    - reads, callers at home, and requests already forwarded: here;
    - a write of a caller whose home is unknown here (``home_region`` None: no profile in this
      replica even read consistently, so it is still replicating in from another region):
      ``unknown`` (refused, retried) while another region is healthy; else failover (home down);
    - a write of a user whose home is another region with a known, healthy API: forward there;
    - otherwise (home unhealthy, unreachable, or no URL known for it): accept here (failover).
    """
    if method.upper() in READ_METHODS or home_region == this_region or already_forwarded:
        return Decision(LOCAL)
    if not home_region:
        return Decision(UNKNOWN) if another_region_healthy() else Decision(FAILOVER)
    if home_url and home_healthy():
        return Decision(FORWARD, home_region)
    return Decision(FAILOVER, home_region)


def suspect_counters(route_path: str, params: dict[str, str] | None, caller: str) -> list[tuple[str, str]]:
    """The ``(kind, entity)`` counters a write accepted away from its home may have double-counted (pure).

    A follow changes the followee's followers and the caller's following; a like the photo's likes;
    creating or deleting a photo the caller's photo count. Other writes touch no counter.
    """
    from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING, LIKES, PHOTOS

    params = params or {}
    if route_path == "/users/{username}/follow":
        return [(FOLLOWERS, params["username"].lower()), (FOLLOWING, caller)]
    if route_path == "/photos/{photo_id}/like":
        return [(LIKES, params["photo_id"])]
    if route_path in ("/photos", "/photos/{photo_id}"):
        return [(PHOTOS, caller)]
    return []


def concrete_path(route_path: str, params: dict[str, str] | None) -> str:
    """The request's path from its route and path parameters (``/users/{username}`` → ``/users/ann``)."""
    path = route_path
    for name, value in (params or {}).items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


# --- health of other regions ----------------------------------------------------------------------

_health: dict[str, tuple[float, bool]] = {}
_health_lock = threading.Lock()


def region_healthy(region: str, now: Callable[[], float] = time.monotonic) -> bool:
    """Whether ``region``'s API answers its health check with 200 (cached a few seconds)."""
    settings = get_settings()
    with _health_lock:
        cached = _health.get(region)
    if cached is not None and now() - cached[0] < settings.region_health_ttl:
        return cached[1]
    url = settings.region_api_urls.get(region)
    healthy = False
    if url:
        try:
            status, _, _ = _http("GET", f"{url}/health", None, {}, settings.forward_timeout)
            healthy = status == 200
        except OSError:
            healthy = False
    note_health(region, healthy, now)
    return healthy


def note_health(region: str, healthy: bool, now: Callable[[], float] = time.monotonic) -> None:
    with _health_lock:
        _health[region] = (now(), healthy)


def forget_health() -> None:
    """Forget cached health answers (tests)."""
    with _health_lock:
        _health.clear()


def _http(method: str, url: str, body: bytes | None, headers: dict[str, str],
          timeout: float) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP exchange: ``(status, body, headers)``; an error status is an answer, not an exception."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (our own API URLs)
            return answer.status, answer.read(), {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as answer:
        return answer.code, answer.read(), {k.lower(): v for k, v in answer.headers.items()}


# --- the wrapper ----------------------------------------------------------------------------------

def route(request: Any, serve_here: Callable[[], Any], home_of: Callable[[str], str | None],
          note_suspects: Callable[[list[tuple[str, str]]], None]) -> Any:
    """Serve ``request`` here, forward it to its caller's home region, or accept it here on failover.

    ``serve_here()`` runs the route in this region; ``home_of(username)`` is the caller's home region
    (None only if no profile is here even read consistently); ``note_suspects(counters)`` records
    counters to reconcile. Returns a Chalice ``Response``; raises :class:`HomeRegionUnknown` (503,
    ``Retry-After``) for a write whose home is not known here yet.
    """
    settings = get_settings()
    caller = ((request.context or {}).get("authorizer") or {}).get("username")
    if len(settings.serving_regions) < 2 or not caller or request.method.upper() in READ_METHODS:
        return serve_here()
    home = home_of(caller)
    already = bool(request.headers.get(FORWARDED_HEADER))
    home_url = settings.region_api_urls.get(home or "")
    others = [r for r in settings.serving_regions if r != settings.region]
    decision = decide(request.method, settings.region, home, already, home_url, lambda: region_healthy(home or ""),
                      lambda: any(region_healthy(r) for r in others))
    if decision.action == UNKNOWN:
        logger.info("home region not known here yet: write refused for a retry", extra={"route": request.path})
        raise HomeRegionUnknown("Your account is still being set up in this region; try again in a moment.",
                                retry_after=UNKNOWN_HOME_RETRY_AFTER)
    if decision.action == FORWARD:
        answer = _forward(request, home_url or "", settings.region, settings.forward_timeout)
        if answer is not None:
            return answer
        note_health(home or "", False)
        decision = Decision(FAILOVER, home)
    if decision.action == FAILOVER:
        suspects = suspect_counters(request.path, request.uri_params, caller)
        logger.warning("home region unavailable: accepting the write here",
                       extra={"home_region": home, "route": request.path, "suspects": len(suspects)})
        response = serve_here()
        if suspects and response.status_code < 400:
            note_suspects(suspects)
        return response
    return serve_here()


def _forward(request: Any, home_url: str, this_region: str, timeout: float) -> Any:
    """The home region's answer to ``request``, or None if it did not take it (unreachable, 502-504)."""
    from chalice.app import Response

    path = concrete_path(request.path, request.uri_params)
    query = urlencode(list(_query_items(request.query_params)))
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if request.headers.get(name)}
    headers[FORWARDED_HEADER] = this_region
    body = request.raw_body or None
    try:
        status, payload, answer_headers = _http(request.method, f"{home_url}{path}" + (f"?{query}" if query else ""),
                                                body, headers, timeout)
    except OSError as exc:  # refused, reset, timed out: the home region is unreachable
        logger.warning("home region unreachable", extra={"error": type(exc).__name__})
        return None
    if status in UNAVAILABLE_STATUSES:  # its gateway or its dependencies are down: nothing was acknowledged
        return None
    returned = {name.title(): answer_headers[name] for name in RETURNED_HEADERS if name in answer_headers}
    return Response(body=payload.decode("utf-8") if payload else "", status_code=status, headers=returned)


def _query_items(params: Any):
    if not params:
        return
    getlist = getattr(params, "getlist", None)
    for name in params:
        for value in (getlist(name) if getlist else [params[name]]):
            yield name, value


def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice ``http`` middleware applying :func:`route` to every request (``app.py``)."""
    from chalicelib import reconcile, users

    return route(event, lambda: get_response(event), users.home_region, reconcile.note_suspects)
