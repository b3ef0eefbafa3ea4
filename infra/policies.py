"""Per-function IAM policies, scoped to one stage, region and account, from one definition.

Chalice reads static policy files (``iam_policy_file``, per function and stage), so the deploy path
writes them just before ``chalice package`` / ``chalice deploy``::

    python -m infra.policies --stage prod --region eu-west-1 --account 123456789012

``GRANTS`` is the one definition: for each Lambda function of ``app.py``, the statements it needs,
read off what its code in ``chalicelib/`` calls. Resources are built from ``Target`` (partition,
region, account, stage and, once the stateful stack exists, the user pool and CDN distribution ids
from the stage's environment). To give a function a new permission, add a :class:`Grant` to its
tuple, using the resource builders below.

Policies are written to ``.chalice/policies/<stage>-<function>.json`` (generated, not committed);
``.chalice/config.json`` names them per stage and function.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PROJECT_DIR = Path(__file__).resolve().parent.parent
POLICY_DIR = PROJECT_DIR / ".chalice" / "policies"
APP_NAME = "photoscale"

FUNCTIONS = ("api_handler", "bearer_auth", "process_uploads", "process_edits", "fan_out_feed", "aggregate_counters",
             "reconcile_counters")


@dataclass(frozen=True)
class Target:
    """Where a stage is deployed. ``user_pool_id``/``distribution_id`` come from the stage's environment
    (``USER_POOL_ID``, ``CDN_DISTRIBUTION_ID``, written by ``infra.stage_env``) once they exist.

    ``regions``: every serving region of a multi-region stage, primary first (``infra/deploy.json``);
    empty for one region. IAM is global, so a function's role is shared by its copies in every region
    and its policy covers each region's own resources: its region's replica of every global table,
    its region's queues and bucket, the other region's bucket (originals uploaded there), the
    replicated pool in every region (identity writes go to the primary's) and each secret replica.
    """

    stage: str
    region: str
    account: str
    partition: str = "aws"
    user_pool_id: str | None = None
    distribution_id: str | None = None
    regions: tuple[str, ...] = ()

    @property
    def serving_regions(self) -> tuple[str, ...]:
        return self.regions or (self.region,)


def function_name(stage: str, function: str) -> str:
    """The Lambda function name Chalice gives a function (the API handler has no suffix)."""
    return f"{APP_NAME}-{stage}" if function == "api_handler" else f"{APP_NAME}-{stage}-{function}"


# --------------------------------------------------------------------------- resource builders


Resource = Callable[[Target], list[str]]


def table(name: str, *, indexes: bool = False) -> Resource:
    """The table in every serving region (a global table's replicas; a regional table's copies)."""
    def build(t: Target) -> list[str]:
        arns = [f"arn:{t.partition}:dynamodb:{r}:{t.account}:table/{APP_NAME}-{t.stage}-{name}"
                for r in t.serving_regions]
        return [out for arn in arns for out in ([arn, f"{arn}/index/*"] if indexes else [arn])]
    return build


def stream(name: str) -> Resource:
    """The streams of one table (the ARN ends in the stream's creation time, unknown before deploy)."""
    def build(t: Target) -> list[str]:
        return [f"arn:{t.partition}:dynamodb:{t.region}:{t.account}:table/{APP_NAME}-{t.stage}-{name}/stream/*"]
    return build


def queue(name: str) -> Resource:
    return lambda t: [f"arn:{t.partition}:sqs:{r}:{t.account}:{APP_NAME}-{t.stage}-{name}" for r in t.serving_regions]


def media_bucket(t: Target, region: str | None = None) -> str:
    return f"{APP_NAME}-{t.stage}-media-{t.account}-{region or t.region}"  # infra/stateful.yaml's MediaBucket


def media_objects(*prefixes: str) -> Resource:
    """Objects under ``prefixes`` in every region's media bucket: an edit or export processed in one
    region reads an original uploaded in the other (before CRR copies it, from its source bucket)."""
    return lambda t: [f"arn:{t.partition}:s3:::{media_bucket(t, r)}/{prefix}*"
                      for r in t.serving_regions for prefix in prefixes]


def media_bucket_itself(t: Target) -> list[str]:
    return [f"arn:{t.partition}:s3:::{media_bucket(t, r)}" for r in t.serving_regions]


def cursor_secret(t: Target) -> list[str]:
    # Secrets Manager appends "-XXXXXX" to the name (infra/stateful.yaml: photoscale/<stage>/cursor-signing-key);
    # a replica keeps the name and suffix in its own region.
    return [f"arn:{t.partition}:secretsmanager:{r}:{t.account}:secret:{APP_NAME}/{t.stage}/cursor-signing-key-??????"
            for r in t.serving_regions]


def exports_signing_secret(t: Target) -> list[str]:
    # Created by the operator (README, "Export download links"): photoscale/<stage>/exports-signing-key.
    return [f"arn:{t.partition}:secretsmanager:{t.region}:{t.account}:secret:{APP_NAME}/{t.stage}/exports-signing-key-??????"]


def user_pool(t: Target) -> list[str]:
    """The pool in every region: the replica has the primary's id; identity writes go to the primary's."""
    pool = t.user_pool_id or "*"  # "*" only until the stateful stack exists (see ALLOWED_WILDCARDS)
    return [f"arn:{t.partition}:cognito-idp:{r}:{t.account}:userpool/{pool}" for r in t.serving_regions]


def distribution(t: Target) -> list[str]:
    dist = t.distribution_id or "*"  # "*" only until the edge stack exists (see ALLOWED_WILDCARDS)
    return [f"arn:{t.partition}:cloudfront::{t.account}:distribution/{dist}"]


def everything(t: Target) -> list[str]:
    return ["*"]


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[Resource, ...]


READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
         "dynamodb:ConditionCheckItem")
CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
TRACING = Grant("Tracing", ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), (everything,))
IDEMPOTENCY = Grant("Idempotency", ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                    "dynamodb:DeleteItem"), (table("idempotency"),))

