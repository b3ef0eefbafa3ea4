"""Publish the built web client (``edge/dist``) to the web buckets behind CloudFront.

Run after ``make web`` and after the edge stack (``infra/edge.yaml``) is deployed::

    python -m infra.publish_web --stage prod --bucket photoscale-prod-web-...-us-east-1 \\
        [--bucket photoscale-prod-web-...-eu-west-1] --distribution-id E123ABC \\
        [--dist edge/dist] [--region us-east-1] [--dry-run] [--wait]

With several regions, name every region's web bucket (``--bucket`` once per region, the primary's
first): the distribution's web origin group reads the primary's and fails over to the other's, so
both hold the same build. (Direct uploads rather than S3 replication: CRR copies objects in no
particular order, so the other bucket could get the new ``index.html`` before the assets it names.)

Rules (:func:`plan_uploads`, pure):

- every file gets an explicit ``Content-Type`` (text types with ``charset=utf-8``);
- content-hashed assets (``app.3f9c1a2b.js``: ``.<8+ hex>.`` right before the extension) are
  ``public, max-age=31536000, immutable`` - a new build gives them new names;
- ``index.html`` is ``no-cache`` (browsers and CloudFront revalidate it on every use) and is
  uploaded **last**, so no client ever receives an index naming assets that are not there yet;
  with several buckets (:func:`plan_publish`), every asset and other file goes into **every**
  bucket before any bucket's ``index.html``: a page loaded from one bucket's index may fetch its
  assets through the failover to the other;
- other files (``favicon.svg``, ``robots.txt``) get a short ``public, max-age=300``;
- hidden files (``.DS_Store``, ``.gitkeep``) are skipped.

Old hashed assets are left in the bucket on purpose: pages already open still reference them.
Then one CloudFront invalidation for ``/index.html`` only (deep links are rewritten to
``/index.html`` by the edge function before the cache lookup, so that one path covers them);
hashed assets never need invalidating.
"""
from __future__ import annotations

import argparse
import mimetypes
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIST = ROOT / "edge" / "dist"

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
SHORT = "public, max-age=300"
INVALIDATION_PATHS = ("/index.html",)

# ".<8+ lowercase hex>." before the extension (source maps of hashed files included).
HASHED_ASSET = re.compile(r"\.[0-9a-f]{8,}\.[A-Za-z0-9]+(\.map)?$")

_CONTENT_TYPES: dict[str, str] = {  # explicit: the OS mimetypes table varies (woff2, mjs, webmanifest)
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}


class Upload(NamedTuple):
    """One object to put: bucket key, Content-Type, Cache-Control."""

    key: str
    content_type: str
    cache_control: str


def content_type_for(key: str) -> str:
    """The Content-Type of a file by extension; ``application/octet-stream`` when unknown."""
    suffix = PurePosixPath(key).suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def cache_control_for(key: str) -> str:
    """``no-cache`` for index.html, immutable for content-hashed names, a short max-age otherwise."""
    name = PurePosixPath(key).name
    if name == "index.html":
        return NO_CACHE
    if HASHED_ASSET.search(name):
        return IMMUTABLE
    return SHORT


def _normalise(path: str | PurePosixPath) -> str:
    key = PurePosixPath(str(path).replace("\\", "/")).as_posix()
    if key.startswith("/") or ".." in PurePosixPath(key).parts or key in ("", "."):
        raise ValueError(f"{path!r}: expected a relative path inside the dist directory")
    return key


def plan_uploads(files: Iterable[str | PurePosixPath]) -> list[Upload]:
    """Order and describe the uploads for ``files`` (paths relative to the dist directory).

    Order: hashed assets, then other files, then ``index.html`` files with the root
    ``index.html`` very last; alphabetical within each group (deterministic plans).
    """
    uploads: list[tuple[tuple[int, bool, str], Upload]] = []
    for path in files:
        key = _normalise(path)
        if any(part.startswith(".") for part in PurePosixPath(key).parts):
            continue
        cache_control = cache_control_for(key)
        group = {IMMUTABLE: 0, SHORT: 1, NO_CACHE: 2}[cache_control]
        uploads.append(((group, key == "index.html", key), Upload(key, content_type_for(key), cache_control)))
    return [upload for _, upload in sorted(uploads)]


