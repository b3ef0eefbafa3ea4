"""The local stand-in for CloudFront: one origin on http://127.0.0.1:8000 with AWS's path layout.

- ``/api/*``   → the API (chalice local), prefix stripped as API Gateway's ``api`` stage does.
- ``/media/*`` → the media bucket's ``media/`` keys, read from the embedded S3 with the object's own
  Content-Type and Cache-Control (what CloudFront's S3 origin returns).
- anything else → the web client in ``edge/`` (``edge/dist`` when built), with SPA routing: a path
  that names no file serves ``index.html``.
Security headers come from the CloudFront response-headers policy in ``infra/edge.yaml``, so the
site behaves here as it will behind the distribution. Dev-only; never shipped to Lambda.
"""
from __future__ import annotations

import http.client
import mimetypes
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
EDGE_TEMPLATE = ROOT / "infra" / "edge.yaml"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
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
    def _proxy_api(self) -> None:
        target = urllib.parse.urlsplit(self.server.api_url)
        upstream_path = self.path[len("/api"):] or "/"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            connection.request(self.command, upstream_path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            extra = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"date", "server"}]
            self._send(response.status, payload, extra)
        except OSError:
            self._send(502, b'{"error": {"code": "bad_gateway", "message": "The API is not reachable."}}',
                       [("Content-Type", "application/json")], security=False)
        finally:
            connection.close()

    # -- /media/* -----------------------------------------------------------------------------
    def _media(self, key: str) -> None:
        if self.command not in ("GET", "HEAD"):
            self._send(405, b"", [("Allow", "GET, HEAD")])
            return
        try:
            obj = self.server.s3.get_object(Bucket=self.server.media_bucket, Key=f"media/{key}")
        except ClientError as exc:
            status = 404 if exc.response["Error"]["Code"] in ("NoSuchKey", "404") else 502
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

    def __init__(self, address, *, api_url: str, s3, media_bucket: str, headers: dict[str, str]) -> None:
        super().__init__(address, EdgeHandler)
        self.api_url = api_url
        self.s3 = s3
        self.media_bucket = media_bucket
        self.security_headers = headers


def make_server(host: str, port: int, *, api_url: str, aws_endpoint: str, media_bucket: str, region: str) -> EdgeServer:
    s3 = boto3.client(
        "s3", endpoint_url=aws_endpoint, region_name=region, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}),
    )
    return EdgeServer((host, port), api_url=api_url, s3=s3, media_bucket=media_bucket,
                      headers=security_headers(upload_origin=aws_endpoint))
