"""Typed settings for every Lambda function, read from the environment once and on demand.

Each stage's environment comes from the CloudFormation outputs of ``infra/stateful.yaml`` (output
``UsersTable`` becomes ``USERS_TABLE``) plus a few plain settings in ``.chalice/config.json``.
Nothing here runs at import time: :func:`get_settings` reads and validates the environment on first
use and caches the frozen result for the warm life of the function.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any


class SettingsError(RuntimeError):
    """The environment lacks a required setting or holds an invalid value."""


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    aws_endpoint: str | None
    users_table: str
    sessions_table: str
    photos_table: str
    counters_table: str
    graph_table: str
    feeds_table: str
    idempotency_table: str
    jobs_table: str
    quotas_table: str
    media_bucket: str
    uploads_queue_url: str
    edits_queue_url: str
    fanout_queue_url: str
    user_pool_id: str
    user_pool_client_id: str
    cursor_secret_arn: str
    media_base_url: str = "/media"
    auto_confirm_signup: bool = False
    max_upload_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    upload_url_expiry_seconds: int = 300
    celebrity_follower_threshold: int = 10_000
    counter_default_shards: int = 1
    aws_connect_timeout: float = 2.0
    aws_read_timeout: float = 5.0
    aws_max_attempts: int = 3
    active_regions: tuple[str, ...] = ()
    cdn_distribution_id: str | None = None
    #: Export download links as CloudFront signed URLs (``infra/edge.yaml``'s exports key group):
    #: the public key's id, the site's base URL, and the Secrets Manager secret with the private key.
    #: Without a key pair id, links are S3 presigned URLs (the local stack).
    exports_key_pair_id: str | None = None
    exports_base_url: str = ""
    exports_signing_secret: str = ""
    #: action -> ``chalicelib.quotas.Limit`` (defaults there, ``QUOTA_<ACTION>=<limit>/<seconds>`` overrides).
    quota_limits: dict[str, Any] = field(default_factory=dict)
    #: Header holding the client IP set by our own CDN (``CloudFront-Viewer-Address``); unset: sourceIp.
    client_ip_header: str | None = None
    #: The stage's cache tier (``DAX_ENDPOINT``): ``daxs://`` a DAX cluster, ``http://`` the local stand-in.
    dax_endpoint: str | None = None
    #: Connect and read timeout of a cache-tier request, seconds (DAX's own default blocks 60 s).
    dax_timeout: float = 0.5
    #: How long the cache tier is skipped after a failure before one request tries it again.
    dax_retry_seconds: float = 10.0
    # --- multi-region (the contract of issue 10, docs/multi-region.md) ---
    #: The identity primary (Cognito writes) and the one region running global-only jobs.
    primary_region: str = ""
    #: The primary pool and its app client (identity writes); default: this region's.
    primary_user_pool_id: str = ""
    primary_user_pool_client_id: str = ""
    #: The authorizer's allow-list: issuer URL -> app client id (default: this region's pool only).
    trusted_issuers: dict[str, str] = field(default_factory=dict)
    #: region -> base URL of that region's API (home-region forwarding, cross-region health).
    region_api_urls: dict[str, str] = field(default_factory=dict)
    #: region -> that region's media bucket (default: this region's ``MEDIA_BUCKET`` only).
    media_buckets: dict[str, str] = field(default_factory=dict)
    #: region -> that region's fan-out queue URL (default: this region's ``FANOUT_QUEUE_URL`` only):
    #: an erasure asks each other region to sweep its regional tables and bucket there.
    fanout_queue_urls: dict[str, str] = field(default_factory=dict)
    #: Timeout of a forwarded request to another region's API, seconds (connect and read each).
    forward_timeout: float = 3.0
    #: How long another region's health (its ``/api/health`` answer) is trusted, seconds.
    region_health_ttl: float = 5.0

    @property
    def cognito_issuer(self) -> str:
        """The ``iss`` claim Cognito puts in this pool's tokens (moto uses the same form)."""
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def jwks_url(self) -> str:
        """Where the pool publishes its signing keys: AWS's issuer URL, or the endpoint override."""
        return self.jwks_url_of(self.cognito_issuer)

    def jwks_url_of(self, issuer: str) -> str:
        """The key set of a trusted ``issuer``: ``{issuer}/.well-known/jwks.json`` in AWS; with an
        endpoint override (the local embedded AWS), ``{endpoint}/{pool id}/.well-known/jwks.json``."""
        if self.aws_endpoint:
            return f"{self.aws_endpoint.rstrip('/')}/{issuer.rstrip('/').rsplit('/', 1)[-1]}/.well-known/jwks.json"
        return f"{issuer.rstrip('/')}/.well-known/jwks.json"

    @property
    def serving_regions(self) -> tuple[str, ...]:
        """Every region serving the stage, primary first (just this one when unset)."""
        return self.active_regions or (self.region,)

    @property
    def is_primary(self) -> bool:
        """Whether this function runs in the primary region (identity writes, global-only jobs)."""
        return self.region == self.primary_region

    def media_bucket_of(self, region: str | None) -> str:
        """The media bucket of ``region`` (this region's for None or an unknown region)."""
        return self.media_buckets.get(region or self.region) or self.media_bucket


