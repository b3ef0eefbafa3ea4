"""The one place that builds AWS clients.

Every boto3 client and every PynamoDB connection gets its region, endpoint override (the local
embedded AWS), retry mode and timeouts from :mod:`chalicelib.settings`. Clients are created on
first use and reused for the warm life of the function; nothing here talks to AWS at import time.
Later work (DAX, per-region clients for failover) plugs in here and nowhere else.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:  # pragma: no cover
    import boto3

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[tuple[str, str], Any] = {}
_bound_models: set[type] = set()


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
    _bound_models.add(model)
    return model


def reset() -> None:
    """Drop cached clients and model bindings (tests switch endpoints between cases)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
        for model in _bound_models:
            model._connection = None
        _bound_models.clear()