# The one definition. Each function also gets its own log group's statement and TRACING (see policy()).
GRANTS: dict[str, tuple[Grant, ...]] = {
    # Routes: users/identity, photos (presigned upload POST, delete, edits queue, CDN invalidation),
    # social graph, likes, feed reads, cursors, health probes (users table, uploads queue, media bucket).
    "api_handler": (
        Grant("Tables", READ + WRITE, (table("users"), table("sessions"), table("photos", indexes=True),
                                        table("counters"), table("graph"), table("feeds"),
                                        table("jobs"), table("quotas"))),
        Grant("Queues", ("sqs:SendMessage",), (queue("edits"), queue("fanout"))),
        Grant("HealthQueue", ("sqs:GetQueueAttributes",), (queue("uploads"),)),
        # A presigned POST is signed with the function's credentials: it needs PutObject on uploads/.
        Grant("MediaObjects", ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"),
              (media_objects("uploads/", "media/"),)),
        # The export download link: a CloudFront signed URL made with the exports signing key; where
        # the stage has no key pair id yet, an S3 presigned GET signed with the function's credentials.
        Grant("Exports", ("s3:GetObject",), (media_objects("exports/"),)),
        Grant("ExportsSigningKey", ("secretsmanager:GetSecretValue",), (exports_signing_secret,)),
        Grant("MediaBucket", ("s3:ListBucket",), (media_bucket_itself,)),
        Grant("Identity", ("cognito-idp:AdminConfirmSignUp", "cognito-idp:AdminDisableUser",
                           "cognito-idp:AdminGetUser"), (user_pool,)),
        Grant("CursorKey", ("secretsmanager:GetSecretValue",), (cursor_secret,)),
        Grant("Cdn", ("cloudfront:CreateInvalidation",), (distribution,)),
    ),
    # The authorizer: token checks against the revoked-sessions table (JWKS is a public HTTPS fetch).
    "bearer_auth": (
        Grant("Sessions", ("dynamodb:GetItem", "dynamodb:BatchGetItem"), (table("sessions"),)),
    ),
    # Renditions of new uploads: read uploads/, write media/, photo + counters, then the fan-out message.
    "process_uploads": (
        Grant("Consume", CONSUME, (queue("uploads"),)),
        Grant("Tables", READ + WRITE, (table("photos"), table("counters"), table("users"))),
        IDEMPOTENCY,
        Grant("MediaObjects", ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
              (media_objects("uploads/", "media/"),)),
        # Lists old renditions to replace; also makes a missing key a 404 rather than a 403.
        Grant("MediaBucket", ("s3:ListBucket",), (media_bucket_itself,)),
        Grant("Fanout", ("sqs:SendMessage",), (queue("fanout"),)),
    ),
    # Edits: new renditions version from the stored original; cleanup jobs on the same queue (purge a
    # deleted photo and its likes, batched CDN invalidations). A replaced version queues its invalidation there.
    "process_edits": (
        Grant("Consume", CONSUME, (queue("edits"),)),
        # graph: a purged photo's likes (like edges and their likers mirror).
        Grant("Tables", READ + WRITE, (table("photos"), table("counters"), table("graph"))),
        IDEMPOTENCY,
        Grant("MediaObjects", ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
              (media_objects("uploads/", "media/"),)),
        Grant("MediaBucket", ("s3:ListBucket",), (media_bucket_itself,)),
        Grant("Cdn", ("cloudfront:CreateInvalidation",), (distribution,)),
        Grant("Cleanup", ("sqs:SendMessage",), (queue("edits"),)),
    ),
    # Feed fan-out: followers from the graph, feed items, resumable job records, re-enqueue itself;
    # a follow's backfill reads the author's recent photos from the photos table's owner index.
    "fan_out_feed": (
        Grant("Consume", CONSUME, (queue("fanout"),)),
        Grant("Tables", READ + WRITE, (table("graph"), table("feeds"), table("jobs"),
                                        table("photos", indexes=True), table("users"), table("counters"),
                                        table("sessions"), table("quotas"))),
        Grant("Continue", ("sqs:SendMessage",), (queue("fanout"),)),
        # Account erasure (chalicelib.erasure) shares this worker: the user's media, CDN copies, identity.
        # Data export (chalicelib.export) too: reads originals, writes exports/.
        Grant("MediaObjects", ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
              (media_objects("uploads/", "media/", "exports/"),)),
        Grant("MediaBucket", ("s3:ListBucket",), (media_bucket_itself,)),
        Grant("Cdn", ("cloudfront:CreateInvalidation",), (distribution,)),
        Grant("Identity", ("cognito-idp:AdminDisableUser", "cognito-idp:AdminDeleteUser"), (user_pool,)),
        # The on-demand counter reconciliation (a ``reconcile_counters`` message) sweeps the counters table.
        Grant("Reconcile", ("dynamodb:Scan",), (table("counters"),)),
    ),
    # The scheduled counter reconciliation (chalicelib.reconcile): suspects and edges from the graph,
    # photo counts from the owner index, a scan of the counters table, repairs, its checkpoint.
    "reconcile_counters": (
        Grant("Tables", READ + WRITE, (table("graph"), table("counters"), table("jobs"),
                                        table("photos", indexes=True))),
        Grant("Sweep", ("dynamodb:Scan",), (table("counters"),)),
    ),
    # Counter totals from the counters table's stream: the mapping reads the stream with the
    # function's role; the function reads and updates only the totals (chalicelib.aggregator).
    "aggregate_counters": (
        Grant("Stream", ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                         "dynamodb:ListStreams"), (stream("counters"),)),
        Grant("Totals", ("dynamodb:GetItem", "dynamodb:UpdateItem"), (table("counters"),)),
    ),
}

