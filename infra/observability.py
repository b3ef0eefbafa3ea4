"""Generate ``infra/observability.yaml``: one stage's CloudWatch dashboard and alarms, derived.

``python -m infra.observability --write`` (``make observability``) rewrites the template; without
``--write`` it prints it, and ``--check`` exits 1 when the committed file is stale.

The per-resource blocks come from their sources of truth, so a new table, queue or function is
watched as soon as the template is regenerated:

- tables and queues from ``infra/stateful.yaml``: every ``AWS::DynamoDB::Table`` and
  ``AWS::DynamoDB::GlobalTable`` (only these get replication-latency alarms), and every
  ``AWS::SQS::Queue`` paired with the dead-letter queue its ``RedrivePolicy`` names;
- functions from ``app.py``'s Chalice decorators (:func:`app_functions`): one ``api_handler`` for
  all routes, one function per authorizer and event handler, named ``<app_name>-<stage>-<name>``;
- the app name, API stage, metrics namespace and service from ``.chalice/config.json``.

What cannot be derived (the failure rate a function tolerates, the runbook a page opens, how old a
queue's backlog may get) is the policy section below; the fixed alarms (API, failed photos, DAX,
WAF), the parameters and the dashboard layout are written out here too. Stdlib + PyYAML only
(through :mod:`infra.cfn`); never part of the Lambda package.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.cfn import GLOBAL_TABLE, INFRA_DIR, REGIONAL_TABLE, STATEFUL_TEMPLATE, load_template

__all__ = [
    "Function", "Table", "Queue", "app_functions", "stateful_tables", "stateful_queues",
    "render", "generate", "OBSERVABILITY_TEMPLATE", "REGENERATE_COMMAND",
]

ROOT = INFRA_DIR.parent
OBSERVABILITY_TEMPLATE = INFRA_DIR / "observability.yaml"
REGENERATE_COMMAND = "make observability  (python -m infra.observability --write)"

# --------------------------------------------------------------------------- policy (not derivable)

API_RUNBOOK = "api-errors-and-latency.md"
DLQ_RUNBOOK = "dlq.md"
PHOTO_RUNBOOK = "photo-stuck-or-failed.md"
THROTTLING_RUNBOOK = "throttling.md"
FAILOVER_RUNBOOK = "region-failover.md"

# The business metrics the app emits in EMF (namespace from .chalice/config.json, dimension
# ``service`` only), grouped into the dashboard's business widgets. A unit test checks every name
# against the ``metrics.add_metric(name=...)`` calls in chalicelib/ both ways.
BUSINESS_WIDGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Sign-ups and uploads", ("SignUps", "UploadsStarted")),
    ("Photos ready and failed", ("PhotosProcessed", "PhotosRejected", "PhotoEditsApplied", "PhotosPurged")),
    ("Likes, follows and feed reads", ("Likes", "Follows", "FeedReads")),
    ("Exports and account erasures", ("ExportsReady", "AccountsErased")),
    ("Counter stream records redelivered", ("CounterRecordsRedelivered",)),
)

# Error-rate alarm per decorator kind: the share of failed invocations (%) that pages, and the runbook
# it opens. An authorizer answers a refused token by raising Unauthorized (API Gateway's 401 contract),
# which Lambda counts as an error, so its threshold sits well above normal refusals. A function of
# another kind (a schedule, an S3 event ...) stops the generator until its policy is chosen here.
ERROR_RATE_POLICY: dict[str, tuple[int, str]] = {
    "route": (1, API_RUNBOOK),
    "authorizer": (30, API_RUNBOOK),
    "on_sqs_message": (5, DLQ_RUNBOOK),
    # The counter aggregator: a failing batch is retried in order, so totals lag (never double-count).
    "on_dynamodb_record": (5, THROTTLING_RUNBOOK),
    "schedule": (1, FAILOVER_RUNBOOK),  # the counter reconciliation (docs/multi-region.md)
}
# Workers whose failures leave a photo stuck or failed open the photo runbook instead.
ERROR_RUNBOOK_BY_FUNCTION: dict[str, str] = {
    "process_uploads": PHOTO_RUNBOOK,
    "process_edits": PHOTO_RUNBOOK,
}
# Age (s) of a queue's oldest message that pages. A celebrity's fan-out is long by design (checkpointed
# and continued in new messages, docs/runbooks/dlq.md), so its queue may wait longer.
QUEUE_AGE_THRESHOLD_S: dict[str, int] = {"fanout": 900}
DEFAULT_QUEUE_AGE_THRESHOLD_S = 300

# --------------------------------------------------------------------------- sources of truth

# Chalice decorators that deploy a Lambda function of their own, named after the handler (or name=).
_OWN_FUNCTION_KINDS = frozenset({
    "authorizer", "on_s3_event", "on_sns_message", "on_sqs_message", "on_cw_event", "schedule",
    "on_kinesis_record", "on_dynamodb_record", "lambda_function",
})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Function:
    """A Lambda function Chalice deploys: ``<app_name>-<stage>-<name>``."""

    name: str
    kind: str  # the decorator: route (all routes share api_handler), authorizer, on_sqs_message ...


@dataclass(frozen=True)
class Table:
    """A DynamoDB table of the stateful stack: ``<app_name>-<stage>-<name>``; ``replicated``: a global table."""

    logical_id: str
    name: str
    replicated: bool = False


@dataclass(frozen=True)
class Queue:
    """A work queue of the stateful stack and, when it has one, its dead-letter queue."""

    logical_id: str
    name: str
    dlq: str | None = None
    max_receive_count: int | None = None


def app_functions(source: str) -> list[Function]:
    """Chalice's functions for ``app.py``'s source: ``api_handler`` (every route) first, then one per
    authorizer and event handler in source order, named by the decorator's ``name=`` or the handler's."""
    tree = ast.parse(source)
    has_routes = False
    found: list[Function] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            kind = target.attr if isinstance(target, ast.Attribute) else ""
            if kind == "route":
                has_routes = True
            elif kind in _OWN_FUNCTION_KINDS:
                found.append(Function(_handler_name(call, node.name), kind))
            elif kind.startswith("on_ws_"):
                raise ValueError(f"app.py: {node.name}: websocket handlers (Chalice's websocket_* functions) "
                                 "are not watched yet: teach infra/observability.py their names")
    return ([Function("api_handler", "route")] if has_routes else []) + found


def _handler_name(call: ast.Call | None, default: str) -> str:
    for keyword in call.keywords if call else ():
        if keyword.arg == "name":
            if not (isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)):
                raise ValueError(f"app.py: {default}: the decorator's name= must be a string literal")
            return keyword.value.value
    return default


def stateful_tables(stateful: dict[str, Any], prefix: str) -> list[Table]:
    """Every DynamoDB table of the stateful template (global and regional), in template order."""
    return [Table(logical_id, _short_name(logical_id, resource, "TableName", prefix),
                  replicated=resource["Type"] == GLOBAL_TABLE)
            for logical_id, resource in stateful["Resources"].items()
            if resource["Type"] in (GLOBAL_TABLE, REGIONAL_TABLE)]


def stateful_queues(stateful: dict[str, Any], prefix: str) -> list[Queue]:
    """Every SQS queue of the stateful template that is not a DLQ, in template order, with its DLQ."""
    resources = stateful["Resources"]
    sqs = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    redrive = {k: v["Properties"]["RedrivePolicy"] for k, v in sqs.items()
               if "RedrivePolicy" in v.get("Properties", {})}
    dlq_ids: dict[str, str] = {}
    for logical_id, policy in redrive.items():
        target = policy.get("deadLetterTargetArn")
        getatt = target.get("Fn::GetAtt") if isinstance(target, dict) else None
        if not (isinstance(getatt, list) and getatt[1:] == ["Arn"] and getatt[0] in sqs):
            raise ValueError(f"{logical_id}: RedrivePolicy.deadLetterTargetArn must be !GetAtt <queue>.Arn, "
                             f"got {target!r}")
        dlq_ids[logical_id] = getatt[0]
    queues = []
    for logical_id, resource in sqs.items():
        if logical_id in dlq_ids.values():
            continue
        dlq = dlq_ids.get(logical_id)
        queues.append(Queue(
            logical_id, _short_name(logical_id, resource, "QueueName", prefix),
            dlq=_short_name(dlq, sqs[dlq], "QueueName", prefix) if dlq else None,
            max_receive_count=int(redrive[logical_id]["maxReceiveCount"]) if dlq else None,
        ))
    return queues


def _short_name(logical_id: str, resource: dict[str, Any], key: str, prefix: str) -> str:
    """``users`` from ``TableName: !Sub photoscale-${Stage}-users``; anything else is refused, because the
    alarms name the resource as ``${AppName}-${Stage}-<name>``."""
    value = resource.get("Properties", {}).get(key)
    sub = value.get("Fn::Sub") if isinstance(value, dict) else None
    head = f"{prefix}-${{Stage}}-"
    name = sub[len(head):] if isinstance(sub, str) and sub.startswith(head) else ""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"infra/stateful.yaml {logical_id}: {key} must be !Sub {head}<name> "
                         f"({prefix} = app_name in .chalice/config.json), got {value!r}")
    return name


# --------------------------------------------------------------------------- YAML blocks


def _quote(text: str) -> str:
    """The inside of a YAML single-quoted scalar."""
    return text.replace("'", "''")


def _named(name: str) -> str:
    """A stage resource's physical name as a dimension value."""
    return f"!Sub '${{AppName}}-${{Stage}}-{name}'"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def _base(logical_id: str, suffix: str) -> str:
    return logical_id[: -len(suffix)] if logical_id.endswith(suffix) and logical_id != suffix else logical_id


