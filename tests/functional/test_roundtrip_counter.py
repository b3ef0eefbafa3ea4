"""The round-trip counter on a real route: it sees every call the app makes, through any client."""
from __future__ import annotations

from collections.abc import Iterator

import botocore.client
import pytest

from bench.roundtrips import Call, RoundTripCounter
from api_helpers import call, member

from chalicelib import cache


@pytest.fixture
def counter(api_env: dict[str, str]) -> Iterator[RoundTripCounter]:
    # installed after api_env's aws.reset(): the app's boto3 and PynamoDB clients are built after it
    counter = RoundTripCounter()
    counter.install()
    yield counter
    counter.uninstall()


@pytest.fixture
def witness(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """An independent record: every ``BaseClient._make_api_call`` (boto3 methods and PynamoDB both use it)."""
    seen: list[Call] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        seen.append(Call(self.meta.service_model.service_id.hyphenize(), operation_name))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return seen


def test_counter_counts_exactly_the_calls_a_warm_profile_read_makes(client, counter, witness) -> None:
    # Given a member, and a warm container (one profile read already served) whose cached reads expired
    username, _ = member(client)
    assert call(client, "GET", f"/users/{username}").status_code == 200
    cache.reset()
    witness.clear()
    # When the profile is read again while counting
    with counter.counting() as calls:
        response = call(client, "GET", f"/users/{username}")
    # Then the request succeeded, made AWS calls, and the counter saw each one the witness saw
    assert response.status_code == 200
    assert calls, "a profile read makes DynamoDB calls"
    assert calls == witness
    assert {c.service for c in calls} == {"dynamodb"}


def test_counter_counts_the_authorizers_calls_on_a_protected_route(client, counter, witness) -> None:
    # Given a signed-in member
    _, token = member(client)
    assert call(client, "GET", "/me", token=token).status_code == 200
    cache.reset()  # the profile read is cached; the revocation check never is
    witness.clear()
    # When GET /me is counted
    with counter.counting() as calls:
        response = call(client, "GET", "/me", token=token)
    # Then the authorizer's revocation check is among the counted calls, and nothing is missed
    assert response.status_code == 200
    assert calls == witness
    assert Call("dynamodb", "GetItem") in calls
