"""The local SQS event pump delivers queue batches to Chalice SQS handlers with Lambda's ReportBatchItemFailures
semantics, against a real moto server."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from chalice import Chalice

from devstack.event_pump import DeliveryResult, EventPump, interpret_batch_response
from test_photo_pipeline import wait_until

REGION = "us-east-1"
LAMBDA_RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


# ------------------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------------------
def pump_until(pump: EventPump, source: str, predicate: Callable[[DeliveryResult], bool]) -> DeliveryResult:
    """Call ``pump_once`` until a delivery satisfies ``predicate`` (bounded by ``wait_until``)."""
    box: list[DeliveryResult] = []

    def attempt() -> bool:
        result = pump.pump_once(source)
        if predicate(result):
            box.append(result)
            return True
        return False

    wait_until(attempt, timeout=15.0, interval=0.05)
    return box[0]


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible + in-flight + delayed messages."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


@dataclass
class Recorder:
    """What the test app's SQS handler saw: one entry per invocation."""

    events: list[dict[str, Any]] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: Any) -> None:
        with self.lock:
            self.events.append(event.to_dict())
            self.contexts.append(event.context)

    def bodies(self, invocation: int) -> list[str]:
        return [r["body"] for r in self.events[invocation]["Records"]]

    def count(self, body: str) -> int:
        with self.lock:
            return sum(r["body"] == body for e in self.events for r in e["Records"])


def poison_aware_record_handler(record: SQSRecord) -> str:
    """Fails every record whose body says "poison"."""
    if "poison" in record.body:
        raise ValueError(f"poison message {record.message_id}")
    return record.body


def build_partial_batch_app(queue_name: str, recorder: Recorder) -> Chalice:
    """A tiny Chalice app whose SQS handler reports per-record failures through Powertools' BatchProcessor."""
    app = Chalice(app_name="pump-test")
    processor = BatchProcessor(event_type=EventType.SQS)

    @app.on_sqs_message(queue=queue_name, batch_size=10)
    def handle_jobs(event: Any) -> dict[str, Any]:
        recorder.record(event)
        return process_partial_response(
            event=event.to_dict(),
            record_handler=poison_aware_record_handler,
            processor=processor,
            context=event.context,
        )

    return app


def build_raising_app(queue_name: str, recorder: Recorder, *, raise_times: int) -> Chalice:
    """A Chalice app whose SQS handler raises on its first ``raise_times`` invocations, then succeeds."""
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=queue_name, batch_size=10)
    def handle_jobs(event: Any) -> None:
        recorder.record(event)
        if len(recorder.events) <= raise_times:
            raise RuntimeError("handler blew up")

    return app


@pytest.fixture
def sqs(aws_client: Callable[..., Any]) -> Any:
    return aws_client("sqs")


@pytest.fixture
def make_queue(sqs: Any, unique_name: Callable[[str], str]) -> Callable[..., tuple[str, str]]:
    """Factory creating a uniquely named queue; returns (name, url). ``dlq_arn`` adds a RedrivePolicy."""

    def make(prefix: str = "jobs", *, dlq_arn: str | None = None, max_receive_count: int = 2) -> tuple[str, str]:
        name = unique_name(prefix)
        attributes = {"VisibilityTimeout": "30"}
        if dlq_arn:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            )
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return name, url

    return make


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