Dimensions = list[tuple[str, str]]  # (Name, YAML value)


def _dimensions(dimensions: Dimensions) -> list[str]:
    entries = [f"{{Name: {name}, Value: {value}}}" for name, value in dimensions]
    if len(entries) == 1:
        return [f"Dimensions: [{entries[0]}]"]
    return ["Dimensions:", *(f"  - {entry}" for entry in entries)]


def _evaluation(periods: int, datapoints: int | None, threshold: int | float | str) -> list[str]:
    lines = [f"EvaluationPeriods: {periods}"]
    if datapoints is not None:
        lines.append(f"DatapointsToAlarm: {datapoints}")
    return [*lines, f"Threshold: {threshold}", "ComparisonOperator: GreaterThanThreshold"]


def _metric_alarm(namespace: str, metric: str, dimensions: Dimensions, statistic: str, period: int,
                  periods: int, datapoints: int | None, threshold: int | float | str) -> list[str]:
    stat_key = "ExtendedStatistic" if re.fullmatch(r"p\d+(\.\d+)?", statistic) else "Statistic"
    return [f"Namespace: {namespace}", f"MetricName: {metric}", *_dimensions(dimensions),
            f"{stat_key}: {statistic}", f"Period: {period}", *_evaluation(periods, datapoints, threshold)]


