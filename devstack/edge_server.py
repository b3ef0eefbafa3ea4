"""The local stand-in for CloudFront and Route 53: one origin on http://127.0.0.1:8000 with AWS's path layout.

- ``/api/*``   → one region's API (chalice local), prefix stripped as API Gateway's ``api`` stage does.
  The region is chosen per request as Route 53 latency records with health checks choose it
  (:func:`route_order`): the client's nearest region (the ``X-Photoscale-Client-Region`` header stands in
  for the client's location, since every local client is in the same place; default the primary) while
  its ``/api/health`` answers 200, else the next healthy region. A background thread polls every
  region's health (``health_interval_seconds``). When the chosen region fails at the connection level
  (refused, reset, closed without an answer), a safe request (GET/HEAD/OPTIONS) is retried once on the
  next healthy region, as CloudFront's origin-group failover retries only those methods. Anything else
  is answered 502: the first attempt may have been applied in the failing region, and replaying it in
  the other region before replication has carried the first one over would do its effect twice
  (e.g. a like counted in both regions' shards), so only the client, with its idempotency key, may
  send it again.
- ``/media/*`` → the ``media/`` keys of the media bucket of the region chosen as above, failing over
  to the next region's bucket on 403/404/5xx (CloudFront's origin group), read from the embedded S3
  with the object's own Content-Type and Cache-Control (what CloudFront's S3 origin returns).
- anything else → the web client in ``edge/`` (``edge/dist`` when built), with SPA routing: a path
  that names no file serves ``index.html``.
Security headers come from the CloudFront response-headers policy in ``infra/edge.yaml``, so the
site behaves here as it will behind the distribution. Dev-only; never shipped to Lambda.
"""
from __future__ import annotations

import http.client
import mimetypes
import re
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
EDGE_TEMPLATE = ROOT / "infra" / "edge.yaml"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
#: The header that stands in for the client's location (Route 53 latency routing picks by it here).
CLIENT_REGION_HEADER = "X-Photoscale-Client-Region"
#: Methods retried on the next region after a connection failure (CloudFront's origin failover set).
RETRIED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HASHED_ASSET = re.compile(r"\.[0-9a-f]{8,}\.(js|css|svg|png|woff2?)$")


def security_headers(template_path: Path = EDGE_TEMPLATE, upload_origin: str | None = None) -> dict[str, str]:
    """The headers CloudFront's response-headers policy adds, read from ``infra/edge.yaml``.

    The CSP's ``connect-src`` names the origin presigned uploads go to (``UploadOrigin``): S3 in
    AWS, the embedded AWS endpoint here.
    """
    if not template_path.exists():
        return {}
    from infra.cfn import load_template

    template = load_template(template_path)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::CloudFront::ResponseHeadersPolicy":
            continue
        config = resource["Properties"]["ResponseHeadersPolicyConfig"]
        csp = config.get("SecurityHeadersConfig", {}).get("ContentSecurityPolicy", {})
        if isinstance(csp.get("ContentSecurityPolicy"), dict):  # !Sub ["... ${UploadOrigin} ...", {...}]
            sub = csp["ContentSecurityPolicy"]["Fn::Sub"]
            text = sub[0] if isinstance(sub, list) else sub
            if upload_origin is None:  # no local S3: the media bucket's endpoint is unknown here
                raise ValueError("security_headers needs the upload origin (the S3 endpoint uploads go to)")
            csp["ContentSecurityPolicy"] = text.replace("${UploadOrigin}", upload_origin)
        return headers_from_policy(config)
    return {}


