"""Home feeds with hybrid fan-out: pushed for ordinary authors, pulled for celebrities.

Write path (the ``fan_out_feed`` worker, fed by ``photo_ready`` messages from the pipeline):
the photo is written into its owner's own feed; then, unless the owner is a celebrity, into the
feed partition of every follower, page by page across all followers shards. After every page the
position is checkpointed in the jobs table, so a crashed or redelivered fan-out resumes where it
stopped; one invocation writes at most :data:`MAX_FOLLOWERS_PER_INVOCATION` feeds and re-enqueues a
continuation carrying its position. Feed writes are idempotent puts (same key, same item).

Follow and unfollow (:func:`follow`, :func:`unfollow`): the request changes the graph and queues one
message on the fanout queue, nothing more. The worker then backfills the followee's photos of the
last :data:`BACKFILL_DAYS` days (at most :data:`BACKFILL_MAX_PHOTOS`, about two pages) into the new
follower's feed, with the same feed keys as the normal fan-out, so a redelivered backfill or a photo
also pushed by its own fan-out is one entry. After an unfollow it deletes that author's entries from
the reader's feed. Both re-check the edge when they run, so whichever of a follow/unfollow pair is
processed last cannot undo the newer state (and the read path filters unfollowed authors anyway).

Read path: the caller's feed partition newest first, merged with the newest photos of every
followed celebrity (``PhotosTable.by_owner``), by ``created_at#photo_id`` descending. Pushed entries
are checked against the photos table in one BatchGetItem per page: deleted or no-longer-ready photos
are skipped and captions/renditions are always current (edits re-version renditions). Entries of
authors the caller no longer follows are skipped too. A celebrity's newest page is shared by all their
followers: cached per container (``timeline`` TTL) and, in stages with DAX, read through DAX's query
cache (its query TTL): a follower sees a celebrity's new or changed photo within both TTLs
(``docs/cache.md``). A celebrity's own feed reads their own photos straight from DynamoDB.
"""
from __future__ import annotations

import json
import time
from typing import Any

from chalicelib import aws, celebrities, follows, keys, listings
from chalicelib.observability import adopt_correlation_id, correlation_attributes, logger, metrics
from chalicelib.photos import READY, Photo, photo_likes, photo_view
from chalicelib.repositories import counters, feeds, graph, jobs
from chalicelib.repositories import photos as photo_records
from chalicelib.repositories import users as profiles
from chalicelib.repositories.counters import FOLLOWERS, LIKES
from chalicelib.repositories.feeds import FeedEntry
from chalicelib.settings import get_settings
from chalicelib.users import display_names, now_iso

FEED_TTL_SECONDS = 30 * 24 * 3600
JOB_TTL_SECONDS = 7 * 24 * 3600
#: Followers read (and feeds written) per checkpoint.
PAGE_SIZE = 100
#: Feeds written per invocation before the rest is handed to a continuation message.
MAX_FOLLOWERS_PER_INVOCATION = 1_000
#: Merge rounds per feed page (a round refills when deleted/unfollowed entries were skipped).
MAX_READ_ROUNDS = 5
#: A new follower's feed gets the followee's photos of this many days ...
BACKFILL_DAYS = 30
#: ... at most this many (about two pages of the feed).
BACKFILL_MAX_PHOTOS = 40
DONE = "#done"
RUNNING, COMPLETE = "running", "done"


# --- Lambda entry point -----------------------------------------------------------------------------

