"""The embedded AWS's serialising middleware (pure WSGI, no server)."""
from __future__ import annotations

import io
import json
import threading

import pytest

from devstack.embedded_aws import Serialised


def environ(body: bytes = b"") -> dict:
    return {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}


def test_the_response_body_is_read_while_the_lock_is_held():
    # Given an app whose response body is lazy (it touches state while being iterated)
    seen: list[bool] = []

    def app(env, start_response):
        start_response("200 OK", [])

        def body():
            seen.append(middleware.lock.locked())
            yield b"a"
            seen.append(middleware.lock.locked())
            yield b"b"
        return body()

    middleware = Serialised(app)
    # When a request is served
    chunks = middleware(environ(), lambda *args: None)
    # Then the whole body was produced inside the lock, and the lock is free afterwards
    assert chunks == [b"a", b"b"]
    assert seen == [True, True]
    assert not middleware.lock.locked()


def test_the_request_body_is_buffered_before_the_lock_is_taken():
    # Given a request body that records whether the lock was held when it was read
    def app(env, start_response):
        start_response("200 OK", [])
        return [env["wsgi.input"].read()]

    middleware = Serialised(app)
    reads: list[bool] = []

    class Recording(io.BytesIO):
        def read(self, *args):
            reads.append(middleware.lock.locked())
            return super().read(*args)

    env = environ(b"payload")
    env["wsgi.input"] = Recording(b"payload")
    # When it is served / Then the app still sees the whole body, read from the client outside the lock
    assert middleware(env, lambda *args: None) == [b"payload"]
    assert reads == [False]


def test_the_lock_is_released_when_the_app_fails():
    # Given an app that raises / When it is called / Then the error propagates and the lock is free
    def app(env, start_response):
        raise RuntimeError("boom")

    middleware = Serialised(app)
    with pytest.raises(RuntimeError, match="boom"):
        middleware(environ(), lambda *args: None)
    assert not middleware.lock.locked()


def test_a_closable_response_is_closed():
    # Given a response iterable with close() (WSGI requires calling it)
    closed: list[bool] = []

    class Body(list):
        def close(self):
            closed.append(True)

    def app(env, start_response):
        start_response("200 OK", [])
        return Body([b"x"])

    middleware = Serialised(app)
    # When served / Then it was closed
    assert middleware(environ(), lambda *args: None) == [b"x"]
    assert closed == [True]


class FakeQueue:
    """An SQS stand-in speaking the JSON protocol: SendMessage and ReceiveMessage (never waits itself)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.waits: list[int] = []
        self.polled = threading.Event()

    def __call__(self, env, start_response):
        request = json.loads(env["wsgi.input"].read(int(env["CONTENT_LENGTH"])))
        if env["HTTP_X_AMZ_TARGET"] == "AmazonSQS.SendMessage":
            self.messages.append(request["MessageBody"])
            out: dict = {"MessageId": str(len(self.messages))}
        else:
            self.waits.append(request["WaitTimeSeconds"])
            out = {"Messages": [{"Body": body} for body in self.messages]} if self.messages else {}
            self.messages = []
            self.polled.set()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [json.dumps(out).encode()]


def sqs_request(action: str, payload: dict) -> dict:
    body = json.dumps(payload).encode()
    return {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "HTTP_X_AMZ_TARGET": f"AmazonSQS.{action}"}


def test_a_long_poll_waits_outside_the_lock_and_returns_a_message_sent_meanwhile():
    # Given an idle queue and a consumer long-polling it for up to 20 s
    queue = FakeQueue()
    middleware = Serialised(queue)
    received: list[dict] = []
    poller = threading.Thread(target=lambda: received.append(json.loads(b"".join(middleware(
        sqs_request("ReceiveMessage", {"QueueUrl": "q", "WaitTimeSeconds": 20}), lambda *args: None)))))
    poller.start()
    assert queue.polled.wait(30)
    # When a producer sends a message while the consumer waits
    sent = middleware(sqs_request("SendMessage", {"QueueUrl": "q", "MessageBody": "hello"}), lambda *args: None)
    poller.join(30)
    # Then the send went through, the waiting poll returned that message, and moto itself never waited
    assert json.loads(b"".join(sent)) == {"MessageId": "1"}
    assert received == [{"Messages": [{"Body": "hello"}]}]
    assert set(queue.waits) == {0}


def test_a_receive_that_does_not_wait_is_passed_through_unchanged():
    # Given a queue with a message / When it is received without a wait / Then moto is asked exactly that
    queue = FakeQueue()
    queue.messages.append("m")
    middleware = Serialised(queue)
    out = middleware(sqs_request("ReceiveMessage", {"QueueUrl": "q", "WaitTimeSeconds": 0}), lambda *args: None)
    assert json.loads(b"".join(out)) == {"Messages": [{"Body": "m"}]}
    assert queue.waits == [0]


def test_dynamodb_requests_do_not_wake_waiting_polls_but_sqs_and_s3_requests_do():
    # Given requests of several services / When classified / Then only those that can queue a message wake polls
    from devstack.embedded_aws import _may_queue_messages

    assert not _may_queue_messages({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems"})
    assert not _may_queue_messages({"HTTP_X_AMZ_TARGET": "AWSCognitoIdentityProviderService.InitiateAuth"})
    assert _may_queue_messages({"HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage"})
    assert _may_queue_messages({"REQUEST_METHOD": "POST", "PATH_INFO": "/photoscale-media"})  # an S3 upload
