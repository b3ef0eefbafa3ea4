"""Key design: every DynamoDB key and S3 key the service writes, as pure functions.

Nothing here does I/O. The scale simulator in ``bench/`` drives these same functions, so the load
it reports per partition key is the load this code would really put on DynamoDB.

Rules:
- Ids are ULIDs: 48-bit millisecond time + 80 random bits in Crockford base32, so they sort by
  creation time, are unique without coordination across regions, and never hot-spot a partition.
- Counters are split into shards ``{kind}#{entity}#{region}#{n}``: writes in one region touch only
  that region's shards, so concurrent increments in several regions never overwrite each other
  under last-writer-wins global-table replication. Reads sum every region's shards.
- Originals live under ``uploads/`` (private, never served); renditions under ``media/`` with a
  version in the path, so CDN caches never see a changed object under an old URL.
"""
from __future__ import annotations

import hashlib
import os
import re
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

UPLOADS_PREFIX = "uploads/"
MEDIA_PREFIX = "media/"


def new_id(now_ms: int | None = None, randomness: bytes | None = None) -> str:
    """A 26-character ULID, lexicographically ordered by creation time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = os.urandom(10) if randomness is None else randomness
    value = (ms << 80) | int.from_bytes(rand, "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


# --- identifiers from clients ------------------------------------------------------------------

_USERNAME = re.compile(r"[A-Za-z0-9_]{3,30}")
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")

#: Rules for every path parameter a route takes: name -> (check, what a valid value looks like).
PATH_PARAMETER_RULES = {
    "username": (lambda value: _USERNAME.fullmatch(value) is not None,
                 "must be 3-30 letters, digits or underscores"),
    "photo_id": (lambda value: _ULID.fullmatch(value) is not None,
                 "must be a photo id (26 characters of Crockford base32)"),
    "job": (lambda value: re.fullmatch(r"[0-9a-f]{32}", value) is not None,
            "must be a job id (32 lowercase hex digits)"),
}


def path_parameter_problems(params: dict[str, str] | None) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` for each path parameter breaking its rule (pure).

    Every route's parameters have a rule (a unit test walks the app's routes to keep it so).
    """
    problems = []
    for name, value in (params or {}).items():
        rule = PATH_PARAMETER_RULES.get(name)
        if rule is not None and (not isinstance(value, str) or not rule[0](value)):
            problems.append({"field": name, "message": rule[1]})
    return problems


