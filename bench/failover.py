"""Benchmark and drill: take the primary region down under steady traffic, keep going, bring it back (issue 10).

Run: ``.venv/bin/python bench/failover.py [--users-per-region 3] [--rounds-down 4] [--json artifacts/failover.json]``

It starts a two-region local stack (``devstack.stack.LocalStack``: one embedded AWS, per region its
API, event pump and DAX stand-in, the replicator and the edge) and runs the same scenario twice,
side by side: a **baseline** with no failure, then the **drill**, in which ``us-east-1`` goes down
(``devstack.chaos region-down``: its API drops requests and fails its health check, its pump stops,
the embedded AWS refuses requests signed for it) after the warm-up rounds and comes back before the
last round. The scenario: users near each region (``X-Photoscale-Client-Region``) sign up and log
in, upload a photo each, then every round each user signs in again, reads the feed and the profile,
likes a photo and follows someone; an upload is made in each phase. A write that fails is retried in
the next round, as a client would. After recovery it waits until the replicator has caught up,
asks the primary for a counter reconciliation (``reconcile_counters`` on its fan-out queue) and checks
every acknowledged write in **both** regions' tables.

What it prints (drill against baseline): failover time (the first failed request after the region
went down to the first success served by the other region for a client near the failed one),
requests that failed during the switch, requests whose region header was not the surviving region
after the switch, p50 request latency, the replication lag p50/p99 (replicator status), and the
acknowledged writes missing after recovery in either region (goal: 0).

``tests/integration/test_failover_drill.py`` runs :class:`Drill` on its own stack and asserts on the
:class:`DrillResult`; this script only measures. Figures are the local stack's (moto on one core,
chalice local): the shape of a failover, not AWS's timings (Route 53 health checks take ~30-60 s).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devstack.edge_server import CLIENT_REGION_HEADER  # noqa: E402

REGION_HEADER = "X-Photoscale-Region"
PASSWORD = "Passw0rdOK"
PRIMARY, SECONDARY = "us-east-1", "eu-west-1"
#: Quotas opened up for the drill's own users (every local client shares 127.0.0.1).
OPEN_QUOTAS = {"QUOTA_SIGNUPS": "100000/3600", "QUOTA_FAILED_LOGINS": "100000/900", "QUOTA_FOLLOWS": "100000/3600",
               "QUOTA_LIKES": "100000/3600", "QUOTA_UPLOAD_GRANTS": "100000/3600"}


def tiny_jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


@dataclass
class Call:
    started: float
    ended: float
    client_region: str
    method: str
    route: str
    status: int  # 0: no HTTP answer at all
    region: str | None
    phase: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500


@dataclass
class User:
    name: str
    near: str
    session: requests.Session
    access: str = ""
    refresh: str = ""
    photo: str | None = None


@dataclass
class DrillResult:
    down_at: float | None
    up_at: float | None
    calls: list[Call]
    acked_follows: set[tuple[str, str]]
    acked_likes: set[tuple[str, str]]
    photos: dict[str, str]  # photo id -> the region whose API granted its upload
    missing: dict[str, list[str]]  # region -> acknowledged writes absent there after recovery
    counts_wrong: dict[str, list[str]]  # region -> counters not equal to their edges after reconciliation
    stale_sessions: list[str]  # users signed in before the failure refused during it
    primary_writes_refused: list[int]  # status of identity writes (sign-up) while the primary was down
    replication: dict[str, Any]

    def during(self, phase: str) -> list[Call]:
        return [c for c in self.calls if c.phase == phase]

    @property
    def switch(self) -> tuple[float | None, float | None]:
        """(first failed request after the region went down, first success via the other region for a
        client near the failed one sent after the last failure of the outage), in epoch seconds.

        Safe requests are retried by the edge and succeed at once; the others fail until the edge's
        health check has seen the region down, so the switch ends after the last failure. With no
        failure at all, the switch starts when the region went down.
        """
        if self.down_at is None:
            return None, None
        down = self.during("down")
        failures = [c.started for c in down if c.failed]
        start = min(failures) if failures else self.down_at
        settled = max(failures) if failures else self.down_at
        successes = [c.ended for c in down
                     if c.ok and c.region == SECONDARY and c.client_region == PRIMARY and c.started >= settled]
        return start, (min(successes) if successes else None)

    @property
    def failover_seconds(self) -> float | None:
        start, end = self.switch
        return None if start is None or end is None else end - start

    @property
    def failed_during_switch(self) -> int:
        return sum(1 for c in self.calls if c.phase in ("down", "after") and c.failed)

    @property
    def served_elsewhere_after_switch(self) -> list[Call]:
        """Answers during the outage, after the switch, not served by the surviving region."""
        _, end = self.switch
        if end is None:
            return []
        return [c for c in self.during("down") if c.started >= end and c.status and c.region != SECONDARY]

    @property
    def missing_total(self) -> int:
        return sum(len(v) for v in self.missing.values())

    def latency_p50_ms(self) -> float:
        return statistics.median([(c.ended - c.started) * 1000 for c in self.calls if c.ok]) if self.calls else 0.0


class Drill:
    """The scenario against a running two-region ``LocalStack`` (see the module docstring)."""

    def __init__(self, stack: Any, *, users_per_region: int = 3, rounds_before: int = 2, rounds_down: int = 4,
                 rounds_after: int = 1, fail: bool = True, converge_timeout: float = 60.0) -> None:
        self.stack = stack
        self.users_per_region = users_per_region
        self.rounds = {"before": rounds_before, "down": rounds_down, "after": rounds_after}
        self.fail = fail
        self.converge_timeout = converge_timeout
        self.calls: list[Call] = []
        self.phase = "setup"
        self.users: list[User] = []
        self.acked_follows: set[tuple[str, str]] = set()
        self.acked_likes: set[tuple[str, str]] = set()
        self.photos: dict[str, str] = {}
        self.owners: dict[str, str] = {}
        self.pending: dict[str, list[tuple]] = {}
        self.image = tiny_jpeg()
        self.tick = 0
        self.started_at = time.time()

    # -- HTTP ----------------------------------------------------------------------------------------
    def call(self, user: User, method: str, route: str, path: str, *, auth: bool = True,
             body: Any = None) -> requests.Response | None:
        headers = {"Accept": "application/json", CLIENT_REGION_HEADER: user.near}
        if auth:
            headers["Authorization"] = f"Bearer {user.access}"
        started = time.time()
        try:
            response = user.session.request(method, f"{self.stack.site_url}/api{path}", json=body,
                                            headers=headers, timeout=30)
        except requests.RequestException:
            response = None
        self.calls.append(Call(started, time.time(), user.near, method, route,
                               response.status_code if response is not None else 0,
                               response.headers.get(REGION_HEADER) if response is not None else None, self.phase))
        return response

    def new_user(self, near: str) -> User:
        user = User(f"d_{uuid.uuid4().hex[:12]}", near, requests.Session())
        signed = self.call(user, "POST", "signup", "/auth/signup", auth=False, body={
            "username": user.name, "email": f"{user.name}@example.com", "password": PASSWORD})
        assert signed is not None and signed.status_code == 201, signed.text if signed is not None else signed
        deadline = time.monotonic() + 15
        # A user signed up in the primary reaches a replica pool within the replication lag.
        while not self.log_in(user):
            assert time.monotonic() < deadline, f"{user.name} could not log in near {near}"
            time.sleep(0.2)
        return user

    def log_in(self, user: User) -> bool:
        response = self.call(user, "POST", "login", "/auth/login", auth=False,
                             body={"username": user.name, "password": PASSWORD})
        if response is None or response.status_code != 200:
            return False
        tokens = response.json()
        user.access, user.refresh = tokens["access_token"], tokens["refresh_token"]
        return True

    def upload(self, user: User) -> str | None:
        created = self.call(user, "POST", "photo_create", "/photos",
                            body={"content_type": "image/jpeg", "size": len(self.image), "caption": "drill"})
        if created is None or created.status_code != 201:
            return None
        body = created.json()
        upload = body["upload"]
        try:
            stored = requests.post(upload["url"], data=upload["fields"],
                                   files={"file": ("drill.jpg", self.image, "image/jpeg")}, timeout=30)
        except requests.RequestException:
            return None
        if stored.status_code != 204:
            return None
        photo_id = body["photo"]["id"]
        self.photos[photo_id] = created.headers.get(REGION_HEADER) or "?"
        self.owners[photo_id] = user.name
        user.photo = photo_id
        return photo_id

    def wait_ready(self, photo_ids: list[str], timeout: float = 60.0) -> None:
        """Until each photo is ready, asked by a user near the region that granted its upload."""
        deadline = time.monotonic() + timeout
        waiting = set(photo_ids)
        while waiting and time.monotonic() < deadline:
            for photo_id in list(waiting):
                asker = next(u for u in self.users if u.near == self.photos.get(photo_id, u.near))
                response = self.call(asker, "GET", "photo", f"/photos/{photo_id}")
                if response is not None and response.status_code == 200 and response.json()["status"] == "ready":
                    waiting.discard(photo_id)
            time.sleep(0.2)
        assert not waiting, f"photos never became ready: {sorted(waiting)}"

    # -- traffic -------------------------------------------------------------------------------------
    def _write(self, user: User, kind: str, target: str) -> None:
        if kind == "follow":
            response = self.call(user, "PUT", "follow", f"/users/{target}/follow")
            acked = self.acked_follows
            edge = (user.name, target)
        else:
            response = self.call(user, "PUT", "like", f"/photos/{target}/like")
            acked = self.acked_likes
            edge = (user.name, target)
        if response is not None and 200 <= response.status_code < 300:
            acked.add(edge)
        else:
            self.pending.setdefault(user.name, []).append((kind, target))  # the client tries again later

    def round(self) -> None:
        self.tick += 1
        names = [u.name for u in self.users]
        photos = [u.photo for u in self.users if u.photo]
        for index, user in enumerate(self.users):
            retry = self.pending.pop(user.name, [])
            for kind, target in retry:
                self._write(user, kind, target)
            if index % 3 == self.tick % 3:
                self.log_in(user)  # a sign-in every few rounds per user
            self.call(user, "GET", "feed", "/feed")
            self.call(user, "GET", "me", "/me")
            followee = names[(index + self.tick) % len(names)]
            if followee != user.name:
                self._write(user, "follow", followee)
            if photos:
                self._write(user, "like", photos[(index + self.tick) % len(photos)])

    # -- the scenario --------------------------------------------------------------------------------
    def run(self) -> DrillResult:
        self.phase = "setup"
        for near in (PRIMARY, SECONDARY):
            self.users += [self.new_user(near) for _ in range(self.users_per_region)]
        first = [self.upload(self.users[0]), self.upload(self.users[self.users_per_region])]
        self.wait_ready([p for p in first if p])
        before_tokens = {u.name: (u.access, u.refresh) for u in self.users}
        down_at = up_at = None
        stale: list[str] = []
        refused: list[int] = []
        self.phase = "before"
        for _ in range(self.rounds["before"]):
            self.round()
        self.phase = "down"
        if self.fail:
            down_at = time.time()
            self.stack.chaos.set_region_down(PRIMARY, True)
        outage_photo = None
        for number in range(self.rounds["down"]):
            self.round()
            if number == 1:
                outage_photo = self.upload(self.users[1])  # a user near the failed region uploads meanwhile
                if self.fail:
                    stale = self._sessions_refused(before_tokens)
                    refused = [self._identity_write_status()]
        if self.fail:
            self.stack.chaos.set_region_down(PRIMARY, False)
            up_at = time.time()
            self._wait_for_edge(PRIMARY)
            # Replication catches up before traffic returns to the region: reads there go through its
            # DAX, which replicated writes bypass, so a read made before the catch-up stays stale (or
            # "not found") for the cache's record TTL (infra/dax.yaml), as it would in AWS.
            self._wait_for_backlog()
        self.phase = "after"
        for _ in range(self.rounds["after"]):
            self.round()
        for user in self.users:  # the last retries
            for kind, target in self.pending.pop(user.name, []):
                self._write(user, kind, target)
        self.phase = "recovery"
        if outage_photo:
            self.wait_ready([outage_photo])
        self.wait_replicated()
        self.reconcile()
        missing = self.missing_writes()
        counts = self.wrong_counts()
        return DrillResult(down_at, up_at, self.calls, set(self.acked_follows), set(self.acked_likes),
                           dict(self.photos), missing, counts, stale, refused, self.replication_status())

    def _sessions_refused(self, tokens: dict[str, tuple[str, str]]) -> list[str]:
        """Users whose pre-failure access token or refresh token no longer works (during the outage)."""
        refused = []
        for user in self.users:
            access, refresh = tokens[user.name]
            me = self.call(user, "GET", "me", "/me")
            renewed = self.call(user, "POST", "refresh", "/auth/refresh", auth=False, body={"refresh_token": refresh})
            if me is None or me.status_code != 200 or renewed is None or renewed.status_code != 200:
                refused.append(user.name)
        return refused

    def _identity_write_status(self) -> int:
        """A sign-up while the primary is down (an expected 503: phase ``probe``, not a failed request)."""
        probe = User(f"d_{uuid.uuid4().hex[:12]}", SECONDARY, requests.Session())
        phase, self.phase = self.phase, "probe"
        try:
            response = self.call(probe, "POST", "signup", "/auth/signup", auth=False, body={
                "username": probe.name, "email": f"{probe.name}@example.com", "password": PASSWORD})
        finally:
            self.phase = phase
        return response.status_code if response is not None else 0

    def _wait_for_backlog(self, timeout: float = 30.0) -> None:
        since = time.time()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._replicated_through(since):
            time.sleep(0.1)

    def _replicated_through(self, since: float) -> bool:
        """Every table change written before ``since`` has been read by the replicator and applied in
        every region (its backlog alone says nothing of changes still unread in the streams)."""
        status = self.replication_status()
        return status["backlog"] == 0 and status.get("read_through", math.inf) >= since

    def _wait_for_edge(self, region: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stack._site is None or self.stack._site.health.healthy().get(region):
                return
            time.sleep(0.1)
        raise AssertionError(f"the edge never saw {region} healthy again")

    # -- convergence and checks ----------------------------------------------------------------------
    def replication_status(self) -> dict[str, Any]:
        """The replicator's status, lag over this run's changes only."""
        if not self.stack.replicator_url:
            return {"lag_ms": {"p50": 0.0, "p99": 0.0, "count": 0}, "backlog": 0}
        url = f"{self.stack.replicator_url}/status?since={self.started_at}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def wait_replicated(self) -> None:
        """Until every acknowledged edge is in both regions and every change written so far has been
        replicated (bounded by ``converge_timeout``). The reconciliation that follows recounts each
        counter from its edges against its shards: a shard increment or a mirror edge still on its way
        would be "repaired" and then arrive, leaving the count off by one."""
        since = time.time()
        deadline = time.monotonic() + self.converge_timeout
        while time.monotonic() < deadline:
            if not any(self.missing_writes().values()) and self._replicated_through(since):
                return
            time.sleep(0.5)

    def _ddb(self, region: str):
        return boto3.client("dynamodb", endpoint_url=self.stack.aws_endpoint, region_name=region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def missing_writes(self) -> dict[str, list[str]]:
        from chalicelib import keys

        graph = self.stack.outputs["GraphTable"]
        photos = self.stack.outputs["PhotosTable"]
        missing: dict[str, list[str]] = {}
        for region in self.stack.regions:
            ddb = self._ddb(region)
            absent = []
            wanted = [(f"follow {a}->{b}", {"pk": {"S": keys.following_pk(a)}, "sk": {"S": b}})
                      for a, b in sorted(self.acked_follows)]
            wanted += [(f"like {u}->{p}", {"pk": {"S": keys.liked_pk(u)}, "sk": {"S": p}})
                       for u, p in sorted(self.acked_likes)]
            for what, key in wanted:
                if "Item" not in ddb.get_item(TableName=graph, Key=key, ConsistentRead=True):
                    absent.append(what)
            for photo_id in sorted(self.photos):
                if not self._photo_visible(region, photos, photo_id):
                    absent.append(f"photo {photo_id}")
                if not self._original_kept(region, photo_id):
                    absent.append(f"original {photo_id}")
            missing[region] = absent
        return missing

    def _original_kept(self, region: str, photo_id: str) -> bool:
        """The uploaded original is in this region's bucket (an edit processed here needs it)."""
        from chalicelib import keys

        s3 = boto3.client("s3", endpoint_url=self.stack.aws_endpoint, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        try:
            s3.head_object(Bucket=self.stack.regions[region].outputs["MediaBucket"],
                           Key=keys.upload_key(self.owners[photo_id], photo_id))
        except Exception:  # noqa: BLE001
            return False
        return True

    def _photo_visible(self, region: str, table: str, photo_id: str) -> bool:
        """The photo is ready in this region's table and its renditions are in this region's bucket.

        Read from the table itself (consistent read), not through the region's API: its reads go
        through that region's DAX, which replicated writes bypass (see ``_wait_for_backlog``).
        """
        item = self._ddb(region).get_item(TableName=table, Key={"photo_id": {"S": photo_id}},
                                          ConsistentRead=True).get("Item")
        if item is None or item.get("status", {}).get("S") != "ready":
            return False
        granted = self.stack.regions.get(self.photos.get(photo_id), self.stack.primary)
        view = _get_json(f"{granted.api_url}/photos/{photo_id}") or {}
        urls = [u for u in json.dumps(view).split('"') if u.startswith("/media/")]
        s3 = boto3.client("s3", endpoint_url=self.stack.aws_endpoint, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for url in urls:
            try:
                s3.head_object(Bucket=self.stack.regions[region].outputs["MediaBucket"], Key=url[1:].split("?")[0])
            except Exception:  # noqa: BLE001 - not (yet) in this region's bucket
                return False
        return bool(urls)

    def reconcile(self, timeout: float = 80.0) -> None:
        """Ask the primary for a full reconciliation and wait until every region's API shows counts that
        agree with the edges (bounded by the read caches: the counter cache's 10 s and DAX's 60 s record TTL)."""
        sqs = boto3.client("sqs", endpoint_url=self.stack.aws_endpoint, region_name=PRIMARY,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        sqs.send_message(QueueUrl=self.stack.regions[PRIMARY].outputs["FanoutQueueUrl"],
                         MessageBody=json.dumps({"type": "reconcile_counters", "full": True}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self.wrong_counts().values()):
            time.sleep(0.5)

    def wrong_counts(self) -> dict[str, list[str]]:
        """Per region: profile follower/following counts and photo like counts that differ from the edges."""
        from chalicelib import keys

        graph = self.stack.outputs["GraphTable"]
        wrong: dict[str, list[str]] = {}
        for region, runtime in self.stack.regions.items():
            ddb = self._ddb(region)
            problems = []
            for user in self.users:
                following = ddb.query(TableName=graph, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                                      ExpressionAttributeValues={":pk": {"S": keys.following_pk(user.name)}})["Count"]
                followers = sum(1 for other in self.users if other is not user and ddb.get_item(
                    TableName=graph, ConsistentRead=True,
                    Key={"pk": {"S": keys.following_pk(other.name)}, "sk": {"S": user.name}}).get("Item"))
                profile = _get_json(f"{runtime.api_url}/users/{user.name}")
                if profile is None or (profile["followers"], profile["following"]) != (followers, following):
                    problems.append(f"{user.name}: profile {profile and (profile['followers'], profile['following'])}"
                                    f" != edges {(followers, following)}")
            for photo_id in self.photos:
                likers = sum(1 for user in self.users if ddb.get_item(
                    TableName=graph, ConsistentRead=True,
                    Key={"pk": {"S": keys.liked_pk(user.name)}, "sk": {"S": photo_id}}).get("Item"))
                view = _get_json(f"{runtime.api_url}/photos/{photo_id}")
                if view is None or view["likes"] != likers:
                    problems.append(f"photo {photo_id}: likes {view and view['likes']} != edges {likers}")
            wrong[region] = problems
        return wrong


def _get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except OSError:
        return None


def drill_stack_config(log_dir: Path, **overrides: Any):
    from devstack.stack import StackConfig

    return StackConfig.ephemeral(regions=(PRIMARY, SECONDARY), log_dir=log_dir, extra_env=dict(OPEN_QUOTAS),
                                 replication_lag_seconds=0.3, health_interval_seconds=0.5, **overrides)


def summary(result: DrillResult) -> dict[str, Any]:
    lag = result.replication["lag_ms"]
    return {
        "failover_s": None if result.failover_seconds is None else round(result.failover_seconds, 2),
        "requests": len(result.calls),
        "failed_during_switch": result.failed_during_switch,
        "not_served_by_survivor": len(result.served_elsewhere_after_switch),
        "latency_p50_ms": round(result.latency_p50_ms(), 1),
        "replication_lag_p50_ms": lag["p50"], "replication_lag_p99_ms": lag["p99"],
        "acked_writes": len(result.acked_follows) + len(result.acked_likes) + len(result.photos),
        "acked_writes_missing": result.missing_total,
        "counts_wrong_after_reconciliation": sum(len(v) for v in result.counts_wrong.values()),
    }


def _ratio(drill: Any, base: Any) -> str:
    if not isinstance(drill, (int, float)) or not isinstance(base, (int, float)) or not base:
        return "-"
    return f"{drill / base:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/failover.py", description=__doc__.splitlines()[0])
    parser.add_argument("--users-per-region", type=int, default=3)
    parser.add_argument("--rounds-down", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from devstack.stack import LocalStack

    log_dir = Path(tempfile.mkdtemp(prefix="failover-stack-"))
    results = {}
    details = {}
    with LocalStack(drill_stack_config(log_dir)) as stack:
        for name, fail in (("baseline", False), ("drill", True)):
            drill = Drill(stack, users_per_region=args.users_per_region, rounds_down=args.rounds_down, fail=fail)
            result = drill.run()
            results[name] = summary(result)
            details[name] = {"missing": result.missing, "counts_wrong": result.counts_wrong,
                             "failed": [asdict(c) for c in result.calls if c.failed],
                             "not_served_by_survivor": [asdict(c) for c in result.served_elsewhere_after_switch]}
    base, run = results["baseline"], results["drill"]
    print(f"failover drill: {PRIMARY} down under steady traffic, then back (two regions, one machine; "
          f"stack logs {log_dir})")
    print(f"{'figure':<36}{'baseline':>12}{'drill':>12}{'drill/base':>12}")
    for key in base:
        print(f"{key:<36}{str(base[key]):>12}{str(run[key]):>12}{_ratio(run[key], base[key]):>12}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": results, "details": details}, indent=2))
    for name, detail in details.items():
        for what in ("missing", "counts_wrong"):
            problems = {region: items for region, items in detail[what].items() if items}
            if problems:
                print(f"{name}: {what}: {problems}")
    return 0 if run["acked_writes_missing"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