def handle_fanout(event: dict, context: Any) -> dict:
    """SQS batch of ``photo_ready`` / ``fanout_continue`` / ``follow_backfill`` / ``unfollow_cleanup``
    (and the workers' other jobs: ``erase_account``, ``erase_regional``, ``export_account``,
    ``reconcile_counters``)
    messages; failures retry per message."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    return process_partial_response(
        event=event, record_handler=_fanout_record, processor=BatchProcessor(EventType.SQS), context=context
    )


def _fanout_record(record) -> None:
    adopt_correlation_id(record.raw_event)
    message = json.loads(record.body)
    kind = message.get("type")
    if kind in ("photo_ready", "fanout_continue"):
        outcome = fan_out(message)
        logger.info("fan-out message handled", extra={"photo_id": message.get("photo_id"), "outcome": outcome})
    elif kind == BACKFILL:
        backfill(message["reader"], message["author"])
    elif kind == CLEANUP:
        remove_author(message["reader"], message["author"])
    elif kind == "erase_account":  # account erasure shares this worker and queue (chalicelib.erasure)
        from chalicelib import erasure

        erasure.erase(message["job"])
    elif kind == "erase_regional":  # another region's erasure: this region's regional data of the user
        from chalicelib import erasure

        erasure.sweep_region(message["user"])
    elif kind == "export_account":  # data export shares it too (chalicelib.export)
        from chalicelib import export

        export.build(message["user"], message["job"])
    elif kind == "reconcile_counters":  # on-demand reconciliation (the drill); a no-op outside the primary
        from chalicelib import reconcile

        logger.info("reconciliation run", extra=reconcile.run(full=bool(message.get("full", True))))
    else:
        logger.warning("ignoring unknown fan-out message", extra={"type": kind})


# --- follow / unfollow ------------------------------------------------------------------------------

BACKFILL, CLEANUP = "follow_backfill", "unfollow_cleanup"


def follow(follower: str, followee_name: str) -> None:
    """``follower`` follows ``followee_name`` and their recent photos are queued into the follower's feed.

    Queued on every successful request, a repeated follow included: a client retrying a follow whose
    queueing failed (a 5xx) still gets the backfill, and the backfill is idempotent.
    """
    follows.follow(follower, followee_name)
    _queue(BACKFILL, follower, followee_name.lower())


def unfollow(follower: str, followee_name: str) -> None:
    """``follower`` unfollows ``followee_name``; that author's entries leave the feed asynchronously
    (later pages skip them at once: the read path shows followed authors only)."""
    follows.unfollow(follower, followee_name)
    _queue(CLEANUP, follower, followee_name.lower())


def _follows(reader: str, author: str) -> bool:
    """Whether ``reader`` follows ``author`` now (strongly consistent read of the edge)."""
    return graph.follows(reader, author)


def _queue(kind: str, reader: str, author: str) -> None:
    body = {"type": kind, "reader": reader, "author": author}
    aws.client("sqs").send_message(QueueUrl=get_settings().fanout_queue_url, MessageBody=json.dumps(body))


def backfill_since(now: float, days: int = BACKFILL_DAYS) -> str:
    """The ``created_at#photo_id`` bound of a backfill: photos created after ``now`` minus ``days``."""
    from datetime import datetime, timedelta, timezone

    since = datetime.fromtimestamp(now, timezone.utc) - timedelta(days=days)
    return since.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def backfill(reader: str, author: str, now: float | None = None) -> str:
    """Write ``author``'s recent ready photos into ``reader``'s feed if ``reader`` still follows them."""
    if not _follows(reader, author):
        return "not-following"
    if celebrities.is_celebrity(author):
        return "celebrity"  # pulled at read time: nothing to push
    since = backfill_since(time.time() if now is None else now)
    photos = photo_records.ready_after(author, since, BACKFILL_MAX_PHOTOS)
    if photos:  # the index projects every attribute: these are whole records
        name = _display_name(author)
        feeds.write_entries(reader, [_feed_fields(photo, name) for photo in photos])
    return f"backfilled {len(photos)}"


def remove_author(reader: str, author: str) -> str:
    """Delete ``author``'s entries from ``reader``'s feed unless ``reader`` follows them again."""
    if _follows(reader, author):
        return "following-again"
    return f"removed {feeds.remove_author(reader, author)}"


# --- the work -----------------------------------------------------------------------------------------

def fan_out(message: dict) -> str:
    """Push one ready photo into feeds, resuming from its checkpoint. Returns what happened."""
    photo_id = message["photo_id"]
    photo = photo_records.get(photo_id, consistent=True)
    if photo is None:
        return "photo-deleted"
    if photo.status != READY:
        return "not-ready"
    job = _load_job(photo_id)
    if job is not None and job.status == COMPLETE:
        return "already-done"
    position = job.position if job is not None and job.position else message.get("position")
    position = position or {"own": False, "shards": {}}
    owner = photo.owner
    fields = _feed_fields(photo, _display_name(owner))
    if not position.get("own"):
        _write_feed_items([owner], fields)
        position["own"] = True
        _save_job(photo_id, RUNNING, position)
    shards = counters.shard_count(FOLLOWERS, owner, fresh=True)  # every shard written so far: none skipped
    if shards > 1:
        counters.reshard(LIKES, photo_id, shards)  # likes of a big audience's photo are hot too
    if celebrities.is_celebrity(owner):
        _save_job(photo_id, COMPLETE, {**position, "mode": "pull"})
        return "celebrity"
    written = 0
    for shard in range(shards):  # the latest count: shards added by a reshard meanwhile are included
        last = position["shards"].get(str(shard))
        while last != DONE:
            followers = graph.followers_page(owner, shard, last or None, PAGE_SIZE, fresh=True)
            _write_feed_items(followers, fields)
            last = followers[-1] if len(followers) == PAGE_SIZE else DONE
            position["shards"][str(shard)] = last
            _save_job(photo_id, RUNNING, position, written=len(followers))
            written += len(followers)
            remaining = last != DONE or shard + 1 < shards
            if written >= MAX_FOLLOWERS_PER_INVOCATION and remaining:
                _continue_later(message, position)
                return "continued"
    _save_job(photo_id, COMPLETE, position)
    return "done"