def headers_from_policy(config: dict) -> dict[str, str]:
    """Translate a ResponseHeadersPolicyConfig into the HTTP headers it produces."""
    headers: dict[str, str] = {}
    security = config.get("SecurityHeadersConfig", {})
    if "ContentSecurityPolicy" in security:
        headers["Content-Security-Policy"] = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    if "ContentTypeOptions" in security:
        headers["X-Content-Type-Options"] = "nosniff"
    if "FrameOptions" in security:
        headers["X-Frame-Options"] = security["FrameOptions"]["FrameOption"]
    if "ReferrerPolicy" in security:
        headers["Referrer-Policy"] = security["ReferrerPolicy"]["ReferrerPolicy"]
    if "StrictTransportSecurity" in security:
        sts = security["StrictTransportSecurity"]
        value = f"max-age={sts['AccessControlMaxAgeSec']}"
        if sts.get("IncludeSubdomains"):
            value += "; includeSubDomains"
        if sts.get("Preload"):
            value += "; preload"
        headers["Strict-Transport-Security"] = value
    for item in config.get("CustomHeadersConfig", {}).get("Items", []):
        headers[item["Header"]] = item["Value"]
    return headers


@dataclass(frozen=True)
class EdgeRegion:
    """One region behind the edge: its API (chalice local) and its media bucket."""

    name: str
    api_url: str
    media_bucket: str


def route_order(preferred: str | None, regions: Sequence[str], healthy: Mapping[str, bool]) -> list[str]:
    """The regions to send a request to, best first (pure; Route 53 latency routing with health checks).

    ``regions`` is primary first; ``preferred`` is the client's nearest region (unknown or None: the
    primary). Healthy regions come first, the preferred one leading, then the others in ``regions``
    order; a region never checked yet counts as healthy (as a new Route 53 health check does). When
    no region is healthy, Route 53 answers as if all were, so every region is returned in preference order.
    """
    if not regions:
        return []
    first = preferred if preferred in regions else regions[0]
    ordered = [first, *(r for r in regions if r != first)]
    up = [r for r in ordered if healthy.get(r, True)]
    return up or ordered