# ------------------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------------------
def test_batch_is_delivered_as_a_lambda_sqs_event_and_successful_messages_are_deleted(sqs, make_queue):
    # Given a queue with three messages, one carrying string and binary message attributes
    name, url = make_queue()
    recorder = Recorder()
    pump = EventPump(build_partial_batch_app(name, recorder), sqs, wait_seconds=1, retry_delay_seconds=0)
    sqs.send_message(
        QueueUrl=url,
        MessageBody="first",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "upload"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    sqs.send_message(QueueUrl=url, MessageBody="second")
    sqs.send_message(QueueUrl=url, MessageBody="third")

    # When the pump delivers until all three were handed to the handler
    results: list[DeliveryResult] = []
    pump_until(pump, "handle_jobs", lambda r: bool(results.append(r)) or sum(x.received for x in results) >= 3)

    # Then the handler got Lambda's SQS event shape for every record
    records = [r for e in recorder.events for r in e["Records"]]
    assert sorted(r["body"] for r in records) == ["first", "second", "third"]
    for record in records:
        assert set(record) >= LAMBDA_RECORD_KEYS
        assert set(record) - LAMBDA_RECORD_KEYS <= {"md5OfMessageAttributes"}
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == queue_arn(sqs, url)
        assert record["awsRegion"] == REGION
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert set(record["attributes"]) >= {
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        }
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert all(isinstance(v, str) for v in record["attributes"].values())
    first = next(r for r in records if r["body"] == "first")
    assert first["messageAttributes"] == {
        "kind": {"stringValue": "upload", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    # And the context looks like Lambda's, with a fresh request id per invocation
    context = recorder.contexts[0]
    assert context.function_name == "pump-test-local-handle_jobs"
    assert context.invoked_function_arn.startswith(f"arn:aws:lambda:{REGION}:")
    assert uuid.UUID(context.aws_request_id)
    assert 0 < context.get_remaining_time_in_millis() <= 30_000
    assert len({c.aws_request_id for c in recorder.contexts}) == len(recorder.contexts)
    # And every message succeeded and was deleted from the queue
    assert all(not r.failed and r.error is None for r in results)
    assert queue_depth(sqs, url) == 0


def test_partial_batch_failure_retries_only_the_poison_message(sqs, make_queue):
    # Given a batch of two good messages and one poison message
    name, url = make_queue()
    recorder = Recorder()
    pump = EventPump(build_partial_batch_app(name, recorder), sqs, wait_seconds=1, retry_delay_seconds=0)
    for body in ("ok-1", "poison", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    wait_until(lambda: queue_depth(sqs, url) == 3)

    # When the pump delivers the batch
    first = pump_until(pump, "handle_jobs", lambda r: r.invoked)

    # Then only the poison message is reported failed, its batch-mates are deleted
    assert first.received == 3
    poison_id = next(r["messageId"] for r in first.event["Records"] if r["body"] == "poison")
    assert first.failed == (poison_id,)
    assert len(first.succeeded) == 2
    assert first.error is None

    # When the pump polls again
    second = pump_until(pump, "handle_jobs", lambda r: r.invoked)

    # Then the poison message alone is redelivered (visible again), a second receive
    assert [r["body"] for r in second.event["Records"]] == ["poison"]
    assert second.event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert recorder.count("ok-1") == 1 and recorder.count("ok-2") == 1
    assert queue_depth(sqs, url) == 1


def test_poison_message_lands_in_the_dlq_after_max_receive_count(sqs, make_queue):
    # Given a source queue redriving to a DLQ after 2 receives, holding a poison and a good message
    dlq_name, dlq_url = make_queue("jobs-dlq")
    name, url = make_queue(dlq_arn=queue_arn(sqs, dlq_url), max_receive_count=2)
    recorder = Recorder()
    pump = EventPump(build_partial_batch_app(name, recorder), sqs, wait_seconds=0, retry_delay_seconds=0)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    sqs.send_message(QueueUrl=url, MessageBody="fine")

    # When the pump keeps delivering until SQS has moved the poison message to the DLQ
    def poison_in_dlq() -> bool:
        pump.pump_once("handle_jobs")
        return queue_depth(sqs, dlq_url) == 1

    wait_until(poison_in_dlq)

    # Then the DLQ holds exactly the poison message, after exactly maxReceiveCount deliveries
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert recorder.count("poison") == 2
    assert recorder.count("fine") == 1
    # And the source queue is empty
    assert queue_depth(sqs, url) == 0


def test_handler_exception_fails_the_whole_batch_and_the_pump_keeps_running(sqs, make_queue, caplog):
    # Given a handler that raises on its first invocation only, and two messages
    name, url = make_queue()
    recorder = Recorder()
    pump = EventPump(build_raising_app(name, recorder, raise_times=1), sqs, wait_seconds=1, retry_delay_seconds=0)
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")
    wait_until(lambda: queue_depth(sqs, url) == 2)
    caplog.set_level(logging.INFO, logger="devstack.event_pump")

    # When the pump runs its loop
    stop = threading.Event()
    runner = threading.Thread(target=pump.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: len(recorder.events) >= 2 and queue_depth(sqs, url) == 0)

        # Then the pump survived the exception: it is still running
        assert runner.is_alive()
    finally:
        stop.set()
        runner.join(timeout=15)
    assert not runner.is_alive()

    # And the whole failed batch was redelivered (both messages, second receive)
    assert sorted(recorder.bodies(0)) == ["a", "b"]
    redelivered = [r for e in recorder.events[1:] for r in e["Records"]]
    assert sorted(r["body"] for r in redelivered) == ["a", "b"]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in redelivered} == {"2"}
    # And the exception was logged with its traceback, the delivery as a structured failure
    errors = [r for r in caplog.records if r.getMessage().startswith('{"event": "sqs.handler_error"')]
    assert errors and errors[0].exc_info and "handler blew up" in str(errors[0].exc_info[1])
    deliveries = [r.pump for r in caplog.records if getattr(r, "pump", {}).get("event") == "sqs.delivery"]
    assert deliveries[0]["failed"] == 2 and "RuntimeError" in deliveries[0]["error"]


def test_whole_batch_fails_when_the_handler_returns_an_invalid_response(sqs, make_queue):
    # Given a handler naming a message id that is not in its batch
    name, url = make_queue()
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name, batch_size=10)
    def handle_jobs(event: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]}

    pump = EventPump(app, sqs, wait_seconds=1, retry_delay_seconds=0)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.send_message(QueueUrl=url, MessageBody="y")
    wait_until(lambda: queue_depth(sqs, url) == 2)

    # When the pump delivers the batch
    result = pump_until(pump, "handle_jobs", lambda r: r.invoked)

    # Then every message of the batch failed and stays on the queue
    assert len(result.failed) == result.received == 2
    assert "invalid batch response" in result.error
    assert queue_depth(sqs, url) == 2


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ([], set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
    ],
)
def test_batch_responses_lambda_accepts_are_interpreted_like_lambda(response, failed):
    # Given / When a handler response for a batch of m1, m2 / Then the failed ids are those Lambda would retry
    assert interpret_batch_response(response, ["m1", "m2"]) == failed


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"wrongKey": "m1"}]},
        {"batchItemFailures": [{"itemIdentifier": "unknown"}]},
        {"batchItemFailures": "m1"},
        "ok",
        {"obj": object()},
    ],
)
def test_batch_responses_lambda_rejects_fail_the_whole_batch(response):
    # Given / When an invalid handler response / Then it is rejected, which fails the whole batch
    with pytest.raises(ValueError):
        interpret_batch_response(response, ["m1", "m2"])


