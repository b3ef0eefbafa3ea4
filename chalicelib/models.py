"""PynamoDB models: the storage shape of each table in ``infra/stateful.yaml``.

Table names are not known at import time (they come from the stage's settings), so each model
names the setting holding its table and :func:`bound` points it at that table on first use.
"""
from __future__ import annotations

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib import aws
from chalicelib.settings import get_settings


class _Table(Model):
    class Meta:
        table_name = "unbound"

    settings_attr = ""


class UserRecord(_Table):
    """A profile. Identity (password, email verification) lives in Cognito."""

    class Meta:
        table_name = "unbound"

    settings_attr = "users_table"
    username = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(null=True)
    display_name = UnicodeAttribute(null=True)
    bio = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    #: The region that served the sign-up: it takes the user's writes while healthy (``chalicelib.regions``).
    home_region = UnicodeAttribute(null=True)


class RevokedTokenRecord(_Table):
    """A sign-out, kept until every token it refuses would have expired anyway.

    Keys (from :mod:`chalicelib.sessions`): ``session#{origin_jti}`` ends one sign-in's session
    (every access token minted from its refresh token); ``user#{username}`` holds the user's
    sign-out-everywhere cut-off (``cutoff_ms``) and the sessions signed in during the cut-off's
    second after it (``exempt_sessions``). ``expires_at`` is the table's TTL attribute. DynamoDB
    deletes expired items lazily (and moto never does), so readers treat an expired record as absent.
    """

    class Meta:
        table_name = "unbound"

    settings_attr = "sessions_table"
    token_id = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    expires_at = NumberAttribute()
    cutoff_ms = NumberAttribute(null=True)
    exempt_sessions = UnicodeSetAttribute(null=True)


class CounterRecord(_Table):
    """One shard of a counter, (``#meta`` items) the shard count of a counter, (``#total`` items) the
    sum of one region's shards, or (``#g{k}`` items) a group subtotal of a block of shards summed into
    the total in turn; totals and groups hold one ``s{shard}`` / ``g{group}`` attribute per part: the
    version applied (:mod:`chalicelib.aggregator`)."""

    class Meta:
        table_name = "unbound"

    settings_attr = "counters_table"
    counter_id = UnicodeAttribute(hash_key=True)
    n = NumberAttribute(null=True)
    shards = NumberAttribute(null=True)
    #: A shard's write count (every increment ADDs 1): the stream aggregator's per-shard version.
    version = NumberAttribute(null=True)


class OwnerIndex(GlobalSecondaryIndex):
    """A user's photos, newest first (``owner_sort`` = created_at#photo_id)."""

    class Meta:
        index_name = "by_owner"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)
    owner_sort = UnicodeAttribute(range_key=True)


class RenditionAttribute(MapAttribute):
    key = UnicodeAttribute()
    width = NumberAttribute()
    height = NumberAttribute()
    content_type = UnicodeAttribute()


class PhotoRecord(_Table):
    """A photo. ``status`` moves pending → ready | failed, and any of them → deleting (see
    :mod:`chalicelib.lifecycle`). ``expires_at`` (the table's TTL attribute) is set only while the
    photo is pending; ``original_width``/``original_height`` are the frame edits are applied to."""

    class Meta:
        table_name = "unbound"

    settings_attr = "photos_table"
    photo_id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    owner_sort = UnicodeAttribute()
    by_owner = OwnerIndex()
    caption = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    error = UnicodeAttribute(null=True)
    content_type = UnicodeAttribute()
    declared_size = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)
    width = NumberAttribute(null=True)
    height = NumberAttribute(null=True)
    original_width = NumberAttribute(null=True)
    original_height = NumberAttribute(null=True)
    version = UnicodeAttribute(null=True)
    original_etag = UnicodeAttribute(null=True)
    renditions = MapAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    pending_edits = UnicodeSetAttribute(null=True)
    correlation_id = UnicodeAttribute(null=True)
    applied_edits = UnicodeAttribute(null=True)  # JSON: the edits the current version was rendered with
    original_region = UnicodeAttribute(null=True)  # the region whose media bucket received the original
    original_bucket = UnicodeAttribute(null=True)