def dax_cluster(t: Target) -> list[str]:
    return [f"arn:{t.partition}:dax:{r}:{t.account}:cache/{APP_NAME}-{t.stage}"  # infra/dax.yaml, per region
            for r in t.serving_regions]


#: Stages with a cache tier (infra/dax.yaml) and the functions placed in its VPC to read through DAX.
DAX_STAGES = ("prod",)
DAX_FUNCTIONS = ("api_handler",)
#: Only the operations chalicelib.dax.route and route_shared_timeline send to DAX (Query: a celebrity's
#: newest photos pulled into other readers' feeds; no Scan), on the stage's cluster; Lambda's own ENI
#: management for a function in a VPC (these EC2 actions support no resource-level permissions).
DAX_GRANTS: tuple[Grant, ...] = (
    Grant("Dax", ("dax:GetItem", "dax:BatchGetItem", "dax:Query", "dax:PutItem", "dax:UpdateItem",
                  "dax:DeleteItem"), (dax_cluster,)),
    Grant("VpcNetworking", ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                            "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                            "ec2:UnassignPrivateIpAddresses"), (everything,)),
)


# Wildcards a policy may contain, each with its reason. Anything else with "*" fails tests/unit/test_policies.py.
ALLOWED_WILDCARDS: tuple[tuple[str, str], ...] = (
    (r"^\*$", "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions"),
    (r"^arn:[^:]+:dynamodb:[^:*]+:\d+:table/photoscale-[a-z0-9]+-[a-z]+/index/\*$", "the indexes of one named table"),
    (r"^arn:[^:]+:dynamodb:[^:*]+:\d+:table/photoscale-[a-z0-9]+-[a-z]+/stream/\*$",
     "the streams of one named table (a stream's ARN ends in its creation time)"),
    (r"^arn:[^:]+:logs:[^:*]+:\d+:log-group:/aws/lambda/photoscale-[a-z0-9]+(-[a-z_]+)?:\*$",
     "the log streams of the function's own log group"),
    (r"^arn:[^:]+:s3:::photoscale-[a-z0-9]+-media-\d+-[a-z0-9-]+/(uploads|media|exports)/\*$",
     "objects under one key prefix of the stage's media bucket"),
    (r"^arn:[^:]+:secretsmanager:[^:*]+:\d+:secret:photoscale/[a-z0-9]+/(cursor|exports)-signing-key-\?{6}$",
     "the random 6-character suffix Secrets Manager appends to the secret's name"),
    (r"^arn:[^:]+:cognito-idp:[^:*]+:\d+:userpool/\*$",
     "fallback while USER_POOL_ID is unknown (before infra.stage_env); this region and account only"),
    (r"^arn:[^:]+:cloudfront::\d+:distribution/\*$",
     "fallback while CDN_DISTRIBUTION_ID is unknown (before the edge stack); this account only"),
)


def policy(function: str, target: Target) -> dict:
    """The IAM policy document of one function for one deploy target (pure)."""
    if function not in GRANTS:
        raise KeyError(f"no grants defined for function {function!r} (infra/policies.py GRANTS)")
    log_groups = [f"arn:{target.partition}:logs:{r}:{target.account}:log-group:"
                  f"/aws/lambda/{function_name(target.stage, function)}" for r in target.serving_regions]
    statements = [{
        "Sid": "Logs", "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [arn for group in log_groups for arn in (group, f"{group}:*")],
    }]
    dax = DAX_GRANTS if function in DAX_FUNCTIONS and target.stage in DAX_STAGES else ()
    for grant in (*GRANTS[function], *dax, TRACING):
        resources = [arn for build in grant.resources for arn in build(target)]
        statements.append({"Sid": grant.sid, "Effect": "Allow", "Action": list(grant.actions),
                           "Resource": resources})
    return {"Version": "2012-10-17", "Statement": statements}


def policy_file(stage: str, function: str) -> str:
    """The ``iam_policy_file`` value (relative to ``.chalice/``) for a stage and function."""
    return f"policies/{stage}-{function}.json"


def write_policies(target: Target, project_dir: Path = PROJECT_DIR) -> list[Path]:
    """Write every function's policy for ``target`` under ``.chalice/policies/``."""
    written = []
    for function in FUNCTIONS:
        path = Path(project_dir) / ".chalice" / policy_file(target.stage, function)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(policy(function, target), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def target_from_config(stage: str, region: str, account: str, config: dict, partition: str = "aws",
                       regions: tuple[str, ...] = ()) -> Target:
    """A target whose pool/distribution ids come from the stage's environment in ``config.json``."""
    env = {**config.get("environment_variables", {}),
           **config.get("stages", {}).get(stage, {}).get("environment_variables", {})}
    return Target(stage=stage, region=region, account=account, partition=partition,
                  user_pool_id=env.get("USER_POOL_ID") or None,
                  distribution_id=env.get("CDN_DISTRIBUTION_ID") or None,
                  regions=tuple(regions) if len(regions) > 1 else ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.policies", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--partition", default="aws")
    args = parser.parse_args(argv)
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text(encoding="utf-8"))
    target = target_from_config(args.stage, args.region, args.account, config, args.partition)
    for path in write_policies(target):
        print(f"wrote {path.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
