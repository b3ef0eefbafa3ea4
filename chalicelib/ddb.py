"""DynamoDB error translation and retries: the one place that reads DynamoDB's error codes.

PynamoDB wraps botocore's ``ClientError`` in its own exceptions (``PutError``, ``UpdateError``,
``DeleteError``, ``TransactWriteError``, ...), whose ``cause_response_code`` and
``cancellation_reasons`` carry DynamoDB's answer; raw boto3 calls raise ``ClientError`` itself.
Everything above this module asks questions in domain terms:

- :func:`condition_failed` — did a condition (of one item of a transaction) fail? Only that means
  "already done" / "not in the expected state". A transaction cancelled by a *conflict* or by
  *throttling* is not a condition failure: it is retried, and what still fails is raised.
- :func:`is_retryable` — a transient failure (conflict, throttling, internal error) worth retrying.
- :func:`with_retries` — run a write with jittered exponential backoff on transient failures.
- :func:`translate` — turn what is still transient after retries into :class:`ServiceUnavailable`
  (503 with ``Retry-After``), so a client never sees a 500 for DynamoDB throttling.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from chalicelib.errors import ServiceUnavailable

T = TypeVar("T")

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"
#: Error codes of a whole request that is safe to send again.
RETRYABLE_CODES = frozenset({
    "TransactionConflictException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
})
#: Cancellation-reason codes of one item of a transaction that make the transaction safe to retry.
RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "None"})
THROTTLED_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
RETRY_AFTER_SECONDS = 1


def error_code(exc: BaseException) -> str | None:
    """DynamoDB's error code behind ``exc`` (a PynamoDB exception or a botocore ``ClientError``)."""
    code = getattr(exc, "cause_response_code", None)
    if code:
        return code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def cancellation_codes(exc: BaseException) -> list[str | None]:
    """Per-item reason codes of a cancelled transaction (``None`` where an item had no problem)."""
    try:
        reasons = getattr(exc, "cancellation_reasons", None)
    except AttributeError:  # PynamoDB raises when the cause carries no reasons
        reasons = None
    if reasons:
        return [getattr(r, "code", None) if r is not None else None for r in reasons]
    response = getattr(getattr(exc, "cause", None) or exc, "response", None)
    if isinstance(response, dict) and response.get("CancellationReasons"):
        return [r.get("Code") for r in response["CancellationReasons"]]
    return []


def condition_failed(exc: BaseException, index: int | None = None) -> bool:
    """Whether ``exc`` means a condition failed (for a transaction: item ``index``'s, or any item's).

    A transaction cancelled for any other reason (a conflicting transaction, throttling) is not a
    condition failure, even if another item's condition failed in the same cancellation.
    """
    code = error_code(exc)
    if code == CONDITIONAL_CHECK_FAILED:
        return index is None or index == 0
    if code != TRANSACTION_CANCELED:
        return False
    codes = cancellation_codes(exc)
    if index is None:
        return "ConditionalCheckFailed" in codes and not (set(codes) - {"ConditionalCheckFailed", "None", None})
    return index < len(codes) and codes[index] == "ConditionalCheckFailed"


def is_retryable(exc: BaseException) -> bool:
    """A transient failure: sending the same request again may succeed."""
    code = error_code(exc)
    if code in RETRYABLE_CODES:
        return True
    if code == TRANSACTION_CANCELED:
        codes = {c for c in cancellation_codes(exc) if c is not None}
        return bool(codes) and codes <= RETRYABLE_REASONS and codes != {"None"}
    return False


def is_throttled(exc: BaseException) -> bool:
    code = error_code(exc)
    if code in THROTTLED_CODES:
        return True
    return code == TRANSACTION_CANCELED and bool(
        {"ThrottlingError", "ProvisionedThroughputExceeded"} & set(cancellation_codes(exc)))


def backoff_delay(attempt: int, base: float = 0.025, cap: float = 0.5, draw: float | None = None) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2**attempt))``."""
    return min(cap, base * (2 ** attempt)) * (random.random() if draw is None else draw)


def with_retries(operation: Callable[[], T], *, attempts: int = 5, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``operation``; on a transient DynamoDB failure wait (jittered backoff) and run it again.

    After ``attempts`` tries the last error is raised unchanged (callers decide: an API request
    answers 503 through :func:`translate`, a worker lets the message go back to its queue).
    Non-transient errors (a failed condition, validation) are raised at once.
    """
    for attempt in range(attempts):
        try:
            return operation()
        except Exception as exc:
            if not is_retryable(exc) or attempt + 1 >= attempts:
                raise
            sleep(backoff_delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def translate(exc: BaseException) -> BaseException:
    """The error an API client should see for ``exc``: transient failures become a 503 with
    ``Retry-After``; anything else is returned unchanged (re-raise it)."""
    if is_retryable(exc):
        return ServiceUnavailable("The service is busy; try again shortly.", retry_after=RETRY_AFTER_SECONDS)
    return exc
