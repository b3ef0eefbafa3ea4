"""The embedded AWS of the local stack: moto's server with one request at a time.

Local stand-in, dev-only. moto is not thread-safe: its ``TransactWriteItems`` takes no lock, and a
cancelled transaction restores a copy of the whole table taken before it started, wiping out every
transaction that committed meanwhile (seen as 10 parallel likes ending at 0, and
``RuntimeError: dictionary changed size during iteration``). ``python -m moto.server`` serves
requests on many threads, so parallel requests to the local site lost or doubled counts although
the app is right for DynamoDB, which serialises conflicting transactions itself.

:class:`Serialised` wraps moto's WSGI application so that exactly one request runs inside moto at a
time, from the call into moto until its response body has been read out completely (a response
iterable is lazy and may still touch backend state). Request bodies are read before the lock is
taken, so a slow upload never holds up other requests, and SQS long polls wait outside the lock.
Serialising is not enough for streams: a stream read is two requests, and a transaction cancelled
between them used to orphan the table's stream shard; :mod:`devstack.moto_dynamodb` (installed here)
makes a cancelled transaction leave its tables and streams in place. Everything else is moto's,
unchanged: the same boto3 code that talks to AWS talks to this server through the endpoint override.

Used by ``devstack/stack.py`` (``make run`` and the integration/end-to-end fixtures) and by the
``moto_server`` integration fixture. Run it on its own::

    python -m devstack.embedded_aws -H 127.0.0.1 -p 4566

A caching proxy (DAX stand-in) can later sit in front of this as another WSGI wrapper.

Two more local stand-ins live here because they need moto's process:

- :class:`RegionGate` (chaos): while ``devstack.chaos region-down REGION`` is in force, every request
  signed for ``REGION`` (its SigV4 credential scope: the ``Authorization`` header, a presigned URL's
  ``X-Amz-Credential`` or a presigned POST's ``x-amz-credential`` field) is answered 503
  ``ServiceUnavailable``, as AWS's endpoints in a failed region would; the region's data stays.
- the Cognito replica stand-in (:mod:`devstack.cognito_replica`), configured by the replicator with
  ``POST /_devstack/cognito-replica`` once the pools exist.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class Serialised:
    """WSGI middleware: one request at a time through ``app``, response body included.

    An SQS long poll (``ReceiveMessage`` with ``WaitTimeSeconds`` > 0) must not hold the lock while
    it waits, or every idle poller would stall the whole embedded AWS. It is served as short polls
    under the lock, waiting outside the lock in between, until a message is returned or its wait is
    over, which is what the client of a long poll observes. A poll is retried as soon as another
    request that may have queued a message has been served (any but DynamoDB's and Cognito's: an SQS
    send, an S3 upload notifying a queue), else every :data:`REPOLL_SECONDS` (messages also become
    visible when a visibility timeout or delay ends).
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        self._served = threading.Condition()
        self._generation = 0

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        body = _buffer_body(environ)
        poll = _long_poll(environ, body)
        if poll is None:
            status_headers, chunks = self._serve(environ)
            if _may_queue_messages(environ):
                with self._served:
                    self._generation += 1
                    self._served.notify_all()
        else:
            status_headers, chunks = self._serve_long_poll(environ, *poll)
        start_response(*status_headers)
        return chunks

    def _serve(self, environ: dict) -> tuple[tuple[str, list], list[bytes]]:
        """Run ``app`` under the lock; returns ``((status, headers), body chunks)``."""
        started: list[tuple[str, list]] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [(status, headers)]
            return chunks.append

        with self.lock:
            result = self.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return started[0], chunks

    def _serve_long_poll(self, environ: dict, short_body: bytes, wait_seconds: float):
        deadline = time.monotonic() + wait_seconds
        while True:
            with self._served:
                generation = self._generation
            environ["wsgi.input"] = io.BytesIO(short_body)
            environ["CONTENT_LENGTH"] = str(len(short_body))
            status_headers, chunks = self._serve(environ)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not status_headers[0].startswith("200") or _has_messages(b"".join(chunks)):
                return status_headers, chunks
            with self._served:
                self._served.wait_for(lambda: self._generation != generation, timeout=min(REPOLL_SECONDS, remaining))


#: How often a waiting SQS long poll looks again when no other request arrived meanwhile.
REPOLL_SECONDS = 0.2


def _buffer_body(environ: dict) -> bytes | None:
    """Read a request body of known length into memory (outside the lock); returns it."""
    length = environ.get("CONTENT_LENGTH")
    if not length or environ.get("wsgi.input_terminated"):
        return None
    try:
        size = int(length)
    except ValueError:
        return None
    body = environ["wsgi.input"].read(size) if size > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _long_poll(environ: dict, body: bytes | None) -> tuple[bytes, float] | None:
    """For an SQS ``ReceiveMessage`` that asks to wait: ``(the same request without waiting, seconds)``.

    Handles the JSON protocol (what boto3 sends) and the query protocol. A request that names no
    ``WaitTimeSeconds`` is passed through as it is (our queues' default wait is 0).
    """
    if not body:
        return None
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target == "AmazonSQS.ReceiveMessage":
        try:
            request = json.loads(body)
            wait = float(request.get("WaitTimeSeconds") or 0)
        except (ValueError, TypeError, AttributeError):
            return None
        return (json.dumps({**request, "WaitTimeSeconds": 0}).encode(), wait) if wait > 0 else None
    if target or b"Action=ReceiveMessage" not in body:
        return None
    form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    try:
        wait = float(dict(form).get("WaitTimeSeconds") or 0)
    except ValueError:
        return None
    if wait <= 0:
        return None
    short = [(k, "0" if k == "WaitTimeSeconds" else v) for k, v in form]
    return urlencode(short).encode(), wait


