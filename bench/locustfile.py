"""The load scenario of ``bench/load.py``: locust users, the probe world and the direct baseline.

Importing this module imports locust, which patches the standard library with gevent: import it
first, in a process of its own (``bench/load.py`` is that process; the stack runs in another).
See ``bench/load.py`` for what is measured and how.
"""
from __future__ import annotations

import locust  # noqa: F401 (first: gevent's monkey patching)

import bisect
import contextlib
import copy
import io
import json
import os
import random
import time
import uuid
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
import gevent
from locust import HttpUser, User, constant, task
from locust.env import Environment

from loadmix import (DIRECT, POLL, READY, ROUTES, SIGN_UP, UPLOAD_POST, WEIGHTS, Zipf, error_category, loopback,
                     percentile, replayable)

PASSWORD = "Passw0rdOK"
REGION = "us-east-1"
READY_TIMEOUT = 60.0
POLL_INTERVAL = 0.25
TOUR_GRACE = 120.0



# --- the shared world -----------------------------------------------------------------------------

@dataclass
class RunConfig:
    site: str
    aws_endpoint: str
    api_env: dict[str, str]
    users: int = 8
    seconds: float = 60
    seed: int = 11
    zipf: float = 1.1
    creators: int = 4
    stack_pids: list[int] = field(default_factory=list)
    log_dir: Path | None = None


class World:
    """Who and what exists, in order of arrival (the Zipf rank); shared by every simulated member."""

    users: list[str] = []
    photos: list[str] = []
    zipf = Zipf(1.1)
    seed = 11
    aws_endpoint = ""
    probe: dict[str, list[tuple[str, str, dict]]] = {}

    @classmethod
    def reset(cls, config: RunConfig) -> None:
        cls.users, cls.photos, cls.zipf, cls.seed = [], [], Zipf(config.zipf), config.seed
        cls.aws_endpoint = config.aws_endpoint