def _feed_fields(photo: Photo, display_name: str) -> dict:
    """What a feed entry denormalises from the photo (enough to show it without another read)."""
    return {
        "feed_sort": keys.feed_sort_key(photo.created_at, photo.photo_id),
        "photo_id": photo.photo_id,
        "owner": photo.owner,
        "owner_display_name": display_name,
        "caption": photo.caption or "",
        "width": photo.width,
        "height": photo.height,
        "version": photo.version,
        "renditions": photo.renditions,
        "created_at": photo.created_at,
        "expires_at": int(time.time()) + FEED_TTL_SECONDS,
    }


def _write_feed_items(readers: list[str], fields: dict) -> None:
    """Idempotent puts of one photo into each reader's feed (BatchWriteItem, 25 per call)."""
    feeds.write(readers, fields)


def _display_name(username: str) -> str:
    return profiles.display_name(username)


def _load_job(photo_id: str) -> jobs.FanoutJob | None:
    return jobs.load_fanout(photo_id)


def _save_job(photo_id: str, status: str, position: dict, written: int = 0) -> None:
    """Checkpoint: the position after the last page whose feeds were all written."""
    jobs.save_fanout(photo_id, status, position, written, now_iso(), int(time.time()) + JOB_TTL_SECONDS)


def _continue_later(message: dict, position: dict) -> None:
    body = {"type": "fanout_continue", "photo_id": message["photo_id"], "owner": message.get("owner"),
            "created_at": message.get("created_at"), "position": position}
    aws.client("sqs").send_message(QueueUrl=get_settings().fanout_queue_url, MessageBody=json.dumps(body),
                                   MessageAttributes=correlation_attributes())


# --- reading ----------------------------------------------------------------------------------------

def read_feed(caller: str, limit: int, cursor: str | None) -> dict:
    """The caller's home feed, newest first: followed authors' photos (pushed or pulled) and their own."""
    scope = f"feed:{caller}"
    frontier = listings.decode_position(cursor, scope)
    following = follows.following_set(caller)
    allowed = following | {caller}
    pulled = celebrities.celebrities()
    pulled_from = sorted((following & pulled) | ({caller} & pulled))
    chosen: list[tuple[Photo, str | None]] = []  # (live record, denormalised display name)
    more = True
    for _ in range(MAX_READ_ROUNDS):
        want = limit - len(chosen)
        if want <= 0 or not more:
            break
        candidates, frontier, more = _merge_round(caller, pulled_from, frontier, want)
        chosen.extend(_live(candidates, allowed))
    likes = photo_likes([record.photo_id for record, _ in chosen])
    names = display_names(record.owner for record, name in chosen if name is None)
    items = []
    for record, name in chosen:
        view = photo_view(record, likes.get(record.photo_id, 0))
        view["owner_display_name"] = name or names.get(record.owner, record.owner)
        items.append(view)
    next_cursor = listings.encode_position(frontier, scope) if more and frontier else None
    metrics.add_metric(name="FeedReads", unit="Count", value=1)
    return {"items": items, "next_cursor": next_cursor}


def _merge_round(caller: str, pulled_from: list[str], frontier: str | None, want: int):
    """Read ``want`` entries after ``frontier`` from every source and merge them newest first."""
    sources: list[list[Any]] = []
    truncated: list[bool] = []
    for celebrity in pulled_from:  # pulled: the author's own listing (live records)
        rows = photo_records.ready_before(celebrity, frontier, want, for_owner=celebrity == caller)
        sources.append([(r.owner_sort, r) for r in rows])
        truncated.append(len(rows) == want)
    pushed = feeds.entries_before(caller, frontier, want)
    sources.append([(r.feed_sort, r) for r in pushed])
    truncated.append(len(pushed) == want)
    merged, new_frontier, more = listings.merge_page(sources, truncated, want, key=lambda pair: pair[0],
                                                   descending=True)
    return [entry for _, entry in merged], new_frontier or frontier, more


def _live(candidates: list[Any], allowed: set[str]) -> list[tuple[Photo, str | None]]:
    """Resolve pushed entries to their live photo (one BatchGetItem); skip deleted/unfollowed ones."""
    pushed_ids = [c.photo_id for c in candidates if isinstance(c, FeedEntry) and c.owner in allowed]
    live = photo_records.batch_get(pushed_ids)
    resolved: list[tuple[Photo, str | None]] = []
    for candidate in candidates:
        if isinstance(candidate, Photo):
            resolved.append((candidate, None))
            continue
        record = live.get(candidate.photo_id)
        if record is not None and record.status == READY and candidate.owner in allowed:
            resolved.append((record, candidate.owner_display_name))
    return resolved
