"""Least privilege, proven: every AWS call each Lambda function really makes is allowed by its policy.

The real app (``chalice.test.Client``: the API function and its authorizer) and the real workers
(``client.lambda_.invoke`` with the SQS events Lambda would deliver) run a journey that reaches
every kind of AWS call the code makes: sign-up, login, refresh, profile, upload grant, renditions,
follow with feed backfill, fan-out, feed and listings with cursors, likes, caption, edits (crop,
rotate) with CDN invalidation, delete with purge, unfollow with feed cleanup, failed login, sign-out.

Every call is recorded at the botocore boundary (:mod:`iam_audit`), filed under the function that
made it, mapped to the IAM actions and resource ARNs AWS checks for it, and evaluated against that
function's policy from ``infra/policies.py`` for the same stage, region and account (and the pool
and distribution this stack really has).
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from api_helpers import PASSWORD, body_of, call, member, stage_cdn
from iam_audit import ACCOUNT, CallRecorder, Request, allows, iam_requests, uncovered

from chalicelib import aws, celebrities, keys, settings
from devstack.event_pump import build_sqs_event
from infra.policies import FUNCTIONS, Target, policy

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

REGION = "us-east-1"
STAGE = "local"


# --- the journey --------------------------------------------------------------------------------

class Journey:
    """Drives the functions, each call under its function's name in the recorder."""

    def __init__(self, client: Any, recorder: CallRecorder, outputs: dict[str, str], counter_stream: Any) -> None:
        self.client, self.recorder, self.outputs = client, recorder, outputs
        self.counter_stream = counter_stream

    def api(self, method: str, path: str, body: Any = None, token: str | None = None, expect: int | None = None):
        with self.recorder.running("api_handler"):
            response = call(self.client, method, path, body, token=token)
        ok = response.status_code == expect if expect is not None else response.status_code < 300
        assert ok, (method, path, response.status_code, response.body)
        return response

    def deliver(self, function: str, queue: str) -> int:
        """Receive everything on ``queue`` (as Lambda's poller would), invoke ``function`` with it,
        delete what succeeded; returns how many messages were delivered."""
        sqs, url = aws.client("sqs"), self.outputs[f"{queue}QueueUrl"]
        messages: list[dict] = []
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                         MessageAttributeNames=["All"]).get("Messages", []):
            messages += got
        if not messages:
            return 0
        event = build_sqs_event(messages, queue_arn=self.outputs[f"{queue}QueueArn"], region=REGION)
        with self.recorder.running(function):
            result = self.client.lambda_.invoke(function, event).payload
        assert result == {"batchItemFailures": []}, (function, result)
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def drain(self) -> None:
        """Run the workers until every queue is empty (an edit queues an invalidation, a delete a purge...)."""
        while self.deliver("fan_out_feed", "Fanout") + self.deliver("process_edits", "Edits") + self.aggregate():
            pass

    def aggregate(self) -> int:
        """The counters stream's records so far, delivered to ``aggregate_counters`` (as its mapping does)."""
        with self.recorder.running("aggregate_counters"):
            return self.counter_stream.deliver()

    def upload(self, token: str, owner: str, data: bytes) -> str:
        """A photo through the API grant, the browser's POST (the test's own call), and the uploads worker."""
        response = self.api("POST", "/photos", {"content_type": "image/jpeg", "size": len(data), "caption": "hi"},
                            token=token)
        photo_id = body_of(response)["photo"]["id"]
        bucket, key = self.outputs["MediaBucket"], keys.upload_key(owner, photo_id)
        # moto delivers the bucket's notification to the uploads queue, as S3 does
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
        assert self.deliver("process_uploads", "Uploads") >= 1
        return photo_id