class Samples:
    """Every request of the run: latencies per route and errors by category (from locust's events)."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, Counter] = defaultdict(Counter)
        self.examples: list[str] = []

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int,
                   exception: BaseException | None = None, response: Any = None, **_: Any) -> None:
        status = getattr(response, "status_code", None)
        category = error_category(status, exception)
        if category is None:
            self.latency[name].append(response_time)
            return
        self.errors[name][category] += 1
        if len(self.examples) < 10:
            body = getattr(response, "text", "") or ""
            self.examples.append(f"{name} -> {status} {category}: {exception or ''} {body[:200]}".strip())


# --- the simulated members ------------------------------------------------------------------------

class Member(HttpUser):
    """One member: signs up, logs in, tours every action once, then acts with :data:`WEIGHTS`."""

    wait_time = constant(0)
    weight = 1
    _count = 0
    toured = 0  # members that have done every action once

    def on_start(self) -> None:
        Member._count += 1
        self.rng = random.Random(f"{World.seed}/member/{Member._count}")
        self.username = f"load_{uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]}"
        self.token: str | None = None
        tour = list(WEIGHTS)
        self.rng.shuffle(tour)
        self.plan = tour
        self.names, self.cumulative = list(WEIGHTS), []
        for name in self.names:
            self.cumulative.append((self.cumulative[-1] if self.cumulative else 0) + WEIGHTS[name])
        response = self.client.post("/api/auth/signup", name=SIGN_UP, json={
            "username": self.username, "email": f"{self.username}@example.com", "password": PASSWORD})
        if response.status_code == 201:
            World.users.append(self.username)
            self.log_in()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def log_in(self) -> None:
        response = self.client.post("/api/auth/login", name="POST /auth/login",
                                    json={"username": self.username, "password": PASSWORD})
        if response.status_code == 200:
            self.token = response.json()["access_token"]

    def other_user(self) -> str | None:
        for _ in range(5):
            name = World.users[World.zipf.draw(self.rng, len(World.users))]
            if name != self.username:
                return name
        return None

    def photo(self) -> str:
        return World.photos[World.zipf.draw(self.rng, len(World.photos))]

    @task
    def act(self) -> None:
        if self.token is None:
            self.log_in()
            return
        touring = bool(self.plan)
        if touring:
            action = self.plan.pop()
        else:
            action = self.names[bisect.bisect_right(self.cumulative, self.rng.random() * self.cumulative[-1])]
        self.do(action)
        if touring and not self.plan:
            Member.toured += 1

    def do(self, action: str) -> None:
        get, auth = self.client.get, self.headers()
        if action == "GET /feed":
            get("/api/feed", name=action, headers=auth)
        elif action == "GET /photos/{id}":
            get(f"/api/photos/{self.photo()}", name=action, headers=auth)
        elif action == "PUT /photos/{id}/like":
            self.client.put(f"/api/photos/{self.photo()}/like", name=action, headers=auth)
        elif action in ("GET /users/{u}", "GET /users/{u}/photos", "GET /users/{u}/followers",
                        "GET /users/{u}/following", "PUT /users/{u}/follow"):
            target = self.other_user()
            if target is None:
                return
            suffix = action.removeprefix("GET /users/{u}").removeprefix("PUT /users/{u}")
            call = self.client.put if action.startswith("PUT") else get
            call(f"/api/users/{target}{suffix}", name=action, headers=auth)
        elif action == "GET /me":
            get("/api/me", name=action, headers=auth)
        elif action == "PATCH /me":
            self.client.patch("/api/me", name=action, headers=auth,
                              json={"display_name": f"Member {self.rng.randrange(1000)}", "bio": "load"})
        elif action == "POST /auth/login":
            self.log_in()
        elif action == "POST /photos":
            self.upload()

    def upload(self) -> None:
        started = time.perf_counter()
        photo_id = upload_photo(self.client, self.token, request_name=True)
        if photo_id is None:
            return
        status = wait_ready(self.client, self.token, photo_id)
        elapsed = (time.perf_counter() - started) * 1000
        exception = None if status == "ready" else RuntimeError(f"photo {photo_id} ended {status!r}")
        self.environment.events.request.fire(request_type="PIPELINE", name=READY, response_time=elapsed,
                                             response_length=0, exception=exception,
                                             response=_Status(200 if exception is None else 0))
        if exception is None:
            World.photos.append(photo_id)


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.text = ""


_JPEG: bytes | None = None


def small_jpeg() -> bytes:
    """A small real JPEG (320x240, a few KB), built once with Pillow."""
    global _JPEG
    if _JPEG is None:
        from PIL import Image

        out = io.BytesIO()
        Image.new("RGB", (320, 240), (40, 120, 200)).save(out, "JPEG", quality=85)
        _JPEG = out.getvalue()
    return _JPEG


def upload_photo(session: Any, token: str, request_name: bool = False) -> str | None:
    """``POST /photos`` then the presigned POST of :func:`small_jpeg`; the photo id, or None on failure."""
    data = small_jpeg()
    kwargs = {"name": "POST /photos"} if request_name else {}
    created = session.post("/api/photos", headers={"Authorization": f"Bearer {token}"},
                           json={"content_type": "image/jpeg", "size": len(data), "caption": "load"}, **kwargs)
    if created.status_code != 201:
        return None
    body = created.json()
    url = body["upload"]["url"]
    if not loopback(url):
        raise RuntimeError(f"refusing a non-loopback upload URL {url!r}")
    kwargs = {"name": UPLOAD_POST} if request_name else {}
    stored = session.post(url, data=body["upload"]["fields"],
                          files={"file": ("photo.jpg", data, "image/jpeg")}, **kwargs)
    return body["photo"]["id"] if stored.status_code == 204 else None


def wait_ready(session: Any, token: str, photo_id: str, name: str = POLL) -> str:
    """Poll the photo until it leaves ``pending`` (bounded); returns its last status."""
    deadline = time.monotonic() + READY_TIMEOUT
    status = "pending"
    while time.monotonic() < deadline:
        response = session.get(f"/api/photos/{photo_id}", headers={"Authorization": f"Bearer {token}"}, name=name)
        if response.status_code == 200:
            status = response.json()["status"]
            if status != "pending":
                return status
        gevent.sleep(POLL_INTERVAL)
    return status


class DirectAws(User):
    """The baseline: each route's recorded AWS calls replayed in order with plain boto3, one sample each."""

    fixed_count = 1
    wait_time = constant(0.05)

    def on_start(self) -> None:
        self.clients: dict[str, Any] = {}
        self.routes = sorted(World.probe)
        self.next = 0

    def client_for(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = aws_client(service, World.aws_endpoint)
        return self.clients[service]

    @task
    def replay(self) -> None:
        if not self.routes:
            return
        route = self.routes[self.next % len(self.routes)]
        self.next += 1
        started = time.perf_counter()
        exception = None
        try:
            replay_calls(World.probe[route], self.client_for)
        except Exception as exc:  # noqa: BLE001 (reported as the sample's error)
            exception = exc
        self.environment.events.request.fire(
            request_type="AWS", name=DIRECT + route, response_time=(time.perf_counter() - started) * 1000,
            response_length=0, exception=exception, response=_Status(200 if exception is None else 0))


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def replay_calls(calls: list[tuple[str, str, dict]], client_for: Any,
                 timings: dict[str, list[float]] | None = None) -> None:
    from botocore import xform_name

    for service, operation, params in calls:
        started = time.perf_counter()
        getattr(client_for(service), xform_name(operation))(**params)
        if timings is not None:
            timings[f"{service}.{operation}"].append((time.perf_counter() - started) * 1000)


# --- the probe: each route's AWS calls, recorded through the real app in-process ------------------

class CallRecorder:
    """Records (service, operation, parameters) of every botocore API call while :attr:`active`.

    Installed into ``botocore.handlers.BUILTIN_HANDLERS`` (as ``bench/roundtrips.py`` counts), so
    every botocore client created afterwards reports to it: boto3's, PynamoDB's and Powertools'.
    """

    def __init__(self) -> None:
        self.active = False
        self.calls: list[tuple[str, str, dict]] = []

    def _on_params(self, params: dict, context: dict, **_: Any) -> None:
        context["load_params"] = params

    def _on_call(self, model: Any, context: dict, **_: Any) -> None:
        # before-call: a request is about to be sent (presigning builds parameters and sends nothing).
        # boto3's service name (``cognito-idp``), not the event's hyphenated service id.
        if self.active:
            params = copy.deepcopy(context.get("load_params") or {})
            self.calls.append((model.service_model.service_name, model.name, params))

    def install(self) -> None:
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.append(("before-parameter-build", self._on_params))
        handlers.BUILTIN_HANDLERS.append(("before-call", self._on_call))

    @contextlib.contextmanager
    def recording(self):
        self.calls = []
        self.active = True
        try:
            yield self.calls
        finally:
            self.active = False


RECORDER = CallRecorder()
RECORDER.install()  # at import: before any botocore session exists in this process


def new_member(session: Any) -> tuple[str, str]:
    username = f"probe_{uuid.uuid4().hex[:12]}"
    signed_up = session.post("/api/auth/signup", json={
        "username": username, "email": f"{username}@example.com", "password": PASSWORD})
    if signed_up.status_code != 201:
        raise RuntimeError(f"seed sign-up failed: {signed_up.status_code} {signed_up.text[:200]}")
    logged_in = session.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    if logged_in.status_code != 200:
        raise RuntimeError(f"seed log-in failed: {logged_in.status_code} {logged_in.text[:200]}")
    return username, logged_in.json()["access_token"]


class SeedSession:
    """A requests session against the site with locust's ``name=`` keyword accepted (and ignored)."""

    def __init__(self, site: str) -> None:
        import requests

        self.site = site
        self.session = requests.Session()

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.site + path

    def get(self, path: str, name: str | None = None, **kwargs: Any):
        return self.session.get(self._url(path), timeout=30, **kwargs)

    def post(self, path: str, name: str | None = None, **kwargs: Any):
        return self.session.post(self._url(path), timeout=30, **kwargs)


def seed_world(config: RunConfig) -> dict[str, Any]:
    """Creators with one ready photo each (the first Zipf ranks) and the probe world; all over HTTP."""
    session = SeedSession(config.site)
    creators = [new_member(session) for _ in range(config.creators)]
    reader, author = new_member(session), new_member(session)
    spares = [new_member(session)[0] for _ in range(2)]
    follow = session.session.put(f"{config.site}/api/users/{author[0]}/follow",
                                 headers={"Authorization": f"Bearer {reader[1]}"}, timeout=30)
    if follow.status_code != 204:
        raise RuntimeError(f"seed follow failed: {follow.status_code} {follow.text[:200]}")
    uploads = [(name, token, upload_photo(session, token)) for name, token in creators + [author] * 3]
    ready = []
    for name, token, photo_id in uploads:
        if photo_id is None or wait_ready(session, token, photo_id) != "ready":
            raise RuntimeError(f"a seed photo of {name} did not become ready")
        ready.append(photo_id)
    World.users.extend(name for name, _ in creators)
    World.photos.extend(ready[:len(creators)])
    return {"reader": reader, "author": author, "spares": spares, "photos": ready[len(creators):]}


def probe_routes(config: RunConfig, world: dict[str, Any]) -> dict[str, list[tuple[str, str, dict]]]:
    """Each route's warm request through the real app in this process; the AWS calls it made."""
    from roundtrips import Container

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PHOTOSCALE_", "QUOTA_"))}
    environ.update(config.api_env)
    environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION=REGION,
                   AWS_DEFAULT_REGION=REGION, POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true")
    os.environ.clear()
    os.environ.update(environ)
    reader, reader_token = world["reader"]
    author, _ = world["author"]
    author_token = world["author"][1]
    p0, p1, p2 = world["photos"]
    s0, s1 = world["spares"]
    login = {"username": reader, "password": PASSWORD}
    # (route, warm-up request, recorded request): method, path, body, token
    plan = [
        ("GET /feed", ("GET", "/feed", None, reader_token), None),
        ("GET /photos/{id}", ("GET", f"/photos/{p0}", None, reader_token), None),
        ("GET /users/{u}", ("GET", f"/users/{author}", None, reader_token), None),
        ("GET /users/{u}/photos", ("GET", f"/users/{author}/photos", None, reader_token), None),
        ("GET /users/{u}/followers", ("GET", f"/users/{author}/followers", None, reader_token), None),
        ("GET /users/{u}/following", ("GET", f"/users/{reader}/following", None, reader_token), None),
        ("PUT /photos/{id}/like", ("PUT", f"/photos/{p1}/like", None, reader_token),
         ("PUT", f"/photos/{p2}/like", None, reader_token)),
        ("PUT /users/{u}/follow", ("PUT", f"/users/{s0}/follow", None, reader_token),
         ("PUT", f"/users/{s1}/follow", None, reader_token)),
        ("GET /me", ("GET", "/me", None, reader_token), None),
        ("PATCH /me", ("PATCH", "/me", {"display_name": "Probe", "bio": "load"}, reader_token), None),
        ("POST /photos", ("POST", "/photos", {"content_type": "image/jpeg", "size": 4000, "caption": "probe"},
                          author_token), None),
        ("POST /auth/login", ("POST", "/auth/login", login, None), None),
    ]
    import requests

    from chalicelib.settings import get_settings

    jwks = requests.get(get_settings().jwks_url, timeout=30).json()
    recorded: dict[str, list[tuple[str, str, dict]]] = {}
    # Quiet: the app's INFO logs, and Powertools' warning that no metric was published.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        container = Container(jwks)
        try:
            for route, warm_up, request in plan:
                response = container.call(*warm_up)
                if response.status_code >= 400:
                    raise RuntimeError(f"probe {route}: {response.status_code} {response.body[:200]!r}")
                with RECORDER.recording() as calls:
                    response = container.call(*(request or warm_up))
                if response.status_code >= 400:
                    raise RuntimeError(f"probe {route}: {response.status_code} {response.body[:200]!r}")
                recorded[route] = [(s, o, replayable(s, o, p)) for s, o, p in calls]
        finally:
            container.close()
    return recorded


def check_replays(recorded: dict[str, list[tuple[str, str, dict]]], endpoint: str) -> dict[str, str]:
    """Replay every route once before the load; routes whose replay fails are dropped (the reason returned)."""
    clients: dict[str, Any] = {}

    def client_for(service: str) -> Any:
        return clients.setdefault(service, aws_client(service, endpoint))

    dropped = {}
    for route in list(recorded):
        try:
            replay_calls(recorded[route], client_for)
        except Exception as exc:  # noqa: BLE001
            dropped[route] = f"{type(exc).__name__}: {exc}"[:200]
            del recorded[route]
    return dropped


QUIET_ROUNDS = 7


def quiet_baseline(config: RunConfig, world: dict[str, Any],
                   recorded: dict[str, list[tuple[str, str, dict]]]) -> dict[str, dict[str, float | None]]:
    """Before the load, nothing else running: per route, the app's p50 over HTTP and its direct replay's.

    The app side repeats requests whose repeat does the same work (reads, ``PATCH /me``, log-in); a
    repeated like or follow is a no-op with other calls, so writes get a direct figure only.
    """
    session = SeedSession(config.site)
    reader, token = world["reader"]
    author = world["author"][0]
    p0 = world["photos"][0]
    auth = {"Authorization": f"Bearer {token}"}
    app_requests = {
        "GET /feed": ("GET", "/api/feed", None, auth), "GET /photos/{id}": ("GET", f"/api/photos/{p0}", None, auth),
        "GET /users/{u}": ("GET", f"/api/users/{author}", None, auth),
        "GET /users/{u}/photos": ("GET", f"/api/users/{author}/photos", None, auth),
        "GET /users/{u}/followers": ("GET", f"/api/users/{author}/followers", None, auth),
        "GET /users/{u}/following": ("GET", f"/api/users/{reader}/following", None, auth),
        "GET /me": ("GET", "/api/me", None, auth),
        "PATCH /me": ("PATCH", "/api/me", {"display_name": "Probe", "bio": "load"}, auth),
        "POST /auth/login": ("POST", "/api/auth/login", {"username": reader, "password": PASSWORD}, {}),
    }
    clients: dict[str, Any] = {}

    def client_for(service: str) -> Any:
        return clients.setdefault(service, aws_client(service, config.aws_endpoint))

    app: dict[str, list[float]] = defaultdict(list)
    direct: dict[str, list[float]] = defaultdict(list)
    per_call: dict[str, list[float]] = defaultdict(list)
    def app_request(route: str) -> None:
        method, path, body, headers = app_requests[route]
        started = time.perf_counter()
        response = session.session.request(method, config.site + path, json=body, headers=headers, timeout=30)
        if response.status_code < 400:
            app[route].append((time.perf_counter() - started) * 1000)

    def direct_replay(route: str) -> None:
        started = time.perf_counter()
        replay_calls(recorded[route], client_for, per_call)
        direct[route].append((time.perf_counter() - started) * 1000)

    for round_number in range(QUIET_ROUNDS):
        for route in sorted(recorded):  # app and replay side by side, alternating which goes first
            steps = [app_request, direct_replay] if route in app_requests else [direct_replay]
            for step in steps if round_number % 2 == 0 else reversed(steps):
                step(route)
    separate = replay_in_own_process(config.aws_endpoint, recorded)
    out = {route: {"app_p50_ms": percentile(app.get(route, []), 0.5), "direct_p50_ms": percentile(direct[route], 0.5),
                   "own_process_direct_p50_ms": percentile(separate.get(route, []), 0.5)}
           for route in recorded}
    out["calls"] = {op: percentile(times, 0.5) for op, times in sorted(per_call.items())}
    return out


def replay_in_own_process(endpoint: str, recorded: dict[str, list[tuple[str, str, dict]]]) -> dict[str, list[float]]:
    """The same replays from a fresh plain Python process (``bench/replay_direct.py``), one at a time."""
    import subprocess
    import sys

    job = json.dumps({"endpoint": endpoint, "rounds": QUIET_ROUNDS, "routes": recorded}, default=str)
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("replay_direct.py"))], input=job,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"direct replay process failed: {done.stderr[-500:]}")
    return json.loads(done.stdout)


