"""The data tier's one seam: a repository module per aggregate.

Each module owns its aggregate's keys, conditions and DynamoDB error translation, speaks the domain
(dataclasses, plain values, booleans such as "already done") and is the only code that touches
PynamoDB or the DynamoDB client. Services above it never see a model, an expression or a botocore
error code; :mod:`chalicelib.ddb` stays the one place that reads error codes.

- :mod:`.users` profiles and display names (and the health probe's table read)
- :mod:`.photos` photo records, their lifecycle writes and owner listings
- :mod:`.graph` follow edges, follower/following listings, the celebrity registry
- :mod:`.likes` like edges
- :mod:`.counters` sharded, region-scoped counters
- :mod:`.feeds` pushed feed entries
- :mod:`.jobs` fan-out checkpoints
- :mod:`.sessions` sign-out records
- :mod:`.quotas` fixed-window quota counts

Transactions that span aggregates (an edge and its counters) are composed here, from the
counters repository's increment operations, so a count and its edge stay one ``TransactWriteItems``.

The one exception to the seam: Powertools idempotency (``chalicelib.pipeline``) persists its records
in DynamoDB through its own ``DynamoDBPersistenceLayer``, given a client from :func:`chalicelib.aws.client`.
``tests/unit/test_data_seam.py`` enforces all of this.

Reads of hot, rarely changing items go through the container's read cache (:mod:`chalicelib.cache`,
TTLs in ``docs/caching.md``); the repositories update or drop its entries when they write, so a
container's own writes are visible to its next request. Nothing outside the repositories uses it.
"""


def forget_cached_reads() -> None:
    """Forget this container's cached reads (tests start each case with a fresh container)."""
    from chalicelib import cache

    cache.reset()