_REQUIRED = {
    "users_table": "USERS_TABLE",
    "sessions_table": "SESSIONS_TABLE",
    "photos_table": "PHOTOS_TABLE",
    "counters_table": "COUNTERS_TABLE",
    "graph_table": "GRAPH_TABLE",
    "feeds_table": "FEEDS_TABLE",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "jobs_table": "JOBS_TABLE",
    "quotas_table": "QUOTAS_TABLE",
    "media_bucket": "MEDIA_BUCKET",
    "uploads_queue_url": "UPLOADS_QUEUE_URL",
    "edits_queue_url": "EDITS_QUEUE_URL",
    "fanout_queue_url": "FANOUT_QUEUE_URL",
    "user_pool_id": "USER_POOL_ID",
    "user_pool_client_id": "USER_POOL_CLIENT_ID",
    "cursor_secret_arn": "CURSOR_SECRET_ARN",
}

_INTEGERS = {
    "max_upload_bytes": "MAX_UPLOAD_BYTES",
    "max_image_pixels": "MAX_IMAGE_PIXELS",
    "upload_url_expiry_seconds": "UPLOAD_URL_EXPIRY_SECONDS",
    "celebrity_follower_threshold": "CELEBRITY_FOLLOWER_THRESHOLD",
    "counter_default_shards": "COUNTER_DEFAULT_SHARDS",
    "aws_max_attempts": "AWS_MAX_ATTEMPTS",
}

_FLOATS = {"aws_connect_timeout": "AWS_CONNECT_TIMEOUT", "aws_read_timeout": "AWS_READ_TIMEOUT",
           "dax_timeout": "DAX_TIMEOUT", "dax_retry_seconds": "DAX_RETRY_SECONDS",
           "forward_timeout": "FORWARD_TIMEOUT", "region_health_ttl": "REGION_HEALTH_TTL"}


def event_source_queue(variable: str) -> str:
    """A queue name for an ``@app.on_sqs_message`` decorator.

    Chalice reads event sources when it loads ``app.py`` (with the stage's environment variables
    applied), so this is the one setting read at import time.
    """
    name = os.environ.get(variable, "").strip()
    if not name:
        raise SettingsError(f"{variable} is required (set per stage in .chalice/config.json)")
    return name


def event_source_stream(variable: str) -> str:
    """A DynamoDB stream ARN for an ``@app.on_dynamodb_record`` decorator (read at import, like
    :func:`event_source_queue`; the stateful stack's output, e.g. ``COUNTERS_STREAM_ARN``)."""
    arn = os.environ.get(variable, "").strip()
    if not arn:
        raise SettingsError(f"{variable} is required (the stateful stack's output; infra.stage_env writes it)")
    return arn


