"""Invariants of infra/observability.yaml: every resource the stage runs is watched, every alarm pages
the topic and links a runbook that exists, optional tiers are conditional, the dashboard renders."""
from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.cfn import INFRA_DIR, STATEFUL_TEMPLATE, load_template
from infra.observability import (
    BUSINESS_WIDGETS,
    OBSERVABILITY_TEMPLATE as OBSERVABILITY,
    REGENERATE_COMMAND,
    Function,
    app_functions,
    generate,
    render as render_template,
    stateful_queues,
    stateful_tables,
)

ROOT = INFRA_DIR.parent
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


def function_names(source: str | None = None) -> set[str]:
    """The Lambda functions Chalice deploys for app.py (the generator's reading of the decorators)."""
    return {f.name for f in app_functions(source if source is not None else (ROOT / "app.py").read_text())}


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


def test_the_documented_deploy_sends_the_template_through_s3_once_it_outgrows_the_inline_limit() -> None:
    """CloudFormation takes at most 51,200 bytes of template inline; ``aws cloudformation deploy``
    refuses a larger file unless ``--s3-bucket`` names a bucket to upload it to."""
    deploys = [line for line in (RUNBOOKS / "README.md").read_text().splitlines()
               if "--template-file infra/observability.yaml" in line]
    assert deploys, "docs/runbooks/README.md no longer says how to deploy the observability stack"
    if len(OBSERVABILITY.read_bytes()) > 51_200:
        assert all("--s3-bucket " in line for line in deploys), deploys


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
    expected = {f"{CONFIG['app_name']}-prod-{name}" for name in function_names()}
    assert {"photoscale-prod-api_handler", "photoscale-prod-bearer_auth"} <= expected
    assert watched(template, metric, "FunctionName") == expected


def test_every_queue_has_a_backlog_age_alarm_and_every_dlq_a_not_empty_alarm(template: dict[str, Any]) -> None:
    queues = stateful_names("AWS::SQS::Queue", "QueueName")
    dlqs = {q for q in queues if q.endswith("-dlq")}
    assert dlqs and queues - dlqs
    assert watched(template, "ApproximateAgeOfOldestMessage", "QueueName") == queues - dlqs
    assert watched(template, "ApproximateNumberOfMessagesVisible", "QueueName") == dlqs


def test_every_table_has_throttle_alarms_and_every_global_table_a_replication_alarm(template: dict[str, Any]) -> None:
    replicated = stateful_names("AWS::DynamoDB::GlobalTable", "TableName")
    tables = stateful_names("AWS::DynamoDB::Table", "TableName") | replicated
    assert replicated and tables - replicated, "infra/stateful.yaml has global and regional tables"
    assert watched(template, "ReadThrottleEvents", "TableName") == tables
    assert watched(template, "WriteThrottleEvents", "TableName") == tables
    # Regional tables (idempotency, jobs, quotas) have no replica, hence no ReplicationLatency metric
    assert watched(template, "ReplicationLatency", "TableName") == replicated


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


def test_the_dax_cluster_is_alarmed_on_cpu_throttling_and_errors_by_the_cluster_name_deployed(template) -> None:
    # Given the cluster name the dax stack outputs (infra.deploy passes it as DaxClusterName)
    params = {**defaults(template), "DaxClusterName": "photoscale-prod"}
    dax = {k: v for k, v in alarms(template).items() if k.startswith("Dax") and k != "DaxFallbackRateAlarm"}
    # Then its CPU, throttled requests and error share are alarmed, per that cluster, only with the cache tier
    assert {name for alarm in dax.values() for name in metric_names(alarm)} == {
        "CPUUtilization", "ThrottledRequestCount", "ErrorRequestCount", "TotalRequestCount"}
    for alarm in dax.values():
        assert alarm["Condition"] == "HasDax"
        assert dimension_values(alarm, params, "ClusterId") == {"photoscale-prod"}
        props = alarm["Properties"]
        namespaces = {props.get("Namespace")} if "Namespace" in props else {
            q["MetricStat"]["Metric"]["Namespace"] for q in props["Metrics"] if "MetricStat" in q}
        assert namespaces == {"AWS/DAX"}
    # And the dax stack's output is what the parameter names
    dax_template = load_template(INFRA_DIR / "dax.yaml")
    assert dax_template["Outputs"]["DaxClusterName"]["Value"] == {"Ref": "DaxCluster"}


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
    assert ("DAX cluster" in titles) is with_optional
    text = json.dumps(body)
    for name in function_names() | {q.rsplit("-", 1)[-1] for q in stateful_names("AWS::SQS::Queue", "QueueName")}:
        assert name in text
    replicated = stateful_names("AWS::DynamoDB::GlobalTable", "TableName")
    tables = stateful_names("AWS::DynamoDB::Table", "TableName") | replicated
    for title in ("DynamoDB throttle events", "DynamoDB consumed units"):
        assert dashboard_dimension(body, title, "TableName") == tables, title
    if with_optional:
        assert dashboard_dimension(body, "Replication latency (ms)", "TableName") == replicated


