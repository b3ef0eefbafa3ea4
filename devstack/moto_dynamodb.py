"""Local stand-in fix: a cancelled ``TransactWriteItems`` leaves moto's tables and their streams in place.

In DynamoDB a cancelled transaction writes nothing and puts nothing on the table's stream. moto
(5.2.5) applies a transaction's writes one by one and, when one is refused, puts back a deep copy of
every table the transaction names, taken before it began. The table *object* changes, and with it
the stream shard: the live shard, which keeps the cancelled writes' records, is orphaned, and the
copy reuses their sequence numbers for the next writes. Serialising requests
(:class:`devstack.embedded_aws.Serialised`) does not help, because reading a stream takes two
requests: a reader that got its iterator (``GetShardIterator``) just before a cancelled transaction
and reads (``GetRecords``) just after it reads the orphan, so it

- receives records of writes that never happened (a counter increment, a follow edge), and
- skips, as already read, the next committed records, which got the same sequence numbers.

The counter aggregator counted phantom increments and missed real ones (totals off by one or stuck on
a missing predecessor, issue 9), and the replicator lost acknowledged follows (issue 10) and
replicated writes that never happened.

:func:`install` wraps moto's ``transact_write_items``: when moto has swapped in its copies, the
original table objects are put back with the copies' content (items and stream records), so every
iterator keeps reading the one live shard and records of the cancelled writes are gone before any
other request can see them. A committed transaction is untouched. Dev-only: installed into the
embedded AWS (``devstack.embedded_aws``) and into the functional tests' in-process moto; the app's
code path (a ``TransactWrite``) is the same boto3 call in both places and in AWS.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def table_names(transact_items: Iterable[Mapping[str, Any]]) -> set[str]:
    """The tables a ``TransactItems`` list names (pure)."""
    return {op["TableName"] for item in transact_items for op in item.values()
            if isinstance(op, Mapping) and op.get("TableName")}


def restore_in_place(live: Any, copy: Any) -> None:
    """Give ``live`` (a moto ``Table``) the content of ``copy`` (moto's pre-transaction deep copy),
    keeping ``live``'s stream shard object: its items, and its stream's records."""
    live.items = copy.items
    if live.stream_shard is not None and copy.stream_shard is not None:
        live.stream_shard.items = copy.stream_shard.items


def keeping_tables(transact_write_items: Callable[..., Any]) -> Callable[..., Any]:
    """``transact_write_items`` whose cancellation restores the tables in place (see the module)."""

    @functools.wraps(transact_write_items)
    def transact(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        live = {name: backend.tables[name] for name in table_names(transact_items) if name in backend.tables}
        try:
            return transact_write_items(backend, transact_items)
        finally:
            for name, table in live.items():
                copy = backend.tables.get(name)
                if copy is not None and copy is not table:  # moto put back its copy: cancelled
                    restore_in_place(table, copy)
                    backend.tables[name] = table

    transact.keeps_tables = True  # type: ignore[attr-defined]
    return transact


def install() -> None:
    """Make moto's cancelled transactions leave tables and streams in place (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    if not getattr(DynamoDBBackend.transact_write_items, "keeps_tables", False):
        DynamoDBBackend.transact_write_items = keeping_tables(DynamoDBBackend.transact_write_items)
