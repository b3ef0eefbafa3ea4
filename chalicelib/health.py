"""Cheap dependency probes for ``GET /health`` (load balancers and Route 53 health checks)."""
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
    return healthy, {"status": "ok" if healthy else "degraded", "region": get_settings().region, "checks": checks}