def _math_alarm(inputs: list[tuple[str, str, str, Dimensions]], period: int, result: tuple[str, str, str],
                periods: int, datapoints: int | None, threshold: int | float | str) -> list[str]:
    """Metric math: ``inputs`` are (Id, namespace, metric, dimensions) summed over ``period``;
    ``result`` is (Id, label, expression)."""
    lines = ["Metrics:"]
    for query_id, namespace, metric, dimensions in inputs:
        lines += [f"  - Id: {query_id}", "    ReturnData: false", "    MetricStat:", "      Metric:",
                  f"        Namespace: {namespace}", f"        MetricName: {metric}",
                  *(f"        {line}" for line in _dimensions(dimensions)),
                  f"      Period: {period}", "      Stat: Sum"]
    result_id, label, expression = result
    lines += [f"  - Id: {result_id}", f"    Label: {label}", f"    Expression: {expression}", "    ReturnData: true"]
    return [*lines, *_evaluation(periods, datapoints, threshold)]


def _alarm(logical_id: str, name: str, description: str, runbook: str, body: list[str],
           condition: str | None = None) -> str:
    lines = [f"  {logical_id}:", "    Type: AWS::CloudWatch::Alarm"]
    if condition:
        lines.append(f"    Condition: {condition}")
    lines += [
        "    Properties:",
        f"      AlarmName: !Sub ${{AppName}}-${{Stage}}-{name}",
        f"      AlarmDescription: !Sub '{_quote(description)} Runbook: ${{RunbookBaseUrl}}/{runbook}'",
        "      AlarmActions: [!Ref AlarmTopic]",
        "      OKActions: [!Ref AlarmTopic]",
        "      TreatMissingData: notBreaching",
        *(f"      {line}" for line in body),
    ]
    return "\n".join(lines) + "\n"


def _comments(*lines: str) -> str:
    return "".join(f"  # {line}\n" for line in lines)


# --------------------------------------------------------------------------- the template

