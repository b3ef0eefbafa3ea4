"""Account erasure: ``DELETE /me`` locks the account at once, a resumable worker erases the rest.

The request (:func:`request_deletion`) re-checks the password with Cognito, then: reserves the
username for :data:`RESERVATION_SECONDS` (a keyed hash only, see :func:`name_hashes`), records the
job and queues it, and locks the account out (Cognito user disabled, sign-out-everywhere cut-off,
profile deleted: it answers 404 and the user's photos stop being served, see
:func:`chalicelib.photos.owner_erased`). Every lock-out step is repeated by the worker, so a request
that failed after queueing still ends in a complete erasure.

The worker (:func:`erase`, an ``erase_account`` message on the fan-out queue) walks
:data:`STEPS` in order and checkpoints the step it finished in the jobs table after each one and
after every page inside a step. Each step is idempotent on its own: removals of absent items
succeed, and the steps that adjust other users' counts do so in the same transaction that
removes the edge, conditional on the edge still being there (unfollow, unlike), so a crash at any
point followed by a redelivery neither counts twice nor misses a count. Other users' likes of the
user's photos are found through the likers mirror (:mod:`chalicelib.repositories.likes`) once the
photo is ``deleting`` (no new like can land) and removed uncounted, before the photo's counter goes.

With several regions, the global tables' deletes replicate, but each region's *regional* data does
not: its ``quotas`` windows, its ``jobs`` table's export record and its bucket's export zips (an
export, or a failover request, may have run there). The last step (``other_regions``) therefore
queues an :data:`ERASE_REGIONAL` message on every other region's fan-out queue; that region's
worker runs :func:`sweep_region` (the same idempotent ``quotas`` and ``exports`` steps, in its own
tables and bucket). What the sweep does not delete expires by itself: see docs/multi-region.md,
"Erasure in several regions", for each regional table's content and bound.

What is left afterwards refers to no one: the job keeps its status but forgets the username, and
the reservation keeps only the hash. The user's sign-out cut-off record stays until the last
access token issued before it expires (one access-token lifetime), since access tokens are
verified offline; that record is the one trace, and it expires by itself.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timezone

from chalicelib import aws, cleanup, identity, quotas, sessions
from chalicelib.errors import InvalidCredentials, NotFound, PhotoNotFound
from chalicelib.lifecycle import DELETING
from chalicelib.observability import logger, metrics
from chalicelib.repositories import accounts, counters, feeds, graph, likes, photos as photo_records
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING, LIKES, PHOTOS
from chalicelib.secrets import cursor_key
from chalicelib.settings import get_settings

ERASE_ACCOUNT = "erase_account"
#: The message asking another region to sweep its regional data of an erased user (:func:`sweep_region`).
ERASE_REGIONAL = "erase_regional"
#: A deleted username cannot be signed up again for this long.
RESERVATION_SECONDS = 30 * 86400
JOB_TTL_SECONDS = 7 * 86400
#: Access tokens stay verifiable this long after the last sign-in (``AccessTokenValidity``).
ACCESS_TOKEN_SECONDS = 60 * 60
REQUESTED, RUNNING, DONE = "requested", "running", "done"
STEPS = ("lock_out", "photos", "likes", "following", "followers", "own_feed", "counters", "registry",
         "quotas", "exports", "identity", "other_regions")
#: The windowed quotas counted per user (``PENDING_UPLOADS`` is not windowed: it counts photos).
PER_USER_QUOTAS = (quotas.UPLOAD_GRANTS, quotas.FOLLOWS, quotas.LIKES, quotas.EXPORTS)
#: Items handled per checkpoint inside a paged step.
PAGE = 100


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- pure rules -------------------------------------------------------------------------------------

def name_hash(username: str, key: bytes) -> str:
    """The keyed hash a reservation keeps instead of the name (HMAC-SHA256, domain-separated)."""
    return hmac.new(key, b"erased-username\x00" + username.lower().encode(), hashlib.sha256).hexdigest()


def next_step(position: dict) -> str | None:
    """The first step not yet finished, or None when all are."""
    done = set(position.get("done", ()))
    return next((step for step in STEPS if step not in done), None)


def progress_view(job: accounts.ErasureJob) -> dict:
    finished = [s for s in STEPS if s in set(job.position.get("done", ()))]
    return {"job": job.job_id, "status": job.status, "steps_done": len(finished), "steps_total": len(STEPS),
            "updated_at": job.updated_at}


def quota_windows(username: str, now: float, limits: dict[str, quotas.Limit]) -> list[str]:
    """The per-user quota items that can still exist (current and previous window of each action)."""
    found = []
    for action, limit in sorted(limits.items()):
        if limit.window <= 0:
            continue
        start = quotas.window_start(now, limit.window)
        found += [quotas.quota_key(action, username, start), quotas.quota_key(action, username, start - limit.window)]
    return found


def regional_sweeps(username: str, this_region: str, serving_regions: tuple[str, ...],
                    fanout_queue_urls: dict[str, str]) -> list[tuple[str, str, dict]]:
    """``(region, fan-out queue URL, message)`` asking each *other* serving region to sweep its
    regional data of ``username`` (none with one region). A region whose queue is not known is a
    configuration error (``FANOUT_QUEUE_URLS``): raised, so the job retries rather than skips it."""
    others = [r for r in serving_regions if r != this_region]
    missing = [r for r in others if not fanout_queue_urls.get(r)]
    if missing:
        raise ValueError(f"no fan-out queue URL for {', '.join(missing)} (FANOUT_QUEUE_URLS)")
    return [(r, fanout_queue_urls[r], {"type": ERASE_REGIONAL, "user": username, "from": this_region})
            for r in others]


# --- the keyed hash ---------------------------------------------------------------------------------

def name_hashes(username: str) -> list[str]:
    """The name's hash under every key in force (the cursor key ring: current and previous)."""
    return [name_hash(username, key) for key in cursor_key().verification_keys()]


