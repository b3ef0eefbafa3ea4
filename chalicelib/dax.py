"""The cache tier's read path: DAX where the stage has it, DynamoDB whenever DAX fails.

:class:`CacheTierClient` stands in for the botocore DynamoDB client inside PynamoDB's connection
(PynamoDB only calls ``_make_api_call``), so the models stay the schema and items read through DAX
become model instances. Each request is routed by :func:`route`, one table per access pattern (and
the pull side of other readers' feeds by :func:`route_shared_timeline`, through its own twin model):

============================================  ===========================  =========================================
access pattern                                path                         why
============================================  ===========================  =========================================
profile / display names (GetItem, BatchGet)   DAX item cache               hot, rarely changed; profile writes go
                                                                           through DAX (write-through keeps the item
                                                                           cache fresh); others' edits within the
                                                                           record TTL
profile writes (PutItem, UpdateItem, Delete)  DAX (write-through)          keeps the item cache fresh
counter ``#meta`` shard counts (Get, Batch)   DAX item cache (negative     a quarter of all reads, almost never
                                              results cached too)          change; a reshard is seen within the record
                                                                           TTL (until then a read sums fewer shards)
counter shards, groups and totals             DynamoDB                     changed by transactions and the stream
                                                                           aggregator, which bypass DAX's item cache
photos, graph, likes, feeds (Get, Query)      DynamoDB                     written by workers and transactions outside
                                                                           DAX; read-after-write pages (my photos, my
                                                                           followers, my own feed) must not see a query
                                                                           cache that writes never invalidate
a celebrity's newest ready photos, pulled     DAX query cache              read by every follower's feed; not
into *another* reader's feed (Query           (``route_shared_timeline``)  read-after-write for that reader: a new or
``by_owner``, first page)                                                  changed photo shows within the query TTL
``ConsistentRead``, transactions              DynamoDB                     DAX would only pass them through
============================================  ===========================  =========================================

No read-after-write path depends on a DAX Query: the only Query routed to DAX is the pulled
timeline, and only through :func:`chalicelib.models.pulled`'s twin, which the feed uses for readers
other than the owner (the owner's own photos, listing or feed, are read straight from DynamoDB).

The DAX client is built lazily on the first routed request (never at import), with a short connect
and read timeout (DAX's default blocks 60 s on a silent endpoint). A :class:`CircuitBreaker` sends
every request straight to DynamoDB while DAX is failing and lets one request try DAX again after
``retry_seconds``. Every read meant for DAX counts ``DaxReads``; every one served by DynamoDB
instead counts ``DaxFallbacks`` (EMF, namespace ``Photoscale``: the observability stack alarms on
their ratio) and the first of a run of failures is logged.

Writes fall back only when they cannot have reached DAX (the circuit is open, or the connection
failed); a write that times out after it was sent is raised, never sent twice.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

DAX, DYNAMODB = "dax", "dynamodb"

_READS = frozenset({"GetItem", "BatchGetItem", "Query"})
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
#: Error codes of a server-side failure of the cache tier itself (then DynamoDB may still answer).
_TIER_FAILURE_CODES = frozenset({"InternalServerError", "ServiceUnavailable", "ServiceUnavailableException"})
#: The DAX client's codes for a broken or overloaded cluster (``DaxServiceError.code``).
_DAX_TIER_CODES = frozenset({"ConnectionException", "InternalServerErrorException"})


#: The photos table's index of an owner's photos, newest first (``chalicelib.models.OwnerIndex``).
OWNER_INDEX = "by_owner"


def route(operation: str, params: dict, *, users_table: str, counters_table: str) -> str:
    """Which path one DynamoDB request takes (:data:`DAX` or :data:`DYNAMODB`); see the module table."""
    if params.get("ConsistentRead"):
        return DYNAMODB
    if operation in ("GetItem", *_WRITES):
        table = params.get("TableName")
        if table == users_table:
            return DAX
        if table == counters_table and operation == "GetItem":
            return DAX if _is_meta_key(params.get("Key", {})) else DYNAMODB
        return DYNAMODB
    if operation == "BatchGetItem":
        requested = params.get("RequestItems", {})
        if any(spec.get("ConsistentRead") for spec in requested.values()):
            return DYNAMODB
        for table, spec in requested.items():
            if table == users_table:
                continue
            if table == counters_table and all(_is_meta_key(key) for key in spec.get("Keys", [])):
                continue
            return DYNAMODB
        return DAX if requested else DYNAMODB
    return DYNAMODB


def route_shared_timeline(operation: str, params: dict, *, photos_table: str) -> str:
    """The path of the pull side of another reader's feed (:func:`chalicelib.models.pulled`'s twin):
    the newest page of an owner's photos (a Query of ``by_owner`` from its start) through DAX's
    query cache; anything else that twin might send, by :func:`route`'s rules for photos (DynamoDB)."""
    if (operation == "Query" and params.get("TableName") == photos_table and params.get("IndexName") == OWNER_INDEX
            and not params.get("ConsistentRead") and "ExclusiveStartKey" not in params):
        return DAX
    return DYNAMODB



