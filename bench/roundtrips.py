"""Benchmark: AWS round trips per API request, cold and warm, through the real app in-process.

Run: ``.venv/bin/python bench/roundtrips.py [--json artifacts/roundtrips.json]``

What it answers (issue 9): how many AWS API round trips does one request to each common route cost
today? The issue quotes, counted at the botocore boundary: ``GET /users/{u}`` 3, ``GET /photos/{id}``
3 anonymous and 5 signed in, ``GET /feed`` 6, ``PUT like`` 6, ``PUT follow`` 7, ``PATCH /me`` 6,
50 in all over 11 common routes. The four remaining routes of those 11 have no figure of their own
in the issue (together 50 - 36 = 14); they print ``-``.

How:
- ``infra/stateful.yaml`` is provisioned into in-process moto (``mock_aws``) with
  ``devstack.provision``, exactly as ``tests/functional`` does, and the real Chalice app
  (``app.py``, stage ``local`` of ``.chalice/config.json``) is driven by ``chalice.test.Client``,
  authorizer included (in AWS it is its own Lambda function, invoked on every protected request).
- Counting is at the botocore boundary: a ``request-created`` handler (fired once per HTTP attempt,
  retries included) and a ``before-call`` handler (once per API call) are added to
  ``botocore.handlers.BUILTIN_HANDLERS`` before any session exists, the same hook moto uses, so
  every botocore client gets them: ``chalicelib.aws``'s boto3 clients, PynamoDB's own per-model
  clients and Powertools' clients alike. Presigning (S3 upload policies) is no round trip and is not
  counted, because no request is sent.
- Cognito's JWKS download is plain HTTPS (PyJWT's ``urllib``), not botocore: in-process moto does
  not serve it, so, as in ``tests/functional``, the key set is handed to the real ``PyJWKClient``
  and each download it asks for is counted in the ``http`` column (once per container: it is cached).
- ``cold``: the first request after a fresh container: every ``chalicelib`` module and ``app`` are
  dropped from ``sys.modules`` and imported again (module caches, cached clients, the celebrity
  registry, the cursor key, the JWKS client all start empty), then one request. In-process the
  API function and the authorizer share one interpreter, so a cold signed-in ``GET /photos/{id}``
  downloads the key set once here and twice in AWS (once per function).
- ``warm``: the next request on the same container. For read routes it is the identical request.
  For ``PUT like`` and ``PUT follow`` an identical repeat is a no-op (already liked/followed), so the
  warm figure uses an equivalent fresh target (another ready photo of the same author, another user);
  the identical repeat is reported as ``repeat``. ``PATCH /me`` repeats identically.

The world: author ``B`` with 3 ready photos (uploaded and processed by the real pipeline and fan-out
code), reader ``A`` following ``B`` (A's feed holds B's photos), two spare targets for the warm
writes. No list is long enough to need a next-page cursor.

Last line: ``warm round trips over 11 routes: X (issue baseline, quoted: 50)`` (the issue's figure,
quoted, not measured here). ``--json`` writes the per-route
figures (with the operations seen) for ``bench/planner.py``. Nothing here asserts; it exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import sys
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
STAGE = "local"  # the template's Stage parameter allows local|dev|prod; the Client reads this stage
PASSWORD = "Passw0rdOK"
TOTAL_BEFORE = 50

#: The issue's figures (round trips of a warm request), None where the issue gives no figure.
BEFORE: dict[str, int | None] = {
    "GET /users/{u}": 3,
    "GET /photos/{id} (anonymous)": 3,
    "GET /photos/{id} (signed in)": 5,
    "GET /users/{u}/photos": None,
    "GET /users/{u}/followers": None,
    "GET /users/{u}/following": None,
    "GET /feed": 6,
    "PUT /photos/{id}/like": 6,
    "PUT /users/{u}/follow": 7,
    "PATCH /me": 6,
    "GET /me": None,
}
ROUTES = tuple(BEFORE)
#: Each route's method and path template in ``app.py`` (to read its authorizer from the app's route table).
TEMPLATES: dict[str, tuple[str, str]] = {
    "GET /users/{u}": ("GET", "/users/{username}"),
    "GET /photos/{id} (anonymous)": ("GET", "/photos/{photo_id}"),
    "GET /photos/{id} (signed in)": ("GET", "/photos/{photo_id}"),
    "GET /users/{u}/photos": ("GET", "/users/{username}/photos"),
    "GET /users/{u}/followers": ("GET", "/users/{username}/followers"),
    "GET /users/{u}/following": ("GET", "/users/{username}/following"),
    "GET /feed": ("GET", "/feed"),
    "PUT /photos/{id}/like": ("PUT", "/photos/{photo_id}/like"),
    "PUT /users/{u}/follow": ("PUT", "/users/{username}/follow"),
    "PATCH /me": ("PATCH", "/me"),
    "GET /me": ("GET", "/me"),
    "POST /photos": ("POST", "/photos"),
}


# --- counting at the botocore boundary ----------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One AWS round trip: the service (botocore's hyphenated service id) and the operation."""

    service: str
    operation: str