def jpeg(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 90, 40)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def run_journey(journey: Journey) -> None:
    api = journey.api
    api("GET", "/health")
    author, author_token = member(journey.client)  # setup: the author signs up outside the record
    with journey.recorder.running("api_handler"):
        reader, reader_token = member(journey.client)
    journey.drain()
    # Refresh, profile, failed login
    login = body_of(api("POST", "/auth/login", {"username": reader, "password": PASSWORD}))
    api("POST", "/auth/refresh", {"refresh_token": login["refresh_token"]})
    api("GET", "/me", token=reader_token)
    api("PATCH", "/me", {"display_name": "Reader"}, token=reader_token)
    api("POST", "/auth/login", {"username": reader, "password": "WrongPassw0rd"}, expect=401)
    # A ready photo; the reader and a fan follow the author (backfill); a second photo is fanned
    # out to both, one feed per invocation (a continuation message); an upload that is no image fails
    first = journey.upload(author_token, author, jpeg(640, 480))
    api("PUT", f"/users/{author}/follow", token=reader_token)
    _fan, fan_token = member(journey.client)
    api("PUT", f"/users/{author}/follow", token=fan_token)
    journey.drain()
    journey.upload(author_token, author, jpeg(320, 240))
    journey.drain()
    journey.upload(author_token, author, b"this is not an image" * 10)
    # Reads: feed, listings (with a cursor to the next page), photo (anonymous and signed in), profile
    page = body_of(api("GET", "/feed?limit=1", token=reader_token))
    assert page["items"] and page["next_cursor"], page
    api("GET", f"/feed?limit=1&cursor={page['next_cursor']}", token=reader_token)
    listing = body_of(api("GET", f"/users/{author}/photos?limit=1"))
    api("GET", f"/users/{author}/photos?limit=1&cursor={listing['next_cursor']}")
    api("GET", f"/users/{author}/followers")
    api("GET", f"/users/{reader}/following")
    api("GET", f"/users/{author}")
    api("GET", f"/photos/{first}")
    api("GET", f"/photos/{first}", token=reader_token)
    # Likes, caption, edits (crop, then a crop of the original's other half, then rotate)
    api("PUT", f"/photos/{first}/like", token=reader_token)
    api("DELETE", f"/photos/{first}/like", token=reader_token)
    api("PATCH", f"/photos/{first}", {"caption": "new"}, token=author_token)
    api("POST", f"/photos/{first}/edits", {"crop": {"x": 0, "y": 0, "width": 320, "height": 240}},
        token=author_token)
    journey.drain()
    api("POST", f"/photos/{first}/edits", {"rotate": 90}, token=author_token)
    journey.drain()
    # Delete (purge on the edits queue), unfollow (feed cleanup on the fanout queue)
    api("DELETE", f"/photos/{first}", token=author_token)
    api("DELETE", f"/users/{author}/follow", token=reader_token)
    journey.drain()
    # Sign-out: this session, then every session
    api("POST", "/auth/logout", {"refresh_token": login["refresh_token"]}, token=login["access_token"])
    api("POST", "/auth/logout-all", token=author_token)
    # The scheduled counter reconciliation (suspects, then the counters table from its checkpoint)
    with journey.recorder.running("reconcile_counters"):
        journey.client.lambda_.invoke("reconcile_counters", journey.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The namespace Lambda gives Powertools at import (as in test_photo_lifecycle.py): the shared
    ``Metrics`` may have been created, at collection, without ``POWERTOOLS_METRICS_NAMESPACE``."""
    from chalicelib.observability import metrics

    monkeypatch.setattr(metrics, "namespace", "Photoscale")


@pytest.fixture
def recorded(client, deployed, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, Target]:
    """The journey's AWS calls per function, and the deploy target this stack corresponds to."""
    outputs = deployed["outputs"]
    distribution_id = stage_cdn(monkeypatch)
    celebrities.reset_cache()
    from chalicelib import feed

    monkeypatch.setattr(feed, "PAGE_SIZE", 1)  # small pages and budget: the fan-out's continuation runs too
    monkeypatch.setattr(feed, "MAX_FOLLOWERS_PER_INVOCATION", 1)
    recorder = CallRecorder().install(monkeypatch)
    # The authorizer is its own Lambda function in AWS: API Gateway invokes it before the API function.
    from chalice import local as chalice_local

    authorize = chalice_local.LocalGatewayAuthorizer.authorize

    def authorize_as_its_own_function(self, *args, **kwargs):
        with recorder.running("bearer_auth"):
            return authorize(self, *args, **kwargs)

    monkeypatch.setattr(chalice_local.LocalGatewayAuthorizer, "authorize", authorize_as_its_own_function)
    stream = deployed["counter_stream"]
    monkeypatch.setattr(stream, "as_function", lambda: recorder.running("aggregate_counters"))
    run_journey(Journey(client, recorder, outputs, stream))
    celebrities.reset_cache()
    target = Target(stage=STAGE, region=REGION, account=ACCOUNT, user_pool_id=outputs["UserPoolId"],
                    distribution_id=distribution_id)
    return recorder.calls, target


# --- tests --------------------------------------------------------------------------------------

def test_every_aws_call_each_function_makes_is_allowed_by_its_generated_policy(recorded):
    # GIVEN every AWS call the journey made, per function
    calls, target = recorded
    # THEN every function was exercised (the audit is not vacuous)
    assert set(calls) == set(FUNCTIONS), sorted(calls)
    # AND its generated policy for this stage/region/account allows each action on each resource
    assert {f: uncovered(policy(f, target), calls[f]) for f in FUNCTIONS} == {f: [] for f in FUNCTIONS}


def test_the_audit_catches_a_removed_grant(recorded):
    # GIVEN the journey's calls and the authorizer's policy without its BatchGetItem (the drift found by hand)
    calls, target = recorded
    document = policy("bearer_auth", target)
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "dynamodb:BatchGetItem"]
    # THEN the audit reports the authorizer's session check on the sessions table
    sessions = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/photoscale-{STAGE}-sessions"
    assert f"dynamodb.BatchGetItem needs dynamodb:BatchGetItem on {sessions}" in uncovered(document, calls["bearer_auth"])
    # AND the same holds for the API without its quotas table
    api = policy("api_handler", target)
    quotas = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/photoscale-{STAGE}-quotas"
    for statement in api["Statement"]:
        statement["Resource"] = [r for r in statement["Resource"] if r != quotas]
    assert any(line.endswith(f"on {quotas}") for line in uncovered(api, calls["api_handler"]))


def test_transactions_need_each_items_own_action_and_index_queries_the_index_arn():
    # GIVEN a transaction with a condition check and an update, and a query on an index
    from iam_audit import Call

    transaction = Call("dynamodb", "TransactWriteItems", REGION, {"TransactItems": [
        {"ConditionCheck": {"TableName": "photoscale-local-users"}}, {"Update": {"TableName": "photoscale-local-graph"}}]})
    query = Call("dynamodb", "Query", REGION, {"TableName": "photoscale-local-photos", "IndexName": "by_owner"})
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/photoscale-local-"
    # THEN each maps to what IAM checks
    assert iam_requests(transaction) == [Request("dynamodb:ConditionCheckItem", table + "users"),
                                         Request("dynamodb:UpdateItem", table + "graph")]
    assert iam_requests(query) == [Request("dynamodb:Query", table + "photos/index/by_owner")]
    # AND the evaluator honours resource wildcards but not a different table
    document = {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [table + "photos/index/*"]}]}
    assert allows(document, Request("dynamodb:query", table + "photos/index/by_owner"))
    assert not allows(document, Request("dynamodb:Query", table + "photos"))
    assert not allows(document, Request("dynamodb:Query", table + "photosx/index/by_owner"))
