"""Pure rules of a photo's lifecycle and its media cleanup, plus the one 503 translation of views."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from chalice import Chalice

from chalicelib import cleanup, errors, http, lifecycle
from chalicelib.lifecycle import DELETING, FAILED, PENDING, READY

NOW = 1_800_000_000.0


def test_pending_photo_expires_no_sooner_than_twice_its_upload_url_lifetime():
    assert lifecycle.pending_expires_at(NOW, 300, ttl_seconds=60) == int(NOW) + 600
    assert lifecycle.pending_expires_at(NOW, 300) == int(NOW) + lifecycle.PENDING_TTL_SECONDS


@pytest.mark.parametrize(("status", "expires_at", "visible"), [
    (PENDING, NOW + 1, True),
    (PENDING, NOW, False),
    (PENDING, None, True),  # photos created before pending rows expired
    (READY, NOW - 1, True),  # only pending rows expire
    (FAILED, None, True),
    (DELETING, None, False),
])
def test_readers_see_a_photo_unless_it_is_deleting_or_an_expired_pending_upload(status, expires_at, visible):
    assert lifecycle.is_visible(status, expires_at, NOW) is visible
    assert lifecycle.is_expired_pending(status, expires_at, NOW) is (status == PENDING and not visible)


def test_cdn_paths_are_the_exact_rendition_and_webp_keys():
    renditions = {"thumb": {"key": "media/renditions/p/v/thumb.jpeg", "webp_key": "media/renditions/p/v/thumb.webp"},
                  "large": {"key": "media/renditions/p/v/large.jpeg"}}
    assert cleanup.cdn_paths(renditions) == ["/media/renditions/p/v/large.jpeg", "/media/renditions/p/v/thumb.jpeg",
                                             "/media/renditions/p/v/thumb.webp"]
    assert cleanup.cdn_paths(None) == []


@pytest.mark.parametrize(("body", "is_cleanup"), [
    (json.dumps({"type": "purge_photo", "photo_id": "p", "owner": "o"}), True),
    (json.dumps({"type": "invalidate", "paths": ["/media/x"]}), True),
    (json.dumps({"photo_id": "p", "edit_id": "e", "edits": {"rotate": 90}}), False),  # an edit job
    ("not json", False),
    (json.dumps(["purge_photo"]), False),
])
def test_cleanup_jobs_are_told_apart_from_edit_jobs_on_the_edits_queue(body, is_cleanup):
    assert cleanup.is_cleanup_message(body) is is_cleanup


def _app_raising(exc: Exception) -> Chalice:
    app = Chalice(app_name="t")

    @app.route("/x")
    def view():
        raise exc

    http.translate_transient_errors(app)
    return app


def test_a_view_failing_on_dynamodb_throttling_raises_a_503_with_retry_after():
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "GetItem")
    view = _app_raising(throttled).routes["/x"]["GET"].view_function
    with pytest.raises(errors.ServiceUnavailable) as raised:
        view()
    assert raised.value.headers == {"Retry-After": "1"}
    assert raised.value.__cause__ is throttled


@pytest.mark.parametrize("exc", [KeyError("bug"), errors.PhotoNotFound("gone"),
                                 ClientError({"Error": {"Code": "ValidationException", "Message": "x"}}, "GetItem")])
def test_other_errors_pass_through_the_view_translation_unchanged(exc):
    view = _app_raising(exc).routes["/x"]["GET"].view_function
    with pytest.raises(type(exc)) as raised:
        view()
    assert raised.value is exc


def test_translating_the_views_twice_wraps_them_once():
    app = _app_raising(KeyError("x"))
    once = app.routes["/x"]["GET"].view_function
    http.translate_transient_errors(app)
    assert app.routes["/x"]["GET"].view_function is once


def test_the_purges_second_pass_comes_after_every_like_that_skipped_the_photo_check_can_land():
    # A like skips the photo check while its container has the photo cached as ready: at most the photo
    # TTL old, loaded through DAX at most its record TTL older, in a request of at most API Gateway's 29 s
    from chalicelib import cleanup
    from chalicelib.cache import TTL_SECONDS
    from devstack.dax_proxy import parameter_group_ttls

    record_ttl, _ = parameter_group_ttls()
    latest_like = TTL_SECONDS["photo"] + record_ttl + 29
    assert latest_like < cleanup.LIKES_SWEEP_DELAY_SECONDS <= 900  # SQS's longest delay
