"""Replays recorded AWS calls with plain boto3 in a process of its own (no gevent, no load generator).

Read by ``bench/locustfile.py``'s quiet baseline: stdin is JSON ``{"endpoint", "rounds", "routes":
{route: [[service, operation, params], ...]}}``; stdout is JSON ``{route: [milliseconds per round]}``.
"""
from __future__ import annotations

import json
import sys
import time


def main() -> int:
    import boto3
    from botocore import xform_name

    job = json.load(sys.stdin)
    clients: dict[str, object] = {}
    timings: dict[str, list[float]] = {route: [] for route in job["routes"]}
    for _ in range(job["rounds"]):
        for route, calls in sorted(job["routes"].items()):
            started = time.perf_counter()
            for service, operation, params in calls:
                if service not in clients:
                    clients[service] = boto3.client(service, endpoint_url=job["endpoint"], region_name="us-east-1",
                                                    aws_access_key_id="testing", aws_secret_access_key="testing")
                getattr(clients[service], xform_name(operation))(**params)
            timings[route].append((time.perf_counter() - started) * 1000)
    json.dump(timings, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