@dataclass(frozen=True)
class Usage:
    """DynamoDB request units one API call consumed (on-demand: read / write request units)."""

    operation: str
    rru: float
    wru: float
    tables: tuple[str, ...] = ()  # the tables the call touched (physical names)
    cacheable_rru: float = 0.0  # eventually consistent item/query reads: what a read-through cache could serve


def item_size(item: dict | None) -> int:
    """DynamoDB's item size of a wire-format item: attribute names plus values (UTF-8 bytes)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def _value_size(value: dict) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.strip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    return 0


def _read_units(nbytes: int, consistent: bool) -> float:
    return max(1, -(-nbytes // 4096)) * (1.0 if consistent else 0.5)


def _write_units(nbytes: int) -> float:
    return float(max(1, -(-nbytes // 1024)))


def dynamodb_units(operation: str, params: dict, parsed: dict, gsi_counts: dict[str, int]) -> tuple[float, float]:
    """(RRU, WRU) of one DynamoDB call, from its parameters and its response (on-demand rules).

    Reads: 4 KB units, halved unless ``ConsistentRead``; a missing item still costs one unit; a
    Query sums the sizes of the items it returns before rounding (items a filter drops are not seen
    here: a lower bound). Writes: 1 KB units (an update's item size is not on the wire: 1 unit, our
    items are small), plus one unit per GSI of the table (every index of ours projects ALL).
    Transactions cost double per item (ConditionCheck included).
    """
    table = params.get("TableName", "")
    if operation == "GetItem":
        return _read_units(item_size(parsed.get("Item")), bool(params.get("ConsistentRead"))), 0.0
    if operation == "BatchGetItem":
        rru = 0.0
        for name, request in params.get("RequestItems", {}).items():
            found = parsed.get("Responses", {}).get(name, [])
            consistent = bool(request.get("ConsistentRead"))
            rru += sum(_read_units(item_size(i), consistent) for i in found)
            rru += (len(request.get("Keys", [])) - len(found)) * _read_units(0, consistent)
        return rru, 0.0
    if operation in ("Query", "Scan"):
        nbytes = sum(item_size(i) for i in parsed.get("Items", []))
        return _read_units(nbytes, bool(params.get("ConsistentRead"))), 0.0
    if operation == "TransactGetItems":
        return sum(2 * _read_units(item_size(r.get("Item")), True) for r in parsed.get("Responses", [])), 0.0
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 0.0, _write_units(item_size(params.get("Item"))) * (1 + gsi_counts.get(table, 0))
    if operation == "BatchWriteItem":
        wru = 0.0
        for name, writes in params.get("RequestItems", {}).items():
            for write in writes:
                item = write.get("PutRequest", {}).get("Item")
                wru += _write_units(item_size(item)) * (1 + gsi_counts.get(name, 0))
        return 0.0, wru
    if operation == "TransactWriteItems":
        wru = 0.0
        for action in params.get("TransactItems", []):
            (kind, body), = action.items()
            wru += 2 * _write_units(item_size(body.get("Item"))) * (1 + (0 if kind == "ConditionCheck" else
                                                                       gsi_counts.get(body.get("TableName", ""), 0)))
        return 0.0, wru
    return 0.0, 0.0


def tables_of(params: dict) -> tuple[str, ...]:
    """The tables a DynamoDB call names (single-table, batch and transactional calls)."""
    if "TableName" in params:
        return (params["TableName"],)
    if "RequestItems" in params:
        return tuple(sorted(params["RequestItems"]))
    names = {body.get("TableName") for action in params.get("TransactItems", []) for body in action.values()}
    return tuple(sorted(n for n in names if n))


def cacheable_reads(operation: str, params: dict, rru: float) -> float:
    """The read units of an eventually consistent GetItem/BatchGetItem/Query (a DAX item/query cache
    serves those; consistent and transactional reads always pass through)."""
    if operation in ("GetItem", "Query", "Scan"):
        return 0.0 if params.get("ConsistentRead") else rru
    if operation == "BatchGetItem":
        requests = params.get("RequestItems", {}).values()
        return 0.0 if any(r.get("ConsistentRead") for r in requests) else rru
    return 0.0


def gsi_counts_of(template: dict, stage: str) -> dict[str, int]:
    """Physical table name -> number of global secondary indexes, from the stateful template."""
    counts = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        name = resource["Properties"]["TableName"]
        name = name["Fn::Sub"] if isinstance(name, dict) else name
        counts[name.replace("${Stage}", stage)] = len(resource["Properties"].get("GlobalSecondaryIndexes", []))
    return counts


class RoundTripCounter:
    """Counts the AWS requests every botocore client sends while :meth:`counting` is active.

    :meth:`install` adds two handlers to ``botocore.handlers.BUILTIN_HANDLERS``, which every botocore
    session registers when it is created; sessions that already exist are not reached, so install
    before any client is built (or :meth:`attach` a client explicitly).
    """

    def __init__(self, gsi_counts: dict[str, int] | None = None) -> None:
        self.requests: list[Call] = []  # one per HTTP attempt (retries included)
        self.api_calls: list[Call] = []  # one per API call
        self.usage: list[Usage] = []  # DynamoDB request units per API call (see dynamodb_units)
        self.gsi_counts = gsi_counts or {}
        self.active = False
        self._specs = (("request-created", self._on_request), ("before-call", self._on_call),
                       ("before-parameter-build", self._on_params), ("after-call", self._on_response))

    @staticmethod
    def _call_of(event_name: str) -> Call:
        # request-created.<service-id>.<Operation> / before-call.<service-id>.<Operation>
        _, service, operation = event_name.split(".", 2)
        return Call(service, operation)

    def _on_request(self, event_name: str, **_: Any) -> None:
        if self.active:
            self.requests.append(self._call_of(event_name))

    def _on_call(self, event_name: str, **_: Any) -> None:
        if self.active:
            self.api_calls.append(self._call_of(event_name))

    def _on_params(self, params: dict, context: dict, **_: Any) -> None:
        context["roundtrips_params"] = params

    def _on_response(self, event_name: str, parsed: dict, context: dict, **_: Any) -> None:
        call = self._call_of(event_name)
        if self.active and call.service == "dynamodb":
            params = context.get("roundtrips_params") or {}
            rru, wru = dynamodb_units(call.operation, params, parsed or {}, self.gsi_counts)
            cacheable = cacheable_reads(call.operation, params, rru)
            self.usage.append(Usage(call.operation, rru, wru, tables_of(params), cacheable))

    def install(self) -> None:
        from botocore import handlers

        for spec in self._specs:
            if spec not in handlers.BUILTIN_HANDLERS:
                handlers.BUILTIN_HANDLERS.append(spec)

    def uninstall(self) -> None:
        from botocore import handlers

        for spec in self._specs:
            if spec in handlers.BUILTIN_HANDLERS:
                handlers.BUILTIN_HANDLERS.remove(spec)

    def attach(self, client: Any) -> Any:
        """Count a client created before :meth:`install` (returns it)."""
        for event, handler in self._specs:
            client.meta.events.register(event, handler)
        return client

    @contextmanager
    def counting(self) -> Iterator[list[Call]]:
        """Count the requests sent inside the block; yields the list they are appended to."""
        self.requests, self.api_calls, self.usage = [], [], []
        self.active = True
        try:
            yield self.requests
        finally:
            self.active = False


@dataclass
class Measure:
    """Round trips of one request: AWS requests (DynamoDB and other) and non-botocore HTTP downloads."""

    status: int
    calls: list[Call]
    http: int = 0
    usage: list[Usage] = field(default_factory=list)
    authorizer: bool | None = None  # for an upload step measured as a request: does its route have one

    @property
    def rru(self) -> float:
        return sum(u.rru for u in self.usage)

    @property
    def wru(self) -> float:
        return sum(u.wru for u in self.usage)

    @property
    def dynamodb(self) -> int:
        return sum(1 for c in self.calls if c.service == "dynamodb")

    @property
    def other(self) -> int:
        return len(self.calls) - self.dynamodb

    @property
    def total(self) -> int:
        return len(self.calls) + self.http

    def operations(self) -> dict[str, int]:
        return dict(Counter(f"{c.service}.{c.operation}" for c in self.calls))

    def per_table(self) -> dict[str, dict[str, float]]:
        """RRU/WRU per table (a call naming several tables is split evenly between them)."""
        out: dict[str, dict[str, float]] = {}
        for u in self.usage:
            for table in u.tables or ("?",):
                row = out.setdefault(table, {"rru": 0.0, "wru": 0.0, "calls": 0.0})
                row["rru"] += u.rru / max(len(u.tables), 1)
                row["wru"] += u.wru / max(len(u.tables), 1)
                row["calls"] += 1 / max(len(u.tables), 1)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "dynamodb": self.dynamodb, "other_aws": self.other, "http": self.http,
                "total": self.total, "operations": self.operations(), "rru": self.rru, "wru": self.wru,
                "cacheable_rru": sum(u.cacheable_rru for u in self.usage), "tables": self.per_table(),
                **({} if self.authorizer is None else {"authorizer": self.authorizer})}


@dataclass
class RouteResult:
    route: str
    cold: Measure
    warm: Measure
    repeat: Measure | None = None
    before: int | None = None
    authorizer: bool = False  # API Gateway invokes the bearer_auth function before the handler

    def to_json(self) -> dict[str, Any]:
        out = {"route": self.route, "before": self.before, "authorizer": self.authorizer,
               "cold": self.cold.to_json(), "warm": self.warm.to_json()}
        if self.repeat is not None:
            out["repeat"] = self.repeat.to_json()
        return out


# --- the stage, in-process ----------------------------------------------------------------------

def stage_environment(outputs: dict[str, str]) -> dict[str, str]:
    """The API function's environment: every stack output as its env var, plus the plain settings."""
    from infra.cfn import output_env_name

    env = {output_env_name(name): value for name, value in outputs.items()}
    env.update({
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "PHOTOSCALE_STAGE": STAGE,
        "AUTO_CONFIRM_SIGNUP": "true", "POWERTOOLS_SERVICE_NAME": "photoscale",
        "POWERTOOLS_METRICS_NAMESPACE": "Photoscale", "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",  # no EMF lines on stdout (metrics cost no round trip)
        "UPLOADS_QUEUE_NAME": outputs["UploadsQueueName"], "EDITS_QUEUE_NAME": outputs["EditsQueueName"],
        "FANOUT_QUEUE_NAME": outputs["FanoutQueueName"],
    })
    return env


