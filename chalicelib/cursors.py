"""Opaque, tamper-proof pagination cursors, with key ids so the signing key can be rotated.

A cursor is ``key_id + "." + base64url(json(position)) + "." + base64url(HMAC-SHA256(scope +
payload))``. The scope names the listing (``photos:alice``, ``feed:bob``), so a cursor from one
listing cannot page through another, and any altered or forged cursor is rejected. The key id
names the key that signed it: after a rotation, cursors signed with the previous key still
verify, so no cursor in flight breaks. Cursors from before key ids (two parts) verify against any
key the keyring knows. Pure: the keys are passed in (a :class:`Keyring`, or one key as bytes).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Protocol

MAX_CURSOR_LENGTH = 2048


class CursorError(ValueError):
    """The cursor was not issued by us for this listing."""


def key_id(key: bytes) -> str:
    """A short public name for a signing key (reveals nothing usable about the key)."""
    return _b64(hashlib.sha256(b"photoscale cursor key id\n" + key).digest()[:6])


class Keyring(Protocol):
    def signing_key(self) -> bytes:
        """The key new cursors are signed with."""

    def verification_key(self, kid: str) -> bytes | None:
        """The key named ``kid``, if it may still verify cursors."""

    def verification_keys(self) -> list[bytes]:
        """Every key that may still verify cursors (current first)."""


@dataclass(frozen=True)
class StaticKeyring:
    """A current key and, during a rotation, the previous one."""

    current: bytes
    previous: bytes | None = None

    def signing_key(self) -> bytes:
        return self.current

    def verification_keys(self) -> list[bytes]:
        return [self.current] + ([self.previous] if self.previous else [])

    def verification_key(self, kid: str) -> bytes | None:
        return next((k for k in self.verification_keys() if key_id(k) == kid), None)


def _keyring(key: bytes | Keyring) -> Keyring:
    return StaticKeyring(key) if isinstance(key, bytes) else key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, scope: str, payload: str) -> str:
    return _b64(hmac.new(key, f"{scope}\n{payload}".encode(), hashlib.sha256).digest()[:16])


def encode(position: dict[str, Any], *, key: bytes | Keyring, scope: str) -> str:
    signing_key = _keyring(key).signing_key()
    payload = _b64(json.dumps(position, separators=(",", ":"), sort_keys=True).encode())
    return f"{key_id(signing_key)}.{payload}.{_mac(signing_key, scope, payload)}"


def decode(cursor: str, *, key: bytes | Keyring, scope: str) -> dict[str, Any]:
    """The position a cursor encodes; :class:`CursorError` unless we issued it for ``scope``."""
    keyring = _keyring(key)
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") not in (1, 2):
        raise CursorError("malformed cursor")
    parts = cursor.split(".")
    if len(parts) == 3:
        kid, payload, mac = parts
        known = keyring.verification_key(kid)
        candidates = [known] if known is not None else []
    else:
        payload, mac = parts
        candidates = keyring.verification_keys()
    if not any(hmac.compare_digest(mac, _mac(k, scope, payload)) for k in candidates):
        raise CursorError("cursor signature does not match")
    try:
        position = json.loads(_unb64(payload))
    except ValueError:
        raise CursorError("malformed cursor") from None
    if not isinstance(position, dict):
        raise CursorError("malformed cursor")
    return position
