"""Invariants of infra/observability.yaml: every resource the stage runs is watched, every alarm pages
the topic and links a runbook that exists, optional tiers are conditional, the dashboard renders."""
from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from infra.cfn import INFRA_DIR, STATEFUL_TEMPLATE, load_template

ROOT = INFRA_DIR.parent
OBSERVABILITY = INFRA_DIR / "observability.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(OBSERVABILITY)


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def defaults(template: dict[str, Any], stage: str = "prod") -> dict[str, str]:
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update({"Stage": stage, "AWS::Region": "us-east-1"})
    return values


def render(value: Any, params: dict[str, str]) -> Any:
    """Resolve Ref / Fn::Sub / Fn::Join (enough for names, dimensions and the dashboard body)."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return params.get(arg, f"<{arg}>")
        if fn == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: params.get(m.group(1), m.group(0)), arg)
        if fn == "Fn::Join":
            return arg[0].join(str(render(part, params)) for part in arg[1])
    if isinstance(value, list):
        return [render(v, params) for v in value]
    if isinstance(value, dict):
        return {k: render(v, params) for k, v in value.items()}
    return value


def dimension_values(alarm: dict[str, Any], params: dict[str, str], dimension: str) -> set[str]:
    props = render(alarm["Properties"], params)
    dims = list(props.get("Dimensions", []))
    for query in props.get("Metrics", []):
        dims += query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
    return {d["Value"] for d in dims if d["Name"] == dimension}


def metric_names(alarm: dict[str, Any]) -> set[str]:
    props = alarm["Properties"]
    names = {props["MetricName"]} if "MetricName" in props else set()
    return names | {q["MetricStat"]["Metric"]["MetricName"] for q in props.get("Metrics", []) if "MetricStat" in q}


def watched(template: dict[str, Any], metric: str, dimension: str, stage: str = "prod") -> set[str]:
    params = defaults(template, stage)
    return {value for alarm in alarms(template).values() if metric in metric_names(alarm)
            for value in dimension_values(alarm, params, dimension)}


def stateful_names(rtype: str, key: str, stage: str = "prod") -> set[str]:
    resources = load_template(STATEFUL_TEMPLATE)["Resources"].values()
    return {render(r["Properties"][key], {"Stage": stage}) for r in resources if r["Type"] == rtype}


def app_functions() -> set[str]:
    """Chalice's functions in app.py: api_handler for the routes, one per authorizer and event handler."""
    tree = ast.parse((ROOT / "app.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            kind = target.attr if isinstance(target, ast.Attribute) else ""
            if kind == "route":
                names.add("api_handler")
            elif kind in ("authorizer", "on_sqs_message", "on_s3_event", "schedule", "lambda_function"):
                names.add(node.name)
    return names


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --------------------------------------------------------------------------- routing and runbooks


def test_every_alarm_notifies_the_topic_when_raised_and_when_cleared(template: dict[str, Any]) -> None:
    found = alarms(template)
    assert len(found) > 30
    for logical_id, alarm in found.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], logical_id
    assert template["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def test_every_alarm_description_links_an_existing_runbook_and_section(template: dict[str, Any]) -> None:
    assert template["Parameters"]["RunbookBaseUrl"]["Default"].endswith("/docs/runbooks")
    for logical_id, alarm in alarms(template).items():
        description = alarm["Properties"]["AlarmDescription"]["Fn::Sub"]
        link = re.search(r"Runbook: \$\{RunbookBaseUrl\}/(\S+)$", description)
        assert link, f"{logical_id} has no runbook link"
        path, _, anchor = link.group(1).partition("#")
        runbook = RUNBOOKS / path
        assert runbook.is_file(), f"{logical_id} links missing {runbook}"
        if anchor:
            headings = [line.lstrip("#") for line in runbook.read_text().splitlines() if line.startswith("#")]
            assert anchor in {github_anchor(h) for h in headings}, f"{logical_id}: no section #{anchor} in {path}"


def test_the_runbook_index_lists_every_runbook() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    for runbook in RUNBOOKS.glob("*.md"):
        if runbook.name != "README.md":
            assert f"({runbook.name})" in index, runbook.name


# --------------------------------------------------------------------------- coverage


def test_the_app_name_default_is_chalices_app_name() -> None:
    assert load_template(OBSERVABILITY)["Parameters"]["AppName"]["Default"] == CONFIG["app_name"]
    assert load_template(OBSERVABILITY)["Parameters"]["ApiStageName"]["Default"] == CONFIG["api_gateway_stage"]


@pytest.mark.parametrize("metric", ["Errors", "Invocations", "Throttles", "ConcurrentExecutions"])
def test_every_function_of_the_app_has_error_throttle_and_concurrency_alarms(template: dict[str, Any],
                                                                            metric: str) -> None:
    expected = {f"{CONFIG['app_name']}-prod-{name}" for name in app_functions()}
    assert {"photoscale-prod-api_handler", "photoscale-prod-bearer_auth"} <= expected
    assert watched(template, metric, "FunctionName") == expected


def test_every_queue_has_a_backlog_age_alarm_and_every_dlq_a_not_empty_alarm(template: dict[str, Any]) -> None:
    queues = stateful_names("AWS::SQS::Queue", "QueueName")
    dlqs = {q for q in queues if q.endswith("-dlq")}
    assert dlqs and queues - dlqs
    assert watched(template, "ApproximateAgeOfOldestMessage", "QueueName") == queues - dlqs
    assert watched(template, "ApproximateNumberOfMessagesVisible", "QueueName") == dlqs


def test_every_table_has_throttle_alarms_and_a_replication_alarm(template: dict[str, Any]) -> None:
    tables = stateful_names("AWS::DynamoDB::Table", "TableName")
    assert len(tables) == 8
    assert watched(template, "ReadThrottleEvents", "TableName") == tables
    assert watched(template, "WriteThrottleEvents", "TableName") == tables
    assert watched(template, "ReplicationLatency", "TableName") == tables


def test_the_api_has_5xx_rate_and_p99_latency_alarms(template: dict[str, Any]) -> None:
    found = alarms(template)
    assert found["Api5xxRateAlarm"]["Properties"]["MetricName"] == "5XXError"
    assert found["Api5xxRateAlarm"]["Properties"]["Statistic"] == "Average"  # the share of requests
    assert found["ApiLatencyP99Alarm"]["Properties"]["ExtendedStatistic"] == "p99"


def test_the_failed_photos_alarm_reads_the_metrics_the_pipeline_emits(template: dict[str, Any]) -> None:
    pipeline = (ROOT / "chalicelib" / "pipeline.py").read_text()
    names = metric_names(alarms(template)["PhotosFailedRateAlarm"])
    assert names == {"PhotosRejected", "PhotosProcessed"}
    for name in names:
        assert f'add_metric(name="{name}"' in pipeline
    assert CONFIG["environment_variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "Photoscale"


def test_optional_tiers_alarm_only_when_their_parameter_is_set(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    conditions = {"HasDax": "DaxClusterName", "HasReplica": "ReplicaRegion", "HasWaf": "WebAclName"}
    for condition, parameter in conditions.items():
        assert params[parameter]["Default"] == ""
        assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    by_condition = {v.get("Condition") for k, v in alarms(template).items()
                    if k.startswith(("Dax", "Waf")) or k.endswith("ReplicationLatencyAlarm")}
    assert by_condition == set(conditions)


# --------------------------------------------------------------------------- dashboard


def _dashboard(template: dict[str, Any], with_optional: bool) -> dict[str, Any]:
    params = defaults(template)
    params.update(DaxClusterName="photoscale-prod", ReplicaRegion="eu-west-1", WebAclName="photoscale-prod")
    parts = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Join"][1]
    chosen = [(p["Fn::If"][1] if with_optional else p["Fn::If"][2]) if isinstance(p, dict) and "Fn::If" in p else p
              for p in parts]
    return json.loads("".join(render(p, params) for p in chosen))


@pytest.mark.parametrize("with_optional", [False, True])
def test_the_dashboard_body_is_valid_json_with_and_without_the_optional_tiers(template, with_optional) -> None:
    body = _dashboard(template, with_optional)
    titles = {w["properties"]["title"] for w in body["widgets"]}
    assert ("DAX fallbacks" in titles) is with_optional
    text = json.dumps(body)
    for name in app_functions() | {q.rsplit("-", 1)[-1] for q in stateful_names("AWS::SQS::Queue", "QueueName")}:
        assert name in text
