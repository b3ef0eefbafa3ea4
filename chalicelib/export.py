"""Data export (portability): ``POST /me/export`` queues a job; a worker zips the user's data into S3.

The zip holds exactly the user's own data: ``profile.json``; ``photos.json`` (each photo's caption,
created, likes, status) with every original under ``photos/``; ``following.json`` and
``followers.json`` (usernames); ``liked.json`` (ids of the photos the user liked). It is written to
``exports/{username}/{job}.zip`` in the media bucket (a lifecycle rule expires it after
:data:`DOWNLOAD_SECONDS` plus a day), and ``GET /me/export/{job}`` hands out a download link valid
until :data:`DOWNLOAD_SECONDS` after the zip was ready (the same end on every request).

The link, in AWS, is a CloudFront signed URL (canned policy) through the stage's distribution,
whose ``/exports/*`` behaviour trusts only the exports key group (``infra/edge.yaml``); it is signed
with a private key from Secrets Manager, so it is really good for 24 h. An S3 presigned URL would
not be: signed with the function role's temporary credentials it stops working when that session
ends (at most 12 h, usually about one). Without a key pair id (the local stack) the link is an S3
presigned GET: local credentials are long-lived, so it holds to the same end.

Bounded twice: one export record per user, so at most one is in flight (a second request is a 409
until it ends or its lease of :data:`LEASE_SECONDS` runs out), and the ``exports`` quota per user.
The worker (an ``export_account`` message on the fan-out queue) is idempotent: it builds the same
object under the same key, and a message for a job that is finished or replaced is dropped.
"""
from __future__ import annotations

import json
import time
import uuid

from chalicelib import aws, keys, quotas
from chalicelib.errors import Conflict, NotFound
from chalicelib.observability import logger, metrics
from chalicelib.repositories import accounts, counters, graph
from chalicelib.repositories import users as profiles
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING, LIKES, PHOTOS
from chalicelib.settings import get_settings

EXPORT_ACCOUNT = "export_account"
EXPORTS_PREFIX = "exports/"
#: The download link's validity, from the moment the zip is ready (a CloudFront signed URL in AWS).
DOWNLOAD_SECONDS = 24 * 3600
#: An export not finished within this long no longer blocks a new one.
LEASE_SECONDS = 3600
RUNNING, READY, FAILED = "running", "ready", "failed"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}


# --- pure rules -------------------------------------------------------------------------------------

def export_key(username: str, job_id: str) -> str:
    return f"{EXPORTS_PREFIX}{username}/{job_id}.zip"


def user_exports_prefix(username: str) -> str:
    return f"{EXPORTS_PREFIX}{username}/"


def original_name(photo_id: str, content_type: str | None) -> str:
    return f"photos/{photo_id}.{_EXTENSIONS.get(content_type or '', 'bin')}"


def status_view(job: accounts.ExportJob, download_url: str | None) -> dict:
    view = {"job": job.job_id, "status": job.status}
    if download_url:
        view.update(download_url=download_url, expires_at=job.expires_at)
    return view


# --- requests ---------------------------------------------------------------------------------------

def request_export(username: str) -> dict:
    """Queue a new export of the caller's data (409 while one is in flight; the quota applies)."""
    now = int(time.time())
    current = accounts.load_export(username)
    if current is not None and current.status == RUNNING and current.expires_at >= now:
        raise Conflict("An export of your data is already being prepared.")
    quotas.consume(quotas.EXPORTS, username)
    job_id = uuid.uuid4().hex
    if not accounts.start_export(username, job_id, RUNNING, (RUNNING,), now, now + LEASE_SECONDS):
        raise Conflict("An export of your data is already being prepared.")
    aws.client("sqs").send_message(QueueUrl=get_settings().fanout_queue_url,
                                   MessageBody=json.dumps({"type": EXPORT_ACCOUNT, "user": username, "job": job_id}))
    return {"job": job_id, "status": RUNNING, "status_url": f"/api/me/export/{job_id}"}


def export_status(username: str, job_id: str) -> dict:
    job = accounts.load_export(username)
    if job is None or job.job_id != job_id:
        raise NotFound("No such export.")
    url = download_url(job.key, job.expires_at, time.time()) if job.status == READY and job.key else None
    return status_view(job, url)