def stable_shard(value: str, shards: int) -> int:
    """A stable shard number in ``[0, shards)`` for ``value`` (same input, same shard, forever)."""
    if shards <= 1:
        return 0
    digest = hashlib.blake2b(value.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


# --- counters -------------------------------------------------------------------------------

def counter_shard_id(kind: str, entity: str, region: str, shard: int) -> str:
    """The item holding one region's shard ``shard`` of counter ``kind`` of ``entity``."""
    return f"{kind}#{entity}#{region}#{shard}"


def counter_meta_id(kind: str, entity: str) -> str:
    """The item recording how many shards counter ``kind`` of ``entity`` is spread over."""
    return f"{kind}#{entity}#meta"


def counter_shard_ids(kind: str, entity: str, regions: tuple[str, ...], shards: int) -> list[str]:
    """Every shard item of the counter (its totals sum them; erasure deletes them)."""
    return [counter_shard_id(kind, entity, r, n) for r in regions for n in range(shards)]


def counter_total_id(kind: str, entity: str, region: str) -> str:
    """The item holding the sum of one region's shards of a counter (kept by the stream aggregator)."""
    return f"{kind}#{entity}#{region}#total"


#: Shards ``0 .. COUNTER_DIRECT_SHARDS - 1`` of a region are summed straight into its total; every
#: further block of ``COUNTER_GROUP_SHARDS`` shards into a group subtotal item, whose changes the
#: aggregator sums into the total in turn. So no item the aggregator writes has more than
#: ``max(COUNTER_DIRECT_SHARDS + groups, COUNTER_GROUP_SHARDS)`` parts (a few hundred bytes: 1 WCU per
#: write) nor more than that many stream shards writing it, whatever the shard count.
COUNTER_DIRECT_SHARDS = 32
COUNTER_GROUP_SHARDS = 32


def counter_group_of(shard: int) -> int | None:
    """The group subtotal shard ``shard`` is summed into; None: summed straight into the total.

    A function of the shard number alone, so a reshard (which only adds shards) never moves a
    shard's count from one parent to another."""
    if shard < COUNTER_DIRECT_SHARDS:
        return None
    return 1 + (shard - COUNTER_DIRECT_SHARDS) // COUNTER_GROUP_SHARDS


def counter_group_id(kind: str, entity: str, region: str, group: int) -> str:
    """The group subtotal item ``group`` (>= 1) of one region's shards of a counter."""
    return f"{kind}#{entity}#{region}#g{group}"


def counter_groups(shards: int) -> int:
    """How many group subtotal items a counter of ``shards`` shards per region has."""
    extra = max(0, int(shards) - COUNTER_DIRECT_SHARDS)
    return -(-extra // COUNTER_GROUP_SHARDS)


def counter_group_ids(kind: str, entity: str, regions: tuple[str, ...], shards: int) -> list[str]:
    """Every group subtotal item of the counter (erasure deletes them)."""
    return [counter_group_id(kind, entity, r, g) for r in regions for g in range(1, counter_groups(shards) + 1)]


def counter_parts(shards: int) -> int:
    """Parts (direct shards and groups) a region's total of a counter of ``shards`` shards sums."""
    return min(int(shards), COUNTER_DIRECT_SHARDS) + counter_groups(shards)


def counter_total_ids(kind: str, entity: str, regions: tuple[str, ...]) -> list[str]:
    """Every item a read of the counter sums: one total per region, whatever the shard count."""
    return [counter_total_id(kind, entity, r) for r in regions]


def parse_counter_part_id(counter_id: str) -> tuple[str, str, str] | None:
    """``(parent item id, region, part)`` of an item the aggregator sums: a shard (part ``s{n}``,
    parent its region's total or group) or a group subtotal (part ``g{k}``, parent the total).
    None for ``#meta`` and ``#total`` items. ``part`` names the parent's attribute holding the
    part's applied version."""
    head, _, last = counter_id.rpartition("#")
    prefix, _, region = head.rpartition("#")
    if not head or not prefix or "#" not in prefix or not region:
        return None
    if last.isdigit():
        group = counter_group_of(int(last))
        parent = f"{head}#total" if group is None else f"{head}#g{group}"
        return parent, region, f"s{int(last)}"
    if last[:1] == "g" and last[1:].isdigit() and int(last[1:]) >= 1:
        return f"{head}#total", region, last
    return None


def counter_part_id(parent_id: str, part: str) -> str:
    """The id of the item summed into ``parent_id`` as ``part`` (the inverse of
    :func:`parse_counter_part_id`)."""
    head = parent_id.rpartition("#")[0]
    return f"{head}#{part[1:]}" if part[:1] == "s" else f"{head}#{part}"


def is_counter_group_id(counter_id: str) -> bool:
    """Whether ``counter_id`` is a group subtotal item (its own changes are summed in turn)."""
    last = counter_id.rpartition("#")[2]
    return last[:1] == "g" and last[1:].isdigit()


# --- photos ---------------------------------------------------------------------------------

def owner_sort_key(created_at: str, photo_id: str) -> str:
    """Sort key of a photo in its owner's listing: creation time, then id for ties."""
    return f"{created_at}#{photo_id}"


def upload_key(owner: str, photo_id: str) -> str:
    """Where the client uploads the original (private; S3 notifies the uploads queue)."""
    return f"{UPLOADS_PREFIX}{owner}/{photo_id}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """``(owner, photo_id)`` from an upload key, or None for any other key."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key[len(UPLOADS_PREFIX):].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def rendition_key(photo_id: str, version: str, name: str, extension: str) -> str:
    """A rendition's key: versioned, so a new edit is a new URL and CDN copies stay immutable."""
    return f"{MEDIA_PREFIX}renditions/{photo_id}/{version}/{name}.{extension}"


def rendition_prefix(photo_id: str) -> str:
    return f"{MEDIA_PREFIX}renditions/{photo_id}/"


def media_url(base_url: str, key: str) -> str:
    """Public URL of a ``media/`` key: the site serves ``/media/*`` from the media bucket."""
    if not key.startswith(MEDIA_PREFIX):
        raise ValueError(f"not a public media key: {key}")
    return f"{base_url.rstrip('/')}/{key[len(MEDIA_PREFIX):]}"


# --- social graph and feeds ------------------------------------------------------------------
# GraphTable (pk, sk). A user's followers are spread over shards, chosen by a stable hash of the
# follower, so a celebrity's follower list never concentrates on one partition key; the edge in
# the follower's own ``following`` partition remembers which shard holds its mirror, so unfollow
# and re-sharding never lose an edge.

def following_pk(follower: str) -> str:
    """Partition of everyone ``follower`` follows (sk = followee)."""
    return f"following#{follower}"


def followers_pk(followee: str, shard: int) -> str:
    """One shard of ``followee``'s followers (sk = follower)."""
    return f"followers#{followee}#{shard}"


def follower_shard(follower: str, shards: int) -> int:
    """Which followers shard a new edge from ``follower`` goes to."""
    return stable_shard(follower, shards)


def liked_pk(user: str) -> str:
    """Partition of the photos ``user`` liked (sk = photo_id): the per-caller ``liked`` check.

    The edge's ``shard`` remembers which likers shard holds its mirror (as following edges do)."""
    return f"liked#{user}"


def likers_pk(photo_id: str, shard: int) -> str:
    """One shard of the users who liked ``photo_id`` (sk = user): the like edge's mirror, so an
    erasure finds other users' likes of the erased user's photos. Sharded like the photo's ``likes``
    counter (a viral photo's likers never concentrate on one partition key)."""
    return f"likers#{photo_id}#{shard}"


def liker_shard(user: str, shards: int) -> int:
    """Which likers shard a new like by ``user`` goes to."""
    return stable_shard(user, shards)


CELEBRITY_REGISTRY_COPIES = 8


def celebrity_registry_pk(copy: int) -> str:
    """One of several identical copies of the set of celebrity authors (read-sharded hot item)."""
    return f"celebrities#{copy}"


def feed_sort_key(created_at: str, photo_id: str) -> str:
    """FeedsTable sort key: newest first when queried backwards; ties broken by id."""
    return f"{created_at}#{photo_id}"


def fanout_job_id(photo_id: str) -> str:
    """JobsTable item holding a fan-out's checkpoint, so a crashed fan-out resumes where it stopped."""
    return f"fanout#{photo_id}"


# --- multi-region reconciliation -------------------------------------------------------------------

SUSPECT_PARTITIONS = 4


def suspect_pk(kind: str, entity: str) -> str:
    """GraphTable partition listing counters to reconcile first (global: noted in any region)."""
    return f"suspects#{stable_shard(f'{kind}#{entity}', SUSPECT_PARTITIONS)}"


def suspect_sk(kind: str, entity: str) -> str:
    return f"{kind}#{entity}"


def parse_counter_item_id(counter_id: str) -> tuple[str, str] | None:
    """``(kind, entity)`` of a counter shard or meta item id (``{kind}#{entity}#{region}#{n}`` or
    ``{kind}#{entity}#meta``); None for anything else."""
    parts = counter_id.split("#")
    if len(parts) == 4 and parts[3].isdigit():
        return parts[0], parts[1]
    if len(parts) == 3 and parts[2] == "meta":
        return parts[0], parts[1]
    return None


RECONCILE_JOB_ID = "reconcile#counters"

#: User metadata every upload carries (a field of its presigned POST): the region that granted it.
#: S3 replication copies user metadata, so a replica copy in another region's bucket still names
#: the region whose record it belongs to (and whose worker alone may process or remove it).
UPLOAD_REGION_METADATA = "upload-region"


def is_foreign_upload(metadata: dict | None, replication_status: str | None, this_region: str) -> bool:
    """Whether an upload object is not this region's to process or remove: a replica (S3 marks
    replicas ``REPLICA``) or an object granted by another region. An object without the metadata
    (granted before it existed) is this region's."""
    if replication_status == "REPLICA":
        return True
    granted_in = {k.lower(): v for k, v in (metadata or {}).items()}.get(UPLOAD_REGION_METADATA)
    return granted_in is not None and granted_in != this_region


def original_locations(this_region: str, this_bucket: str, original_region: str | None,
                       original_bucket: str | None) -> list[tuple[str, str]]:
    """Where to read a photo's original, in order: ``(region, bucket)`` here first (replicated, or
    uploaded here), then the bucket it was uploaded to in its own region, if that is elsewhere."""
    here = (this_region, this_bucket)
    recorded = (original_region or this_region, original_bucket or this_bucket)
    return [here] if recorded == here else [here, recorded]
