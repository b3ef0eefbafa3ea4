"""Helpers for functional tests that speak to the app through ``chalice.test.Client``."""
from __future__ import annotations

import json
import uuid
from typing import Any

PASSWORD = "Passw0rdOK"
JSON = {"Content-Type": "application/json"}


def new_username() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def call(client, method: str, path: str, body: Any = None, token: str | None = None):
    headers = dict(JSON)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = b"" if body is None else json.dumps(body).encode()
    return client.http.request(method, path, headers=headers, body=data)


def body_of(response) -> Any:
    return json.loads(response.body)


def member(client, username: str | None = None, log_in: bool = True) -> tuple[str, str | None]:
    """A signed-up (and unless told otherwise logged-in) user: ``(username, access token)``."""
    username = username or new_username()
    response = call(client, "POST", "/auth/signup",
                    {"username": username, "email": f"{username}@example.com", "password": PASSWORD})
    assert response.status_code == 201, response.body
    if not log_in:
        return username, None
    response = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.body
    return username, body_of(response)["access_token"]
