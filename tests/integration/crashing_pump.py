"""The local stack's event pump, killed at a chosen AWS request: a worker dying mid-way, for real.

    python tests/integration/crashing_pump.py --app-dir . --endpoint ... (the pump's own arguments)

Environment: ``CRASH_OPERATION`` (e.g. ``TransactWriteItems``), ``CRASH_NEEDLE`` (a string in the
request body) and ``CRASH_AFTER`` (how many such requests are let through). The next matching
request never leaves the process: it ends at once with exit status :data:`CRASH_STATUS`
(``os._exit``: no ``finally``, no message settled, like a Lambda runtime killed mid-invocation).

The messages it receives stay invisible :data:`VISIBILITY_SECONDS` instead of the queue's 180 s,
so SQS itself redelivers what the dead process held soon after (in AWS: after the visibility timeout).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import botocore.endpoint  # noqa: E402

from devstack import event_pump  # noqa: E402

CRASH_STATUS = 137
VISIBILITY_SECONDS = 2


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def install_crash(operation: str, needle: str, let_through: int) -> None:
    """Kill the process at the AWS client boundary on the first matching request past ``let_through``."""
    original = botocore.endpoint.Endpoint._send
    seen = [0]

    def send(self, request):
        if _text(request.headers.get("X-Amz-Target")).endswith("." + operation) and needle in _text(request.body):
            seen[0] += 1
            if seen[0] > let_through:
                os._exit(CRASH_STATUS)
        return original(self, request)

    botocore.endpoint.Endpoint._send = send


def _receive_briefly(self, resolved, max_messages: int, wait_seconds: int) -> list:
    response = self.sqs.receive_message(
        QueueUrl=resolved.queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
        VisibilityTimeout=VISIBILITY_SECONDS, AttributeNames=["All"], MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


if __name__ == "__main__":
    install_crash(os.environ["CRASH_OPERATION"], os.environ["CRASH_NEEDLE"], int(os.environ["CRASH_AFTER"]))
    event_pump.EventPump._receive = _receive_briefly
    raise SystemExit(event_pump.main())