def emitted_business_metrics() -> set[str]:
    """Every literal ``metrics.add_metric(name="...")`` in chalicelib/ (read from the source)."""
    import ast

    names = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_metric":
                name = next((k.value for k in node.keywords if k.arg == "name"), None)
                if isinstance(name, ast.Constant):
                    names.add(name.value)
    return names


#: Emitted by the cache tier's client and charted (and alarmed) in its own optional widget.
CACHE_TIER_METRICS = {"DaxReads", "DaxFallbacks"}


def test_the_dashboard_charts_every_business_metric_the_code_emits_and_no_other(template) -> None:
    # Given the metrics the code emits and the business widgets of the rendered dashboard
    body = _dashboard(template, with_optional=False)
    business = {title for title, _ in BUSINESS_WIDGETS}
    charted = {metric[1] for w in body["widgets"] if w["properties"]["title"] in business
               for metric in w["properties"]["metrics"]}
    namespaces = {metric[0] for w in body["widgets"] if w["properties"]["title"] in business
                  for metric in w["properties"]["metrics"]}
    # Then every business metric is charted, in the app's namespace, and nothing charted is never emitted
    assert charted == emitted_business_metrics() - CACHE_TIER_METRICS
    assert namespaces == {CONFIG["environment_variables"]["POWERTOOLS_METRICS_NAMESPACE"]}
    for wanted in ("SignUps", "UploadsStarted", "PhotosProcessed", "PhotosRejected", "Likes", "Follows",
                   "FeedReads", "ExportsReady", "AccountsErased"):
        assert wanted in charted
    # And the business widgets do not overlap each other or the other widgets
    cells = [(w["x"], w["y"]) for w in _dashboard(template, with_optional=True)["widgets"]]
    assert len(cells) == len(set(cells))


def dashboard_dimension(body: dict[str, Any], title: str, dimension: str) -> set[str]:
    """The values of one dimension across a widget's metrics (["ns", "metric", "Dim", "value", ..., {opts}])."""
    widget, = (w for w in body["widgets"] if w["properties"]["title"] == title)
    return {metric[i + 1] for metric in widget["properties"]["metrics"]
            for i in range(2, len(metric) - 1, 2) if metric[i] == dimension}


# --------------------------------------------------------------------------- generation


def test_the_committed_template_is_the_generators_output() -> None:
    committed, generated = OBSERVABILITY.read_text(), generate()
    if committed != generated:
        diff = difflib.unified_diff(committed.splitlines(), generated.splitlines(),
                                    "infra/observability.yaml (committed)", "generated", lineterm="", n=1)
        pytest.fail(f"infra/observability.yaml is out of date: run {REGENERATE_COMMAND}\n"
                    + "\n".join(list(diff)[:40]))


def _render_to_file(tmp_path: Path, stateful: dict[str, Any], app_source: str | None = None) -> dict[str, Any]:
    source = app_source if app_source is not None else (ROOT / "app.py").read_text()
    text = render_template(CONFIG, app_functions(source), stateful_tables(stateful, "photoscale"),
                  stateful_queues(stateful, "photoscale"))
    path = tmp_path / "observability.yaml"
    path.write_text(text)
    return load_template(path)


def _with_exports(stateful: dict[str, Any]) -> dict[str, Any]:
    """The stateful template plus an exports table and an exports queue with its DLQ (3 receives)."""
    stateful = copy.deepcopy(stateful)
    stateful["Resources"]["ExportsTable"] = {
        "Type": "AWS::DynamoDB::Table", "Properties": {"TableName": {"Fn::Sub": "photoscale-${Stage}-exports"}}}
    stateful["Resources"]["ExportsDLQ"] = {
        "Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "photoscale-${Stage}-exports-dlq"}}}
    stateful["Resources"]["ExportsQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": {"Fn::Sub": "photoscale-${Stage}-exports"},
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["ExportsDLQ", "Arn"]}, "maxReceiveCount": 3}}}
    return stateful