def is_reserved(username: str, now: float | None = None) -> bool:
    return accounts.reserved(name_hashes(username), time.time() if now is None else now)


# --- the request ------------------------------------------------------------------------------------

def request_deletion(username: str, password: str, client_ip: str) -> dict:
    """Check the password, reserve the name, queue the erasure and lock the account out.

    A wrong password is a 401 and counts against the client IP's failed-login quota, as at log-in
    (a stolen access token is no way to guess the password).
    """
    quotas.ensure_below(quotas.FAILED_LOGINS, client_ip)
    try:
        confirmation = identity.log_in(username, password)
    except InvalidCredentials:
        quotas.record(quotas.FAILED_LOGINS, client_ip)
        raise
    if confirmation.refresh_token:  # the check's own sign-in must not outlive it
        identity.revoke_refresh_token(confirmation.refresh_token)
    now = time.time()
    accounts.reserve(name_hash(username, cursor_key().signing_key()), int(now) + RESERVATION_SECONDS)
    job_id = uuid.uuid4().hex
    accounts.create_job(job_id, username, REQUESTED, now_iso(), int(now) + JOB_TTL_SECONDS)
    _queue({"type": ERASE_ACCOUNT, "job": job_id})
    lock_out(username)
    return {"job": job_id, "status": REQUESTED, "status_url": f"/api/me/deletion?job={job_id}"}


def deletion_status(job_id: str) -> dict:
    job = accounts.load_job(job_id) if job_id.isalnum() and len(job_id) == 32 else None
    if job is None:
        raise NotFound("No such account deletion.")
    return progress_view(job)


def lock_out(username: str) -> None:
    """From now on no session of the user is accepted and nobody sees their profile or photos."""
    identity.disable_user(username)
    sessions.end_all_sessions(username)
    accounts.delete_profile(username)


def _queue(body: dict) -> None:
    aws.client("sqs").send_message(QueueUrl=get_settings().fanout_queue_url, MessageBody=json.dumps(body))


# --- the worker -------------------------------------------------------------------------------------

def erase(job_id: str) -> str:
    """Run (or resume) one erasure job to the end. Returns what happened."""
    job = accounts.load_job(job_id)
    if job is None:
        return "unknown-job"
    if job.status == DONE:
        return "already-done"
    username, position = job.username, dict(job.position)
    position.setdefault("done", [])
    while (step := next_step(position)) is not None:
        while not _STEP_FUNCTIONS[step](username):  # False: a page done, more to come
            accounts.save_job(job_id, RUNNING, username, position, now_iso(), written=1)
        position["done"].append(step)
        accounts.save_job(job_id, RUNNING, username, position, now_iso())
    accounts.save_job(job_id, DONE, None, position, now_iso())
    metrics.add_metric(name="AccountsErased", unit="Count", value=1)  # once: a finished job answers already-done
    logger.info("account erased", extra={"job": job_id})
    return "done"