def bound(model: type[_Table]) -> type[_Table]:
    """``model`` pointed at its stage table (cheap after the first call): writes and consistent reads."""
    return aws.bind_model(model, getattr(get_settings(), model.settings_attr))


def reading(model: type[_Table]) -> type[_Table]:
    """``model``'s reading twin (:func:`chalicelib.aws.reader_model`): eventually consistent reads."""
    return aws.reader_model(model, getattr(get_settings(), model.settings_attr))


def pulled(model: type[_Table]) -> type[_Table]:
    """``model``'s twin for the pull side of other readers' feeds (:func:`chalicelib.aws.shared_query_model`):
    its Queries may be served by DAX's query cache, which writes never invalidate. Never for a read
    its reader must see their own writes in."""
    return aws.shared_query_model(model, getattr(get_settings(), model.settings_attr))


class GraphEdgeRecord(_Table):
    """An item of the social graph (``pk``/``sk`` from :mod:`chalicelib.keys`).

    - following edge: ``pk=following#{follower}``, ``sk=followee``, ``shard`` = the followers shard
      holding its mirror (so unfollow and resharding never lose the mirror);
    - followers edge: ``pk=followers#{followee}#{shard}``, ``sk=follower``;
    - like edge: ``pk=liked#{user}``, ``sk=photo_id``, ``shard`` = the likers shard holding its mirror;
    - likers edge: ``pk=likers#{photo_id}#{shard}``, ``sk=user`` (found by an account erasure);
    - celebrity registry copy: ``pk=celebrities#{copy}``, ``sk="registry"``, ``members`` = usernames.
    """

    class Meta:
        table_name = "unbound"

    settings_attr = "graph_table"
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    shard = NumberAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    members = UnicodeSetAttribute(null=True)


class FeedItemRecord(_Table):
    """A photo pushed into one reader's feed, with the fields the feed shows denormalised.

    ``feed_sort`` = created_at#photo_id (newest first when queried backwards); ``expires_at`` is the
    table's TTL attribute (feeds keep 30 days of pushed entries; older pages come from listings).
    """

    class Meta:
        table_name = "unbound"

    settings_attr = "feeds_table"
    feed_owner = UnicodeAttribute(hash_key=True)
    feed_sort = UnicodeAttribute(range_key=True)
    photo_id = UnicodeAttribute()
    owner = UnicodeAttribute()
    owner_display_name = UnicodeAttribute(null=True)
    caption = UnicodeAttribute(null=True)
    width = NumberAttribute(null=True)
    height = NumberAttribute(null=True)
    version = UnicodeAttribute(null=True)
    original_etag = UnicodeAttribute(null=True)
    renditions = MapAttribute(null=True)
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()


class FanoutJobRecord(_Table):
    """Checkpoint of one photo's feed fan-out (``job_id`` = ``fanout#{photo_id}``; TTL ``expires_at``).

    ``position`` is JSON: ``{"own": bool, "shards": {"0": last follower written | "#done"}}``.
    """

    class Meta:
        table_name = "unbound"

    settings_attr = "jobs_table"
    job_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    position = UnicodeAttribute(null=True)
    written = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class QuotaRecord(_Table):
    """One subject's count of one action in one fixed window (see :mod:`chalicelib.quotas`).

    ``quota_id`` = ``quota#{action}#{subject}#{window_start}``; ``expires_at`` is the table's TTL
    attribute (window end + grace), so finished windows disappear on their own.
    """

    class Meta:
        table_name = "unbound"

    settings_attr = "quotas_table"
    quota_id = UnicodeAttribute(hash_key=True)
    n = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)
