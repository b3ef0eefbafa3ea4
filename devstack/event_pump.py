"""Local event pump: the dev-only stand-in for Lambda's SQS and DynamoDB-stream event-source mappings.

``chalice local`` serves HTTP routes only. This pump long-polls the local SQS queues (on the embedded moto
server) and hands each batch to the Chalice app's ``@app.on_sqs_message`` handlers - the very
``EventSourceHandler`` objects Lambda invokes, so the app's ``sqs`` middleware runs too - with a Lambda
SQS event and a Lambda-like context.

Rules (those of an event source mapping with ``FunctionResponseTypes=['ReportBatchItemFailures']``):

- A batch is what one ``ReceiveMessage`` returns (at most ``min(batch_size, 10)``); with
  ``maximum_batching_window_in_seconds > 0`` further receives top the batch up to ``batch_size`` until the
  window closes, as Lambda's batching window does.
- Handler returns ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`` -> only those failed.
- Handler returns ``None``, ``{}``, ``[]``, a dict without ``batchItemFailures`` or with it null/empty
  -> the whole batch succeeded.
- Handler raises, runs past the function timeout, returns something that is not JSON-serialisable, not an
  object, or names an item it cannot (``itemIdentifier`` missing, empty, not a string, or not a messageId of
  the batch) -> the whole batch failed.
- Succeeded messages are deleted (``DeleteMessageBatch``). Failed ones are made visible again with
  ``ChangeMessageVisibility(VisibilityTimeout=retry_delay_seconds)``. **Local speed-up:** Lambda does not
  touch failed messages; they reappear only when the queue's visibility timeout expires. Here the retry
  delay (default 1 s) replaces that wait so retries are quick in development.
- Moving a message to the DLQ after ``maxReceiveCount`` receives is SQS's job (moto applies the queue's
  ``RedrivePolicy`` on receive); the pump never does it.
- One thread per queue, i.e. concurrency 1 per event source (``maximum_concurrency`` is not emulated).
- A handler exception is logged with its traceback and never stops the pump.

DynamoDB streams (``@app.on_dynamodb_record``; rules of a stream mapping with ``ReportBatchItemFailures``):

- The pump tails every shard of the stream (``DescribeStream``, ``GetShardIterator`` at the source's
  ``starting_position``, ``GetRecords``) and invokes the handler with Lambda's DynamoDB event shape
  (``eventID``, ``eventName``, ``dynamodb`` with ``Keys``/``NewImage``/``OldImage``/``SequenceNumber``/
  ``ApproximateCreationDateTime`` in epoch seconds, ``eventSourceARN``), at most ``batch_size`` records,
  topped up until ``maximum_batching_window_in_seconds`` closes.
- ``batchItemFailures`` names sequence numbers: the shard is checkpointed just before the lowest one and
  every record from there on is delivered again (in order) after ``retry_delay_seconds``. A raise, a timeout
  or an invalid response retries the whole batch. Records are never skipped (no maximum retry age).

Every delivery is logged as one JSON object (``"event": "sqs.delivery"``) on the ``devstack.event_pump``
logger: queue, batch size, failed ids, outcome.

CLI (the environment must already carry the app's settings)::

    python -m devstack.event_pump --app-dir . --endpoint http://127.0.0.1:4566

runs until SIGINT/SIGTERM and exits with status 0.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from chalice.app import DynamoDBEventConfig, SQSEventConfig

from devstack.streams import StreamCursor

logger = logging.getLogger("devstack.event_pump")

#: SQS hard limit for ReceiveMessage / DeleteMessageBatch / ChangeMessageVisibilityBatch.
SQS_MAX_BATCH = 10
#: The system attributes Lambda always puts into ``attributes`` (plus the optional ones below when present).
_LAMBDA_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)
_OPTIONAL_RECORD_ATTRIBUTES = (
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


# --------------------------------------------------------------------------------------------------------
# Lambda context
# --------------------------------------------------------------------------------------------------------
class LocalLambdaContext:
    """A Lambda-like context object for one invocation.

    Mirrors the Python runtime's context: ``function_name``, ``function_version``, ``invoked_function_arn``,
    ``memory_limit_in_mb`` (a *string*, as the real runtime passes it), ``aws_request_id`` (fresh per
    invocation), ``log_group_name``, ``log_stream_name``, ``identity``/``client_context`` (None) and
    ``get_remaining_time_in_millis()`` counting down from the function timeout.
    """

    def __init__(
        self,
        *,
        function_name: str,
        invoked_function_arn: str,
        timeout_seconds: float,
        memory_limit_in_mb: int = 128,
        function_version: str = "$LATEST",
        log_stream_name: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name or _log_stream_name(function_version)
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (emulated) function timeout; never negative."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LocalLambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


def _log_stream_name(function_version: str) -> str:
    today = datetime.now(timezone.utc).strftime("%Y/%m/%d")
    return f"{today}/[{function_version}]{uuid.uuid4().hex}"


# --------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one poll of one event source.

    ``received == 0`` means the poll found nothing and the handler was not invoked (``request_id`` is None).
    ``error`` names why the whole batch failed (handler exception, invalid response, timeout), else None.
    """

    source_name: str
    queue_url: str
    received: int = 0
    succeeded: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    error: str | None = None
    request_id: str | None = None
    event: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def invoked(self) -> bool:
        return self.received > 0


