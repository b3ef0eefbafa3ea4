"""Listings that merge several sorted sources (followers shards, celebrities' photos and a feed)
behind one short signed cursor. Pure merge rule plus the cursor codec; no I/O."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from chalicelib import cursors, secrets
from chalicelib.errors import InvalidCursor

T = TypeVar("T")


def merge_page(
    sources: Sequence[Sequence[T]],
    truncated: Sequence[bool],
    limit: int,
    key: Callable[[T], str],
    descending: bool = False,
) -> tuple[list[T], str | None, bool]:
    """One page of a k-way merge of ``sources`` (each sorted by ``key``, all read after one frontier).

    Returns ``(items, frontier, more)``: at most ``limit`` items in order, equal keys emitted once
    (the first source's copy wins), ``frontier`` = key of the last item consumed, and whether more
    may follow. A truncated source (one that may hold more than was read) bounds the merge: once its
    buffer is used up the page stops, because its next unread item could come before anything else.
    Because every source shares the one sort order, the frontier is every source's position at once
    (which keeps cursors short however many sources — shards, celebrities — a listing merges).
    """
    heads = [0] * len(sources)
    items: list[T] = []
    frontier: str | None = None
    better = (lambda a, b: a > b) if descending else (lambda a, b: a < b)
    while len(items) < limit:
        if any(truncated[i] and heads[i] >= len(s) for i, s in enumerate(sources)):
            break
        best: str | None = None
        chosen: T | None = None
        for i, source in enumerate(sources):
            if heads[i] < len(source):
                candidate = key(source[heads[i]])
                if best is None or better(candidate, best):
                    best, chosen = candidate, source[heads[i]]
        if best is None:
            break
        for i, source in enumerate(sources):  # consume the key in every source (dedupe)
            while heads[i] < len(source) and key(source[heads[i]]) == best:
                heads[i] += 1
        items.append(chosen)  # type: ignore[arg-type]
        frontier = best
    more = any(truncated) or any(heads[i] < len(s) for i, s in enumerate(sources))
    return items, frontier, more


def encode_position(frontier: str, scope: str) -> str:
    return cursors.encode({"k": frontier}, key=secrets.cursor_key(), scope=scope)


def decode_position(cursor: str | None, scope: str) -> str | None:
    """The frontier a cursor holds; :class:`InvalidCursor` if we did not issue it for ``scope``."""
    if not cursor:
        return None
    try:
        frontier = cursors.decode(cursor, key=secrets.cursor_key(), scope=scope)["k"]
    except (cursors.CursorError, KeyError, TypeError):
        raise InvalidCursor("The cursor is invalid for this listing.") from None
    if not isinstance(frontier, str):
        raise InvalidCursor("The cursor is invalid for this listing.")
    return frontier
