"""Rotating the cursor signing key (Secrets Manager AWSCURRENT/AWSPREVIOUS) breaks no cursor in flight."""
from __future__ import annotations

import os

import pytest
from api_helpers import body_of, call, member

from chalicelib import cursors, secrets

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def page(client, path: str, cursor: str | None = None) -> dict:
    response = call(client, "GET", f"{path}?limit=1" + (f"&cursor={cursor}" if cursor else ""))
    assert response.status_code == 200, response.body
    return body_of(response)


def rotate(deployed, api_env) -> bytes:
    """What a rotation does: a new secret version becomes AWSCURRENT, the old one AWSPREVIOUS."""
    new_key = os.urandom(24).hex()
    deployed["clients"]("secretsmanager").put_secret_value(SecretId=api_env["CursorSecretArn"], SecretString=new_key)
    return new_key.encode()


@pytest.fixture
def star(client) -> str:
    star, _ = member(client)
    for _ in range(3):
        _, token = member(client)
        assert call(client, "PUT", f"/users/{star}/follow", token=token).status_code == 204
    return star


def test_a_cursor_issued_before_a_rotation_still_pages_on_after_it(client, deployed, api_env, star):
    # Given a reader holding the cursor to page 2 of a listing
    path = f"/users/{star}/followers"
    first = page(client, path)
    # When the key is rotated and a fresh container (which loads both keys) serves page 2
    new_key = rotate(deployed, api_env)
    secrets.cursor_key().forget()
    second = page(client, path, first["next_cursor"])
    # Then page 2 is served, and its own cursor is signed with the new key
    assert second["items"] and second["items"] != first["items"]
    assert second["next_cursor"].split(".")[0] == cursors.key_id(new_key)
    third = page(client, path, second["next_cursor"])
    names = [i["username"] for p in (first, second, third) for i in p["items"]]
    assert len(set(names)) == 3


def test_a_warm_container_accepts_a_cursor_signed_with_a_key_newer_than_its_own(
        client, deployed, api_env, star, monkeypatch):
    # Given a warm container that loaded the key a while before the rotation
    clock = {"now": 1000.0}
    warm = secrets.CursorKeyring(clock=lambda: clock["now"])
    monkeypatch.setattr(secrets, "_KEYRING", warm)
    path, scope = f"/users/{star}/followers", f"followers:{star}"
    position = cursors.decode(page(client, path)["next_cursor"], key=warm, scope=scope)
    clock["now"] += secrets.MIN_RELOAD_SECONDS
    # When the key is rotated and a fresh container hands the reader a cursor signed with the new key
    new_key = rotate(deployed, api_env)
    newer = cursors.encode(position, key=secrets.CursorKeyring(), scope=scope)
    assert newer.split(".")[0] == cursors.key_id(new_key)
    # Then the warm container serves the next page with it
    served = page(client, path, newer)
    assert served["items"]
    # And signs its own cursors with the new key from then on
    assert served["next_cursor"].split(".")[0] == cursors.key_id(new_key)