def test_context_is_accepted_by_powertools_idempotency(sqs, aws_client, make_queue, unique_name):
    # Given an idempotent record handler (Powertools, DynamoDB on the moto server) keyed on the message body,
    # with the pump's context registered, and the same payload sent twice
    dynamodb = aws_client("dynamodb")
    table = unique_name("idempotency")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    config = IdempotencyConfig(event_key_jmespath="body")
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)
    side_effects: list[str] = []

    @idempotent_function(data_keyword_argument="record", config=config, persistence_store=persistence)
    def record_handler(record: SQSRecord) -> str:
        side_effects.append(record.body)
        return record.body

    name, url = make_queue()
    app = Chalice(app_name="pump-test")
    processor = BatchProcessor(event_type=EventType.SQS)

    @app.on_sqs_message(queue=name, batch_size=10)
    def handle_jobs(event: Any) -> dict[str, Any]:
        config.register_lambda_context(event.context)
        return process_partial_response(
            event=event.to_dict(), record_handler=record_handler, processor=processor, context=event.context
        )

    pump = EventPump(app, sqs, wait_seconds=1, retry_delay_seconds=0)
    payload = json.dumps({"photo_id": unique_name("photo")})
    sqs.send_message(QueueUrl=url, MessageBody=payload)
    sqs.send_message(QueueUrl=url, MessageBody=payload)

    # When the pump delivers both messages
    results: list[DeliveryResult] = []
    pump_until(pump, "handle_jobs", lambda r: bool(results.append(r)) or sum(x.received for x in results) >= 2)

    # Then the side effect ran once, both messages succeeded, and Powertools used the context's remaining time
    assert side_effects == [payload]
    assert all(not r.failed for r in results)
    assert queue_depth(sqs, url) == 0
    items = dynamodb.scan(TableName=table)["Items"]
    assert len(items) == 1
    assert "in_progress_expiration" in items[0]


def test_run_loop_stops_promptly_when_the_stop_event_is_set(sqs, make_queue):
    # Given a pump running over two queues (one thread each), with nothing to deliver
    name_a, _ = make_queue("a")
    name_b, _ = make_queue("b")
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name_a, batch_size=10)
    def handle_a(event: Any) -> None:
        return None

    @app.on_sqs_message(queue=name_b, batch_size=5)
    def handle_b(event: Any) -> None:
        return None

    pump = EventPump(app, sqs, wait_seconds=1)
    stop = threading.Event()
    runner = threading.Thread(target=pump.run, args=(stop,), daemon=True)
    runner.start()
    wait_until(lambda: {t.name for t in threading.enumerate()} >= {"event-pump-handle_a", "event-pump-handle_b"})

    # When the stop event is set
    stop.set()

    # Then run() returns and its per-queue threads are gone (bounded wait, no fixed sleep)
    runner.join(timeout=15)
    assert not runner.is_alive()
    assert not {t.name for t in threading.enumerate()} & {"event-pump-handle_a", "event-pump-handle_b"}
