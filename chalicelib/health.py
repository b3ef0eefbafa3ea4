"""Cheap dependency probes for ``GET /health`` (load balancers and Route 53 health checks).

With several regions the answer also reports the replication lag this region sees: every health
call writes this region's heartbeat into the (global) users table, at most every
:data:`HEARTBEAT_INTERVAL_SECONDS`, and reads the other regions' heartbeats; a heartbeat's age is
how far behind their writes this replica is (plus up to one interval). Lag is reported, never a
reason to fail the check: a replica that lags behind a region that is down is the one to serve.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.settings import get_settings


def _dynamodb() -> dict:
    from chalicelib.repositories import users

    users.probe()
    return {}


def _sqs() -> dict:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=get_settings().uploads_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return {"uploads_backlog": int(attributes.get("ApproximateNumberOfMessages", 0))}


def _s3() -> dict:
    aws.client("s3").head_bucket(Bucket=get_settings().media_bucket)
    return {}


PROBES: dict[str, Callable[[], dict]] = {"dynamodb": _dynamodb, "sqs": _sqs, "s3": _s3}

#: A health call writes this region's heartbeat at most this often (Route 53 probes every 10-30 s
#: from many checkers: the writes stay a handful per interval however many probes arrive).
HEARTBEAT_INTERVAL_SECONDS = 5.0
_last_heartbeat = [0.0]


def replication_lag(now: float | None = None) -> dict[str, float | None]:
    """Seconds since each other region's newest heartbeat reached this replica (None: never seen);
    writes this region's own heartbeat when the last is older than the interval."""
    from chalicelib.repositories import users

    settings = get_settings()
    now = time.time() if now is None else now
    if now - _last_heartbeat[0] >= HEARTBEAT_INTERVAL_SECONDS:
        users.write_heartbeat(settings.region, int(now * 1000))
        _last_heartbeat[0] = now
    others = [r for r in settings.serving_regions if r != settings.region]
    seen = users.heartbeats(others)
    return {r: (round(max(now - seen[r] / 1000, 0.0), 3) if r in seen else None) for r in others}


def check() -> tuple[bool, dict]:
    """Run every probe; returns (all healthy, report)."""
    checks = {}
    for name, probe in PROBES.items():
        started = time.perf_counter()
        try:
            detail = probe()
            status = "ok"
        except (BotoCoreError, ClientError) as exc:
            detail, status = {"error": type(exc).__name__}, "failing"
        checks[name] = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1), **detail}
    healthy = all(c["status"] == "ok" for c in checks.values())
    report = {"status": "ok" if healthy else "degraded", "region": get_settings().region, "checks": checks}
    if len(get_settings().serving_regions) > 1:
        try:
            report["replication_lag_seconds"] = replication_lag()
        except (BotoCoreError, ClientError) as exc:  # the dynamodb check reports the failure itself
            report["replication_lag_seconds"] = {"error": type(exc).__name__}
    return healthy, report