def collect_files(dist: Path) -> list[str]:
    """Every regular file under ``dist``, as POSIX paths relative to it."""
    return sorted(p.relative_to(dist).as_posix() for p in dist.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- execution (boto3)


def plan_publish(plan: list[Upload], buckets: Sequence[str]) -> list[tuple[str, Upload]]:
    """``(bucket, upload)`` steps putting ``plan`` into every bucket: first everything but the
    ``index.html`` files into each bucket in turn, then the ``index.html`` files (root last) into
    each bucket in turn; within a phase, plan order (pure)."""
    targets = list(dict.fromkeys(buckets))
    if not targets:
        raise ValueError("at least one bucket is needed")
    indexes = [item for item in plan if item.cache_control == NO_CACHE]
    others = [item for item in plan if item.cache_control != NO_CACHE]
    return [(bucket, item) for phase in (others, indexes) for bucket in targets for item in phase]


def upload(plan: list[Upload], dist: Path, bucket: str, s3: Any) -> None:
    """Upload in plan order (sequentially: the order is the point)."""
    publish(plan, dist, [bucket], s3)


def publish(plan: list[Upload], dist: Path, buckets: Sequence[str], s3: Any) -> None:
    """Upload ``plan`` to every bucket in :func:`plan_publish`'s order (sequentially)."""
    for bucket, item in plan_publish(plan, buckets):
        s3.upload_file(
            str(dist / item.key), bucket, item.key,
            ExtraArgs={"ContentType": item.content_type, "CacheControl": item.cache_control},
        )
        print(f"  s3://{bucket}/{item.key}  [{item.cache_control}]", flush=True)


def invalidate(cloudfront: Any, distribution_id: str, caller_reference: str, wait: bool = False) -> str:
    """Invalidate ``/index.html`` on the distribution; returns the invalidation id."""
    response = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(INVALIDATION_PATHS), "Items": list(INVALIDATION_PATHS)},
            "CallerReference": caller_reference,
        },
    )
    invalidation_id = response["Invalidation"]["Id"]
    if wait:
        cloudfront.get_waiter("invalidation_completed").wait(DistributionId=distribution_id, Id=invalidation_id)
    return invalidation_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.publish_web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, choices=["dev", "prod"])
    parser.add_argument("--bucket", required=True, action="append", dest="buckets",
                        help="a web bucket (stateful stack output WebBucket); once per region, the primary's first")
    parser.add_argument("--distribution-id", required=True, help="edge stack output DistributionId")
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST, help="built client directory (default edge/dist)")
    parser.add_argument("--region", default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument("--wait", action="store_true", help="wait until the invalidation has completed")
    args = parser.parse_args(argv)

    dist: Path = args.dist
    if not (dist / "index.html").is_file():
        print(f"{dist}/index.html not found: build the client first (make web)", file=sys.stderr)
        return 2
    plan = plan_uploads(collect_files(dist))
    if args.dry_run:
        for bucket, item in plan_publish(plan, args.buckets):
            print(f"s3://{bucket}/{item.key}\t{item.content_type}\t{item.cache_control}")
        print(f"invalidate {', '.join(INVALIDATION_PATHS)} on {args.distribution_id}")
        return 0

    import boto3

    session = boto3.session.Session(region_name=args.region)
    targets = ", ".join(f"s3://{bucket}" for bucket in dict.fromkeys(args.buckets))
    print(f"publishing {len(plan)} files from {dist} to {targets} ({args.stage})", flush=True)
    publish(plan, dist, args.buckets, session.client("s3"))  # botocore follows a bucket into its region
    invalidation_id = invalidate(
        session.client("cloudfront"), args.distribution_id,
        caller_reference=f"photoscale-{args.stage}-web-{time.time_ns()}", wait=args.wait,
    )
    print(f"invalidation {invalidation_id} of {', '.join(INVALIDATION_PATHS)} created", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