#: JSON-protocol services whose requests never put a message on a queue.
_QUEUE_NEUTRAL_TARGETS = ("DynamoDB_", "DynamoDBStreams_", "AWSCognitoIdentityProviderService.")


def _may_queue_messages(environ: dict) -> bool:
    return not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_QUEUE_NEUTRAL_TARGETS)


def _has_messages(body: bytes) -> bool:
    if body.lstrip().startswith(b"{"):
        try:
            return bool(json.loads(body).get("Messages"))
        except ValueError:
            return True
    return b"<Message>" in body


_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")
_POST_CREDENTIAL = re.compile(rb'name="x-amz-credential"\r\n\r\n[^/\r]+/\d{8}/([a-z0-9-]+)/', re.IGNORECASE)
#: How much of a form-encoded body is searched for a presigned POST's credential (form fields come before the file).
_POST_FIELDS_BYTES = 16 * 1024


def signed_region(environ: dict, body: bytes | None = None) -> str | None:
    """The region a request is signed for (its SigV4 credential scope), or None if it is not signed (pure)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    query = environ.get("QUERY_STRING", "")
    if "X-Amz-Credential=" in query:
        credential = dict(parse_qsl(query)).get("X-Amz-Credential", "")
        parts = credential.split("/")
        return parts[2] if len(parts) >= 5 else None
    if body:
        match = _POST_CREDENTIAL.search(body[:_POST_FIELDS_BYTES])
        if match:
            return match.group(1).decode()
    return None


def unavailable_response(environ: dict, region: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """AWS's 503 ``ServiceUnavailable`` in the protocol the request speaks (JSON for X-Amz-Target, else XML)."""
    message = f"Service unavailable in {region} (devstack.chaos region-down)"
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "ServiceUnavailable", "message": message}).encode()
        content_type = "application/x-amz-json-1.0"
    else:
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ServiceUnavailable</Code>"
                f"<Message>{message}</Message></Error>").encode()
        content_type = "application/xml"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    return "503 Service Unavailable", headers, body


class RegionGate:
    """WSGI middleware: 503 for requests signed for a region that ``flags`` says is down (see module docstring)."""

    def __init__(self, app: WSGIApp, flags: Any) -> None:
        self.app = app
        self.flags = flags

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        down = self.flags.down_regions()
        if down:
            body = None
            if not environ.get("HTTP_AUTHORIZATION") and "multipart/form-data" in environ.get("CONTENT_TYPE", ""):
                body = _buffer_body(environ)
            region = signed_region(environ, body)
            if region in down:
                status, headers, payload = unavailable_response(environ, region)
                start_response(status, headers)
                return [payload]
        return self.app(environ, start_response)


class DevstackControl:
    """WSGI middleware: ``/_devstack/*`` control routes of the embedded AWS (the Cognito replica stand-in)."""

    PREFIX = "/_devstack/"

    def __init__(self, app: WSGIApp, serialised: Serialised, flags: Any) -> None:
        self.app = app
        self.serialised = serialised
        self.flags = flags
        self.cognito = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(self.PREFIX):
            return self.app(environ, start_response)
        route = environ["PATH_INFO"][len(self.PREFIX):]
        if route == "cognito-replica" and environ["REQUEST_METHOD"] == "POST":
            self._configure_cognito(json.loads(_buffer_body(environ) or b"{}"))
        if route == "cognito-replica":
            body = json.dumps(self.cognito.status() if self.cognito else {"applied": 0, "backlog": 0}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    def _configure_cognito(self, config: dict) -> None:
        from devstack.cognito_replica import CognitoReplicaThread, CognitoReplicator, PoolRef

        if self.cognito is not None:
            self.cognito.stop()
        replicator = CognitoReplicator(
            primary=PoolRef(*config["primary"]), replicas=[PoolRef(*r) for r in config["replicas"]],
            lag_seconds=float(config.get("lag_seconds", 0.5)),
        )
        self.cognito = CognitoReplicaThread(replicator, self.serialised.lock, self.flags).start()


def moto_app() -> Any:
    """moto's server application (every service, dispatched by host/path/auth), serialised, with the
    local stand-ins of :mod:`devstack.moto_cognito` (Cognito calls moto lacks) installed."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from devstack import moto_cognito, moto_dynamodb

    from devstack.chaos import ChaosFlags

    moto_cognito.install()
    moto_dynamodb.install()
    serialised = Serialised(DomainDispatcherApplication(create_backend_app))
    flags = ChaosFlags.from_env()
    if flags is None:
        return serialised
    return DevstackControl(RegionGate(serialised, flags), serialised, flags)


def make_server(host: str, port: int) -> Any:
    """A threaded werkzeug server for :func:`moto_app` (port 0: a free one, see ``server_port``)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server as werkzeug_server

    return werkzeug_server(host, port, moto_app(), threaded=True, request_handler=MotoRequestHandler)


class EmbeddedAws:
    """The serialised moto server on a background thread (for test fixtures)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_server(host, port)
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmbeddedAws:
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.embedded_aws", description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs (SQS queue URLs) from it
    server = make_server(args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"embedded AWS (moto, serialised) on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
