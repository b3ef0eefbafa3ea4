"""The one place that builds AWS clients.

Every boto3 client and every PynamoDB connection gets its region, endpoint override (the local
embedded AWS), retry mode and timeouts from :mod:`chalicelib.settings`. Clients are created on
first use and reused for the warm life of the function; nothing here talks to AWS at import time.
Later work (DAX, per-region clients for failover) plugs in here and nowhere else.

PynamoDB models send their requests with :func:`client`'s DynamoDB client (not a client of their
own). The repositories (:mod:`chalicelib.repositories`) read items that may be served from a cache
tier through :func:`reader_model`, whose connection uses :func:`table_reader`: the DynamoDB client
today; a stage with DAX chooses the DAX client here, and nothing above the repositories changes.
The pull side of other readers' feeds reads through :func:`shared_query_model` (DAX's query cache
where the stage has DAX).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:  # pragma: no cover
    import boto3

_lock = threading.RLock()
_session: boto3.session.Session | None = None
_clients: dict[tuple[str, str], Any] = {}
_bound_models: set[type] = set()
_reader_models: dict[type, type] = {}
_shared_query_models: dict[type, type] = {}
_cache_tier: Any = None
_shared_query_tier: Any = None


def _boto_config(settings: Settings):
    from botocore.config import Config

    return Config(
        region_name=settings.region,
        connect_timeout=settings.aws_connect_timeout,
        read_timeout=settings.aws_read_timeout,
        retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
        # S3 presigned POSTs and virtual-host addressing must agree with the endpoint override.
        s3={"addressing_style": "path" if settings.aws_endpoint else "auto"},
        signature_version=None,
    )


def client(service: str, region: str | None = None) -> Any:
    """A cached boto3 client for ``service`` (in ``region``, default the function's own)."""
    settings = get_settings()
    key = (service, region or settings.region)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            global _session
            if _session is None:
                import boto3

                _session = boto3.session.Session()
            kwargs: dict[str, Any] = {"region_name": key[1], "config": _boto_config(settings)}
            if settings.aws_endpoint:
                kwargs["endpoint_url"] = settings.aws_endpoint
            if service == "s3":
                from botocore.config import Config

                kwargs["config"] = kwargs["config"].merge(Config(signature_version="s3v4"))
            found = _session.client(service, **kwargs)
            _clients[key] = found
    return found


def identity_writer() -> Any:
    """The cognito-idp client of the primary region: every write to the user pool (sign-up,
    confirmation, password change, disabling or deleting a user) goes to the primary pool, the only
    writable copy (Cognito replicas are read-only). Log-in and refresh use :func:`client`'s."""
    return client("cognito-idp", region=get_settings().primary_region)


#: Error codes, of any service, of a request refused for a passing reason (throttled, unavailable,
#: failing inside AWS): sending it again later may succeed. DynamoDB's own are in ``chalicelib.ddb``.
TRANSIENT_CODES = frozenset({
    "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException",
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "SlowDown", "RequestTimeout", "RequestTimeoutException",
    "AWS.SimpleQueueService.ServiceUnavailable", "KMS.ThrottlingException",
})


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` from a boto3 call is a passing failure of AWS (not of the request itself):
    a transient error code, a 5xx answer, or no answer at all (connection failed, timed out)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error.get("Code") in TRANSIENT_CODES or status >= 500


def bind_model(model: type, table_name: str) -> type:
    """Point a PynamoDB model at ``table_name`` with the shared endpoint, region and timeouts.

    PynamoDB creates its own botocore client per model; configuring its ``Meta`` here keeps that
    client's settings identical to :func:`client`'s.
    """
    settings = get_settings()
    meta = model.Meta
    if model in _bound_models and meta.table_name == table_name:
        return model
    meta.table_name = table_name
    meta.region = settings.region
    meta.host = settings.aws_endpoint
    meta.connect_timeout_seconds = settings.aws_connect_timeout
    meta.read_timeout_seconds = settings.aws_read_timeout
    meta.max_retry_attempts = max(settings.aws_max_attempts - 1, 0)
    model._connection = None  # rebuilt lazily with the new Meta
    _use_client(model, table_writer())
    _bound_models.add(model)
    return model


def table_reader() -> Any:
    """The client the repositories' cacheable (eventually consistent) reads go through.

    Without a cache tier: the DynamoDB client. With ``DAX_ENDPOINT``: a
    :class:`chalicelib.dax.CacheTierClient`, which routes each request (DAX or DynamoDB, per access
    pattern, :func:`chalicelib.dax.route`) and falls back to DynamoDB while DAX fails.
    """
    return _cache_tier_client_or_dynamodb()


def table_writer() -> Any:
    """The client of writes and strongly consistent reads (:func:`bind_model`'s models).

    The DynamoDB client; with a cache tier the same :class:`chalicelib.dax.CacheTierClient` as
    :func:`table_reader`, whose router sends consistent reads and transactions to DynamoDB and the
    writes that keep DAX's item cache fresh (profiles) through DAX.
    """
    return _cache_tier_client_or_dynamodb()


def _cache_tier_client_or_dynamodb() -> Any:
    settings = get_settings()
    if not settings.dax_endpoint:
        return client("dynamodb")
    global _cache_tier
    with _lock:
        if _cache_tier is None:
            from chalicelib import dax

            _cache_tier = dax.CacheTierClient(
                connect=lambda: _cache_tier_client(settings),
                dynamodb=client("dynamodb"),
                router=lambda operation, params: dax.route(
                    operation, params, users_table=settings.users_table, counters_table=settings.counters_table),
                breaker=dax.CircuitBreaker(settings.dax_retry_seconds),
            )
        return _cache_tier


def shared_query_reader() -> Any:
    """The client of the pull side of other readers' feeds (a celebrity's newest photos).

    Without a cache tier: the DynamoDB client. With ``DAX_ENDPOINT``: the cache tier's client routed by
    :func:`chalicelib.dax.route_shared_timeline` (that Query through DAX's query cache, which writes
    never invalidate: only for reads that are not read-after-write for their reader).
    """
    tier = _cache_tier_client_or_dynamodb()
    settings = get_settings()
    if not settings.dax_endpoint:
        return tier
    global _shared_query_tier
    with _lock:
        if _shared_query_tier is None:
            from chalicelib import dax

            _shared_query_tier = tier.routed(lambda operation, params: dax.route_shared_timeline(
                operation, params, photos_table=settings.photos_table))
        return _shared_query_tier


def _cache_tier_client(settings: Settings) -> Any:
    """The cache tier's own client, built on first use with short timeouts and no retries."""
    from botocore.config import Config

    config = Config(region_name=settings.region, connect_timeout=settings.dax_timeout,
                    read_timeout=settings.dax_timeout, retries={"mode": "standard", "total_max_attempts": 1})
    endpoint = settings.dax_endpoint or ""
    if endpoint.startswith(("dax://", "daxs://")):
        from amazondax import AmazonDaxClient  # ~40 ms of import: only functions with a cache tier pay it

        return AmazonDaxClient(endpoint_url=endpoint, region_name=settings.region, config=config)
    # A DynamoDB-protocol endpoint (the local DAX stand-in, devstack/dax_proxy.py): the ordinary client.
    client("dynamodb")  # makes the shared session
    return _session.client("dynamodb", region_name=settings.region, endpoint_url=endpoint, config=config)


def reader_model(model: type, table_name: str) -> type:
    """``model``'s reading twin: the same schema and table, reading through :func:`table_reader`.

    Items it returns are instances of a subclass of ``model``. Strongly consistent reads and all
    writes use :func:`bind_model`'s model (they must reach DynamoDB itself).
    """
    return _twin(_reader_models, model, table_name, "Reader", table_reader)


def shared_query_model(model: type, table_name: str) -> type:
    """``model``'s twin for the pull side of other readers' feeds, reading through
    :func:`shared_query_reader` (DAX's query cache where the stage has DAX)."""
    return _twin(_shared_query_models, model, table_name, "SharedQueryReader", shared_query_reader)


def _twin(twins: dict[type, type], model: type, table_name: str, suffix: str, reader_client) -> type:
    bind_model(model, table_name)
    reader = twins.get(model)
    if reader is None or reader.Meta.table_name != table_name:
        with _lock:
            reader = twins.get(model)
            if reader is None or reader.Meta.table_name != table_name:
                reader = _reading_twin(model, suffix, reader_client())
                twins[model] = reader
    return reader


def _reading_twin(model: type, suffix: str, reader_client: Any) -> type:
    from pynamodb.indexes import Index

    meta = type("Meta", (), {name: getattr(model.Meta, name) for name in (
        "table_name", "region", "host", "connect_timeout_seconds", "read_timeout_seconds", "max_retry_attempts")})
    namespace: dict[str, Any] = {"Meta": meta, "__module__": model.__module__, "_connection": None}
    for name, value in vars(model).items():  # indexes are bound to the class they are declared on
        if isinstance(value, Index):
            namespace[name] = type(value)()
    twin = type(f"{model.__name__}{suffix}", (model,), namespace)
    _use_client(twin, reader_client)
    return twin


def _use_client(model: type, botocore_client: Any) -> None:
    """Make ``model``'s PynamoDB connection send its requests with ``botocore_client``."""
    model._get_connection().connection._client = botocore_client


def reset() -> None:
    """Drop cached clients and model bindings (tests switch endpoints between cases)."""
    global _session, _cache_tier, _shared_query_tier
    with _lock:
        _clients.clear()
        _cache_tier = _shared_query_tier = None
        _session = None
        for model in [*_bound_models, *_reader_models.values(), *_shared_query_models.values()]:
            model._connection = None
        _bound_models.clear()
        _reader_models.clear()
        _shared_query_models.clear()