def download_url(key: str, expires_at: int, now: float) -> str | None:
    """A link to the zip valid until ``expires_at`` (None once that has passed)."""
    if expires_at <= now:
        return None
    settings = get_settings()
    if settings.exports_key_pair_id:
        from chalicelib.secrets import exports_signing_key

        return cloudfront_signed_url(f"{settings.exports_base_url}/{key}", settings.exports_key_pair_id,
                                     expires_at, exports_signing_key().pem())
    return aws.client("s3").generate_presigned_url(
        "get_object", ExpiresIn=int(expires_at - now),
        Params={"Bucket": settings.media_bucket, "Key": key,
                "ResponseContentDisposition": 'attachment; filename="photoscale-export.zip"'})


def cloudfront_signed_url(url: str, key_pair_id: str, expires_at: int, private_key_pem: bytes) -> str:
    """``url`` signed for CloudFront with a canned policy ending at ``expires_at`` (RSA-SHA1, the
    scheme CloudFront verifies with the key group's public key; pure apart from the signature)."""
    from datetime import datetime, timezone

    from botocore.signers import CloudFrontSigner
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    signer = CloudFrontSigner(key_pair_id, lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1()))
    return signer.generate_presigned_url(url, date_less_than=datetime.fromtimestamp(expires_at, timezone.utc))


# --- the worker -------------------------------------------------------------------------------------

def build(username: str, job_id: str) -> str:
    """Build and store the job's zip; returns what happened (a stale or finished job is dropped)."""
    job = accounts.load_export(username)
    if job is None or job.job_id != job_id or job.status != RUNNING:
        return "stale"
    import tempfile
    import zipfile  # the worker's only: the API function never loads them

    key = export_key(username, job_id)
    with tempfile.TemporaryFile() as spool:  # /tmp, not memory: originals can be large
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
            _write(archive, username)
        spool.seek(0)
        aws.client("s3").upload_fileobj(spool, get_settings().media_bucket, key,
                                        ExtraArgs={"ContentType": "application/zip"})
    if accounts.finish_export(username, job_id, READY, key, int(time.time()) + DOWNLOAD_SECONDS):
        metrics.add_metric(name="ExportsReady", unit="Count", value=1)
    logger.info("export ready", extra={"job": job_id})
    return "ready"


def _write(archive, username: str) -> None:
    profile = profiles.get(username)
    if profile is None:
        raise NotFound("The account no longer exists.")
    totals = counters.read_totals([(kind, username) for kind in (FOLLOWERS, FOLLOWING, PHOTOS)])
    archive.writestr("profile.json", _json({
        "username": profile.username, "email": profile.email, "display_name": profile.display_name,
        "bio": profile.bio, "created_at": profile.created_at,
        **{kind: totals[(kind, username)] for kind in (FOLLOWERS, FOLLOWING, PHOTOS)}}))
    photos = accounts.all_photos(username)
    likes = counters.read_totals([(LIKES, p.photo_id) for p in photos]) if photos else {}
    s3, bucket, entries = aws.client("s3"), get_settings().media_bucket, []
    for photo in photos:
        name = original_name(photo.photo_id, photo.content_type)
        try:
            body = s3.get_object(Bucket=bucket, Key=keys.upload_key(username, photo.photo_id))["Body"]
        except s3.exceptions.NoSuchKey:
            name = None  # reserved but never uploaded
        else:
            with archive.open(name, "w") as target:
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    target.write(chunk)
        entries.append({"id": photo.photo_id, "caption": photo.caption or "", "created_at": photo.created_at,
                        "status": photo.status, "likes": likes.get((LIKES, photo.photo_id), 0), "file": name})
    archive.writestr("photos.json", _json(entries))
    archive.writestr("following.json", _json(graph.following_page(username, None)))
    followers = [f for shard in range(counters.shard_count(FOLLOWERS, username))
                 for f in _all_followers(username, shard)]
    archive.writestr("followers.json", _json(sorted(followers)))
    archive.writestr("liked.json", _json(accounts.all_liked(username)))


def _all_followers(username: str, shard: int) -> list[str]:
    found, last = [], None
    while True:
        page = graph.followers_page(username, shard, last, 1000)
        found += page
        if len(page) < 1000:
            return found
        last = page[-1]


def _json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
