"""A small HTTP client for the Photoscale API as the web client reaches it: ``{site}/api/...``."""
from __future__ import annotations

import uuid
from typing import Any

import requests

PASSWORD = "Passw0rdOK"


def new_username() -> str:
    """A random valid username (3-30 letters, digits, underscores)."""
    return f"u_{uuid.uuid4().hex[:16]}"


def auth(token: str) -> dict[str, str]:
    """The Authorization header for an access token."""
    return {"Authorization": f"Bearer {token}"}


class ApiClient:
    """Requests against ``base_url`` (the site origin's ``/api``), exactly what a browser sends."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                data: bytes | str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        all_headers = {"Accept": "application/json"}
        if json is not None or data is not None:
            all_headers["Content-Type"] = "application/json"
        if token is not None:
            all_headers.update(auth(token))
        all_headers.update(headers or {})
        return self.session.request(method, f"{self.base_url}{path}", json=json, data=data,
                                    headers=all_headers, timeout=self.timeout)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    # -- account helpers ------------------------------------------------------------------------
    def signup(self, username: str | None = None, password: str = PASSWORD,
               email: str | None = None) -> requests.Response:
        username = username or new_username()
        return self.post("/auth/signup", json={
            "username": username, "email": email or f"{username}@example.com", "password": password,
        })

    def login(self, username: str, password: str = PASSWORD) -> requests.Response:
        return self.post("/auth/login", json={"username": username, "password": password})

    def new_user(self, password: str = PASSWORD) -> tuple[str, dict[str, Any]]:
        """Sign up a random user and log in; returns ``(username, tokens)``."""
        username = new_username()
        signed_up = self.signup(username, password)
        assert signed_up.status_code == 201, signed_up.text
        logged_in = self.login(username, password)
        assert logged_in.status_code == 200, logged_in.text
        return username, logged_in.json()