def test_a_table_and_a_queue_added_to_the_stateful_template_get_their_alarms_and_dashboard_lines(tmp_path) -> None:
    generated = _render_to_file(tmp_path, _with_exports(load_template(STATEFUL_TEMPLATE)))
    replicated = stateful_names("AWS::DynamoDB::GlobalTable", "TableName")
    tables = stateful_names("AWS::DynamoDB::Table", "TableName") | replicated | {"photoscale-prod-exports"}
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        assert watched(generated, metric, "TableName") == tables, metric
    assert watched(generated, "ReplicationLatency", "TableName") == replicated  # a regional table: none
    assert "photoscale-prod-exports" in watched(generated, "ApproximateAgeOfOldestMessage", "QueueName")
    assert "photoscale-prod-exports-dlq" in watched(generated, "ApproximateNumberOfMessagesVisible", "QueueName")
    dlq_alarm = alarms(generated)["ExportsDlqAlarm"]["Properties"]
    assert "failed 3 receives" in dlq_alarm["AlarmDescription"]["Fn::Sub"]  # the queue's maxReceiveCount
    body = _dashboard(generated, with_optional=True)
    assert "photoscale-prod-exports" in dashboard_dimension(body, "DynamoDB throttle events", "TableName")
    assert "photoscale-prod-exports" in dashboard_dimension(body, "Oldest message age (s)", "QueueName")
    assert "photoscale-prod-exports-dlq" in dashboard_dimension(body, "Dead-letter queues (visible)", "QueueName")


def test_a_worker_added_to_the_app_gets_error_throttle_and_concurrency_alarms(tmp_path) -> None:
    source = (ROOT / "app.py").read_text() + (
        '\n\n@app.on_sqs_message(queue=event_source_queue("EXPORTS_QUEUE_NAME"), name="export_photos")\n'
        "def run_exports(event):\n    pass\n")
    generated = _render_to_file(tmp_path, load_template(STATEFUL_TEMPLATE), source)
    for metric in ("Errors", "Invocations", "Throttles", "ConcurrentExecutions"):
        assert "photoscale-prod-export_photos" in watched(generated, metric, "FunctionName"), metric
    assert "ExportPhotosErrorRateAlarm" in alarms(generated)


def test_the_routes_share_api_handler_listed_first_and_a_decorator_name_names_the_function() -> None:
    source = (
        "@app.on_sqs_message(queue='q', name='drain')\ndef worker(event): pass\n"
        "@app.route('/a')\ndef a(): pass\n"
        "@app.route('/b', name='ignored')\ndef b(): pass\n"
        "@app.authorizer()\ndef auth(request): pass\n"
        "@app.middleware('all')\ndef wrap(event, get_response): pass\n"
    )
    assert app_functions(source) == [Function("api_handler", "route"), Function("drain", "on_sqs_message"),
                                     Function("auth", "authorizer")]


def test_a_function_kind_without_an_error_rate_policy_stops_the_generator(tmp_path) -> None:
    source = (ROOT / "app.py").read_text() + "\n\n@app.on_sns_message(topic='t')\ndef sweep(event):\n    pass\n"
    with pytest.raises(ValueError, match="sweep .*ERROR_RATE_POLICY"):
        _render_to_file(tmp_path, load_template(STATEFUL_TEMPLATE), source)


def test_a_table_named_outside_the_stage_convention_is_refused() -> None:
    stateful = copy.deepcopy(load_template(STATEFUL_TEMPLATE))
    stateful["Resources"]["UsersTable"]["Properties"]["TableName"] = "users"
    with pytest.raises(ValueError, match=r"UsersTable: TableName must be !Sub photoscale-\$\{Stage\}-<name>"):
        stateful_tables(stateful, "photoscale")


def test_two_sources_that_would_share_an_alarm_are_refused(tmp_path) -> None:
    stateful = copy.deepcopy(load_template(STATEFUL_TEMPLATE))
    stateful["Resources"]["Users"] = {  # its alarms would be UsersTableThrottlesAlarm too
        "Type": "AWS::DynamoDB::GlobalTable", "Properties": {"TableName": {"Fn::Sub": "photoscale-${Stage}-people"}}}
    with pytest.raises(ValueError, match="share the logical ID UsersReplicationLatencyAlarm, UsersTableThrottlesAlarm"):
        _render_to_file(tmp_path, stateful)
