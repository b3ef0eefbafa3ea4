"""Local stand-in for ``aws cloudformation deploy`` of ``infra/stateful.yaml``.

The dev stack runs against a moto server, which has no real CloudFormation engine we
want to depend on. Instead this module reads the *same* template that production
deploys and creates its resources with plain boto3 calls, so local tables, queues,
buckets, the user pool and the secret can never drift from what AWS gets. It returns
the stack outputs exactly as CloudFormation would (output name -> value); the CLI
prints them as env vars (``UploadsQueueUrl`` -> ``UPLOADS_QUEUE_URL``).

Rules:
- Only the intrinsic functions and resource types the template uses are supported.
  An unknown resource type or resource property raises :class:`ProvisionError`, so a
  template change can never be silently ignored locally. Types that moto cannot
  meaningfully enforce are skipped through the explicit :data:`SKIPPED_TYPES` list.
- Resources are created in dependency order (Ref / GetAtt / Sub / DependsOn).
- Idempotent: existing resources are found by physical name and reused (their
  mutable configuration is re-applied; keys of an existing table are not migrated).
  Running twice against the same server returns the same outputs.
- Several regions (docs/multi-region.md): run once per region (``region_name``). Global
  resources carry ``Condition: IsPrimaryRegion``: the primary region's stack creates them with
  replicas in the other regions. moto replicates nothing, so in a replica region this
  provisioner *materialises the replica*: the same resource, with its properties as the primary's
  stack declares them, created as an ordinary regional one (a global table becomes a table with
  its stream, TTL and GSIs; a replicated secret gets the primary's value; the replicated user
  pool and its app client become this region's own pool). devstack's replicators keep the data in
  step. The outputs of those resources are returned in every region, as the app needs them there.

Dev-only: this lives in ``devstack/`` and is never shipped in the Lambda package.

CLI::

    python -m devstack.provision --endpoint http://127.0.0.1:4566 --stage local [--env-file .env.local]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from infra.cfn import STATEFUL_TEMPLATE, load_template, output_env_name

ClientFactory = Callable[[str], Any]

MOTO_ACCOUNT_ID = "123456789012"

#: Resource types deliberately not created locally, with the reason.
SKIPPED_TYPES: dict[str, str] = {
    "AWS::SQS::QueuePolicy": "moto does not enforce IAM/resource-policy conditions; S3 -> SQS works without it",
    "AWS::Cognito::UserPoolReplica": "moto has no pool replicas: each replica region materialises its own pool "
                                     "(see REPLICATED_TYPES) and devstack's Cognito stand-in copies the users",
}

#: The condition that marks a global resource: true only in the primary region's stack.
PRIMARY_ONLY_CONDITION = "IsPrimaryRegion"
#: The template parameter naming the primary region.
PRIMARY_REGION_PARAMETER = "PrimaryRegion"
#: Types whose primary-only resources exist in every replica region too (AWS replicates them);
#: locally each replica region creates its copy. Values: how to read a resource's replica regions.
REPLICATED_TYPES: dict[str, str] = {
    "AWS::DynamoDB::GlobalTable": "Replicas[].Region",
    "AWS::SecretsManager::Secret": "ReplicaRegions[].Region",
    "AWS::Cognito::UserPool": "RegionName of the AWS::Cognito::UserPoolReplica resources of the pool",
    "AWS::Cognito::UserPoolClient": "the replica regions of its UserPoolId (app clients replicate with the pool)",
}

_NO_VALUE = object()  # AWS::NoValue: the enclosing key / list item is dropped


class ProvisionError(RuntimeError):
    """The template uses something this local provisioner does not support."""


@dataclass
class Created:
    """A provisioned resource: its CloudFormation ``Ref`` value and ``GetAtt`` attributes."""

    ref: str
    attrs: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- intrinsics


class _Resolver:
    """Evaluates CloudFormation intrinsic functions against parameters and created resources."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str], pseudo: dict[str, str]):
        self.template = template
        self.params = parameters
        self.pseudo = pseudo
        self.created: dict[str, Created] = {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            try:
                expr = self.template.get("Conditions", {})[name]
            except KeyError:
                raise ProvisionError(f"unknown condition {name!r}") from None
            self._conditions[name] = bool(self.resolve(expr))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.created:
            return self.created[name].ref
        raise ProvisionError(f"Ref to unknown or not yet created name {name!r}")

    def get_att(self, logical_id: str, attr: str) -> str:
        try:
            return self.created[logical_id].attrs[attr]
        except KeyError:
            raise ProvisionError(f"GetAtt {logical_id}.{attr} is not available locally") from None

    def sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} -> ${Literal}
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name and name.split(".", 1)[0] in self.created:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        """Return ``node`` with every intrinsic function evaluated (AWS::NoValue entries removed)."""
        if isinstance(node, list):
            return [v for v in (self.resolve(v) for v in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(name) else if_false)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "Sub":
            return self.sub(arg)
        if name == "GetAtt":
            logical_id, attr = arg.split(".", 1) if isinstance(arg, str) else self.resolve(arg)
            return self.get_att(logical_id, attr)
        args = self.resolve(arg)
        if name == "Join":
            return str(args[0]).join(str(v) for v in args[1])
        if name == "Equals":
            return str(args[0]) == str(args[1])
        if name == "Not":
            return not args[0]
        if name == "And":
            return all(args)
        if name == "Or":
            return any(args)
        if name == "Select":
            return args[1][int(args[0])]
        if name == "Split":
            return str(args[1]).split(args[0])
        raise ProvisionError(f"intrinsic Fn::{name} is not supported locally")


def _references(node: Any) -> set[str]:
    """Names referenced by ``node`` via Ref, GetAtt or ${...} in Sub (resources and others)."""
    found: set[str] = set()
    if isinstance(node, list):
        for v in node:
            found |= _references(v)
    elif isinstance(node, dict):
        for key, arg in node.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.split(".", 1)[0] if isinstance(arg, str) else arg[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if not isinstance(arg, str):
                    found |= _references(arg[1])
            else:
                found |= _references(arg)
    return found


def creation_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids in dependency order (template order where there is no dependency)."""
    deps: dict[str, set[str]] = {}
    for logical_id, res in resources.items():
        depends_on = res.get("DependsOn", [])
        depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
        deps[logical_id] = ({*depends_on} | _references(res.get("Properties", {}))) & resources.keys()
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise ProvisionError(f"circular dependency involving {logical_id}")
        visiting.add(logical_id)
        for dep in sorted(deps[logical_id], key=list(resources).index):
            visit(dep)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return order


# --------------------------------------------------------------------------- resource handlers


def _require_only(logical_id: str, props: dict[str, Any], supported: set[str]) -> None:
    unknown = set(props) - supported
    if unknown:
        raise ProvisionError(f"{logical_id}: properties {sorted(unknown)} are not supported locally")


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _table(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    _require_only(logical_id, props, {
        "TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes", "StreamSpecification", "SSESpecification",
        "PointInTimeRecoverySpecification", "TimeToLiveSpecification", "Tags",
    })
    ddb = clients("dynamodb")
    name = props.get("TableName") or f"{ctx['AWS::StackName']}-{logical_id}"
    try:
        table = ddb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "Tags"):
            if key in props:
                kwargs[key] = props[key]
        if "StreamSpecification" in props:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        if "SSESpecification" in props:
            sse = dict(props["SSESpecification"])
            kwargs["SSESpecification"] = {"Enabled": sse.pop("SSEEnabled"), **sse}
        table = ddb.create_table(**kwargs)["TableDescription"]
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        wanted_status = "ENABLED" if ttl["Enabled"] else "DISABLED"
        if (current.get("TimeToLiveStatus"), current.get("AttributeName")) != (wanted_status, ttl["AttributeName"]):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    attrs = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attrs["StreamArn"] = table["LatestStreamArn"]
    return Created(ref=name, attrs=attrs)


def _global_table(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    """A global table's replica in this region: an ordinary table with the same keys, GSIs, stream and TTL.

    moto accepts but never performs replication; devstack's replicator copies changes between the
    regions' tables through their streams.
    """
    _require_only(logical_id, props, {
        "TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes", "StreamSpecification", "SSESpecification", "TimeToLiveSpecification", "Replicas",
    })
    region = ctx["AWS::Region"]
    replicas = {r["Region"]: r for r in props["Replicas"]}
    if region not in replicas:
        raise ProvisionError(f"{logical_id}: region {region} is not one of its replicas {sorted(replicas)}")
    replica = replicas[region]
    _require_only(f"{logical_id} replica {region}", replica, {"Region", "PointInTimeRecoverySpecification", "Tags"})
    table_props = {k: v for k, v in props.items() if k != "Replicas"}
    if "SSESpecification" in table_props:  # GlobalTable SSE {SSEEnabled, SSEType}; the table API takes the same
        table_props["SSESpecification"] = dict(table_props["SSESpecification"])
    for key in ("PointInTimeRecoverySpecification", "Tags"):
        if key in replica:
            table_props[key] = replica[key]
    created = _table(clients, logical_id, table_props, ctx)
    table_id = clients("dynamodb").describe_table(TableName=created.ref)["Table"].get("TableId", "")
    return Created(ref=created.ref, attrs={**created.attrs, "TableId": table_id})


def _queue(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    _require_only(logical_id, props, {
        "QueueName", "VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "RedriveAllowPolicy", "SqsManagedSseEnabled",
        "FifoQueue", "ContentBasedDeduplication", "KmsMasterKeyId", "Tags",
    })
    sqs = clients("sqs")
    name = props.get("QueueName") or f"{ctx['AWS::StackName']}-{logical_id}"

    def encode(value: Any) -> str:  # SQS attributes are strings; policies are JSON documents
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    attributes = {k: encode(v) for k, v in props.items() if k not in {"QueueName", "Tags"}}
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        fifo_only = {"FifoQueue"}  # immutable after creation
        sqs.set_queue_attributes(QueueUrl=url, Attributes={k: v for k, v in attributes.items() if k not in fifo_only})
    except ClientError as exc:
        if "NonExistentQueue" not in _error_code(exc):
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Created(ref=url, attrs={"Arn": arn, "QueueName": name, "QueueUrl": url})


def _s3_notification(config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation NotificationConfiguration -> S3 PutBucketNotificationConfiguration shape."""
    kinds = {  # CFN list key -> (API list key, CFN target key, API target key)
        "QueueConfigurations": ("QueueConfigurations", "Queue", "QueueArn"),
        "TopicConfigurations": ("TopicConfigurations", "Topic", "TopicArn"),
        "LambdaConfigurations": ("LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
    }
    unknown = set(config) - set(kinds)
    if unknown:
        raise ProvisionError(f"NotificationConfiguration {sorted(unknown)} not supported locally")
    out: dict[str, Any] = {}
    for cfn_key, (api_key, target, api_target) in kinds.items():
        for item in config.get(cfn_key, []):
            entry: dict[str, Any] = {api_target: item[target], "Events": [item["Event"]]}
            rules = item.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                entry["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            out.setdefault(api_key, []).append(entry)
    return out


def _s3_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    _require_only("LifecycleConfiguration", rule, {
        "Id", "Status", "Prefix", "AbortIncompleteMultipartUpload", "ExpirationInDays",
        "NoncurrentVersionExpiration", "ExpiredObjectDeleteMarker"})
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "ExpiredObjectDeleteMarker" in rule:
        out["Expiration"] = {"ExpiredObjectDeleteMarker": rule["ExpiredObjectDeleteMarker"]}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    return out


def _s3_replication(config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation ReplicationConfiguration -> PutBucketReplication's (moto stores it, copies nothing)."""
    _require_only("ReplicationConfiguration", config, {"Role", "Rules"})
    rules = []
    for rule in config["Rules"]:
        _require_only("ReplicationConfiguration rule", rule, {
            "Id", "Priority", "Status", "Filter", "Prefix", "DeleteMarkerReplication", "Destination"})
        rules.append({("ID" if k == "Id" else k): v for k, v in rule.items()})
    return {"Role": config["Role"], "Rules": rules}


def _s3_cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    renames = {"Id": "ID", "MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders"}
    return {renames.get(k, k): v for k, v in rule.items()}


def _bucket(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    _require_only(logical_id, props, {
        "BucketName", "BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls",
        "CorsConfiguration", "LifecycleConfiguration", "NotificationConfiguration", "Tags",
        "VersioningConfiguration", "ReplicationConfiguration",
    })
    s3 = clients("s3")
    name = props.get("BucketName") or f"{ctx['AWS::StackName']}-{logical_id}".lower()
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as exc:
        if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        region = ctx["AWS::Region"]
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **extra)
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "ReplicationConfiguration" in props:
        s3.put_bucket_replication(Bucket=name, ReplicationConfiguration=_s3_replication(props["ReplicationConfiguration"]))
    if "BucketEncryption" in props:
        rules = [{("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                  for k, v in rule.items()}
                 for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "CorsConfiguration" in props:
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={
            "CORSRules": [_s3_cors_rule(r) for r in props["CorsConfiguration"]["CorsRules"]]})
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={
            "Rules": [_s3_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]})
    if "NotificationConfiguration" in props:
        wanted = _s3_notification(props["NotificationConfiguration"])
        current = s3.get_bucket_notification_configuration(Bucket=name)
        current = {k: [{f: v for f, v in e.items() if f != "Id"} for e in entries]
                   for k, entries in current.items() if k.endswith("Configurations") and entries}
        if current != wanted:  # re-putting would make S3 send another s3:TestEvent
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=wanted)
    partition = ctx["AWS::Partition"]
    return Created(ref=name, attrs={
        "Arn": f"arn:{partition}:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{ctx['AWS::Region']}.amazonaws.com",
    })


def _role(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    """An IAM role with its inline policies (moto stores them; nothing enforces them locally)."""
    _require_only(logical_id, props, {"RoleName", "AssumeRolePolicyDocument", "Policies", "Description", "Tags"})
    iam = clients("iam")
    name = props.get("RoleName") or f"{ctx['AWS::StackName']}-{logical_id}"[:64]
    try:
        role = iam.get_role(RoleName=name)["Role"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
    except ClientError as exc:
        if _error_code(exc) != "NoSuchEntity":
            raise
        kwargs = {k: props[k] for k in ("Description", "Tags") if k in props}
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
                               **kwargs)["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))
    return Created(ref=name, attrs={"Arn": role["Arn"], "RoleId": role["RoleId"]})


def _user_pool(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    passthrough = {
        "Policies", "Schema", "UsernameConfiguration", "AutoVerifiedAttributes", "AccountRecoverySetting",
        "DeletionProtection", "MfaConfiguration", "UsernameAttributes", "AliasAttributes",
        "AdminCreateUserConfig", "VerificationMessageTemplate", "EmailConfiguration", "IssuerConfiguration",
    }
    _require_only(logical_id, props, passthrough | {"UserPoolName", "UserPoolTags"})
    idp = clients("cognito-idp")
    name = props.get("UserPoolName") or f"{ctx['AWS::StackName']}-{logical_id}"
    existing = [p for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60)
                for p in page["UserPools"] if p["Name"] == name]
    if existing:
        pool_id = existing[0]["Id"]
        arn = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Arn"]
    else:
        kwargs = {k: v for k, v in props.items() if k in passthrough}
        if "UserPoolTags" in props:
            kwargs["UserPoolTags"] = props["UserPoolTags"]
        pool = idp.create_user_pool(PoolName=name, **kwargs)["UserPool"]
        pool_id, arn = pool["Id"], pool["Arn"]
    provider = f"cognito-idp.{ctx['AWS::Region']}.amazonaws.com/{pool_id}"
    return Created(ref=pool_id, attrs={
        "Arn": arn, "UserPoolId": pool_id, "ProviderName": provider, "ProviderURL": f"https://{provider}",
    })


def _user_pool_client(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    _require_only(logical_id, props, {
        "UserPoolId", "ClientName", "GenerateSecret", "ExplicitAuthFlows", "EnableTokenRevocation",
        "PreventUserExistenceErrors", "AccessTokenValidity", "IdTokenValidity", "RefreshTokenValidity",
        "TokenValidityUnits", "ReadAttributes", "WriteAttributes", "SupportedIdentityProviders",
        "CallbackURLs", "LogoutURLs", "AllowedOAuthFlows", "AllowedOAuthScopes", "AllowedOAuthFlowsUserPoolClient",
    })
    idp = clients("cognito-idp")
    pool_id = props["UserPoolId"]
    name = props.get("ClientName") or f"{ctx['AWS::StackName']}-{logical_id}"
    existing = [c for page in idp.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool_id, MaxResults=60)
                for c in page["UserPoolClients"] if c["ClientName"] == name]
    if existing:
        client = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=existing[0]["ClientId"])["UserPoolClient"]
    else:
        kwargs = {k: v for k, v in props.items() if k not in {"UserPoolId", "ClientName"}}
        client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name, **kwargs)["UserPoolClient"]
    attrs = {"Name": name, "ClientId": client["ClientId"]}
    if client.get("ClientSecret"):
        attrs["ClientSecret"] = client["ClientSecret"]
    return Created(ref=client["ClientId"], attrs=attrs)


def _secret(clients: ClientFactory, logical_id: str, props: dict[str, Any], ctx: dict[str, Any]) -> Created:
    _require_only(logical_id, props, {
        "Name", "Description", "GenerateSecretString", "SecretString", "KmsKeyId", "Tags", "ReplicaRegions"})
    sm = clients("secretsmanager")
    name = props.get("Name") or f"{logical_id}-{ctx['AWS::StackName']}"
    try:
        arn = sm.describe_secret(SecretId=name)["ARN"]
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        if "ReplicaOf" in ctx:  # a replica holds the primary's value (created there first if need be)
            primary = ctx["ReplicaOf"]
            primary_clients = ctx["ClientsIn"](primary)
            source = _secret(primary_clients, logical_id, props,
                             {k: v for k, v in ctx.items() if k != "ReplicaOf"} | {"AWS::Region": primary})
            value = primary_clients("secretsmanager").get_secret_value(SecretId=source.ref)["SecretString"]
        elif "SecretString" in props:
            value = props["SecretString"]
        else:
            generate = dict(props.get("GenerateSecretString", {}))
            template, key = generate.pop("SecretStringTemplate", None), generate.pop("GenerateStringKey", None)
            # Remaining GenerateSecretString keys are exactly GetRandomPassword's parameters.
            value = sm.get_random_password(**generate)["RandomPassword"]
            if template is not None:
                value = json.dumps({**json.loads(template), key: value})
        kwargs = {k: props[k] for k in ("Description", "KmsKeyId", "Tags") if k in props}
        arn = sm.create_secret(Name=name, SecretString=value, **kwargs)["ARN"]
    return Created(ref=arn, attrs={"Id": arn})


HANDLERS: dict[str, Callable[[ClientFactory, str, dict[str, Any], dict[str, Any]], Created]] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::DynamoDB::GlobalTable": _global_table,
    "AWS::SQS::Queue": _queue,
    "AWS::S3::Bucket": _bucket,
    "AWS::Cognito::UserPool": _user_pool,
    "AWS::Cognito::UserPoolClient": _user_pool_client,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::IAM::Role": _role,
}


# --------------------------------------------------------------------------- entry points


def make_clients(endpoint_url: str | None = None, region_name: str | None = None) -> ClientFactory:
    """A cached boto3 client factory pointed at ``endpoint_url`` (fake credentials if none are set)."""
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region_name=region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    ) if endpoint_url else boto3.session.Session(region_name=region_name)
    cache: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=endpoint_url)
        return cache[service]

    return clients


def _parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    declared = template.get("Parameters", {})
    unknown = set(given) - set(declared)
    if unknown:
        raise ProvisionError(f"unknown parameters {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name not in given and "Default" not in spec:
            raise ProvisionError(f"parameter {name!r} has no value and no default")
        value = str(given.get(name, spec.get("Default")))
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise ProvisionError(f"parameter {name}={value!r} not in {spec['AllowedValues']}")
        values[name] = value
    return values


def _replica_regions(template: dict[str, Any], logical_id: str, primary: _Resolver) -> list[str]:
    """The regions the primary's stack replicates a global resource to (evaluated as it is there)."""
    resources = template["Resources"]
    rtype, props = resources[logical_id]["Type"], resources[logical_id].get("Properties", {})

    def regions_of(key: str) -> list[str]:
        specs = primary.resolve(props.get(key, []))
        return [] if specs is _NO_VALUE else [spec["Region"] for spec in specs]

    if rtype == "AWS::DynamoDB::GlobalTable":
        return regions_of("Replicas")
    if rtype == "AWS::SecretsManager::Secret":
        return regions_of("ReplicaRegions")
    if rtype == "AWS::Cognito::UserPool":
        return [str(primary.resolve(r["Properties"]["RegionName"])) for r in resources.values()
                if r["Type"] == "AWS::Cognito::UserPoolReplica"
                and r["Properties"]["UserPoolId"] == {"Ref": logical_id}
                and ("Condition" not in r or primary.condition(r["Condition"]))]
    if rtype == "AWS::Cognito::UserPoolClient":
        pool = resources[logical_id]["Properties"]["UserPoolId"]
        if not (isinstance(pool, dict) and "Ref" in pool):
            raise ProvisionError(f"{logical_id}: UserPoolId must Ref the template's pool to replicate locally")
        return _replica_regions(template, pool["Ref"], primary)
    raise ProvisionError(f"{logical_id}: {rtype} has no replicas")


def provision(
    template: dict[str, Any],
    *,
    stage: str,
    clients: ClientFactory | None = None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    parameters: dict[str, str] | None = None,
    stack_name: str | None = None,
    account_id: str = MOTO_ACCOUNT_ID,
) -> dict[str, str]:
    """Create the template's resources (idempotently) and return its outputs, name -> value.

    ``clients`` is a factory ``service_name -> boto3 client``; without it clients are built
    for ``endpoint_url`` / ``region_name``. ``stage`` fills the ``Stage`` parameter.
    """
    clients = clients or make_clients(endpoint_url, region_name)
    region = clients("dynamodb").meta.region_name
    params = _parameters(template, {"Stage": stage, **(parameters or {})})
    pseudo = {
        "AWS::AccountId": account_id,
        "AWS::Region": region,
        "AWS::StackName": stack_name or f"photoscale-{stage}-stateful",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    resolver = _Resolver(template, params, pseudo)
    # The primary region's stack, as CloudFormation evaluates it there: global resources are declared
    # by it, so a replica's properties are resolved in its context (sharing what exists locally).
    primary_region = params.get(PRIMARY_REGION_PARAMETER, region)
    primary = _Resolver(template, params, {**pseudo, "AWS::Region": primary_region})
    primary.created = resolver.created
    endpoint = clients("dynamodb").meta.endpoint_url
    override = None if endpoint.endswith(".amazonaws.com") else endpoint
    ctx: dict[str, Any] = {**pseudo, "ClientsIn": lambda other: make_clients(override, other)}
    replicas: set[str] = set()  # logical ids materialised here as replicas of the primary's resources
    resources = template.get("Resources", {})
    for logical_id, resource in resources.items():  # fail before creating anything
        if resource["Type"] not in HANDLERS and resource["Type"] not in SKIPPED_TYPES:
            raise ProvisionError(
                f"{logical_id}: resource type {resource['Type']} is not supported by devstack.provision; "
                "add a handler or an entry in SKIPPED_TYPES"
            )
    for logical_id in creation_order(resources):
        resource = resources[logical_id]
        rtype = resource["Type"]
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            if resource["Condition"] != PRIMARY_ONLY_CONDITION or rtype not in REPLICATED_TYPES:
                continue
            if region not in _replica_regions(template, logical_id, primary):
                continue
            props = primary.resolve(resource.get("Properties", {}))
            replicas.add(logical_id)
            resolver.created[logical_id] = HANDLERS[rtype](
                clients, logical_id, props, {**ctx, "ReplicaOf": primary_region})
            continue
        if rtype in SKIPPED_TYPES:
            resolver.created[logical_id] = Created(ref=f"{pseudo['AWS::StackName']}-{logical_id}")
            continue
        props = resolver.resolve(resource.get("Properties", {}))
        resolver.created[logical_id] = HANDLERS[rtype](clients, logical_id, props, ctx)
    outputs: dict[str, str] = {}
    for name, output in template.get("Outputs", {}).items():
        if "Condition" in output and not resolver.condition(output["Condition"]):
            # A global resource's output: given here too when its resources were materialised here.
            refs = _references(output["Value"]) & resources.keys()
            if output["Condition"] != PRIMARY_ONLY_CONDITION or not refs or not refs <= replicas:
                continue
        outputs[name] = str(resolver.resolve(output["Value"]))
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.provision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:4566")
    parser.add_argument("--stage", default="local", help="Stage parameter (default: local)")
    parser.add_argument("--region", default=None, help="AWS region (default: $AWS_REGION or us-east-1)")
    parser.add_argument("--template", default=str(STATEFUL_TEMPLATE), help="template path")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="extra template parameter")
    parser.add_argument("--env-file", default=None, help="also write the ENV_NAME=value lines to this file")
    args = parser.parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.param)
    outputs = provision(
        load_template(args.template), stage=args.stage, endpoint_url=args.endpoint,
        region_name=args.region, parameters=parameters,
    )
    lines = [f"{output_env_name(name)}={value}" for name, value in outputs.items()]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.env_file:
        Path(args.env_file).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