def _photos(username: str) -> bool:
    """One page of the user's photos: media, CDN copies (one invalidation per page), other users'
    likes of them, like counters, record."""
    page = accounts.photos_page(username, PAGE)
    paths: list[str] = []
    for photo in page:
        if photo.status != DELETING:
            photo_records.start_deleting(photo, now_iso())  # gone from feeds and listings; uncounted once
        cleanup.delete_objects(photo.owner, photo.photo_id)
        paths += cleanup.cdn_paths(photo.renditions)
        shards = counters.shard_count(LIKES, photo.photo_id, fresh=True)  # before its meta item goes
        likes.drop_all_likers(photo.photo_id, shards, PAGE)  # other users' likes of it, uncounted
        accounts.delete_counters(LIKES, photo.photo_id, counters.regions(), shards)
    if paths:
        cleanup.invalidate(sorted(paths))
    for photo in page:
        accounts.delete_photo_record(photo.photo_id)
    return len(page) < PAGE


def _likes(username: str) -> bool:
    """Withdraw the user's likes (each other photo's count once down); likes of vanished photos just go."""
    liked = accounts.liked_page(username, PAGE)
    for photo_id in liked:
        try:
            likes.set_like(username, photo_id, False, now_iso())
        except PhotoNotFound:
            likes.drop_like(username, photo_id)
    return len(liked) < PAGE


def _following(username: str) -> bool:
    followees = graph.following_page(username, None, PAGE)
    for followee in followees:
        graph.unfollow(username, followee)  # the followee's followers count drops in the same transaction
    return len(followees) < PAGE


def _followers(username: str) -> bool:
    """Each follower: the user's entries leave their feed, then the edge (their following count -1)."""
    for shard in range(counters.shard_count(FOLLOWERS, username)):
        followers = graph.followers_page(username, shard, None, PAGE)
        for follower in followers:
            feeds.remove_author(follower, username)
            graph.unfollow(follower, username)  # False: gone already (a redelivery), nothing counted
        if followers:
            return False
    return True


def _own_feed(username: str) -> bool:
    accounts.delete_feed_partition(username)
    return True


def _counters(username: str) -> bool:
    for kind in (FOLLOWERS, FOLLOWING, PHOTOS):
        accounts.delete_counters(kind, username, counters.regions(), counters.shard_count(kind, username))
    return True


def _registry(username: str) -> bool:
    accounts.remove_from_registry(username)
    return True


def _quotas(username: str) -> bool:
    limits = {action: quotas.limit_of(action) for action in PER_USER_QUOTAS}
    accounts.delete_quota_windows(quota_windows(username, time.time(), limits))
    return True


def _exports(username: str) -> bool:
    """Export zips (``exports/{username}/``) and the export record."""
    from chalicelib import export

    s3, bucket = aws.client("s3"), get_settings().media_bucket
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=export.user_exports_prefix(username)):
        doomed = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    accounts.delete_export(username)
    return True


def _identity(username: str) -> bool:
    """Delete the Cognito user; the cut-off is kept only until the last access token has expired."""
    identity.delete_user(username)
    accounts.shorten_cutoff(username, int(time.time()) + ACCESS_TOKEN_SECONDS + 60)
    return True


def _lock_out(username: str) -> bool:
    lock_out(username)
    return True


def _other_regions(username: str) -> bool:
    """Queue the sweep of every other region's regional data (sent again on a redelivery: harmless)."""
    settings = get_settings()
    for region, queue_url, body in regional_sweeps(username, settings.region, settings.serving_regions,
                                                   settings.fanout_queue_urls):
        aws.client("sqs", region=region).send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    return True


def sweep_region(username: str) -> str:
    """Delete this region's regional data of an account erased in another region: its quota windows,
    its export record and export zips. Idempotent (removals of absent items succeed)."""
    _quotas(username)
    _exports(username)
    logger.info("regional data of an erased account swept")
    return "swept"


_STEP_FUNCTIONS = {
    "lock_out": _lock_out, "photos": _photos, "likes": _likes, "following": _following, "followers": _followers,
    "own_feed": _own_feed, "counters": _counters, "registry": _registry, "quotas": _quotas, "exports": _exports,
    "identity": _identity, "other_regions": _other_regions,
}