_HEADER = """\
# Generated by infra/observability.py from infra/stateful.yaml, app.py and .chalice/config.json.
# Do not edit by hand: change the generator or its sources, then run `make observability`.
AWSTemplateFormatVersion: '2010-09-09'
Description: >-
  Photoscale observability for one stage: a CloudWatch dashboard and alarms routed to one SNS
  topic. Every alarm's description links its runbook in docs/runbooks/. Physical names follow
  infra/stateful.yaml (photoscale-<Stage>-<table|queue>) and Chalice's function naming
  (<app_name>-<stage>-<function>). Alarms for the DAX cache, global-table replication and the WAF
  exist only when their parameter is set, so the template is valid for every stage.

Parameters:
  Stage:
    Type: String
    AllowedValues: [local, dev, prod]
    Description: Deployment stage; embedded in every physical name.
  AppName:
    Type: String
    Default: {app_name}
    Description: Chalice app_name (.chalice/config.json); functions are <AppName>-<Stage>-<function>.
  ApiName:
    Type: String
    Default: {app_name}
    Description: Name of the REST API Chalice deploys (its ApiName metric dimension).
  ApiStageName:
    Type: String
    Default: {api_stage}
    Description: API Gateway stage (api_gateway_stage in .chalice/config.json).
  AlarmEmail:
    Type: String
    Default: ''
    Description: Optional e-mail address subscribed to the alarm topic (empty = none).
  RunbookBaseUrl:
    Type: String
    Default: https://github.com/photoscale/photoscale/blob/main/docs/runbooks
    Description: Where docs/runbooks/ is browsable; alarm descriptions link <RunbookBaseUrl>/<runbook>.md.
  ConcurrencyAlarmThreshold:
    Type: Number
    Default: 800
    MinValue: 1
    Description: Concurrent executions of one function that page (80 % of the 1,000 default regional quota).
  DaxClusterName:
    Type: String
    Default: ''
    Description: The stage's DAX cluster; empty when the stage has no cache tier (no DAX alarms).
  ReplicaRegion:
    Type: String
    Default: ''
    Description: The other region of the global tables; empty for a single-region stage (no replication alarms).
  WebAclName:
    Type: String
    Default: ''
    Description: The CloudFront WAF web ACL (metrics in us-east-1); empty when the stage has none (no WAF alarm).
  WafBlockedThreshold:
    Type: Number
    Default: 5000
    MinValue: 1
    Description: Blocked requests per 5 minutes that page (an attack or a rule blocking real users).

Conditions:
  HasAlarmEmail: !Not [!Equals [!Ref AlarmEmail, '']]
  HasDax: !Not [!Equals [!Ref DaxClusterName, '']]
  HasReplica: !Not [!Equals [!Ref ReplicaRegion, '']]
  HasWaf: !Not [!Equals [!Ref WebAclName, '']]

Resources:
  AlarmTopic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub ${{AppName}}-${{Stage}}-alarms
      KmsMasterKeyId: alias/aws/sns

  AlarmEmailSubscription:
    Type: AWS::SNS::Subscription
    Condition: HasAlarmEmail
    Properties:
      TopicArn: !Ref AlarmTopic
      Protocol: email
      Endpoint: !Ref AlarmEmail
"""

_OUTPUTS = """\
Outputs:
  AlarmTopicArn:
    Description: SNS topic every alarm notifies (subscribe on-call here).
    Value: !Ref AlarmTopic
  DashboardName:
    Value: !Ref Dashboard
"""

_API_DIMENSIONS: Dimensions = [("ApiName", "!Ref ApiName"), ("Stage", "!Ref ApiStageName")]


def _api_alarms() -> list[str]:
    return [
        _alarm("Api5xxRateAlarm", "api-5xx-rate",
               "More than 1 % of API requests answered 5xx for 3 of 5 minutes.", API_RUNBOOK,
               _metric_alarm("AWS/ApiGateway", "5XXError", _API_DIMENSIONS, "Average", 60, 5, 3, 0.01)),
        _alarm("ApiLatencyP99Alarm", "api-latency-p99",
               "API p99 latency above 2 s for 3 of 5 minutes.", API_RUNBOOK,
               _metric_alarm("AWS/ApiGateway", "Latency", _API_DIMENSIONS, "p99", 60, 5, 3, 2000)),
    ]


