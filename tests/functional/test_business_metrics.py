"""Business metrics leave each invocation as CloudWatch EMF, namespace Photoscale, low-cardinality
dimensions only: sign-ups, uploads started, photos ready and rejected, likes, follows, feed reads,
exports ready, accounts erased."""
from __future__ import annotations

import json
from collections import Counter

from api_helpers import call, member
from test_photo_lifecycle import deliver_uploads, uploaded_photo

#: Dimension names a business metric may carry: a handful of values each, never a user or photo id.
LOW_CARDINALITY_DIMENSIONS = {"service"}


def emitted(text: str) -> Counter:
    """Metric name -> total over the EMF blobs printed in ``text``; checks every blob's shape."""
    totals: Counter = Counter()
    for line in text.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Photoscale"
            for dimension_set in directive["Dimensions"]:
                assert set(dimension_set) <= LOW_CARDINALITY_DIMENSIONS, dimension_set
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                totals[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return totals


def test_each_business_event_is_counted_once_in_emf(client, capsys):
    # GIVEN two members (two sign-ups)
    capsys.readouterr()
    alice, alice_token = member(client)
    bob, bob_token = member(client)
    assert emitted(capsys.readouterr().out)["SignUps"] == 2

    # WHEN bob uploads a photo that is processed, and one that is rejected
    photo_id, event = uploaded_photo(client, bob_token, bob)
    assert deliver_uploads(client, event) == {"batchItemFailures": []}
    _, broken = uploaded_photo(client, bob_token, bob, data=b"not an image at all")
    assert deliver_uploads(client, broken) == {"batchItemFailures": []}
    uploads = emitted(capsys.readouterr().out)
    assert (uploads["UploadsStarted"], uploads["PhotosProcessed"], uploads["PhotosRejected"]) == (2, 1, 1)

    # AND alice follows bob and likes the photo, each twice (idempotent), and reads her feed
    for _ in range(2):
        assert call(client, "PUT", f"/users/{bob}/follow", token=alice_token).status_code == 204
        assert call(client, "PUT", f"/photos/{photo_id}/like", token=alice_token).status_code == 200
    assert call(client, "DELETE", f"/photos/{photo_id}/like", token=alice_token).status_code == 200
    assert call(client, "GET", "/feed", token=alice_token).status_code == 200

    # THEN each event that happened is counted once; repeats and withdrawals are not counted
    social = emitted(capsys.readouterr().out)
    assert (social["Follows"], social["Likes"], social["FeedReads"]) == (1, 1, 1)



def test_a_ready_export_and_a_finished_erasure_are_counted_once_even_when_redelivered(client, deployed, capsys):
    from api_helpers import PASSWORD
    from test_feed import run_worker, take_fanout_messages

    # GIVEN a member who exports their data, then deletes the account
    _, token = member(client)
    assert call(client, "POST", "/me/export", token=token).status_code == 202
    exports = take_fanout_messages(deployed, "export_account")
    capsys.readouterr()
    # WHEN each worker message is delivered twice
    run_worker(client, *exports)
    run_worker(client, *exports)
    assert call(client, "DELETE", "/me", {"password": PASSWORD}, token=token).status_code == 202
    erasures = take_fanout_messages(deployed, "erase_account")
    run_worker(client, *erasures)
    run_worker(client, *erasures)
    # THEN one export and one erasure are counted
    totals = emitted(capsys.readouterr().out)
    assert (totals["ExportsReady"], totals["AccountsErased"]) == (1, 1)