def fake_credentials() -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "PHOTOSCALE_AWS_ENDPOINT", "AWS_ENDPOINT_URL",
                 "ACTIVE_REGIONS", "COUNTER_DEFAULT_SHARDS"):
        os.environ.pop(name, None)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        os.environ[name] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = REGION


class Container:
    """A fresh "Lambda container": ``app`` and every ``chalicelib`` module imported anew."""

    def __init__(self, jwks: dict) -> None:
        for name in [n for n in sys.modules if n == "app" or n == "chalicelib" or n.startswith("chalicelib.")]:
            del sys.modules[name]
        self.jwks_downloads = 0
        self.last_body: bytes = b""
        self.app_module = importlib.import_module("app")
        self.tokens = importlib.import_module("chalicelib.tokens")
        real_jwks_client = self.tokens._jwks_client

        def jwks_client(url: str):  # the real PyJWKClient; only its download is served from moto's key set
            client = real_jwks_client(url)

            def fetch_data() -> dict:
                self.jwks_downloads += 1
                return jwks

            client.fetch_data = fetch_data
            return client

        self.tokens._jwks_client = jwks_client
        from chalice.test import Client

        self._client_cm = Client(self.app_module.app, stage_name=STAGE, project_dir=str(ROOT))
        self.client = self._client_cm.__enter__()

    def close(self) -> None:
        self._client_cm.__exit__(None, None, None)

    def has_authorizer(self, route: str) -> bool:
        method, template = TEMPLATES[route]
        return self.app_module.app.routes[template][method].authorizer is not None

    def module(self, name: str):
        return importlib.import_module(name)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = b"" if body is None else json.dumps(body).encode()
        return self.client.http.request(method, path, headers=headers, body=data)

    def measure(self, counter: RoundTripCounter, method: str, path: str, body: Any = None,
                token: str | None = None) -> Measure:
        downloads = self.jwks_downloads
        with counter.counting() as calls:
            response = self.call(method, path, body, token)
        self.last_body = response.body
        return Measure(status=response.status_code, calls=list(calls), http=self.jwks_downloads - downloads,
                       usage=list(counter.usage))


