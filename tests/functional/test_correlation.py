"""One correlation id follows an upload from ``POST /photos`` through SQS into each worker's logs."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from api_helpers import call, member
from test_photo_lifecycle import deliver_uploads, record, uploaded_photo

from chalicelib import aws, settings
from chalicelib.observability import logger
from devstack.event_pump import build_sqs_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

FANOUT_ARN = "arn:aws:sqs:us-east-1:123456789012:photoscale-local-fanout"


class LogLines(logging.Handler):
    """The shared Powertools logger's lines, formatted by its own JSON formatter, as dicts."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []
        self.setFormatter(logger.registered_handler.formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def take(self) -> list[dict]:
        taken, self.lines = self.lines, []
        return taken


@pytest.fixture
def logs() -> Iterator[LogLines]:
    handler = LogLines()
    logger._logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger._logger.removeHandler(handler)


def test_one_upload_is_followed_by_its_request_id_from_the_api_to_the_fanout_worker(client, logs):
    # GIVEN a photo created through the API: its request id is the upload's correlation id
    owner, token = member(client)
    fanout_url = settings.get_settings().fanout_queue_url
    sqs = aws.client("sqs")
    while old := sqs.receive_message(QueueUrl=fanout_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in old:
            sqs.delete_message(QueueUrl=fanout_url, ReceiptHandle=message["ReceiptHandle"])
    photo_id, event = uploaded_photo(client, token, owner)
    correlation_id = record(photo_id).correlation_id
    assert correlation_id
    logs.take()

    # WHEN the upload worker processes it
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    upload_logs = logs.take()

    # THEN its log says the photo is ready under that id, and the fan-out message carries it
    assert any(line["message"] == "photo ready" and line.get("correlation_id") == correlation_id
               for line in upload_logs), upload_logs
    messages = sqs.receive_message(QueueUrl=fanout_url, MaxNumberOfMessages=10,
                                   MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"])["photo_id"] for m in messages] == [photo_id]
    assert messages[0]["MessageAttributes"]["correlation_id"]["StringValue"] == correlation_id

    # AND the fan-out worker logs its work under the same id
    result = client.lambda_.invoke("fan_out_feed", build_sqs_event(messages, queue_arn=FANOUT_ARN,
                                                                   region="us-east-1")).payload
    assert result == {"batchItemFailures": []}
    fanout_logs = logs.take()
    handled = [line for line in fanout_logs if line["message"] == "fan-out message handled"]
    assert [line.get("correlation_id") for line in handled] == [correlation_id]
    assert call(client, "GET", "/feed", token=token).status_code == 200
    sqs.delete_message(QueueUrl=fanout_url, ReceiptHandle=messages[0]["ReceiptHandle"])
