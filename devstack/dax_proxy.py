"""The local DAX stand-in: a DynamoDB-protocol HTTP proxy with DAX's caching semantics.

Local stand-in, dev-only. DAX speaks its own TCP protocol, moto has no DAX data plane and no local
DAX emulator exists, so ``make run`` puts this proxy in front of the embedded AWS and gives the app
its address as ``DAX_ENDPOINT``. The app reaches it with the ordinary DynamoDB client (in AWS the
same seam, :mod:`chalicelib.dax`, uses the DAX client), so the staleness rules DAX imposes are met
for real on one machine. What it does, as DAX does
(docs: "DAX and DynamoDB consistency models"):

- **item cache** (GetItem, BatchGetItem): whole items by table and key, for the parameter group's
  ``record-ttl-millis``; projections are applied to the cached item. Writes that pass through the
  proxy (PutItem, UpdateItem, DeleteItem, BatchWriteItem) update it; writes that bypass it leave the
  cached item stale until its TTL.
- **query cache** (Query, Scan): whole responses by request, for ``query-ttl-millis``; **writes never
  invalidate it**, not even writes through the proxy.
- **negative caching**: an item not found (and an empty query result) is cached like a found one.
- ``ConsistentRead`` requests, transactions (TransactGetItems, TransactWriteItems) and everything
  else are passed through untouched and leave both caches as they are.
- both caches are LRU-bounded in entries.

The TTLs come from the ``AWS::DAX::ParameterGroup`` of ``infra/dax.yaml``, the template that makes the
real cluster. A control endpoint on a second port takes the cache tier away and brings it back
(:mod:`devstack.chaos`): *down* closes the data port (clients get "connection refused", as from a
cluster with no route) and drops both caches, as a restarted cluster would.

    python -m devstack.dax_proxy --upstream http://127.0.0.1:4566 --port 8111 --control-port 8112
"""
from __future__ import annotations

import argparse
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAX_TEMPLATE = ROOT / "infra" / "dax.yaml"
TARGET_PREFIX = "DynamoDB_20120810."

Forward = Callable[[str, dict], "tuple[int, dict]"]


def parameter_group_ttls(template_path: Path = DAX_TEMPLATE) -> tuple[float, float]:
    """``(record TTL, query TTL)`` in seconds from the template's ``AWS::DAX::ParameterGroup``."""
    from infra.cfn import load_template

    template = load_template(template_path)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::DAX::ParameterGroup":
            values = resource["Properties"]["ParameterNameValues"]
            return int(values["record-ttl-millis"]) / 1000, int(values["query-ttl-millis"]) / 1000
    raise ValueError(f"{template_path} has no AWS::DAX::ParameterGroup")


