"""Secrets the functions need, fetched from Secrets Manager and kept for the warm container.

The cursor signing key rotates the Secrets Manager way: a new version becomes ``AWSCURRENT`` and
the old one ``AWSPREVIOUS`` (``put-secret-value``, or a rotation function). New cursors are signed
with the current key; cursors signed with either verify (:mod:`chalicelib.cursors` names the key
in each cursor). A warm container reloads the keys every :data:`KEYS_MAX_AGE_SECONDS`, and at once
when a cursor names a key it does not know (at most every :data:`MIN_RELOAD_SECONDS`, so forged
key ids cannot turn into a flood of Secrets Manager calls). Rotate no more often than the longest
a reader keeps a cursor plus ``KEYS_MAX_AGE_SECONDS``: a cursor two rotations old is refused.
"""
from __future__ import annotations

import threading
import time

from botocore.exceptions import ClientError

from chalicelib import aws, cursors
from chalicelib.settings import get_settings

KEYS_MAX_AGE_SECONDS = 15 * 60
MIN_RELOAD_SECONDS = 10


class CursorKeyring:
    """The cursor keys (current, previous) from Secrets Manager; a :class:`cursors.Keyring`."""

    def __init__(self, clock=time.time) -> None:  # wall clock: it advances while a sandbox is frozen
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: cursors.StaticKeyring | None = None
        self._loaded_at = 0.0

    def _load(self) -> cursors.StaticKeyring:
        secret_id = get_settings().cursor_secret_arn
        client = aws.client("secretsmanager")
        current = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
        try:
            previous = client.get_secret_value(SecretId=secret_id, VersionStage="AWSPREVIOUS")["SecretString"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            previous = None  # never rotated
        return cursors.StaticKeyring(current.encode(), previous.encode() if previous else None)

    def _current(self, *, reload_if_older_than: float = KEYS_MAX_AGE_SECONDS) -> cursors.StaticKeyring:
        with self._lock:
            if self._keys is None or self._clock() - self._loaded_at >= reload_if_older_than:
                self._keys = self._load()
                self._loaded_at = self._clock()
            return self._keys

    def signing_key(self) -> bytes:
        return self._current().signing_key()

    def verification_keys(self) -> list[bytes]:
        return self._current().verification_keys()

    def verification_key(self, kid: str) -> bytes | None:
        key = self._current().verification_key(kid)
        if key is None:  # rotated since we loaded? look again (rate-limited)
            key = self._current(reload_if_older_than=MIN_RELOAD_SECONDS).verification_key(kid)
        return key

    def forget(self) -> None:
        """Drop the loaded keys (tests switch stacks between modules)."""
        with self._lock:
            self._keys = None


_KEYRING = CursorKeyring()


def cursor_key() -> CursorKeyring:
    """The keys signing pagination cursors (``CursorSecret`` in ``infra/stateful.yaml``)."""
    return _KEYRING


class ExportsSigningKey:
    """The private key (PEM) signing export download links, from Secrets Manager, kept for the warm
    container and reloaded every :data:`KEYS_MAX_AGE_SECONDS` (a rotation: put the new private key
    in the secret and add its public key to the key group before removing the old one)."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pem: bytes | None = None
        self._loaded_at = 0.0

    def pem(self) -> bytes:
        with self._lock:
            if self._pem is None or self._clock() - self._loaded_at >= KEYS_MAX_AGE_SECONDS:
                secret_id = get_settings().exports_signing_secret
                self._pem = aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"].encode()
                self._loaded_at = self._clock()
            return self._pem

    def forget(self) -> None:
        with self._lock:
            self._pem = None


_EXPORTS_KEY = ExportsSigningKey()


def exports_signing_key() -> ExportsSigningKey:
    return _EXPORTS_KEY