class HealthMonitor:
    """Polls every region's ``/health`` in the background; ``healthy()`` is the latest verdict per region."""

    def __init__(self, regions: Sequence[EdgeRegion], interval_seconds: float, timeout_seconds: float = 1.0) -> None:
        self.regions = list(regions)
        self.interval = interval_seconds
        self.timeout = timeout_seconds
        self._healthy: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def healthy(self) -> dict[str, bool]:
        with self._lock:
            return dict(self._healthy)

    def check_once(self) -> dict[str, bool]:
        for region in self.regions:
            verdict = self._probe(region)
            with self._lock:
                self._healthy[region.name] = verdict
        return self.healthy()

    def _probe(self, region: EdgeRegion) -> bool:
        try:
            with urllib.request.urlopen(f"{region.api_url}/health", timeout=self.timeout) as response:
                return response.status == 200
        except OSError:  # HTTPError (503...) included
            return False

    def start(self) -> HealthMonitor:
        if len(self.regions) > 1 and self._thread is None:  # one region: nothing to choose between
            self._thread = threading.Thread(target=self._run, name="edge-health", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(self.interval)


def static_root() -> Path:
    built = ROOT / "edge" / "dist"
    return built if (built / "index.html").exists() else ROOT / "edge"


def cache_control_for(path: Path) -> str:
    if path.name == "index.html":
        return "no-cache"
    if HASHED_ASSET.search(path.name):
        return "public, max-age=31536000, immutable"
    return "public, max-age=300"


class EdgeHandler(BaseHTTPRequestHandler):
    server_version = "photoscale-edge"
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server naming)
        self._route()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format, *args):  # quiet by default; the API logs requests itself
        pass

    def _route(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/api" or path.startswith("/api/"):
            self._proxy_api()
        elif path.startswith("/media/"):
            self._media(urllib.parse.unquote(path[len("/media/"):]))
        else:
            self._static(urllib.parse.unquote(path))

    # -- /api/* -------------------------------------------------------------------------------
    def _regions_for_request(self) -> list[EdgeRegion]:
        server = self.server
        names = route_order(self.headers.get(CLIENT_REGION_HEADER), [r.name for r in server.regions],
                            server.health.healthy())
        return [server.region(name) for name in names]

    def _proxy_api(self) -> None:
        upstream_path = self.path[len("/api"):] or "/"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        candidates = self._regions_for_request()
        attempts = candidates[:2] if self.command in RETRIED_METHODS else candidates[:1]
        for region in attempts:
            target = urllib.parse.urlsplit(region.api_url)
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                connection.request(self.command, upstream_path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except OSError:
                continue  # connection-level failure: the next region, if this method may be replayed
            finally:
                connection.close()
            extra = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"date", "server"}]
            self._send(response.status, payload, extra)
            return
        self._send(502, b'{"error": {"code": "bad_gateway", "message": "The API is not reachable."}}',
                   [("Content-Type", "application/json")], security=False)

    # -- /media/* -----------------------------------------------------------------------------
    def _media(self, key: str) -> None:
        if self.command not in ("GET", "HEAD"):
            self._send(405, b"", [("Allow", "GET, HEAD")])
            return
        status = 502
        for region in self._regions_for_request():  # the origin group: next bucket on 403/404/5xx
            try:
                obj = self.server.s3[region.name].get_object(Bucket=region.media_bucket, Key=f"media/{key}")
                break
            except ClientError as exc:
                status = 404 if exc.response["Error"]["Code"] in ("NoSuchKey", "404") else 502
            except BotoCoreError:
                status = 502
        else:
            self._send(status, b"", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
            return
        etag = obj.get("ETag", "")
        headers = [("Content-Type", obj.get("ContentType", "application/octet-stream")),
                   ("Cache-Control", obj.get("CacheControl", "public, max-age=86400")), ("ETag", etag)]
        if etag and self.headers.get("If-None-Match") == etag:
            obj["Body"].close()
            self._send(304, b"", headers)
            return
        self._send(200, obj["Body"].read(), headers)

    # -- everything else: the web client ------------------------------------------------------
    def _static(self, path: str) -> None:
        root = static_root()
        candidate = (root / path.lstrip("/")).resolve()
        if root not in candidate.parents and candidate != root:
            self._send(404, b"", [])
            return
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not candidate.is_file():
            if "." in Path(path).name:  # a missing asset, not an app route
                self._send(404, b"not found", [("Content-Type", "text/plain")])
                return
            candidate = root / "index.html"  # SPA routing: deep links load the app
        if not candidate.is_file():
            self._send(404, b"the web client is not built", [("Content-Type", "text/plain")])
            return
        content_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "image/svg+xml"):
            content_type += "; charset=utf-8"
        self._send(200, candidate.read_bytes(),
                   [("Content-Type", content_type), ("Cache-Control", cache_control_for(candidate))])

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]], security: bool = True) -> None:
        self.send_response(status)
        names = {k.lower() for k, _ in headers}
        for key, value in headers:
            self.send_header(key, value)
        if security:
            for key, value in self.server.security_headers.items():
                if key.lower() not in names:
                    self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)


class EdgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, *, regions: Sequence[EdgeRegion], s3: Mapping[str, object], headers: dict[str, str],
                 health: HealthMonitor) -> None:
        super().__init__(address, EdgeHandler)
        self.regions = list(regions)
        self._by_name = {r.name: r for r in self.regions}
        self.s3 = dict(s3)
        self.security_headers = headers
        self.health = health

    def region(self, name: str) -> EdgeRegion:
        return self._by_name[name]

    @property
    def api_url(self) -> str:
        """The primary region's API."""
        return self.regions[0].api_url

    def shutdown(self) -> None:
        self.health.stop()
        super().shutdown()


def make_server(host: str, port: int, *, aws_endpoint: str, regions: Sequence[EdgeRegion],
                health_interval_seconds: float = 0.5) -> EdgeServer:
    """The edge for ``regions`` (primary first); health polling starts with the server."""
    s3 = {
        r.name: boto3.client(
            "s3", endpoint_url=aws_endpoint, region_name=r.name, aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1 if len(regions) > 1 else 3}),
        )
        for r in regions
    }
    health = HealthMonitor(regions, health_interval_seconds).start()
    return EdgeServer((host, port), regions=regions, s3=s3, health=health,
                      headers=security_headers(upload_origin=aws_endpoint))
