"""Which failures of an AWS call are passing ones (pure: errors built by hand, no client)."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from chalicelib.aws import is_transient


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "SendMessage")


@pytest.mark.parametrize("code", ["InternalError", "AWS.SimpleQueueService.ServiceUnavailable", "RequestThrottled",
                                  "SlowDown", "ServiceUnavailable", "ThrottlingException", "TooManyRequestsException"])
def test_throttling_and_unavailability_codes_are_transient(code):
    assert is_transient(client_error(code))


def test_any_5xx_answer_is_transient():
    assert is_transient(client_error("SomethingNew", status=502))


@pytest.mark.parametrize("code", ["AccessDenied", "NoSuchBucket", "AWS.SimpleQueueService.NonExistentQueue",
                                  "InvalidParameterValue", "ValidationException"])
def test_errors_of_the_request_itself_are_not_transient(code):
    assert not is_transient(client_error(code))


def test_no_answer_at_all_is_transient():
    assert is_transient(EndpointConnectionError(endpoint_url="https://sqs.invalid"))
    assert is_transient(ReadTimeoutError(endpoint_url="https://sqs.invalid"))


def test_errors_that_are_not_from_aws_are_not_transient():
    assert not is_transient(ValueError("boom"))