# --- CPU of the local processes (what sets the ceiling) -------------------------------------------

def process_roles(stack_pids: list[int]) -> dict[int, str]:
    import psutil

    roles = {os.getpid(): "load generator (locust, direct replays)"}
    for pid in stack_pids:
        try:
            root = psutil.Process(pid)
        except psutil.Error:
            continue
        roles[pid] = "site (edge proxy, stack runner)"
        for child in root.children(recursive=True):
            line = " ".join(child.cmdline())
            role = ("embedded AWS (moto, serialised)" if "embedded_aws" in line else
                    "API (chalice local)" if "chalice_local" in line else
                    "event pump + workers" if "event_pump" in line else None)
            if role:
                roles[child.pid] = role
    return roles


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    import psutil

    out = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            out[pid] = times.user + times.system
        except psutil.Error:
            pass
    return out


# --- the run ----------------------------------------------------------------------------------------

def run(config: RunConfig) -> dict[str, Any]:
    World.reset(config)
    Member._count = Member.toured = 0
    started = time.monotonic()
    world = seed_world(config)
    World.probe = probe_routes(config, world)
    dropped = check_replays(World.probe, config.aws_endpoint)
    quiet = quiet_baseline(config, world, World.probe)
    seed_seconds = time.monotonic() - started

    samples = Samples()
    Member.host = config.site
    environment = Environment(user_classes=[Member, DirectAws], host=config.site)
    environment.events.request.add_listener(samples.on_request)
    roles = process_roles(config.stack_pids)
    cpu_before = cpu_seconds(list(roles))
    runner = environment.create_local_runner()
    load_started = time.monotonic()
    runner.start(config.users + 1, spawn_rate=config.users + 1)
    # The load lasts --seconds, and at least until every member has toured every action (so a short
    # run on a slow machine still exercises every route), never longer than TOUR_GRACE beyond.
    while True:
        gevent.sleep(0.2)
        elapsed = time.monotonic() - load_started
        if elapsed >= config.seconds + TOUR_GRACE or (
                elapsed >= config.seconds and Member.toured >= config.users):
            break
    runner.quit()
    runner.greenlet.join()
    duration = time.monotonic() - load_started
    cpu_after = cpu_seconds(list(roles))
    cpu = {roles[pid]: round((cpu_after[pid] - cpu_before.get(pid, 0.0)) / duration, 2)
           for pid in cpu_after if pid in roles}
    return summarise(config, samples, duration, seed_seconds, cpu, dropped, quiet)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def summarise(config: RunConfig, samples: Samples, duration: float, seed_seconds: float,
              cpu: dict[str, float], dropped: dict[str, str],
              quiet: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    routes = {}
    for name in sorted(set(samples.latency) | set(samples.errors)):
        if name.startswith(DIRECT):
            continue
        ok = samples.latency.get(name, [])
        direct = samples.latency.get(DIRECT + name, [])
        p50, direct_p50 = percentile(ok, 0.5), percentile(direct, 0.5)
        calm = quiet.get(name, {})
        # The quiet ratio compares with the replay from a plain process of its own: in the load
        # generator's process (gevent, a large heap) the same calls measure ~30% slower client-side.
        quiet_app, quiet_direct = calm.get("app_p50_ms"), calm.get("own_process_direct_p50_ms")
        routes[name] = {
            "requests": len(ok) + sum(samples.errors.get(name, Counter()).values()),
            "errors": dict(samples.errors.get(name, Counter())),
            "p50_ms": _ms(p50), "p95_ms": _ms(percentile(ok, 0.95)), "p99_ms": _ms(percentile(ok, 0.99)),
            "aws_calls": len(World.probe[name]) if name in World.probe else None,
            "direct_p50_ms": _ms(direct_p50), "direct_samples": len(direct),
            "overhead_ratio": round(p50 / direct_p50, 2) if p50 and direct_p50 else None,
            "quiet_app_p50_ms": _ms(quiet_app), "quiet_direct_p50_ms": _ms(calm.get("direct_p50_ms")),
            "quiet_direct_own_process_p50_ms": _ms(quiet_direct),
            "quiet_overhead_ratio": round(quiet_app / quiet_direct, 2) if quiet_app and quiet_direct else None,
        }
    app_requests = sum(r["requests"] for n, r in routes.items() if n != READY)
    errors = Counter()
    for name, counts in samples.errors.items():
        errors.update(counts)
    exercised = [name for name in ROUTES if routes.get(name, {}).get("requests")]
    # The ceiling the embedded AWS sets: one request at a time in one interpreter, so at most one
    # core. Its CPU per call comes from the calls the run sent it (app requests by their recorded
    # count, polls as GET /photos/{id}, the presigned POST as one, the direct replays) and the CPU
    # it used; were it the only limit, throughput would top out at throughput / its share of a core.
    calls = dict.fromkeys(routes, 0)
    for name, r in routes.items():
        calls[name] = r["aws_calls"] or (routes.get("GET /photos/{id}", {}).get("aws_calls") or 0 if name == POLL
                                         else 1 if name == UPLOAD_POST else 0)
    app_sent = sum(r["requests"] * calls[name] for name, r in routes.items())
    sent = app_sent + sum(r["direct_samples"] * (r["aws_calls"] or 0) for r in routes.values())
    app_calls = sum(r["requests"] for name, r in routes.items() if calls[name])
    moto_cpu = next((v for k, v in cpu.items() if k.startswith("embedded AWS")), None)
    aws_ms_per_call = moto_cpu * 1000 * duration / sent if moto_cpu and sent else None
    ceiling = app_requests / duration / moto_cpu if moto_cpu else None
    timed = [r for r in routes.values() if r["aws_calls"] and r["quiet_direct_own_process_p50_ms"]]
    per_call_ms = (sum(r["quiet_direct_own_process_p50_ms"] for r in timed) / sum(r["aws_calls"] for r in timed)
                   if timed else None)
    return {
        "benchmark": "load", "site": config.site, "users": config.users, "seconds": round(duration, 1),
        "seed": config.seed, "zipf": config.zipf, "seed_world_seconds": round(seed_seconds, 1),
        "requests": app_requests, "throughput_rps": round(app_requests / duration, 1),
        "errors": sum(errors.values()), "errors_by_category": dict(errors), "error_examples": samples.examples,
        "routes": routes, "routes_exercised": exercised,
        "routes_missing": [name for name in ROUTES if name not in exercised],
        "direct_dropped": dropped, "cpu_cores": cpu, "load_average": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(), "aws_call_ms_quiet": _ms(per_call_ms),
        "quiet_call_p50_ms": {op: _ms(ms) for op, ms in quiet.get("calls", {}).items()},
        "probe_operations": {route: [f"{s}.{o}" for s, o, _ in calls] for route, calls in World.probe.items()},
        "aws_calls_per_second": round(sent / duration, 1),
        "aws_calls_per_request": round(app_sent / app_calls, 2) if app_calls else None,
        "aws_cpu_ms_per_call": _ms(aws_ms_per_call), "embedded_aws_cores": moto_cpu,
        "ceiling_rps": None if ceiling is None else round(ceiling, 1),
        "members": len(World.users) - config.creators, "photos": len(World.photos),
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def report(result: dict[str, Any], out: Any = print) -> None:
    out(f"load: {result['users']} members for {result['seconds']}s (seed {result['seed']}, Zipf s={result['zipf']}), "
        f"against {result['site']}; seed world + probe took {result['seed_world_seconds']}s")
    out(f"{'route':27} {'reqs':>5} {'err':>3} | {'p50':>6} {'p95':>6} {'p99':>6} ms | {'aws':>3} "
        f"{'direct':>6} ms {'ratio':>5} | quiet: {'app':>5} {'direct':>6} {'own':>5} ms {'ratio':>5}")
    for name, r in result["routes"].items():
        out(f"{name:27} {r['requests']:>5} {sum(r['errors'].values()):>3} | {_fmt(r['p50_ms']):>6} "
            f"{_fmt(r['p95_ms']):>6} {_fmt(r['p99_ms']):>6}    | {_fmt(r['aws_calls']):>3} "
            f"{_fmt(r['direct_p50_ms']):>6}    {_fmt(r['overhead_ratio']):>5} |        "
            f"{_fmt(r['quiet_app_p50_ms']):>5} {_fmt(r['quiet_direct_p50_ms']):>6} "
            f"{_fmt(r['quiet_direct_own_process_p50_ms']):>5}    {_fmt(r['quiet_overhead_ratio']):>5}")
    out("aws = AWS calls of one warm request (recorded through the app); direct = p50 of those calls replayed "
        "with plain boto3 against the embedded AWS during the load, from the load generator; ratio = app p50 / "
        "direct p50 (a lower bound: replays from the generator's process pay ~30% more client-side). quiet = one "
        "request at a time before the load (repeatable requests only on the app side): direct from the generator, "
        "own = from a fresh plain Python process; quiet ratio = app / own.")
    for route, reason in result["direct_dropped"].items():
        out(f"no direct baseline for {route}: its replay failed ({reason})")
    out(f"throughput: {result['throughput_rps']} requests/s ({result['requests']} requests, "
        f"{result['members']} members signed up, {result['photos']} ready photos)")
    categories = ", ".join(f"{k} x{v}" for k, v in sorted(result["errors_by_category"].items())) or "none"
    out(f"errors: {result['errors']} ({categories})")
    for example in result["error_examples"]:
        out(f"  {example}")
    if result["routes_missing"]:
        out(f"routes not exercised: {', '.join(result['routes_missing'])}")
    if result["ceiling_rps"]:
        out(f"local ceiling: the embedded AWS serves one request at a time (one lock, one interpreter: at most one "
            f"core). It took {result['aws_calls_per_second']:g} AWS calls/s (the app's {result['aws_calls_per_request']:g} "
            f"per request, plus the direct replays) using {result['embedded_aws_cores']:g} core, {result['aws_cpu_ms_per_call']:g} ms of CPU a "
            f"call (a quiet call end to end: {_fmt(result['aws_call_ms_quiet'])} ms), so this mix tops out near "
            f"{result['ceiling_rps']:g} requests/s here; measured {result['throughput_rps']:g}")
    out(f"machine: {result['cores']} cores, load average {' '.join(map(str, result['load_average']))}")
    if result["cpu_cores"]:
        out("CPU during the load (cores): " + ", ".join(f"{k} {v:g}" for k, v in sorted(
            result["cpu_cores"].items(), key=lambda kv: -kv[1])))