def _function_alarms(function: Function) -> list[str]:
    if function.kind not in ERROR_RATE_POLICY:
        raise ValueError(f"app.py: {function.name} (@app.{function.kind}) has no error-rate policy: "
                         f"add its kind to ERROR_RATE_POLICY in infra/observability.py")
    threshold, runbook = ERROR_RATE_POLICY[function.kind]
    runbook = ERROR_RUNBOOK_BY_FUNCTION.get(function.name, runbook)
    fn, base = function.name, _camel(function.name)
    dims: Dimensions = [("FunctionName", _named(fn))]
    return [
        _alarm(f"{base}ErrorRateAlarm", f"{fn}-error-rate",
               f"{fn}: more than {threshold} % of invocations failed in 2 of 3 periods of 5 minutes.", runbook,
               _math_alarm([("errors", "AWS/Lambda", "Errors", dims),
                            ("invocations", "AWS/Lambda", "Invocations", dims)],
                           300, ("rate", "error rate (%)", "IF(invocations > 0, 100 * errors / invocations, 0)"),
                           3, 2, threshold)),
        _alarm(f"{base}ThrottlesAlarm", f"{fn}-throttles",
               f"{fn}: invocations throttled (concurrency quota or reserved concurrency reached).", THROTTLING_RUNBOOK,
               _metric_alarm("AWS/Lambda", "Throttles", dims, "Sum", 60, 3, 2, 0)),
        _alarm(f"{base}ConcurrencyAlarm", f"{fn}-concurrency",
               f"{fn}: concurrent executions above the alarm threshold (quota headroom running out).",
               THROTTLING_RUNBOOK,
               _metric_alarm("AWS/Lambda", "ConcurrentExecutions", dims, "Maximum", 60, 5, 3,
                             "!Ref ConcurrencyAlarmThreshold")),
    ]


def _queue_alarms(queue: Queue, prefix: str) -> list[str]:
    base = _base(queue.logical_id, "Queue")
    age = QUEUE_AGE_THRESHOLD_S.get(queue.name, DEFAULT_QUEUE_AGE_THRESHOLD_S)
    blocks = [_alarm(
        f"{base}QueueAgeAlarm", f"{queue.name}-oldest-message-age",
        f"The oldest message in {prefix}-<stage>-{queue.name} is older than {age} s: "
        "the worker is failing, throttled or too slow.", f"{DLQ_RUNBOOK}#a-queue-is-backing-up",
        _metric_alarm("AWS/SQS", "ApproximateAgeOfOldestMessage", [("QueueName", _named(queue.name))],
                      "Maximum", 300, 2, 2, age))]
    if queue.dlq:
        blocks.append(_alarm(
            f"{base}DlqAlarm", f"{queue.dlq}-not-empty",
            f"{prefix}-<stage>-{queue.dlq} holds messages: they failed {queue.max_receive_count} receives "
            "and wait for a fix and a redrive.", DLQ_RUNBOOK,
            _metric_alarm("AWS/SQS", "ApproximateNumberOfMessagesVisible", [("QueueName", _named(queue.dlq))],
                          "Maximum", 300, 1, None, 0)))
    return blocks


def _table_throttles_alarm(table: Table, prefix: str) -> str:
    dims: Dimensions = [("TableName", _named(table.name))]
    return _alarm(
        f"{_base(table.logical_id, 'Table')}TableThrottlesAlarm", f"{table.name}-table-throttles",
        f"Requests to {prefix}-<stage>-{table.name} are throttled "
        "(a hot partition key or the table's on-demand limit).", f"{THROTTLING_RUNBOOK}#dynamodb",
        _math_alarm([("reads", "AWS/DynamoDB", "ReadThrottleEvents", dims),
                     ("writes", "AWS/DynamoDB", "WriteThrottleEvents", dims)],
                    300, ("throttled", "throttled requests", "reads + writes"), 2, 1, 0))


def _table_replication_alarm(table: Table, prefix: str) -> str:
    return _alarm(
        f"{_base(table.logical_id, 'Table')}ReplicationLatencyAlarm", f"{table.name}-replication-latency",
        f"Global-table replication of {prefix}-<stage>-{table.name} to the replica region is above 60 s.",
        "region-failover.md",
        _metric_alarm("AWS/DynamoDB", "ReplicationLatency",
                      [("TableName", _named(table.name)), ("ReceivingRegion", "!Ref ReplicaRegion")],
                      "Average", 60, 5, 3, 60000),
        condition="HasReplica")


