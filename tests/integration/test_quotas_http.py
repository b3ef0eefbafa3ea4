"""Quotas over HTTP on the real local stack: the browser's path (site proxy -> chalice local -> moto).

The stack runs with the local stage's default per-user quotas, so this proves the app enforces them
locally too, and that ``Retry-After`` and the error body survive the site's /api proxy.
"""
from __future__ import annotations

from api_client import ApiClient

from chalicelib.quotas import DEFAULT_LIMITS, PENDING_RETRY_AFTER_SECONDS, PENDING_UPLOADS

NEW_PHOTO = {"content_type": "image/jpeg", "size": 1000}


def test_a_user_with_the_default_number_of_pending_uploads_gets_429_with_retry_after(api: ApiClient):
    # Given a user who asked for as many upload grants as may be pending at once (uploading none)
    _, tokens = api.new_user()
    token = tokens["access_token"]
    allowed = DEFAULT_LIMITS[PENDING_UPLOADS].limit
    granted = [api.post("/photos", token=token, json=NEW_PHOTO).status_code for _ in range(allowed)]
    # When they ask for one more
    refused = api.post("/photos", token=token, json=NEW_PHOTO)
    # Then it is a 429 in the usual error shape, with Retry-After, through the site's proxy
    assert granted == [201] * allowed
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == str(PENDING_RETRY_AFTER_SECONDS)
    assert refused.json()["error"]["code"] == "too_many_requests"
    # And another user is not affected
    _, other = api.new_user()
    assert api.post("/photos", token=other["access_token"], json=NEW_PHOTO).status_code == 201