class _LRU:
    """Entries that expire ``ttl`` seconds after they were stored, the least recently used dropped first."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]) -> None:
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> tuple[bool, Any]:
        found = self._entries.get(key)
        if found is None:
            return False, None
        expires, value = found
        if self.clock() >= expires:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: Any, value: Any) -> None:
        self._entries[key] = (self.clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: Any) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def project(item: dict, request: dict) -> dict:
    """The top-level attributes of ``item`` a GetItem/BatchGetItem request asked for (all if none)."""
    if request.get("AttributesToGet"):
        wanted = set(request["AttributesToGet"])
    elif request.get("ProjectionExpression"):
        names = request.get("ExpressionAttributeNames", {})
        wanted = set()
        for path in request["ProjectionExpression"].split(","):
            top = path.strip().split(".")[0].split("[")[0]
            wanted.add(names.get(top, top))
    else:
        return item
    return {name: value for name, value in item.items() if name in wanted}


class DaxSemantics:
    """DAX's item cache, query cache and pass-through rules over ``forward`` (the real DynamoDB API).

    ``forward(operation, request)`` returns ``(HTTP status, response body)``; non-200 answers are
    returned to the caller unchanged and never cached. Thread-safe (one lock around the caches;
    requests upstream are sent outside it).
    """

    def __init__(self, forward: Forward, *, record_ttl: float, query_ttl: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.forward = forward
        self.items = _LRU(record_ttl, max_entries, clock)
        self.queries = _LRU(query_ttl, max_entries, clock)
        self._lock = threading.Lock()
        self._key_names: dict[str, list[str]] = {}
        self.upstream_reads = 0  # reads the caches could not serve (what DAX saves is the rest)

    def clear(self) -> None:
        with self._lock:
            self.items.clear()
            self.queries.clear()

    # -- the cache keys ------------------------------------------------------------------------------
    def _key_attributes(self, table: str) -> list[str]:
        names = self._key_names.get(table)
        if names is None:
            status, described = self.forward("DescribeTable", {"TableName": table})
            if status != 200:
                raise LookupError(f"cannot describe {table}: {described}")
            names = [k["AttributeName"] for k in described["Table"]["KeySchema"]]
            self._key_names[table] = names
        return names

    def _item_key(self, table: str, key_or_item: dict) -> tuple[str, str]:
        names = self._key_attributes(table)
        return table, _canonical({n: key_or_item[n] for n in names if n in key_or_item})

    # -- dispatch --------------------------------------------------------------------------------------
    def handle(self, operation: str, request: dict) -> tuple[int, dict]:
        consistent = request.get("ConsistentRead") or any(
            spec.get("ConsistentRead") for spec in request.get("RequestItems", {}).values()
            if operation == "BatchGetItem")
        handler = None if consistent else getattr(self, f"_{operation}", None)
        if handler is None:
            return self.forward(operation, request)
        return handler(request)

    def _GetItem(self, request: dict) -> tuple[int, dict]:
        key = self._item_key(request["TableName"], request["Key"])
        with self._lock:
            hit, item = self.items.get(key)
        if not hit:
            self.upstream_reads += 1
            status, answer = self.forward("GetItem", {"TableName": request["TableName"], "Key": request["Key"]})
            if status != 200:
                return status, answer
            item = answer.get("Item")
            with self._lock:
                self.items.put(key, item)  # None: a negative entry
        return 200, ({"Item": project(item, request)} if item is not None else {})

    def _BatchGetItem(self, request: dict) -> tuple[int, dict]:
        responses: dict[str, list] = {}
        missing: dict[str, dict] = {}
        for table, spec in request["RequestItems"].items():
            responses[table] = []
            for key in spec["Keys"]:
                with self._lock:
                    hit, item = self.items.get(self._item_key(table, key))
                if hit:
                    if item is not None:
                        responses[table].append(project(item, spec))
                else:
                    missing.setdefault(table, {"Keys": []})["Keys"].append(key)
        unprocessed: dict[str, dict] = {}
        if missing:
            self.upstream_reads += 1
            status, answer = self.forward("BatchGetItem", {"RequestItems": missing})
            if status != 200:
                return status, answer
            for table, spec in missing.items():
                found = {self._item_key(table, item): item for item in answer.get("Responses", {}).get(table, [])}
                left = {self._item_key(table, k) for k in answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])}
                for key in spec["Keys"]:
                    cache_key = self._item_key(table, key)
                    if cache_key in left:
                        unprocessed.setdefault(table, {**request["RequestItems"][table], "Keys": []})["Keys"].append(key)
                        continue
                    item = found.get(cache_key)
                    with self._lock:
                        self.items.put(cache_key, item)
                    if item is not None:
                        responses[table].append(project(item, request["RequestItems"][table]))
        return 200, {"Responses": responses, "UnprocessedKeys": unprocessed}

    def _cached_query(self, operation: str, request: dict) -> tuple[int, dict]:
        key = (operation, _canonical(request))
        with self._lock:
            hit, answer = self.queries.get(key)
        if hit:
            return 200, answer
        self.upstream_reads += 1
        status, answer = self.forward(operation, request)
        if status == 200:
            with self._lock:
                self.queries.put(key, answer)
        return status, answer

    def _Query(self, request: dict) -> tuple[int, dict]:
        return self._cached_query("Query", request)

    def _Scan(self, request: dict) -> tuple[int, dict]:
        return self._cached_query("Scan", request)

    # -- writes through the proxy update the item cache (never the query cache) --------------------
    def _PutItem(self, request: dict) -> tuple[int, dict]:
        status, answer = self.forward("PutItem", request)
        if status == 200:
            key = self._item_key(request["TableName"], request["Item"])
            with self._lock:
                self.items.put(key, request["Item"])
        return status, answer

    def _UpdateItem(self, request: dict) -> tuple[int, dict]:
        asked = request.get("ReturnValues", "NONE")
        key = self._item_key(request["TableName"], request["Key"])
        if asked not in ("NONE", "ALL_NEW"):  # the new image is not returned: forget the entry
            status, answer = self.forward("UpdateItem", request)
            if status == 200:
                with self._lock:
                    self.items.drop(key)
            return status, answer
        status, answer = self.forward("UpdateItem", {**request, "ReturnValues": "ALL_NEW"})
        if status == 200:
            with self._lock:
                self.items.put(key, answer.get("Attributes"))
            if asked == "NONE":
                answer = {k: v for k, v in answer.items() if k != "Attributes"}
        return status, answer

    def _DeleteItem(self, request: dict) -> tuple[int, dict]:
        status, answer = self.forward("DeleteItem", request)
        if status == 200:
            with self._lock:
                self.items.put(self._item_key(request["TableName"], request["Key"]), None)
        return status, answer

    def _BatchWriteItem(self, request: dict) -> tuple[int, dict]:
        status, answer = self.forward("BatchWriteItem", request)
        if status == 200:
            for table, writes in request["RequestItems"].items():
                for write in writes:
                    key_or_item = write.get("PutRequest", {}).get("Item") or write.get("DeleteRequest", {}).get("Key")
                    with self._lock:
                        self.items.drop(self._item_key(table, key_or_item))
        return status, answer


def http_forward(upstream: str, region: str = "us-east-1", timeout: float = 30.0) -> Forward:
    """Send DynamoDB JSON requests to ``upstream`` (the embedded AWS); returns ``(status, body)``."""

    def forward(operation: str, request: dict) -> tuple[int, dict]:
        message = urllib.request.Request(upstream, data=json.dumps(request).encode(), method="POST", headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": TARGET_PREFIX + operation,
            # moto reads the region from the credential scope; it does not check the signature
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/dynamodb/aws4_request, "
                             "SignedHeaders=host, Signature=0",
        })
        try:
            with urllib.request.urlopen(message, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    return forward


class StandIn:
    """The proxy's servers: DynamoDB protocol on ``port``, the chaos control on ``control_port``."""

    def __init__(self, semantics: DaxSemantics, host: str, port: int, control_port: int) -> None:
        self.semantics, self.host, self.port, self.control_port = semantics, host, port, control_port
        self._data: ThreadingHTTPServer | None = None
        self._control = ThreadingHTTPServer((host, control_port), self._control_handler())
        self._control.daemon_threads = True
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        return self._data is not None

    def start(self) -> StandIn:
        self.cache_up()
        threading.Thread(target=self._control.serve_forever, name="dax-control", daemon=True).start()
        return self

    def cache_up(self) -> None:
        with self._lock:
            if self._data is None:
                self._data = ThreadingHTTPServer((self.host, self.port), self._data_handler())
                self._data.daemon_threads = True
                threading.Thread(target=self._data.serve_forever, name="dax-data", daemon=True).start()

    def cache_down(self) -> None:
        with self._lock:
            if self._data is not None:
                self._data.shutdown()
                self._data.server_close()
                self._data = None
            self.semantics.clear()  # a cluster that comes back starts cold

    def stop(self) -> None:
        self.cache_down()
        self._control.shutdown()
        self._control.server_close()

    def _data_handler(self) -> type[BaseHTTPRequestHandler]:
        semantics = self.semantics

        class Handler(BaseHTTPRequestHandler):
            # One request per connection: after cache-down no kept-alive connection still answers.
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                if not target.startswith(TARGET_PREFIX):
                    self._answer(400, {"__type": "com.amazon.coral.service#UnknownOperationException",
                                       "message": f"not a DynamoDB request: {target!r}"})
                    return
                try:
                    status, answer = semantics.handle(target[len(TARGET_PREFIX):], json.loads(body or b"{}"))
                except Exception as exc:  # a bug here must reach the client as DAX's 500, not a hang
                    status, answer = 500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                                           "message": f"DAX stand-in: {exc!r}"}
                self._answer(status, answer)

            def _answer(self, status: int, answer: dict) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "dax-standin")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def _control_handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                if self.path == "/cache-down":
                    stand_in.cache_down()
                elif self.path == "/cache-up":
                    stand_in.cache_up()
                elif self.path != "/status":
                    self.send_error(404)
                    return
                self._status()

            def do_GET(self) -> None:  # noqa: N802
                self._status()

            def _status(self) -> None:
                payload = json.dumps({
                    "up": stand_in.up, "endpoint": f"http://{stand_in.host}:{stand_in.port}",
                    "items": len(stand_in.semantics.items), "queries": len(stand_in.semantics.queries),
                    "upstream_reads": stand_in.semantics.upstream_reads,
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.dax_proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, help="the embedded AWS, e.g. http://127.0.0.1:4566")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8111)
    parser.add_argument("--control-port", type=int, default=8112)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--control-file", type=Path, help="where to record the control URL for devstack.chaos")
    args = parser.parse_args(argv)
    record_ttl, query_ttl = parameter_group_ttls()
    semantics = DaxSemantics(http_forward(args.upstream, args.region), record_ttl=record_ttl, query_ttl=query_ttl)
    stand_in = StandIn(semantics, args.host, args.port, args.control_port).start()
    if args.control_file:
        args.control_file.parent.mkdir(parents=True, exist_ok=True)
        args.control_file.write_text(json.dumps({"control": f"http://{args.host}:{args.control_port}",
                                                 "endpoint": f"http://{args.host}:{args.port}"}))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"DAX stand-in on http://{args.host}:{args.port} (record TTL {record_ttl:g}s, query TTL {query_ttl:g}s), "
          f"control on http://{args.host}:{args.control_port}", flush=True)
    stop.wait()
    stand_in.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