def _photos_failed_alarm(namespace: str, service: str) -> str:
    dims: Dimensions = [("service", service)]
    return _alarm(
        "PhotosFailedRateAlarm", "photos-failed-rate",
        "More than 5 % of processed uploads ended failed (PhotosRejected vs PhotosProcessed) over 15 minutes.",
        PHOTO_RUNBOOK,
        _math_alarm([("rejected", namespace, "PhotosRejected", dims),
                     ("processed", namespace, "PhotosProcessed", dims)],
                    900, ("rate", "failed photos (%)",
                          "IF(rejected + processed > 0, 100 * rejected / (rejected + processed), 0)"),
                    1, None, 5))


def _dax_alarm(namespace: str, service: str) -> str:
    dims: Dimensions = [("service", service)]
    return _alarm(
        "DaxFallbackRateAlarm", "dax-fallback-rate",
        "More than 5 % of cached reads fell back to DynamoDB (DaxFallbacks vs DaxReads): "
        "the cache tier is down or slow.", "cache-down.md",
        _math_alarm([("fallbacks", namespace, "DaxFallbacks", dims), ("reads", namespace, "DaxReads", dims)],
                    60, ("rate", "DAX fallback rate (%)", "IF(reads > 0, 100 * fallbacks / reads, 0)"), 5, 3, 5),
        condition="HasDax")


#: The cache tier's own metrics (AWS/DAX, per cluster: ClusterId is the cluster's name, the dax stack's
#: DaxClusterName output that infra.deploy passes to this stack). DAX throttles requests once its CPU is
#: saturated, so the CPU alarm pages before throttling starts; errors are a share of all requests (a
#: conditional profile write that fails counts as one, so a few are normal).
DAX_CPU_THRESHOLD = 70
DAX_ERROR_RATE_THRESHOLD = 5


def _dax_cluster_alarms() -> list[str]:
    dims: Dimensions = [("ClusterId", "!Ref DaxClusterName")]
    return [
        _alarm("DaxCpuAlarm", "dax-cpu",
               f"DAX cluster CPU above {DAX_CPU_THRESHOLD} % for 3 of 5 minutes: it throttles requests when "
               "saturated (scale the node type or the node count).", "cache-down.md",
               _metric_alarm("AWS/DAX", "CPUUtilization", dims, "Average", 60, 5, 3, DAX_CPU_THRESHOLD),
               condition="HasDax"),
        _alarm("DaxThrottledRequestsAlarm", "dax-throttled-requests",
               "DAX throttled requests in 2 of 3 minutes (the app falls back to DynamoDB: DaxFallbacks).",
               "cache-down.md",
               _metric_alarm("AWS/DAX", "ThrottledRequestCount", dims, "Sum", 60, 3, 2, 0),
               condition="HasDax"),
        _alarm("DaxErrorRateAlarm", "dax-error-rate",
               f"More than {DAX_ERROR_RATE_THRESHOLD} % of DAX requests ended in an error "
               "(ErrorRequestCount vs TotalRequestCount) for 3 of 5 minutes.", "cache-down.md",
               _math_alarm([("errors", "AWS/DAX", "ErrorRequestCount", dims),
                            ("requests", "AWS/DAX", "TotalRequestCount", dims)],
                           60, ("rate", "DAX error rate (%)", "IF(requests > 0, 100 * errors / requests, 0)"),
                           5, 3, DAX_ERROR_RATE_THRESHOLD),
               condition="HasDax"),
    ]


def _waf_alarm() -> str:
    return _alarm(
        "WafBlockedRequestsAlarm", "waf-blocked-requests",
        "The WAF blocked more requests than WafBlockedThreshold in 5 minutes (an attack, or a rule blocking "
        "real users).", f"{THROTTLING_RUNBOOK}#waf",
        _metric_alarm("AWS/WAFV2", "BlockedRequests", [("WebACL", "!Ref WebAclName"), ("Rule", "ALL")],
                      "Sum", 300, 1, None, "!Ref WafBlockedThreshold"),
        condition="HasWaf")


# --------------------------------------------------------------------------- dashboard


def _widget(x: int, y: int, width: int, title: str, period: int, metrics: list[list[Any]]) -> str:
    body = {"type": "metric", "x": x, "y": y, "width": width, "height": 6,
            "properties": {"title": title, "view": "timeSeries", "region": "${AWS::Region}",
                           "period": period, "metrics": metrics}}
    return json.dumps(body, separators=(",", ":"))