# --- the world the routes read ------------------------------------------------------------------

@dataclass
class World:
    reader: str
    reader_token: str
    author: str
    author_token: str
    photos: list[str] = field(default_factory=list)
    spare_users: list[str] = field(default_factory=list)
    upload: dict[str, Measure] = field(default_factory=dict)  # the last (warm) upload's server-side steps


def _ok(response, expected: int = 200) -> dict:
    if response.status_code != expected:
        raise RuntimeError(f"setup request failed: {response.status_code} {response.body!r}")
    return json.loads(response.body) if response.body else {}


def member(container: Container, name: str) -> tuple[str, str]:
    _ok(container.call("POST", "/auth/signup", {"username": name, "email": f"{name}@example.com",
                                                "password": PASSWORD}), 201)
    token = _ok(container.call("POST", "/auth/login", {"username": name, "password": PASSWORD}))["access_token"]
    return name, token


def jpeg_bytes(colour: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def ready_photo(container: Container, owner: str, token: str, counter: RoundTripCounter | None = None,
                measures: dict[str, Measure] | None = None) -> str:
    """Create, upload and process one photo with the real pipeline, then run its feed fan-out.

    With ``counter`` and ``measures``, the three server-side steps an upload costs are counted into
    ``measures``: ``POST /photos``, the worker's ``process_upload`` and the feed ``fan_out``.
    """
    counter = counter or RoundTripCounter()
    measures = {} if measures is None else measures
    data = jpeg_bytes()
    measures["POST /photos"] = container.measure(
        counter, "POST", "/photos", {"content_type": "image/jpeg", "size": len(data), "caption": "bench"}, token)
    if measures["POST /photos"].status != 201:
        raise RuntimeError("POST /photos failed")
    aws = container.module("chalicelib.aws")
    keys = container.module("chalicelib.keys")
    settings = container.module("chalicelib.settings").get_settings()
    photo_id = json.loads(container.last_body)["photo"]["id"]
    key = keys.upload_key(owner, photo_id)
    put = aws.client("s3").put_object(Bucket=settings.media_bucket, Key=key, Body=data, ContentType="image/jpeg")
    pipeline = container.module("chalicelib.pipeline")
    with counter.counting() as calls:
        pipeline.process_upload({"bucket": settings.media_bucket, "key": key, "etag": put["ETag"], "sequencer": ""})
    measures["process_upload"] = Measure(0, list(calls), usage=list(counter.usage))
    if container.module("chalicelib.photos").get_record(photo_id).status != "ready":
        raise RuntimeError(f"the pipeline did not make photo {photo_id} ready")
    sqs = aws.client("sqs")
    feed = container.module("chalicelib.feed")
    fan_out = Measure(0, [])
    while True:
        messages = sqs.receive_message(QueueUrl=settings.fanout_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            with counter.counting() as calls:
                # photo_ready, and the follow_backfill queued by the world's follow: the worker's dispatch
                feed._fanout_record(SimpleNamespace(body=message["Body"], raw_event=message))
            fan_out.calls += calls
            fan_out.usage += counter.usage
            sqs.delete_message(QueueUrl=settings.fanout_queue_url, ReceiptHandle=message["ReceiptHandle"])
    measures["fan_out"] = fan_out
    return photo_id


def build_world(container: Container, counter: RoundTripCounter | None = None) -> World:
    tag = uuid.uuid4().hex[:8]
    reader, reader_token = member(container, f"reader_{tag}")
    author, author_token = member(container, f"author_{tag}")
    spares = [member(container, f"spare{n}_{tag}")[0] for n in range(2)]
    _ok(container.call("PUT", f"/users/{author}/follow", token=reader_token), 204)
    world = World(reader, reader_token, author, author_token, spare_users=spares)
    world.photos = [ready_photo(container, author, author_token, counter, world.upload) for _ in range(3)]
    return world


# --- the routes -----------------------------------------------------------------------------------

Request = tuple[str, str, Any, str | None]  # method, path, body, token


def route_requests(route: str, world: World) -> tuple[Request, Request, Request | None]:
    """(cold request, warm request, identical repeat or None) for ``route``."""
    r, a = world.reader_token, world.author
    p0, p1, p2 = world.photos[:3]
    s0, s1 = world.spare_users[:2]
    table: dict[str, tuple[Request, Request, Request | None]] = {
        "GET /users/{u}": (("GET", f"/users/{a}", None, None),) * 2 + (None,),
        "GET /photos/{id} (anonymous)": (("GET", f"/photos/{p0}", None, None),) * 2 + (None,),
        "GET /photos/{id} (signed in)": (("GET", f"/photos/{p0}", None, r),) * 2 + (None,),
        "GET /users/{u}/photos": (("GET", f"/users/{a}/photos", None, None),) * 2 + (None,),
        "GET /users/{u}/followers": (("GET", f"/users/{a}/followers", None, None),) * 2 + (None,),
        "GET /users/{u}/following": (("GET", f"/users/{world.reader}/following", None, None),) * 2 + (None,),
        "GET /feed": (("GET", "/feed", None, r),) * 2 + (None,),
        "PUT /photos/{id}/like": (("PUT", f"/photos/{p1}/like", None, r), ("PUT", f"/photos/{p2}/like", None, r),
                                  ("PUT", f"/photos/{p2}/like", None, r)),
        "PUT /users/{u}/follow": (("PUT", f"/users/{s0}/follow", None, r), ("PUT", f"/users/{s1}/follow", None, r),
                                  ("PUT", f"/users/{s1}/follow", None, r)),
        "PATCH /me": (("PATCH", "/me", {"display_name": "Reader", "bio": "bench"}, r),) * 2 + (None,),
        "GET /me": (("GET", "/me", None, r),) * 2 + (None,),
    }
    return table[route]


def measure_route(route: str, world: World, counter: RoundTripCounter, jwks: dict) -> RouteResult:
    cold_request, warm_request, repeat_request = route_requests(route, world)
    container = Container(jwks)
    try:
        cold = container.measure(counter, *cold_request)
        warm = container.measure(counter, *warm_request)
        repeat = container.measure(counter, *repeat_request) if repeat_request else None
        authorizer = container.has_authorizer(route)
    finally:
        container.close()
    return RouteResult(route, cold, warm, repeat, BEFORE[route], authorizer)


@contextmanager
def local_stage() -> Iterator[tuple[dict, RoundTripCounter]]:
    """The template provisioned into in-process moto, the environment set, the counter installed."""
    fake_credentials()
    from infra.cfn import STATEFUL_TEMPLATE, load_template

    counter = RoundTripCounter(gsi_counts_of(load_template(STATEFUL_TEMPLATE), STAGE))
    counter.install()  # before moto's clients and the app's clients exist
    try:
        import boto3
        from moto import mock_aws
        from moto.utilities.utils import load_resource

        from devstack.provision import provision
        from infra.cfn import STATEFUL_TEMPLATE, load_template

        with mock_aws():
            cache: dict[str, Any] = {}

            def clients(service: str) -> Any:
                if service not in cache:
                    cache[service] = boto3.client(service, region_name=REGION)
                return cache[service]

            outputs = provision(load_template(STATEFUL_TEMPLATE), stage=STAGE, clients=clients)
            os.environ.update(stage_environment(outputs))
            yield load_resource("cognitoidp/resources/jwks-public.json"), counter
    finally:
        counter.uninstall()


def run(routes: tuple[str, ...] = ROUTES) -> tuple[list[RouteResult], dict[str, Measure]]:
    """Per-route results, and the server-side steps of one upload (author with one follower)."""
    with local_stage() as (jwks, counter):
        setup = Container(jwks)
        try:
            world = build_world(setup, counter)
            world.upload["POST /photos"].authorizer = setup.has_authorizer("POST /photos")
        finally:
            setup.close()
        return [measure_route(route, world, counter, jwks) for route in routes], world.upload


# --- report ---------------------------------------------------------------------------------------

def _fmt(value: int | None) -> str:
    return "-" if value is None else str(value)


def report(results: list[RouteResult], out: Callable[[str], None] = print) -> int:
    """Print the table; returns the warm total."""
    out(f"{'route':32} {'status':>6} | {'cold':>4} {'ddb':>3} {'oth':>3} {'http':>4} | "
        f"{'warm':>4} {'ddb':>3} {'oth':>3} {'http':>4} | {'quoted':>6} | {'RRU':>4} {'WRU':>4} | warm operations")
    for r in results:
        ops = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(r.warm.operations().items()))
        out(f"{r.route:32} {r.warm.status:>6} | {r.cold.total:>4} {r.cold.dynamodb:>3} {r.cold.other:>3} "
            f"{r.cold.http:>4} | {r.warm.total:>4} {r.warm.dynamodb:>3} {r.warm.other:>3} {r.warm.http:>4} | "
            f"{_fmt(r.before):>6} | {r.warm.rru:>4g} {r.warm.wru:>4g} | {ops}")
        if r.repeat is not None:
            out(f"{'  identical repeat':32} {r.repeat.status:>6} | {'':>4} {'':>3} {'':>3} {'':>4} | "
                f"{r.repeat.total:>4} {r.repeat.dynamodb:>3} {r.repeat.other:>3} {r.repeat.http:>4} |")
    cold_total = sum(r.cold.total for r in results)
    warm_total = sum(r.warm.total for r in results)
    out("ddb = DynamoDB requests, oth = other AWS requests (botocore), http = JWKS downloads (not botocore);")
    out("RRU/WRU = DynamoDB request units of the warm request (from the items on the wire, on-demand rules).")
    out(f"cold round trips over {len(results)} routes: {cold_total}")
    out("quoted = the issue's figure for the route before this work (quoted from the issue, not measured here).")
    out(f"warm round trips over {len(results)} routes: {warm_total} (issue baseline, quoted: {TOTAL_BEFORE})")
    return warm_total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the per-route figures here (read by bench/planner.py)")
    args = parser.parse_args(argv)
    # Metrics are disabled (no EMF on stdout); Powertools still warns once per request about it.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    results, upload = run()
    warm_total = report(results)
    for step, measure in upload.items():
        print(f"upload step {step:16} round trips {measure.total:>3} (ddb {measure.dynamodb}, other {measure.other}); "
              f"RRU {measure.rru:g}, WRU {measure.wru:g}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "benchmark": "roundtrips", "stage": STAGE, "routes": [r.to_json() for r in results],
            "warm_total": warm_total, "before_total": TOTAL_BEFORE,
            "upload": {step: m.to_json() for step, m in upload.items()}, "upload_followers": 1,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