class InvalidBatchResponse(ValueError):
    """The handler's response is not a valid partial batch response; Lambda fails the whole batch."""


def interpret_batch_response(response: Any, message_ids: Sequence[str]) -> set[str]:
    """Return the message ids the handler reported as failed, following Lambda's ReportBatchItemFailures rules.

    ``None``, ``{}``, ``[]``, and a dict whose ``batchItemFailures`` is missing, null or empty mean complete
    success (empty set). Anything Lambda cannot interpret raises :class:`InvalidBatchResponse` (complete
    failure): a non-JSON-serialisable value, a non-object, ``batchItemFailures`` that is not a list, or an
    item whose ``itemIdentifier`` is missing, empty, not a string, or not a messageId of this batch.
    """
    if response is None:
        return set()
    try:
        # Lambda only ever sees the JSON-serialised return value.
        response = json.loads(json.dumps(response))
    except (TypeError, ValueError) as exc:
        raise InvalidBatchResponse(f"response is not JSON-serialisable: {exc}") from exc
    if response == [] or response == {}:
        return set()
    if not isinstance(response, dict):
        raise InvalidBatchResponse(f"response is not a JSON object: {type(response).__name__}")
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        raise InvalidBatchResponse("batchItemFailures is not a list")
    known = set(message_ids)
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            raise InvalidBatchResponse(f"batch item failure without itemIdentifier: {item!r}")
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            raise InvalidBatchResponse(f"empty or non-string itemIdentifier: {identifier!r}")
        if identifier not in known:
            raise InvalidBatchResponse(f"itemIdentifier {identifier!r} is not a messageId of this batch")
        failed.add(identifier)
    return failed


