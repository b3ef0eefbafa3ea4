"""Local stand-ins for cross-region replication: DynamoDB global tables, S3 CRR, Secrets Manager replicas.

moto stores global-table and S3-replication configuration but performs none of it (its DynamoDB
Streams do work), so ``make run`` runs this process beside the regions:

- **DynamoDB**: tails the stream of every global table in every region and applies each change to
  the other regions' copy of the table after ``lag_seconds``, last writer wins per item (by the
  stream record's creation time, ties broken by region name, as global tables do with their
  hidden timestamps), deletes included. Changes are applied in time order across regions; the
  replicator's own writes are recognised in the target's stream and not sent back. The tables are
  the template's ``AWS::DynamoDB::GlobalTable`` resources (``infra.cfn.global_table_names``). A change for a region that is down
  (``devstack.chaos region-down``) or while replication is paused waits in order and is applied
  once it can be: nothing is lost.
- **S3**: copies new or changed objects under the replicated prefixes of the media bucket's
  ``ReplicationConfiguration`` (:func:`replicated_prefixes`) between the regions' media buckets, both
  ways (newer ``LastModified`` wins), and replicates deletes where the rule does.
- **Secrets Manager**: gives every replica region the primary's cursor secret value once at start
  (Secrets Manager replica regions keep one value everywhere).
- **Cognito**: configures the replica stand-in inside the embedded AWS (:mod:`devstack.cognito_replica`).

``GET /status[?since=<epoch s>]`` on ``--port`` reports the replication lag (p50/p99 of
write-to-apply time, ms, over the changes applied since then), the backlog and ``read_through`` (every
change written before it has been read; with no backlog, applied); ``python -m devstack.chaos status`` and ``bench/failover.py`` read it. Dev-only.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.streams import StreamCursor

logger = logging.getLogger("devstack.replicator")

#: Until the media bucket declares a ``ReplicationConfiguration``, the key prefixes copied between regions:
#: renditions (what ``/media/*`` serves). Originals under ``uploads/`` stay in the region that granted the
#: upload (a copy would notify the other region's uploads queue and be processed there too).
FALLBACK_REPLICATED_PREFIXES = ("media/",)


# --------------------------------------------------------------------------- what replicates (template)


def _if_true(node: Any) -> Any:
    """``Fn::If [condition, a, b]`` as the replicating (primary) stack sees it: ``a``."""
    while isinstance(node, dict) and set(node) == {"Fn::If"}:
        node = node["Fn::If"][1]
    return node


def replicated_prefixes(template: Mapping[str, Any]) -> tuple[tuple[str, bool], ...]:
    """``(key prefix, deletes replicate)`` per enabled rule of the media bucket's ``ReplicationConfiguration``
    ("" = every key), else the fallback (deletes not replicated)."""
    bucket = template.get("Resources", {}).get("MediaBucket", {}).get("Properties", {})
    configuration = _if_true(bucket.get("ReplicationConfiguration")) or {}
    rules = configuration.get("Rules", []) if isinstance(configuration, dict) else []
    prefixes = []
    for rule in rules:
        if rule.get("Status", "Enabled") != "Enabled":
            continue
        prefix = rule.get("Prefix")
        if prefix is None:
            prefix = (rule.get("Filter") or {}).get("Prefix", "")
        deletes = (rule.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled"
        prefixes.append((prefix if isinstance(prefix, str) else "", deletes))
    return tuple(prefixes) or tuple((p, False) for p in FALLBACK_REPLICATED_PREFIXES)


# --------------------------------------------------------------------------- the DynamoDB core (pure)


def fingerprint(image: Mapping[str, Any] | None) -> str:
    return json.dumps(image, sort_keys=True, default=str)


@dataclass(frozen=True)
class Change:
    """One stream record of a global table: ``image`` None is a delete. ``ts`` is its creation time (epoch s)."""

    table: str
    region: str
    keys: Mapping[str, Any]
    image: Mapping[str, Any] | None
    ts: float

    @property
    def item(self) -> tuple[str, str]:
        return self.table, fingerprint(self.keys)

    @property
    def version(self) -> tuple[float, str]:
        return self.ts, self.region


def change_from_record(table: str, region: str, record: Mapping[str, Any]) -> Change:
    data = record["dynamodb"]
    created = data["ApproximateCreationDateTime"]
    ts = created.timestamp() if hasattr(created, "timestamp") else float(created)
    image = None if record["eventName"] == "REMOVE" else data.get("NewImage")
    return Change(table=table, region=region, keys=data["Keys"], image=image, ts=ts)


@dataclass
class Replication:
    """Decides which change goes where (no I/O). ``observe`` takes stream records as they are read,
    ``plan`` moves the changes older than the lag into per-region outboxes in time order, last writer
    wins; the I/O layer applies each outbox head and reports back with ``applied``."""

    regions: Sequence[str]
    lag_seconds: float = 0.5
    _buffer: list[Change] = field(default_factory=list)
    _latest: dict[tuple[str, str], tuple[tuple[float, str], str]] = field(default_factory=dict)
    _applied_at: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _queued: Counter = field(default_factory=Counter)
    _echoes: Counter = field(default_factory=Counter)
    outbox: dict[str, deque] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    #: When each of ``lags_ms`` was applied (epoch s), for lag figures over a window.
    applied_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outbox = {r: deque() for r in self.regions}

    def observe(self, change: Change) -> None:
        echo = (change.region, *change.item, fingerprint(change.image))
        if self._echoes[echo] > 0:  # our own write into that region, read back from its stream
            self._echoes[echo] -= 1
            if not self._echoes[echo]:
                del self._echoes[echo]
            return
        self._buffer.append(change)

    def plan(self, now: float) -> int:
        """Route the changes written at least ``lag_seconds`` ago; returns how many were routed."""
        cutoff = now - self.lag_seconds
        due = sorted((c for c in self._buffer if c.ts <= cutoff), key=lambda c: c.version)
        if not due:
            return 0
        self._buffer = [c for c in self._buffer if c.ts > cutoff]
        for change in due:
            latest = self._latest.get(change.item)
            if latest is not None and latest[0] > change.version:
                continue  # a later write of this item already won everywhere
            image = fingerprint(change.image)
            if latest is not None and latest[1] == image:
                self._latest[change.item] = (change.version, image)
                continue  # same content as the winner: nothing to carry over
            self._latest[change.item] = (change.version, image)
            targets = [r for r in self.regions if r != change.region]
            source = (change.region, *change.item)
            if self._queued[source] or self._applied_at.get(source, -math.inf) > change.ts:
                # An older replicated version was written into the source region after this local write,
                # or is still queued for it: put the winner back there too.
                targets.append(change.region)
            for target in targets:
                self.outbox[target].append(change)
                self._queued[(target, *change.item)] += 1
        return len(due)

    def expect_echo(self, target: str, change: Change) -> None:
        self._echoes[(target, *change.item, fingerprint(change.image))] += 1

    def cancel_echo(self, target: str, change: Change) -> None:
        key = (target, *change.item, fingerprint(change.image))
        self._echoes[key] -= 1
        if self._echoes[key] <= 0:
            del self._echoes[key]

    def applied(self, target: str, change: Change, now: float, echoed: bool = True) -> None:
        """``change`` was written into ``target``; ``echoed`` False: it left no stream record there (a
        delete of an absent item), so no echo is awaited: a later local write of the same content
        (such as that region deleting the item itself) must not be mistaken for it and dropped."""
        if not echoed:
            self.cancel_echo(target, change)
        self.outbox[target].popleft()
        key = (target, *change.item)
        self._applied_at[key] = now
        self.applied_times.append(now)
        self._queued[key] -= 1
        if self._queued[key] <= 0:
            del self._queued[key]
        self.lags_ms.append((now - change.ts) * 1000)

    @property
    def backlog(self) -> int:
        return len(self._buffer) + sum(len(q) for q in self.outbox.values())


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# --------------------------------------------------------------------------- I/O: streams, tables, buckets


class StreamReader:
    """Reads one table's stream in one region, every shard from the start, through a
    :class:`devstack.streams.StreamCursor` (a fresh iterator after the last sequence number read)."""

    def __init__(self, dynamodb: Any, streams: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.streams = streams
        self.table = table
        self.region = streams.meta.region_name
        self._cursor: StreamCursor | None = None
        self.idle_until = 0.0
        self.idle_for = 0.0

    @property
    def read_through(self) -> float:
        """Every change written before this (epoch s) has been read (0: none read yet)."""
        return self._cursor.read_through if self._cursor is not None else 0.0

    def read(self) -> list[Change]:
        if self._cursor is None:
            arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
            self._cursor = StreamCursor(self.streams, arn)
        return [change_from_record(self.table, self.region, r) for r in self._cursor.read_all()]


class TableWriter:
    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb

    def apply(self, change: Change) -> bool:
        """Write ``change``; returns whether it shows on the target's stream (a delete of an item
        that is not there writes no stream record, in DynamoDB as in moto: no echo will come)."""
        if change.image is None:
            old = self.dynamodb.delete_item(TableName=change.table, Key=dict(change.keys), ReturnValues="ALL_OLD")
            return bool(old.get("Attributes"))
        self.dynamodb.put_item(TableName=change.table, Item=dict(change.image))
        return True


class BucketCopier:
    """S3 replication, both ways, for keys under the replicated prefixes: the newer object wins; a key
    deleted on one side after both had it is deleted on the other where the rule replicates deletes."""

    def __init__(self, s3: Mapping[str, Any], buckets: Mapping[str, str],
                 prefixes: Sequence[tuple[str, bool]]) -> None:
        self.s3 = dict(s3)
        self.buckets = dict(buckets)
        self.prefixes = tuple((p, bool(d)) for p, d in prefixes)
        self.copied = 0
        self.deleted = 0
        self.backlog = 0
        self.lags_ms: list[float] = []
        self._in_both: set[str] = set()

    def _listing(self, region: str) -> dict[str, dict]:
        objects: dict[str, dict] = {}
        paginator = self.s3[region].get_paginator("list_objects_v2")
        for prefix, _ in self.prefixes:
            for page in paginator.paginate(Bucket=self.buckets[region], Prefix=prefix):
                for obj in page.get("Contents", []):
                    objects[obj["Key"]] = obj
        return objects

    def _deletes_replicate(self, key: str) -> bool:
        return any(key.startswith(prefix) and deletes for prefix, deletes in self.prefixes)

    def sync(self, down: frozenset[str], lag_seconds: float) -> int:
        regions = [r for r in self.buckets if r not in down]
        listings = {r: self._listing(r) for r in regions}
        now = time.time()
        copied = backlog = 0
        for source in regions:
            for target in regions:
                if target == source:
                    continue
                for key, obj in listings[source].items():
                    other = listings[target].get(key)
                    if other is None and key in self._in_both:
                        continue  # deleted there: handled below, never copied back
                    if other is not None and (other["ETag"] == obj["ETag"] or
                                              other["LastModified"] >= obj["LastModified"]):
                        continue
                    age = now - obj["LastModified"].timestamp()
                    if age < lag_seconds:
                        backlog += 1
                        continue
                    self.s3[target].copy_object(
                        Bucket=self.buckets[target], Key=key,
                        CopySource={"Bucket": self.buckets[source], "Key": key},
                    )
                    listings[target][key] = dict(obj)
                    self.lags_ms.append(age * 1000)
                    copied += 1
        if len(regions) == len(self.buckets):  # deletes only when every side can be seen
            for key in list(self._in_both):
                holders = [r for r in regions if key in listings[r]]
                if holders and len(holders) < len(regions) and self._deletes_replicate(key):
                    for region in holders:
                        self.s3[region].delete_object(Bucket=self.buckets[region], Key=key)
                        self.deleted += 1
                    holders = []
                if not holders:
                    self._in_both.discard(key)
            self._in_both |= set.intersection(*(set(listing) for listing in listings.values()))
        self.copied += copied
        self.backlog = backlog + sum(1 for r in self.buckets if r in down)
        return copied


def copy_secret(secrets: Mapping[str, tuple[Any, str]], primary: str) -> None:
    """Give every region's secret (``region -> (client, secret id)``) the primary's value (replica regions)."""
    client, secret_id = secrets[primary]
    value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    for region, (client, secret_id) in secrets.items():
        if region != primary and client.get_secret_value(SecretId=secret_id)["SecretString"] != value:
            client.put_secret_value(SecretId=secret_id, SecretString=value)


# --------------------------------------------------------------------------- the process


class Replicator:
    """Runs the stand-ins (see the module docstring) until stopped."""

    #: A stream that returned nothing is read again after this long, doubling up to ``MAX_IDLE_SECONDS``.
    MIN_IDLE_SECONDS = 0.1
    MAX_IDLE_SECONDS = 0.8
    S3_INTERVAL_SECONDS = 1.0

    def __init__(self, regions: Sequence[str], tables: Sequence[str], client: Callable[[str, str], Any], *,
                 lag_seconds: float, buckets: Mapping[str, str] | None = None, prefixes: Sequence[str] = (),
                 flags: Any = None) -> None:
        self.regions = list(regions)
        self.core = Replication(self.regions, lag_seconds)
        self.readers = [StreamReader(client("dynamodb", r), client("dynamodbstreams", r), t)
                        for r in self.regions for t in tables]
        self.writers = {r: TableWriter(client("dynamodb", r)) for r in self.regions}
        self.copier = BucketCopier({r: client("s3", r) for r in self.regions}, buckets, prefixes) if buckets else None
        self.flags = flags
        self.lag_seconds = lag_seconds
        self._lock = threading.Lock()
        self._next_s3 = 0.0
        self.errors = 0

    def _down(self) -> frozenset[str]:
        return self.flags.down_regions() if self.flags is not None else frozenset()

    def _paused(self) -> bool:
        return self.flags is not None and self.flags.replication_paused()

    def tick(self, now: float | None = None) -> None:
        """Read due streams, route what is older than the lag, apply every outbox that can be applied."""
        if self._paused():
            return
        down = self._down()
        clock = time.monotonic()
        with self._lock:
            for reader in self.readers:
                if reader.region in down or clock < reader.idle_until:
                    continue
                try:
                    changes = reader.read()
                except Exception:  # noqa: BLE001 - the region's endpoint failed: read again later
                    self.errors += 1
                    logger.warning("stream read failed: %s in %s", reader.table, reader.region, exc_info=True)
                    reader.idle_until = clock + self.MAX_IDLE_SECONDS
                    continue
                for change in changes:
                    self.core.observe(change)
                reader.idle_for = 0.0 if changes else min(max(reader.idle_for * 2, self.MIN_IDLE_SECONDS),
                                                          self.MAX_IDLE_SECONDS)
                reader.idle_until = clock + reader.idle_for
            self.core.plan(time.time() if now is None else now)
            for region, queue in self.core.outbox.items():
                if region in down:
                    continue
                while queue:
                    change = queue[0]
                    self.core.expect_echo(region, change)
                    try:
                        echoed = self.writers[region].apply(change)
                    except Exception:  # noqa: BLE001 - keep it at the head, in order, for the next tick
                        self.core.cancel_echo(region, change)
                        self.errors += 1
                        logger.warning("apply failed in %s", region, exc_info=True)
                        break
                    self.core.applied(region, change, time.time(), echoed=echoed)
        if self.copier is not None and clock >= self._next_s3:
            self._next_s3 = clock + self.S3_INTERVAL_SECONDS
            try:
                self.copier.sync(down, self.lag_seconds)
            except Exception:  # noqa: BLE001
                self.errors += 1
                logger.warning("bucket sync failed", exc_info=True)

    def status(self, since: float = 0.0) -> dict:
        """Lag percentiles over the changes applied since ``since`` (epoch s; 0: all), backlog, state.

        ``read_through`` (epoch s): every table change written before it in a region that is up has
        been read from its stream; with ``backlog`` 0 as well, every such change has been applied.
        """
        down = self._down()
        with self._lock:
            lags = [lag for lag, at in zip(self.core.lags_ms, self.core.applied_times) if at >= since]
            backlog_items = self.core.backlog
            read_through = min((r.read_through for r in self.readers if r.region not in down), default=0.0)
        objects = self.copier.backlog if self.copier else 0
        return {
            "paused": self._paused(), "down": sorted(self._down()), "lag_seconds": self.lag_seconds,
            "lag_ms": {"p50": round(percentile(lags, 50), 1), "p99": round(percentile(lags, 99), 1),
                       "count": len(lags)},
            "backlog": backlog_items + objects, "backlog_items": backlog_items, "backlog_objects": objects,
            "objects_copied": self.copier.copied if self.copier else 0, "errors": self.errors,
            "read_through": read_through,
        }

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(interval)


def _status_server(host: str, port: int, replicator: Replicator) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            path, _, query = self.path.partition("?")
            if path.rstrip("/") != "/status":
                self.send_error(404)
                return
            since = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("since", "0")
            try:
                body = json.dumps(replicator.status(float(since))).encode()
            except ValueError:
                self.send_error(400, "since must be a number (epoch seconds)")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def configure_cognito(endpoint: str, pools: Mapping[str, Sequence[str]], regions: Sequence[str],
                      lag_seconds: float) -> None:
    """Start the Cognito replica stand-in inside the embedded AWS (primary = first region)."""
    primary, *replicas = regions
    body = json.dumps({"primary": [primary, *pools[primary]], "replicas": [[r, *pools[r]] for r in replicas],
                       "lag_seconds": lag_seconds}).encode()
    request = urllib.request.Request(f"{endpoint}/_devstack/cognito-replica", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def make_client_factory(endpoint: str) -> Callable[[str, str], Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10,
                    s3={"addressing_style": "path"})

    def client(service: str, region: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=config)

    return client


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.replicator", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="the embedded AWS")
    parser.add_argument("--regions", required=True, help="comma list, primary first")
    parser.add_argument("--tables", required=True, help="JSON list of the global tables' names")
    parser.add_argument("--buckets", default="{}", help='JSON {"region": "media bucket"}')
    parser.add_argument("--prefixes", default=json.dumps([[p, False] for p in FALLBACK_REPLICATED_PREFIXES]),
                        help='JSON list of ["prefix", deletes replicate]')
    parser.add_argument("--pools", default="{}", help='JSON {"region": ["pool id", "app client id"]}')
    parser.add_argument("--secrets", default="{}", help='JSON {"region": "cursor secret ARN"}: the primary\'s value everywhere')
    parser.add_argument("--lag-seconds", type=float, default=0.5)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8120)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from devstack.chaos import ChaosFlags

    regions = [r for r in args.regions.split(",") if r]
    client = make_client_factory(args.endpoint)
    pools = json.loads(args.pools)
    if pools:
        configure_cognito(args.endpoint, pools, regions, args.lag_seconds)
    secrets = json.loads(args.secrets)
    if secrets:
        copy_secret({r: (client("secretsmanager", r), arn) for r, arn in secrets.items()}, regions[0])
    replicator = Replicator(regions, json.loads(args.tables), client, lag_seconds=args.lag_seconds,
                            buckets=json.loads(args.buckets), prefixes=json.loads(args.prefixes),
                            flags=ChaosFlags.from_env())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = _status_server(args.host, args.port, replicator)
    threading.Thread(target=server.serve_forever, name="replicator-status", daemon=True).start()
    print(f"replicator: {len(replicator.readers)} streams, lag {args.lag_seconds}s, status on "
          f"http://{args.host}:{args.port}/status", flush=True)
    replicator.run(stop)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
