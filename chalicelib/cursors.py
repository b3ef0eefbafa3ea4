"""Opaque, tamper-proof pagination cursors.

A cursor is ``base64url(json(position)) + "." + base64url(HMAC-SHA256(scope + payload))``. The
scope names the listing (``photos:alice``, ``feed:bob``), so a cursor from one listing cannot page
through another, and any altered or forged cursor is rejected. Pure: the key is passed in.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

MAX_CURSOR_LENGTH = 2048


class CursorError(ValueError):
    """The cursor was not issued by us for this listing."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, scope: str, payload: str) -> str:
    return _b64(hmac.new(key, f"{scope}\n{payload}".encode(), hashlib.sha256).digest()[:16])


def encode(position: dict[str, Any], *, key: bytes, scope: str) -> str:
    payload = _b64(json.dumps(position, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(key, scope, payload)}"


def decode(cursor: str, *, key: bytes, scope: str) -> dict[str, Any]:
    """The position a cursor encodes; :class:`CursorError` unless we issued it for ``scope``."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
        raise CursorError("malformed cursor")
    payload, mac = cursor.split(".")
    if not hmac.compare_digest(mac, _mac(key, scope, payload)):
        raise CursorError("cursor signature does not match")
    try:
        position = json.loads(_unb64(payload))
    except ValueError:
        raise CursorError("malformed cursor") from None
    if not isinstance(position, dict):
        raise CursorError("malformed cursor")
    return position
