"""The repositories read through one table reader (``chalicelib.aws.table_reader``): the DynamoDB
client today, the DAX client in a stage that has one. Writes and strongly consistent reads never do."""
from __future__ import annotations

import boto3
import pytest
from api_helpers import body_of, call, member

from chalicelib import aws, cache


@pytest.fixture
def reader_calls(client, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Swap the table reader for a client of its own and record the operations sent with it."""
    seen: list[str] = []
    reader = boto3.client("dynamodb", region_name="us-east-1")
    reader.meta.events.register("before-call.dynamodb.*",
                                lambda event_name, **_: seen.append(event_name.rsplit(".", 1)[-1]))
    monkeypatch.setattr(aws, "table_reader", lambda: reader)
    aws.reset()
    yield seen
    aws.reset()


def test_profile_reads_go_through_the_table_reader_and_writes_do_not(client, reader_calls: list[str]):
    username, token = member(client)
    writes_seen = list(reader_calls)
    cache.reset()  # sign-up cached the new profile: read it as a container that has not seen it
    reader_calls.clear()
    # When the profile is read / Then the profile and its counters come through the reader
    assert body_of(call(client, "GET", f"/users/{username}"))["username"] == username
    assert "GetItem" in reader_calls and "BatchGetItem" in reader_calls
    # And sign-up's profile write, the session check and the profile update never use it
    assert "PutItem" not in writes_seen
    reader_calls.clear()
    assert call(client, "PATCH", "/me", {"bio": "hello"}, token=token).status_code == 200
    assert "UpdateItem" not in reader_calls


def test_consistent_reads_bypass_the_table_reader(client, reader_calls: list[str]):
    _, token = member(client)
    reader_calls.clear()
    # When a signed-in request is authorized (one consistent BatchGetItem of the session records)
    response = call(client, "POST", "/auth/logout", {}, token=token)
    # Then that read did not go through the reader
    assert response.status_code == 204
    assert reader_calls == []