def _per(namespace: str, metric: str, dimension: str, names: list[str], stat: str,
         label: str = "{}", extra: tuple[str, ...] = ()) -> list[list[Any]]:
    return [[namespace, metric, dimension, f"${{AppName}}-${{Stage}}-{name}", *extra,
             {"stat": stat, "label": label.format(name)}] for name in names]


def _dashboard(functions: list[Function], tables: list[Table], queues: list[Queue],
               namespace: str, service: str) -> str:
    fns = [f.name for f in functions]
    tbls = [t.name for t in tables]
    api = ["ApiName", "${ApiName}", "Stage", "${ApiStageName}"]
    ours = ["service", service]
    throttle_events, consumed = [], []
    for name in tbls:
        throttle_events += _per("AWS/DynamoDB", "ReadThrottleEvents", "TableName", [name], "Sum", "{} read")
        throttle_events += _per("AWS/DynamoDB", "WriteThrottleEvents", "TableName", [name], "Sum", "{} write")
        consumed += _per("AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", [name], "Sum", "{} r")
        consumed += _per("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", [name], "Sum", "{} wr")
    widgets = [
        _widget(0, 0, 12, "API requests and errors", 60,
                [["AWS/ApiGateway", metric, *api, {"stat": "Sum"}] for metric in ("Count", "4XXError", "5XXError")]),
        _widget(12, 0, 12, "API latency", 60,
                [["AWS/ApiGateway", "Latency", *api, {"stat": "p50"}],
                 ["AWS/ApiGateway", "Latency", *api, {"stat": "p99"}],
                 ["AWS/ApiGateway", "IntegrationLatency", *api, {"stat": "p99"}]]),
        _widget(0, 6, 8, "Lambda errors", 60, _per("AWS/Lambda", "Errors", "FunctionName", fns, "Sum")),
        _widget(8, 6, 8, "Lambda throttles", 60, _per("AWS/Lambda", "Throttles", "FunctionName", fns, "Sum")),
        _widget(16, 6, 8, "Lambda concurrency", 60,
                _per("AWS/Lambda", "ConcurrentExecutions", "FunctionName", fns, "Maximum")),
        _widget(0, 12, 12, "Oldest message age (s)", 300,
                _per("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", [q.name for q in queues], "Maximum")),
        _widget(12, 12, 12, "Dead-letter queues (visible)", 300,
                _per("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
                     [q.dlq for q in queues if q.dlq], "Maximum")),
        _widget(0, 18, 12, "DynamoDB throttle events", 300, throttle_events),
        _widget(12, 18, 12, "DynamoDB consumed units", 300, consumed),
    ]
    business_slots = [(0, 24), (0, 36), (12, 36), (0, 42), (12, 42)]  # (12, 24), row 30, (0, 48): the optional tiers
    widgets += [_widget(x, y, 12, title, 300, [[namespace, metric, *ours, {"stat": "Sum"}] for metric in names])
                for (x, y), (title, names) in zip(business_slots, BUSINESS_WIDGETS, strict=False)]
    optional = [
        ("HasDax", _widget(12, 24, 12, "DAX fallbacks", 60,
                           [[namespace, metric, *ours, {"stat": "Sum"}] for metric in ("DaxReads", "DaxFallbacks")])),
        ("HasDax", _widget(0, 48, 12, "DAX cluster", 60,
                           [["AWS/DAX", metric, "ClusterId", "${DaxClusterName}", {"stat": stat}]
                            for metric, stat in (("CPUUtilization", "Average"), ("ErrorRequestCount", "Sum"),
                                                 ("ThrottledRequestCount", "Sum"), ("TotalRequestCount", "Sum"))])),
        ("HasReplica", _widget(0, 30, 12, "Replication latency (ms)", 60,
                               _per("AWS/DynamoDB", "ReplicationLatency", "TableName",
                                    [t.name for t in tables if t.replicated], "Average",
                                    extra=("ReceivingRegion", "${ReplicaRegion}")))),
        ("HasWaf", _widget(12, 30, 12, "WAF blocked requests", 300,
                           [["AWS/WAFV2", "BlockedRequests", "WebACL", "${WebAclName}", "Rule", "ALL",
                             {"stat": "Sum", "region": "us-east-1"}]])),
    ]
    parts = ["'{\"widgets\":['"]
    parts += [f"!Sub '{_quote(w)},'" for w in widgets[:-1]] + [f"!Sub '{_quote(widgets[-1])}'"]
    parts += [f"!If [{condition}, !Sub ',{_quote(w)}', '']" for condition, w in optional]
    parts.append("']}'")
    return "\n".join([
        "  Dashboard:",
        "    Type: AWS::CloudWatch::Dashboard",
        "    Properties:",
        "      DashboardName: !Sub ${AppName}-${Stage}",
        "      DashboardBody: !Join",
        "        - ''",
        *(("        - - " if i == 0 else "          - ") + part for i, part in enumerate(parts)),
    ]) + "\n"