def load_settings(environ: dict[str, str] | os._Environ[str]) -> Settings:
    """Build :class:`Settings` from a mapping, naming every missing or invalid variable at once."""
    problems: list[str] = []
    values: dict[str, object] = {}
    for attr, name in _REQUIRED.items():
        value = environ.get(name, "").strip()
        if not value:
            problems.append(f"{name} is required")
        values[attr] = value
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region:
        problems.append("AWS_REGION is required")
    for attr, name in _INTEGERS.items():
        if name in environ:
            try:
                values[attr] = int(environ[name])
            except ValueError:
                problems.append(f"{name} must be an integer, got {environ[name]!r}")
                continue
            if values[attr] <= 0:  # type: ignore[operator]
                problems.append(f"{name} must be positive")
    for attr, name in _FLOATS.items():
        if name in environ:
            try:
                values[attr] = float(environ[name])
            except ValueError:
                problems.append(f"{name} must be a number, got {environ[name]!r}")
    multi_region = _multi_region(environ, region or "", values, problems)
    from chalicelib import quotas

    try:
        values["quota_limits"] = quotas.limits_from(environ)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return Settings(
        stage=environ.get("PHOTOSCALE_STAGE", "local"),
        region=region or "",
        aws_endpoint=environ.get("PHOTOSCALE_AWS_ENDPOINT") or None,
        media_base_url=environ.get("MEDIA_BASE_URL", "/media").rstrip("/"),
        cdn_distribution_id=environ.get("CDN_DISTRIBUTION_ID") or None,
        exports_key_pair_id=environ.get("EXPORTS_KEY_PAIR_ID", "").strip() or None,
        exports_base_url=environ.get("EXPORTS_BASE_URL", "").strip().rstrip("/"),
        exports_signing_secret=environ.get("EXPORTS_SIGNING_SECRET", "").strip()
        or f"photoscale/{environ.get('PHOTOSCALE_STAGE', 'local')}/exports-signing-key",
        client_ip_header=environ.get("CLIENT_IP_HEADER", "").strip() or None,
        dax_endpoint=environ.get("DAX_ENDPOINT", "").strip() or None,
        auto_confirm_signup=environ.get("AUTO_CONFIRM_SIGNUP", "false").lower() in ("1", "true", "yes"),
        **multi_region,
        **values,  # type: ignore[arg-type]
    )


def _json_map(environ, name: str, problems: list[str]) -> dict[str, str]:
    """A JSON object of non-empty strings from ``name`` ({} when unset); a problem otherwise."""
    raw = environ.get(name, "").strip()
    if not raw:
        return {}
    import json

    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in parsed.items()):
        problems.append(f"{name} must be a JSON object of non-empty strings, got {raw!r}")
        return {}
    return parsed


def _multi_region(environ, region: str, values: dict[str, object], problems: list[str]) -> dict[str, object]:
    """The contract's multi-region settings, with their defaults (one region: everything local)."""
    active = tuple(r.strip() for r in environ.get("ACTIVE_REGIONS", "").split(",") if r.strip())
    primary = environ.get("PRIMARY_REGION", "").strip() or (active[0] if active else region)
    if active and region and region not in active:
        problems.append(f"AWS_REGION {region} is not one of ACTIVE_REGIONS {','.join(active)}")
    if active and primary not in active:
        problems.append(f"PRIMARY_REGION {primary} is not one of ACTIVE_REGIONS {','.join(active)}")
    pool_id, client_id = str(values.get("user_pool_id", "")), str(values.get("user_pool_client_id", ""))
    issuers = _json_map(environ, "TRUSTED_ISSUERS", problems)
    for issuer in issuers:
        if not issuer.startswith(("https://", "http://")):
            problems.append(f"TRUSTED_ISSUERS key {issuer!r} must be an issuer URL")
    if not issuers and pool_id and region:
        issuers = {f"https://cognito-idp.{region}.amazonaws.com/{pool_id}": client_id}
    urls = {r: u.rstrip("/") for r, u in _json_map(environ, "REGION_API_URLS", problems).items()}
    buckets = _json_map(environ, "MEDIA_BUCKETS", problems)
    if region and values.get("media_bucket"):
        buckets = {**buckets, region: str(values["media_bucket"])}
    fanout_queues = _json_map(environ, "FANOUT_QUEUE_URLS", problems)
    if region and values.get("fanout_queue_url"):
        fanout_queues = {**fanout_queues, region: str(values["fanout_queue_url"])}
    return {
        "active_regions": active,
        "primary_region": primary,
        "primary_user_pool_id": environ.get("PRIMARY_USER_POOL_ID", "").strip() or pool_id,
        "primary_user_pool_client_id": environ.get("PRIMARY_USER_POOL_CLIENT_ID", "").strip() or client_id,
        "trusted_issuers": issuers,
        "region_api_urls": urls,
        "media_buckets": buckets,
        "fanout_queue_urls": fanout_queues,
    }


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated on first use."""
    return load_settings(os.environ)


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