def _is_meta_key(key: dict) -> bool:
    """A counter's ``#meta`` (shard count) item: read through DAX's item cache. ``#total`` items are
    not: the stream aggregator writes them straight to DynamoDB (it runs outside the VPC), so DAX
    would serve a total up to its record TTL old; totals are cached in-process only (``counter``
    TTL). Shards are transaction-written and never read."""
    counter_id = key.get("counter_id", {}).get("S", "")
    return counter_id.endswith("#meta")


class CircuitBreaker:
    """Closed until a failure; then open for ``retry_seconds``; then one trial request decides.

    Thread-safe. The clock is wall time, so an open circuit still closes on time after the Lambda
    sandbox was frozen between invocations.
    """

    def __init__(self, retry_seconds: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._trial_running = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allow(self) -> bool:
        """Whether this request may try DAX."""
        with self._lock:
            if self._open_until is None:
                return True
            if self._trial_running or self._clock() < self._open_until:
                return False
            self._trial_running = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._open_until = None
            self._trial_running = False

    def failed(self) -> bool:
        """Record a failure; True if it opened a closed circuit (the one worth logging)."""
        with self._lock:
            was_closed = self._open_until is None
            self._open_until = self._clock() + self.retry_seconds
            self._trial_running = False
            return was_closed


def is_tier_failure(exc: BaseException) -> bool:
    """A failure of the cache tier (unreachable, silent, broken), not DynamoDB's answer to the request."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    from botocore.exceptions import BotoCoreError, ClientError

    name = type(exc).__name__
    if name == "DaxClientError":
        return True  # no route, no healthy node (DaxValidationError is the request's own fault)
    if name == "DaxServiceError":
        return getattr(exc, "code", None) in _DAX_TIER_CODES or (getattr(exc, "http_status", 0) or 0) >= 500
    if isinstance(exc, ClientError):
        response = exc.response or {}
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in _TIER_FAILURE_CODES or status >= 500
    return isinstance(exc, BotoCoreError)


def never_sent(exc: BaseException) -> bool:
    """The request cannot have reached the cache tier (safe to send a write to DynamoDB instead)."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    if isinstance(exc, (ConnectionRefusedError, EndpointConnectionError, ConnectTimeoutError)):
        return True
    return type(exc).__name__ == "DaxClientError" and "NoRoute" in str(exc)


def _count(name: str) -> None:
    from chalicelib.observability import metrics

    metrics.add_metric(name=name, unit="Count", value=1)


def _log_fallback(operation: str, exc: BaseException | None, retry_seconds: float) -> None:
    from chalicelib.observability import logger

    logger.warning("DAX unavailable, reading from DynamoDB", extra={
        "dax_operation": operation, "dax_error": repr(exc), "dax_retry_seconds": retry_seconds})


class CacheTierClient:
    """A botocore-client lookalike for PynamoDB: each request through DAX or DynamoDB per :func:`route`."""

    _request_signer = None  # PynamoDB checks it before reusing a client

    def __init__(self, connect: Callable[[], Any], dynamodb: Any, router: Callable[[str, dict], str],
                 breaker: CircuitBreaker | None = None) -> None:
        self._connect = connect
        self._dax: Any = None
        self._lock = threading.Lock()
        self.dynamodb = dynamodb
        self.router = router
        self.breaker = breaker or CircuitBreaker()

    @property
    def meta(self) -> Any:
        return self.dynamodb.meta

    def routed(self, router: Callable[[str, dict], str]) -> CacheTierClient:
        """A client of other access patterns, routed by ``router``, over this one's DAX connection,
        DynamoDB client and circuit breaker (one cluster: one view of its health)."""
        return CacheTierClient(self._dax_client, self.dynamodb, router, self.breaker)

    def _dax_client(self) -> Any:
        if self._dax is None:
            with self._lock:
                if self._dax is None:
                    self._dax = self._connect()
        return self._dax

    def _make_api_call(self, operation: str, params: dict) -> dict:
        if self.router(operation, params) != DAX:
            return self.dynamodb._make_api_call(operation, params)
        is_read = operation in _READS
        if is_read:
            _count("DaxReads")
        if not self.breaker.allow():
            if is_read:
                _count("DaxFallbacks")
            return self.dynamodb._make_api_call(operation, params)
        try:
            answer = _call(self._dax_client(), operation, params)
        except Exception as exc:
            if not is_tier_failure(exc):
                self.breaker.succeeded()  # DAX answered: the request itself was refused
                raise
            opened = self.breaker.failed()
            if not is_read and not never_sent(exc):
                raise
            if is_read:
                _count("DaxFallbacks")
            if opened:
                _log_fallback(operation, exc, self.breaker.retry_seconds)
            return self.dynamodb._make_api_call(operation, params)
        self.breaker.succeeded()
        return answer


def _call(client: Any, operation: str, params: dict) -> dict:
    """Send one request with either kind of client (botocore's, or DAX's snake_case methods)."""
    make_api_call = getattr(client, "_make_api_call", None)
    if make_api_call is not None:
        return make_api_call(operation, params)
    method = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
    return getattr(client, method)(**params)