# --------------------------------------------------------------------------------------------------------
# Event building
# --------------------------------------------------------------------------------------------------------
def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def _lambda_message_attribute(attribute: Mapping[str, Any]) -> dict[str, Any]:
    """boto3's ``MessageAttributeValue`` -> the Lambda event's camelCase form (binary values base64-encoded)."""
    converted: dict[str, Any] = {}
    if "StringValue" in attribute:
        converted["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        converted["binaryValue"] = _b64(attribute["BinaryValue"])
    converted["stringListValues"] = list(attribute.get("StringListValues", []))
    converted["binaryListValues"] = [_b64(v) for v in attribute.get("BinaryListValues", [])]
    converted["dataType"] = attribute["DataType"]
    return converted


def build_sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One ``ReceiveMessage`` message -> one record of Lambda's SQS event, in Lambda's shape."""
    system = message.get("Attributes", {})
    attributes = {name: str(system[name]) for name in _LAMBDA_RECORD_ATTRIBUTES if name in system}
    attributes.update({name: str(system[name]) for name in _OPTIONAL_RECORD_ATTRIBUTES if name in system})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def build_sqs_event(messages: Sequence[Mapping[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """``ReceiveMessage`` messages -> the exact event Lambda passes to an SQS-triggered function."""
    return {"Records": [build_sqs_record(m, queue_arn=queue_arn, region=region) for m in messages]}


def build_stream_record(record: Mapping[str, Any], *, stream_arn: str) -> dict[str, Any]:
    """One ``GetRecords`` record -> one record of Lambda's DynamoDB stream event."""
    data = dict(record.get("dynamodb", {}))
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID", uuid.uuid4().hex),
        "eventName": record.get("eventName"),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion"),
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


def build_stream_event(records: Sequence[Mapping[str, Any]], *, stream_arn: str) -> dict[str, Any]:
    """``GetRecords`` records -> the event Lambda passes to a DynamoDB-stream-triggered function."""
    return {"Records": [build_stream_record(r, stream_arn=stream_arn) for r in records]}


def stream_event_sources(app: Any) -> list[DynamoDBEventConfig]:
    """The app's ``@app.on_dynamodb_record`` registrations, in registration order."""
    return [source for source in app.event_sources if isinstance(source, DynamoDBEventConfig)]


class StreamTail:
    """Lambda's poller for one DynamoDB stream: per shard the records not yet acknowledged (a failed
    batch's records from its checkpoint on are delivered again first), read through one
    :class:`devstack.streams.StreamCursor` (a fresh iterator after the last sequence number read)."""

    def __init__(self, streams_client: Any, stream_arn: str, starting_position: str = "TRIM_HORIZON",
                 checkpoint_file: Path | None = None) -> None:
        if starting_position != "TRIM_HORIZON":  # the app's mappings start at the stream's beginning
            raise ValueError(f"the local stream poller reads from TRIM_HORIZON only, not {starting_position!r}")
        self.streams = streams_client
        self.stream_arn = stream_arn
        #: Lambda's mapping keeps its checkpoint when the function crashes or the poller restarts: so
        #: does this one, in ``checkpoint_file`` (a restarted pump resumes after the last acknowledged record).
        self.checkpoint_file = checkpoint_file
        self._acked: dict[str, str] = self._load_checkpoints()
        self._cursor = StreamCursor(streams_client, stream_arn, self._acked)
        self._pending: dict[str, list[dict[str, Any]]] = {shard: [] for shard in self._acked}

    def _load_checkpoints(self) -> dict[str, str]:
        if self.checkpoint_file is None or not self.checkpoint_file.is_file():
            return {}
        return dict(json.loads(self.checkpoint_file.read_text(encoding="utf-8")).get(self.stream_arn, {}))

    def _save_checkpoints(self) -> None:
        if self.checkpoint_file is None:
            return
        self.checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
        saved = json.loads(self.checkpoint_file.read_text(encoding="utf-8")) if self.checkpoint_file.is_file() else {}
        saved[self.stream_arn] = self._acked
        scratch = self.checkpoint_file.with_suffix(".tmp")
        scratch.write_text(json.dumps(saved), encoding="utf-8")
        scratch.replace(self.checkpoint_file)

    def next_batch(self, batch_size: int, window_seconds: float = 0) -> tuple[str | None, list[dict[str, Any]]]:
        """``(shard, records)``: the oldest unacknowledged records of the first shard that has any."""
        for shard_id in self._cursor.refresh():
            self._pending[shard_id] = []
        for shard_id in self._cursor.last:
            window_ends = time.monotonic() + window_seconds
            while True:
                pending = self._pending[shard_id]
                if len(pending) < batch_size:
                    got = self._cursor.read(shard_id, batch_size - len(pending))
                    pending.extend(got)
                    if got and time.monotonic() < window_ends:
                        continue
                if pending and (len(pending) >= batch_size or time.monotonic() >= window_ends):
                    return shard_id, list(pending[:batch_size])
                if not pending:
                    break
                time.sleep(min(0.1, max(0.0, window_ends - time.monotonic())))
        return None, []

    def acknowledge(self, shard_id: str, count: int) -> None:
        """The first ``count`` records of the shard's batch succeeded (the checkpoint moves past them)."""
        if count:
            self._acked[shard_id] = self._pending[shard_id][count - 1]["dynamodb"]["SequenceNumber"]
            self._save_checkpoints()
        del self._pending[shard_id][:count]


# --------------------------------------------------------------------------------------------------------
# Handler resolution
# --------------------------------------------------------------------------------------------------------
def sqs_event_sources(app: Any) -> list[SQSEventConfig]:
    """The app's ``@app.on_sqs_message`` registrations (blueprints included), in registration order."""
    return [source for source in app.event_sources if isinstance(source, SQSEventConfig)]


def resolve_handler(app: Any, source: SQSEventConfig | DynamoDBEventConfig) -> Callable[[Any, Any], Any]:
    """The callable Lambda invokes for ``source``.

    Lambda imports ``module`` and calls ``module.<function>`` from ``handler_string`` (``app.<function>``,
    or ``<blueprint import name>.<function>``); that attribute is the decorator's return value, the
    ``EventSourceHandler`` Chalice records in ``app.handler_map[source.name]``. We take it from there (it works
    for apps not importable as ``app``, e.g. in tests) and fall back to importing ``handler_string``.
    """
    handler = getattr(app, "handler_map", {}).get(source.name)
    if handler is None:
        module_name, _, function_name = source.handler_string.rpartition(".")
        handler = getattr(importlib.import_module(module_name), function_name)
    if not callable(handler):
        raise TypeError(f"handler for event source {source.name!r} is not callable: {handler!r}")
    return handler


# --------------------------------------------------------------------------------------------------------
# Pump
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ResolvedSource:
    config: SQSEventConfig
    queue_url: str
    queue_arn: str
    handler: Callable[[Any, Any], Any]
    function_name: str
    function_arn: str


def _log(level: int, event: str, *, exc_info: bool = False, **fields: Any) -> None:
    """Emit one structured (JSON) log line; the fields are also attached to the record as ``pump``."""
    payload = {"event": event, **fields}
    logger.log(level, json.dumps(payload, default=str, sort_keys=False), exc_info=exc_info, extra={"pump": payload})


class EventPump:
    """Deliver SQS batches to a Chalice app's SQS handlers like Lambda's event source mapping does.

    ``wait_seconds`` is the ReceiveMessage long-poll (also bounds how quickly ``run`` notices a stop);
    ``retry_delay_seconds`` is the visibility timeout given back to failed messages (local speed-up, see the
    module docstring); ``function_timeout_seconds`` drives the context's remaining time, and a handler that
    runs past it has its batch failed, as a Lambda timeout would.
    """

    def __init__(
        self,
        app: Any,
        sqs_client: Any,
        *,
        wait_seconds: int = 1,
        retry_delay_seconds: int = 1,
        function_timeout_seconds: float = 30,
        stage: str = "local",
        memory_limit_in_mb: int = 128,
        streams_client: Any = None,
        paused: Callable[[], bool] | None = None,
        stream_checkpoint_dir: Path | None = None,
    ) -> None:
        if not 0 <= wait_seconds <= 20:
            raise ValueError("wait_seconds must be within 0..20 (SQS long-poll limit)")
        if not 0 <= retry_delay_seconds <= 43200:
            raise ValueError("retry_delay_seconds must be within 0..43200 (SQS visibility limit)")
        self.app = app
        self.sqs = sqs_client
        self.wait_seconds = int(wait_seconds)
        self.retry_delay_seconds = int(retry_delay_seconds)
        self.function_timeout_seconds = function_timeout_seconds
        self.stage = stage
        self.memory_limit_in_mb = memory_limit_in_mb
        #: While this answers True the loop does not poll (``devstack.chaos region-down``: the region's workers stop).
        self.paused = paused
        self.region = sqs_client.meta.region_name
        self._resolved: dict[str, _ResolvedSource] = {}
        self._lock = threading.Lock()
        self.streams = streams_client
        self._tails: dict[str, StreamTail] = {}
        self.stream_checkpoint_dir = stream_checkpoint_dir

    # -- discovery -------------------------------------------------------------------------------------
    @property
    def sources(self) -> list[SQSEventConfig]:
        """The app's SQS event sources."""
        return sqs_event_sources(self.app)

    def source(self, name: str) -> SQSEventConfig:
        """The SQS event source registered under ``name`` (the handler's function name unless overridden)."""
        for candidate in self.sources:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no SQS event source named {name!r}; have {[s.name for s in self.sources]}")

    def _resolve(self, source: SQSEventConfig) -> _ResolvedSource:
        with self._lock:
            cached = self._resolved.get(source.name)
        if cached is not None:
            return cached
        if source.queue:
            queue_url = self.sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
        else:
            assert source.queue_arn, "chalice guarantees queue or queue_arn"
            account_id, queue_name = source.queue_arn.split(":")[4], source.queue_arn.split(":")[5]
            queue_url = self.sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account_id)["QueueUrl"]
        queue_arn = source.queue_arn or self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        account_id = queue_arn.split(":")[4]
        function_name = f"{self.app.app_name}-{self.stage}-{source.name}"
        resolved = _ResolvedSource(
            config=source,
            queue_url=queue_url,
            queue_arn=queue_arn,
            handler=resolve_handler(self.app, source),
            function_name=function_name,
            function_arn=f"arn:aws:lambda:{self.region}:{account_id}:function:{function_name}",
        )
        with self._lock:
            self._resolved[source.name] = resolved
        return resolved

    # -- one delivery ----------------------------------------------------------------------------------
    def pump_once(self, source: SQSEventConfig | str) -> DeliveryResult:
        """Receive one batch from ``source``'s queue, invoke its handler, then settle every message.

        Returns an un-invoked result when the poll finds no message. Handler failures never propagate;
        SQS/transport errors do (``run`` logs them and backs off).
        """
        config = self.source(source) if isinstance(source, str) else source
        resolved = self._resolve(config)
        messages = self._receive_batch(resolved)
        if not messages:
            return DeliveryResult(source_name=config.name, queue_url=resolved.queue_url)

        event = build_sqs_event(messages, queue_arn=resolved.queue_arn, region=self.region)
        message_ids = [m["MessageId"] for m in messages]
        context = LocalLambdaContext(
            function_name=resolved.function_name,
            invoked_function_arn=resolved.function_arn,
            timeout_seconds=self.function_timeout_seconds,
            memory_limit_in_mb=self.memory_limit_in_mb,
        )
        error: str | None = None
        failed_ids: set[str]
        started = time.monotonic()
        try:
            response = resolved.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - a failing handler must never kill the pump
            failed_ids, error = set(message_ids), f"handler raised {type(exc).__name__}: {exc}"
            _log(
                logging.ERROR,
                "sqs.handler_error",
                exc_info=True,
                source=config.name,
                queue=resolved.queue_url,
                request_id=context.aws_request_id,
                batch_size=len(messages),
            )
        else:
            elapsed = time.monotonic() - started
            if elapsed > self.function_timeout_seconds:
                failed_ids = set(message_ids)
                error = f"handler ran {elapsed:.1f}s, past the {self.function_timeout_seconds}s function timeout"
            else:
                try:
                    failed_ids = interpret_batch_response(response, message_ids)
                except InvalidBatchResponse as exc:
                    failed_ids, error = set(message_ids), f"invalid batch response: {exc}"

        succeeded = [m for m in messages if m["MessageId"] not in failed_ids]
        failed = [m for m in messages if m["MessageId"] in failed_ids]
        self._delete(resolved, succeeded)
        self._release(resolved, failed)

        _log(
            logging.WARNING if failed else logging.INFO,
            "sqs.delivery",
            source=config.name,
            queue=resolved.queue_url,
            request_id=context.aws_request_id,
            batch_size=len(messages),
            succeeded=len(succeeded),
            failed=len(failed),
            failed_ids=[m["MessageId"] for m in failed],
            error=error,
        )
        return DeliveryResult(
            source_name=config.name,
            queue_url=resolved.queue_url,
            received=len(messages),
            succeeded=tuple(m["MessageId"] for m in succeeded),
            failed=tuple(m["MessageId"] for m in failed),
            error=error,
            request_id=context.aws_request_id,
            event=event,
        )

    def _receive(self, resolved: _ResolvedSource, max_messages: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=resolved.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _receive_batch(self, resolved: _ResolvedSource) -> list[dict[str, Any]]:
        """One long-poll; with a batching window, top up to ``batch_size`` until the window closes."""
        batch_size = max(1, resolved.config.batch_size)
        messages = self._receive(resolved, min(batch_size, SQS_MAX_BATCH), self.wait_seconds)
        window = resolved.config.maximum_batching_window_in_seconds or 0
        if not messages or window <= 0:
            return messages
        window_ends = time.monotonic() + window
        while len(messages) < batch_size:
            remaining = window_ends - time.monotonic()
            if remaining <= 0:
                break
            wanted = min(batch_size - len(messages), SQS_MAX_BATCH)
            more = self._receive(resolved, wanted, min(int(remaining), 20))
            if not more and int(remaining) == 0:
                break
            messages.extend(more)
        return messages

    def _delete(self, resolved: _ResolvedSource, messages: Sequence[Mapping[str, Any]]) -> None:
        for chunk in _chunks(messages, SQS_MAX_BATCH):
            response = self.sqs.delete_message_batch(
                QueueUrl=resolved.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                _log(logging.WARNING, "sqs.delete_failed", queue=resolved.queue_url, failure=failure)

    def _release(self, resolved: _ResolvedSource, messages: Sequence[Mapping[str, Any]]) -> None:
        """Make failed messages visible again after ``retry_delay_seconds`` (Lambda: the queue's timeout)."""
        for chunk in _chunks(messages, SQS_MAX_BATCH):
            response = self.sqs.change_message_visibility_batch(
                QueueUrl=resolved.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay_seconds}
                    for i, m in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                _log(logging.WARNING, "sqs.release_failed", queue=resolved.queue_url, failure=failure)

    # -- DynamoDB streams -------------------------------------------------------------------------------
    @property
    def stream_sources(self) -> list[DynamoDBEventConfig]:
        """The app's DynamoDB stream event sources (delivered only with a ``streams_client``)."""
        return stream_event_sources(self.app) if self.streams is not None else []

    def pump_stream_once(self, source: DynamoDBEventConfig | str) -> DeliveryResult:
        """Deliver the oldest unacknowledged records of ``source``'s stream (one shard, one batch)."""
        if isinstance(source, str):
            source = next(s for s in stream_event_sources(self.app) if s.name == source)
        tail = self._tails.get(source.name)
        if tail is None:
            checkpoints = self.stream_checkpoint_dir / f"{source.name}.json" if self.stream_checkpoint_dir else None
            tail = self._tails[source.name] = StreamTail(self.streams, source.stream_arn, source.starting_position,
                                                         checkpoints)
        shard_id, records = tail.next_batch(max(1, source.batch_size), source.maximum_batching_window_in_seconds or 0)
        if not records:
            return DeliveryResult(source_name=source.name, queue_url=source.stream_arn)
        event = build_stream_event(records, stream_arn=source.stream_arn)
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        function_name = f"{self.app.app_name}-{self.stage}-{source.name}"
        context = LocalLambdaContext(
            function_name=function_name,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:000000000000:function:{function_name}",
            timeout_seconds=self.function_timeout_seconds, memory_limit_in_mb=self.memory_limit_in_mb,
        )
        error: str | None = None
        started = time.monotonic()
        try:
            response = resolve_handler(self.app, source)(event, context)
            if time.monotonic() - started > self.function_timeout_seconds:
                raise InvalidBatchResponse(f"handler ran past the {self.function_timeout_seconds}s function timeout")
            failed = interpret_batch_response(response, sequence)
        except Exception as exc:  # noqa: BLE001 - the whole batch is retried
            failed, error = set(sequence), f"{type(exc).__name__}: {exc}"
            _log(logging.ERROR, "stream.handler_error", exc_info=True, source=source.name, request_id=context.aws_request_id)
        # Lambda checkpoints just before the lowest failed sequence number (they are in stream order).
        done = next((i for i, number in enumerate(sequence) if number in failed), len(sequence))
        tail.acknowledge(shard_id, done)
        _log(logging.WARNING if done < len(sequence) else logging.INFO, "stream.delivery", source=source.name,
             shard=shard_id, request_id=context.aws_request_id, batch_size=len(sequence), succeeded=done,
             retried=len(sequence) - done, error=error)
        return DeliveryResult(source_name=source.name, queue_url=source.stream_arn, received=len(sequence),
                              succeeded=tuple(sequence[:done]), failed=tuple(sequence[done:]), error=error,
                              request_id=context.aws_request_id, event=event)

    def _stream_loop(self, source: DynamoDBEventConfig, stop_event: threading.Event, error_backoff_seconds: float) -> None:
        while not stop_event.is_set():
            try:
                result = self.pump_stream_once(source)
            except Exception:  # noqa: BLE001 - stream unreachable: log, back off, retry
                _log(logging.ERROR, "pump.stream_error", exc_info=True, source=source.name)
                stop_event.wait(error_backoff_seconds)
                continue
            if result.failed:
                stop_event.wait(self.retry_delay_seconds)
            elif not result.invoked:
                stop_event.wait(max(0.2, float(self.wait_seconds) / 2))

    # -- loop ------------------------------------------------------------------------------------------
    def run(self, stop_event: threading.Event, *, error_backoff_seconds: float = 1.0) -> None:
        """Pump every SQS event source, one thread per source, until ``stop_event`` is set; then join them.

        A stop is noticed within one long-poll (``wait_seconds``) plus the running handler's time.
        """
        sources = self.sources
        if not sources:
            _log(logging.WARNING, "pump.no_sources", app=getattr(self.app, "app_name", None))
        threads = [
            threading.Thread(
                target=self._loop,
                args=(source, stop_event, error_backoff_seconds),
                name=f"event-pump-{source.name}",
                daemon=True,
            )
            for source in sources
        ] + [
            threading.Thread(target=self._stream_loop, args=(source, stop_event, error_backoff_seconds),
                             name=f"event-pump-{source.name}", daemon=True)
            for source in self.stream_sources
        ]
        for thread in threads:
            thread.start()
        _log(logging.INFO, "pump.started", sources=[s.name for s in [*sources, *self.stream_sources]])
        stop_event.wait()
        for thread in threads:
            thread.join()
        _log(logging.INFO, "pump.stopped", sources=[s.name for s in sources])

    def _loop(self, source: SQSEventConfig, stop_event: threading.Event, error_backoff_seconds: float) -> None:
        while not stop_event.is_set():
            if self.paused is not None and self.paused():
                stop_event.wait(0.2)
                continue
            try:
                result = self.pump_once(source)
            except Exception:  # noqa: BLE001 - SQS unreachable, queue missing, ...: log, back off, retry
                _log(logging.ERROR, "pump.poll_error", exc_info=True, source=source.name)
                stop_event.wait(error_backoff_seconds)
                continue
            if not result.invoked and self.wait_seconds == 0:
                stop_event.wait(0.05)  # short polls would otherwise spin


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------
def load_app(app_dir: str) -> Any:
    """Import ``app`` from ``app_dir/app.py`` the way Lambda does (``app_dir`` first on ``sys.path``)."""
    app_dir = os.path.abspath(app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module = importlib.import_module("app")
    return module.app


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.event_pump", description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", default=".", help="directory holding the Chalice app.py (default: .)")
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("PHOTOSCALE_AWS_ENDPOINT"),
        help="SQS endpoint URL, e.g. http://127.0.0.1:4566 (default: $PHOTOSCALE_AWS_ENDPOINT)",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--wait-seconds", type=int, default=1)
    parser.add_argument("--retry-delay-seconds", type=int, default=1)
    parser.add_argument("--function-timeout-seconds", type=float, default=30)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--stream-checkpoint-dir", type=Path, default=None,
                        help="keep the DynamoDB stream checkpoints here across restarts (as Lambda's mapping does)")
    return parser.parse_args(argv)


def _region_down_check(region: str) -> Callable[[], bool] | None:
    """True while ``devstack.chaos region-down <region>`` is in force (no chaos directory: never)."""
    from devstack.chaos import ChaosFlags

    flags = ChaosFlags.from_env()
    return None if flags is None else (lambda: flags.region_down(region))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pump until SIGINT/SIGTERM; return 0 on a clean stop."""
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import boto3  # dev-only entry point; the app's own clients come from chalicelib.aws

    app = load_app(args.app_dir)
    sqs = boto3.client("sqs", endpoint_url=args.endpoint, region_name=args.region or "us-east-1")
    streams = boto3.client("dynamodbstreams", endpoint_url=args.endpoint, region_name=args.region or "us-east-1")
    pump = EventPump(
        app,
        sqs,
        wait_seconds=args.wait_seconds,
        retry_delay_seconds=args.retry_delay_seconds,
        function_timeout_seconds=args.function_timeout_seconds,
        streams_client=streams,
        paused=_region_down_check(sqs.meta.region_name),
        stream_checkpoint_dir=args.stream_checkpoint_dir,
    )
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        _log(logging.INFO, "pump.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    runner = threading.Thread(target=pump.run, args=(stop,), name="event-pump", daemon=True)
    runner.start()
    # Signals are delivered to the main thread; wait in short slices so it stays responsive.
    while runner.is_alive():
        runner.join(timeout=0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
