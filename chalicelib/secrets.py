"""Secrets the functions need, fetched from Secrets Manager once per warm container."""
from __future__ import annotations

import functools

from chalicelib import aws
from chalicelib.settings import get_settings


@functools.lru_cache(maxsize=1)
def cursor_key() -> bytes:
    """The HMAC key signing pagination cursors (``CursorSecret`` in ``infra/stateful.yaml``)."""
    secret = aws.client("secretsmanager").get_secret_value(SecretId=get_settings().cursor_secret_arn)
    return secret["SecretString"].encode()
