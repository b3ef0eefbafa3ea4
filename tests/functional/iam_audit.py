"""Record each Lambda function's AWS calls at the botocore boundary and check them against IAM policies.

Used by ``test_iam_policy_audit.py``. Three parts:

- :class:`CallRecorder` wraps ``botocore.client.BaseClient._make_api_call`` (every botocore client:
  ``chalicelib.aws``'s boto3 clients, PynamoDB's per-model clients, Powertools' idempotency client)
  and S3 presigned POSTs (no request is sent, but the form is signed with the function's
  credentials, so S3 checks ``s3:PutObject`` on the key when the browser posts it). Each call is
  filed under the function that is running (:meth:`CallRecorder.running`); calls made by the test
  itself (setup, the browser's upload) are not recorded.
- :func:`iam_requests` maps one call to the IAM (action, resource ARN) pairs AWS authorizes it
  with: a ``TransactWriteItems`` needs each item's own action on its table, a ``Query`` on an
  index needs the index ARN, ``CopyObject`` reads the source and writes the target, and so on.
  A call it does not know raises :class:`UnmappedCall`, so a new kind of call cannot slip by.
- :func:`allows` is a small evaluator of Allow statements (our policies have no Deny), with IAM's
  ``*`` and ``?`` wildcards in actions (case-insensitive) and resources.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest

ACCOUNT = "123456789012"  # moto's default account

#: Cognito user pool operations that IAM does not authorize: they are public (sign-up, login) or
#: authorized by the user's own token (sign-out, revoke), whoever signs the request.
COGNITO_WITHOUT_IAM = frozenset({
    "SignUp", "ConfirmSignUp", "InitiateAuth", "RespondToAuthChallenge", "RevokeToken", "GlobalSignOut",
    "GetUser", "ChangePassword", "ForgotPassword", "ConfirmForgotPassword", "ResendConfirmationCode",
})

_DYNAMODB_SINGLE = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"}
_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
_SQS_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


class UnmappedCall(Exception):
    """A call the audit cannot map to IAM actions yet: teach :func:`iam_requests` about it."""


@dataclass(frozen=True)
class Call:
    """One AWS API call a function made: botocore's service id (hyphenated), operation, parameters."""

    service: str
    operation: str
    region: str
    params: dict

    def __str__(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass(frozen=True)
class Request:
    """What IAM authorizes: one action on one resource."""

    action: str
    resource: str


# --------------------------------------------------------------------------- call -> IAM


def _table_arn(region: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"


def _queue_arn(region: str, url: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT}:{urlparse(url).path.rstrip('/').rsplit('/', 1)[-1]}"


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _dynamodb(call: Call) -> list[Request]:
    p, region = call.params, call.region
    if call.operation in _DYNAMODB_SINGLE:
        arn = _table_arn(region, p["TableName"])
        if p.get("IndexName"):
            arn = f"{arn}/index/{p['IndexName']}"
        return [Request(f"dynamodb:{call.operation}", arn)]
    if call.operation in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{call.operation}", _table_arn(region, t)) for t in p["RequestItems"]]
    if call.operation in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for item in p["TransactItems"]:
            (kind, body), = item.items()
            found.append(Request(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table_arn(region, body["TableName"])))
        return found
    raise UnmappedCall(str(call))


def _s3(call: Call) -> list[Request]:
    p, op = call.params, call.operation
    if op in ("HeadBucket", "ListObjects", "ListObjectsV2", "ListObjectVersions"):
        return [Request("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}")]
    if op in ("GetObject", "HeadObject"):
        return [Request("s3:GetObject", _object_arn(p["Bucket"], p["Key"]))]
    if op in ("PutObject", "PresignedPost"):  # a presigned POST is a PutObject signed in advance
        return [Request("s3:PutObject", _object_arn(p["Bucket"], p["Key"]))]
    if op == "DeleteObject":
        return [Request("s3:DeleteObject", _object_arn(p["Bucket"], p["Key"]))]
    if op == "DeleteObjects":
        return [Request("s3:DeleteObject", _object_arn(p["Bucket"], o["Key"])) for o in p["Delete"]["Objects"]]
    if op == "CopyObject":
        source = p["CopySource"]
        if isinstance(source, str):
            bucket, _, key = source.lstrip("/").partition("/")
        else:
            bucket, key = source["Bucket"], source["Key"]
        return [Request("s3:GetObject", _object_arn(bucket, key)),
                Request("s3:PutObject", _object_arn(p["Bucket"], p["Key"]))]
    raise UnmappedCall(str(call))


def _sqs(call: Call) -> list[Request]:
    p = call.params
    if "QueueUrl" in p:
        return [Request(f"sqs:{_SQS_ACTIONS.get(call.operation, call.operation)}", _queue_arn(call.region, p["QueueUrl"]))]
    if call.operation == "GetQueueUrl":
        return [Request("sqs:GetQueueUrl", f"arn:aws:sqs:{call.region}:{ACCOUNT}:{p['QueueName']}")]
    raise UnmappedCall(str(call))


def iam_requests(call: Call) -> list[Request]:
    """The IAM (action, resource) pairs AWS checks for ``call``; ``[]`` for calls IAM does not authorize."""
    if call.service == "dynamodb":
        return _dynamodb(call)
    if call.service == "s3":
        return _s3(call)
    if call.service == "sqs":
        return _sqs(call)
    if call.service == "cognito-identity-provider":
        if call.operation in COGNITO_WITHOUT_IAM:
            return []
        if call.operation.startswith("Admin"):
            pool = call.params["UserPoolId"]
            return [Request(f"cognito-idp:{call.operation}", f"arn:aws:cognito-idp:{call.region}:{ACCOUNT}:userpool/{pool}")]
    if call.service == "secrets-manager" and call.operation == "GetSecretValue":
        secret = call.params["SecretId"]
        if not secret.startswith("arn:"):  # by name: the ARN carries Secrets Manager's random suffix
            secret = f"arn:aws:secretsmanager:{call.region}:{ACCOUNT}:secret:{secret}-AbCdEf"
        return [Request("secretsmanager:GetSecretValue", secret)]
    if call.service == "cloudfront" and call.operation == "CreateInvalidation":
        return [Request("cloudfront:CreateInvalidation", f"arn:aws:cloudfront::{ACCOUNT}:distribution/{call.params['DistributionId']}")]
    if call.service == "xray":
        return [Request(f"xray:{call.operation}", "*")]
    raise UnmappedCall(str(call))


# --------------------------------------------------------------------------- evaluator


def _pattern(glob: str, *, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{regex}$", re.IGNORECASE if ignore_case else 0)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(document: dict, request: Request) -> bool:
    """Whether an Allow statement of ``document`` grants ``request`` (no Deny, no conditions: ours have none)."""
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            continue
        if any(_pattern(a, ignore_case=True).match(request.action) for a in _as_list(statement["Action"])) and \
                any(_pattern(r, ignore_case=False).match(request.resource) for r in _as_list(statement["Resource"])):
            return True
    return False


def uncovered(document: dict, calls: list[Call]) -> list[str]:
    """Every (call -> action on resource) the policy does not allow, as readable lines (sorted, unique)."""
    return sorted({f"{call} needs {r.action} on {r.resource}"
                   for call in calls for r in iam_requests(call) if not allows(document, r)})


# --------------------------------------------------------------------------- recording


class CallRecorder:
    """Files every AWS call under the function running at that moment (see module docstring)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Call]] = {}
        self._running: list[str] = []

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        """Attribute the calls made inside the block to ``function`` (innermost wins: the authorizer
        runs inside the API request that invoked it)."""
        self._running.append(function)
        try:
            yield
        finally:
            self._running.pop()

    def _record(self, service: str, operation: str, region: str, params: dict) -> None:
        if self._running:
            self.calls.setdefault(self._running[-1], []).append(Call(service, operation, region, dict(params)))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> CallRecorder:
        from botocore import client as botocore_client
        from botocore import signers

        recorder = self
        make_api_call = botocore_client.BaseClient._make_api_call
        presign_post = signers.S3PostPresigner.generate_presigned_post

        def recording_api_call(client: Any, operation_name: str, api_params: dict) -> Any:
            recorder._record(client.meta.service_model.service_id.hyphenize(), operation_name,
                             client.meta.region_name, api_params)
            return make_api_call(client, operation_name, api_params)

        def recording_presign_post(presigner: Any, request_dict: dict, fields: dict | None = None,
                                   conditions: list | None = None, *args: Any, **kwargs: Any) -> Any:
            bucket = next(c["bucket"] for c in conditions or [] if isinstance(c, dict) and "bucket" in c)
            recorder._record("s3", "PresignedPost", "", {"Bucket": bucket, "Key": (fields or {})["key"]})
            return presign_post(presigner, request_dict, fields, conditions, *args, **kwargs)

        monkeypatch.setattr(botocore_client.BaseClient, "_make_api_call", recording_api_call)
        monkeypatch.setattr(signers.S3PostPresigner, "generate_presigned_post", recording_presign_post)
        return self
