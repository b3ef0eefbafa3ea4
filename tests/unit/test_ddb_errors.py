"""DynamoDB error translation: only a failed condition means "already done"; conflicts and
throttling are retried; what stays transient becomes a 503 with Retry-After."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import CancellationReason, TransactWriteError, UpdateError, VerboseClientError

from chalicelib import ddb
from chalicelib.errors import ServiceUnavailable


def client_error(code: str, reasons: list[str] | None = None) -> ClientError:
    response = {"Error": {"Code": code, "Message": code}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "TransactWriteItems")


def transaction_error(*reasons: str) -> TransactWriteError:
    """What PynamoDB raises for a cancelled transaction (its cause is a ``VerboseClientError``)."""
    response = {"Error": {"Code": ddb.TRANSACTION_CANCELED, "Message": "cancelled"},
                "CancellationReasons": [{"Code": r} for r in reasons]}
    cause = VerboseClientError(response, "TransactWriteItems",
                               cancellation_reasons=[CancellationReason(code=r) for r in reasons])
    return TransactWriteError("Failed to write transaction items", cause=cause)


def test_conditional_check_failure_of_a_single_write_is_a_condition_failure():
    error = UpdateError("Failed to update item", cause=client_error(ddb.CONDITIONAL_CHECK_FAILED))
    assert ddb.condition_failed(error)
    assert not ddb.is_retryable(error)


def test_transaction_cancelled_by_the_conditioned_item_is_a_condition_failure_of_that_item():
    error = transaction_error("ConditionalCheckFailed", "None")
    assert ddb.condition_failed(error, 0)
    assert not ddb.condition_failed(error, 1)
    assert ddb.condition_failed(error)


def test_transaction_conflict_is_not_a_condition_failure_and_is_retried():
    error = transaction_error("None", "TransactionConflict")
    assert not ddb.condition_failed(error)
    assert not ddb.condition_failed(error, 0)
    assert ddb.is_retryable(error)


def test_throttled_transaction_is_retryable_and_throttled():
    error = transaction_error("ThrottlingError", "None")
    assert ddb.is_retryable(error) and ddb.is_throttled(error)
    assert not ddb.condition_failed(error)


def test_raw_boto3_transaction_cancellation_reasons_are_read_too():
    error = client_error(ddb.TRANSACTION_CANCELED, ["None", "ConditionalCheckFailed"])
    assert ddb.condition_failed(error, 1) and not ddb.condition_failed(error, 0)


def test_with_retries_retries_transient_failures_then_succeeds():
    outcomes = [client_error("ProvisionedThroughputExceededException"), transaction_error("TransactionConflict"), "ok"]
    slept: list[float] = []

    def operation():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert ddb.with_retries(operation, sleep=slept.append) == "ok"
    assert len(slept) == 2 and all(0 <= s <= 0.5 for s in slept)


def test_with_retries_raises_the_last_transient_error_after_the_attempts():
    calls = []

    def operation():
        calls.append(1)
        raise client_error("ThrottlingException")

    with pytest.raises(ClientError):
        ddb.with_retries(operation, attempts=3, sleep=lambda _: None)
    assert len(calls) == 3


def test_with_retries_raises_a_condition_failure_at_once():
    calls = []

    def operation():
        calls.append(1)
        raise transaction_error("ConditionalCheckFailed")

    with pytest.raises(TransactWriteError):
        ddb.with_retries(operation, sleep=lambda _: None)
    assert len(calls) == 1


def test_translate_turns_throttling_into_503_with_retry_after():
    translated = ddb.translate(client_error("ThrottlingException"))
    assert isinstance(translated, ServiceUnavailable)
    assert translated.status == 503 and translated.headers == {"Retry-After": "1"}
    other = client_error("ValidationException")
    assert ddb.translate(other) is other