# --------------------------------------------------------------------------- assembly


def render(config: dict[str, Any], functions: list[Function], tables: list[Table], queues: list[Queue]) -> str:
    """The whole template's text for the Chalice ``config`` and the stage's resources (pure)."""
    app_name = config["app_name"]
    env = config.get("environment_variables", {})
    namespace, service = env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]
    blocks = [_HEADER.format(app_name=app_name, api_stage=config["api_gateway_stage"])]
    sections: list[tuple[list[str], list[str]]] = [
        (["----- API ---------------------------------------------------------------------------",
          "5XXError's Average is the share of requests that failed with 5xx (0..1)."],
         _api_alarms()),
        (["----- Lambda: error rate, throttles, concurrency per function -------------------------",
          "bearer_auth answers a refused token by raising Unauthorized (API Gateway's 401 contract),",
          "which Lambda counts as an error: its threshold is a rate well above normal refusals."],
         [block for function in functions for block in _function_alarms(function)]),
        (["----- SQS: backlog age and dead letters per queue --------------------------------------"],
         [block for queue in queues for block in _queue_alarms(queue, app_name)]),
        (["----- DynamoDB: throttled requests per table (read + write throttle events) -------------"],
         [_table_throttles_alarm(table, app_name) for table in tables]),
        ([f"----- The photo pipeline: share of photos ending failed (our EMF metrics, namespace {namespace})"],
         [_photos_failed_alarm(namespace, service)]),
        (["----- Optional tiers: only with their parameter set ------------------------------------",
          f"DaxReads and DaxFallbacks ({namespace} namespace) come from the cache tier's client, chalicelib/dax.py."],
         [_dax_alarm(namespace, service), *_dax_cluster_alarms(),
          *(_table_replication_alarm(t, app_name) for t in tables if t.replicated),
          _waf_alarm()]),
        (["----- Dashboard: one per stage; the optional tiers' widgets appear only when configured"],
         [_dashboard(functions, tables, queues, namespace, service)]),
    ]
    for comments, section in sections:
        if section:  # a stage without queues (say) has no SQS section rather than a dangling comment
            blocks += [_comments(*comments) + section[0], *section[1:]]
    blocks.append(_OUTPUTS)
    text = "\n".join(blocks)
    for what, pattern in (("logical ID", r"^  (\w+):$"), ("alarm name", r"^      AlarmName: !Sub (\S+)$")):
        found = re.findall(pattern, text, re.MULTILINE)
        duplicates = sorted({value for value in found if found.count(value) > 1})
        if duplicates:
            raise ValueError(f"two resources would share the {what} {', '.join(duplicates)}: rename one in its source")
    return text


def generate(root: Path = ROOT) -> str:
    """The template derived from this checkout's ``app.py``, ``infra/stateful.yaml`` and Chalice config."""
    config = json.loads((root / ".chalice" / "config.json").read_text(encoding="utf-8"))
    stateful = load_template(root / "infra" / STATEFUL_TEMPLATE.name)
    prefix = config["app_name"]
    return render(config, app_functions((root / "app.py").read_text(encoding="utf-8")),
                  stateful_tables(stateful, prefix), stateful_queues(stateful, prefix))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.observability", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite {OBSERVABILITY_TEMPLATE.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the committed template is out of date")
    args = parser.parse_args(argv)
    text = generate()
    target = OBSERVABILITY_TEMPLATE.relative_to(ROOT)
    if args.write:
        OBSERVABILITY_TEMPLATE.write_text(text, encoding="utf-8")
        print(f"wrote {target} ({len(text.encode())} bytes)", file=sys.stderr)
    elif args.check:
        if OBSERVABILITY_TEMPLATE.read_text(encoding="utf-8") != text:
            print(f"{target} is out of date: run {REGENERATE_COMMAND}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
