"""The site origin: the web client with SPA routing, and media from the bucket (as CloudFront serves them)."""
from __future__ import annotations

import uuid

import pytest
import requests

pytestmark = pytest.mark.integration


def get(local_stack, path: str) -> requests.Response:
    return requests.get(f"{local_stack.site_url}{path}", timeout=30)


def test_the_root_serves_the_web_client(local_stack):
    # When the site root is requested
    response = get(local_stack, "/")
    # Then it is the app's index.html, never cached stale
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-cache"
    assert "<title>Photoscale</title>" in response.text


def test_a_deep_link_serves_the_web_client(local_stack):
    # Given the index page
    index = get(local_stack, "/").text
    # When a deep link into the app is opened directly
    response = get(local_stack, f"/users/alice_{uuid.uuid4().hex[:6]}")
    # Then the same index.html is served (the client routes it)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == index


def test_a_missing_asset_is_404_not_the_app(local_stack):
    # Given a file name that does not exist
    # When / Then it is 404, not index.html
    response = get(local_stack, f"/missing-{uuid.uuid4().hex[:6]}.js")
    assert response.status_code == 404
    assert "<title>" not in response.text


def test_missing_media_is_404(local_stack):
    # Given a media key that does not exist in the bucket
    # When / Then it is 404
    response = get(local_stack, "/media/does-not-exist.jpg")
    assert response.status_code == 404
