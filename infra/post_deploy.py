"""Post-deploy step: what ``chalice deploy`` (1.34) cannot configure itself.

Run after every ``chalice deploy --stage S``::

    python -m infra.post_deploy --stage prod [--region eu-west-1] [--project-dir .] [--dry-run]

It reads ``.chalice/deployed/{stage}.json`` (written by ``chalice deploy``: ``{"resources": [{"name",
"resource_type", ...}]}``) and

1. turns on ``FunctionResponseTypes=['ReportBatchItemFailures']`` for every SQS and DynamoDB-stream event-source
   mapping (``resource_type == "sqs_event"``, field ``event_uuid``). Chalice never sets it, so
   without this one failed message would make Lambda retry the whole batch;
2. puts API Gateway *gateway responses* on the REST API (``resource_type == "rest_api"``, field
   ``rest_api_id``) so errors produced by API Gateway itself (no/invalid token, unknown route,
   throttling, 5xx) carry our JSON error body ``{"error": {"code": ..., "message": ...}}`` (an
   authorizer that cannot decide - key set or sessions table down - answers 503 with
   ``Retry-After``: ``AUTHORIZER_FAILURE`` / ``AUTHORIZER_CONFIGURATION_ERROR``), then
   redeploys the API stage so they take effect. ``chalice deploy`` re-imports the API with
   ``mode=overwrite``, which drops them again - hence "after every deploy";
3. sets the stage's API Gateway throttling (rate and burst for ``*/*``) from ``infra/deploy.json``,
   the same values ``infra.package`` writes into the packaged template.

``make deploy`` (``infra.deploy``) runs this step itself, right after ``chalice deploy``.

The templates live in ``infra/gateway_responses.json`` (shared with the local stack, which applies
the same file to chalice local's errors); :func:`load_gateway_responses` is the one loader.

Planning (:func:`plan_post_deploy`) is pure; :func:`execute` applies actions idempotently
(already-correct settings are left alone, so a second run changes nothing).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union
from urllib.parse import urlparse

GATEWAY_RESPONSES_FILE = Path(__file__).resolve().parent / "gateway_responses.json"
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
DEFAULT_API_STAGE = "api"  # chalice's default api_gateway_stage


@dataclass(frozen=True)
class GatewayResponse:
    """One API Gateway error response in our error format.

    ``status_code`` ``None`` keeps the status API Gateway chose (used for DEFAULT_4XX/5XX, which
    cover e.g. 413 and 429 - overriding those with one fixed status would mislead clients).
    """

    response_type: str
    status_code: int | None
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()  # extra static headers, e.g. Retry-After on a 503

    def body(self) -> dict[str, Any]:
        """The JSON error body, as every other error of our API."""
        return {"error": {"code": self.code, "message": self.message}}

    def header_values(self) -> dict[str, str]:
        """Every header of the response (Content-Type first) as API Gateway takes static values:
        single-quoted literals."""
        return {"Content-Type": "'application/json'", **{name: f"'{value}'" for name, value in self.headers}}


def load_gateway_responses(path: str | Path = GATEWAY_RESPONSES_FILE) -> dict[str, GatewayResponse]:
    """Load ``gateway_responses.json``: response type -> ``{"statusCode", "code", "message"}``.

    ``statusCode`` is omitted for DEFAULT_4XX / DEFAULT_5XX: the original status is kept.
    Messages are used literally inside API Gateway (VTL) templates, so ``$`` and ``#`` are rejected.
    An optional ``headers`` object adds static headers (``{"Retry-After": "5"}``); values are
    quoted literals in API Gateway, so quotes, ``$`` and ``#`` are rejected there too.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    responses: dict[str, GatewayResponse] = {}
    for response_type, spec in raw.items():
        status = spec.get("statusCode")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"{response_type}: statusCode must be absent or an int 400..599, got {status!r}")
        for key in ("code", "message"):
            if not isinstance(spec[key], str) or set(spec[key]) & {"$", "#"}:
                raise ValueError(f"{response_type}: {key} must be a string without '$' or '#'")
        headers = spec.get("headers", {})
        if not isinstance(headers, dict) or not all(
                isinstance(n, str) and re.fullmatch(r"[A-Za-z0-9-]+", n) and isinstance(v, str)
                and not set(v) & {"'", '"', "$", "#"} for n, v in headers.items()):
            raise ValueError(f"{response_type}: headers must map header names to plain string values")
        responses[response_type] = GatewayResponse(response_type, status, spec["code"], spec["message"],
                                                   tuple(headers.items()))
    return responses


# --------------------------------------------------------------------------- plan (pure)


@dataclass(frozen=True)
class EnableBatchItemFailures:
    """Set FunctionResponseTypes=[ReportBatchItemFailures] on one SQS or DynamoDB-stream event-source mapping."""

    resource_name: str
    event_uuid: str


@dataclass(frozen=True)
class PutGatewayResponse:
    """Put one gateway response on a REST API."""

    rest_api_id: str
    response_type: str
    status_code: str | None
    response_parameters: dict[str, str]
    response_templates: dict[str, str]


@dataclass(frozen=True)
class RedeployStage:
    """Create a deployment so gateway-response changes go live (only if something changed)."""

    rest_api_id: str
    stage_name: str


@dataclass(frozen=True)
class ThrottleStage:
    """Set the default method throttling (``*/*``) of a REST API stage."""

    rest_api_id: str
    stage_name: str
    rate_limit: int
    burst_limit: int


Action = Union[EnableBatchItemFailures, PutGatewayResponse, RedeployStage, ThrottleStage]


def _stage_name(rest_api: dict[str, Any]) -> str:
    """Chalice records ``rest_api_url`` as ``https://{id}.execute-api.{region}.{suffix}/{stage}/``."""
    path = urlparse(rest_api.get("rest_api_url", "")).path.strip("/")
    return path.split("/")[0] if path else DEFAULT_API_STAGE


def plan_post_deploy(
    deployed: dict[str, Any], gateway_responses: dict[str, GatewayResponse] | None = None,
    throttle: dict[str, int] | None = None,
) -> list[Action]:
    """Actions for a ``deployed.json`` document: event sources first, then per REST API its
    gateway responses followed by one stage redeploy, then the stage's throttling (if declared)."""
    responses = load_gateway_responses() if gateway_responses is None else gateway_responses
    resources = deployed.get("resources", [])
    actions: list[Action] = [
        EnableBatchItemFailures(r["name"], r["event_uuid"])
        for r in resources if r.get("resource_type") in ("sqs_event", "dynamodb_event")
    ]
    for api in (r for r in resources if r.get("resource_type") == "rest_api"):
        for response in responses.values():
            actions.append(PutGatewayResponse(
                rest_api_id=api["rest_api_id"],
                response_type=response.response_type,
                status_code=None if response.status_code is None else str(response.status_code),
                response_parameters={f"gatewayresponse.header.{name}": value
                                     for name, value in response.header_values().items()},
                response_templates={"application/json": json.dumps(response.body())},
            ))
        actions.append(RedeployStage(api["rest_api_id"], _stage_name(api)))
        if throttle:
            actions.append(ThrottleStage(api["rest_api_id"], _stage_name(api),
                                         int(throttle["rate_limit"]), int(throttle["burst_limit"])))
    return actions


# --------------------------------------------------------------------------- execute (boto3)


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _retry_while_settling(call: Callable[[], Any], sleep: Callable[[float], None], attempts: int = 10) -> Any:
    """Right after ``chalice deploy`` a mapping may still be Creating/Updating: retry those errors."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:  # botocore ClientError; kept generic to stay import-light
            if _error_code(exc) != "ResourceInUseException" or attempt == attempts - 1:
                raise
            sleep(min(2 ** attempt, 10))
    return None


def execute(
    actions: list[Action],
    *,
    lambda_client: Any,
    apigateway_client: Any,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Apply ``actions`` idempotently; returns human-readable lines for what was changed."""
    changed: list[str] = []
    changed_apis: set[str] = set()
    for action in actions:
        if isinstance(action, EnableBatchItemFailures):
            current = lambda_client.get_event_source_mapping(UUID=action.event_uuid)
            types = current.get("FunctionResponseTypes") or []
            if REPORT_BATCH_ITEM_FAILURES in types:
                continue
            _retry_while_settling(lambda: lambda_client.update_event_source_mapping(
                UUID=action.event_uuid, FunctionResponseTypes=[*types, REPORT_BATCH_ITEM_FAILURES]), sleep)
            changed.append(f"{action.resource_name}: enabled {REPORT_BATCH_ITEM_FAILURES} ({action.event_uuid})")
        elif isinstance(action, PutGatewayResponse):
            if _gateway_response_matches(apigateway_client, action):
                continue
            kwargs: dict[str, Any] = {
                "restApiId": action.rest_api_id,
                "responseType": action.response_type,
                "responseParameters": action.response_parameters,
                "responseTemplates": action.response_templates,
            }
            if action.status_code is not None:
                kwargs["statusCode"] = action.status_code
            apigateway_client.put_gateway_response(**kwargs)
            changed_apis.add(action.rest_api_id)
            changed.append(f"{action.rest_api_id}: gateway response {action.response_type}")
        elif isinstance(action, RedeployStage):
            if action.rest_api_id not in changed_apis:
                continue
            apigateway_client.create_deployment(
                restApiId=action.rest_api_id, stageName=action.stage_name,
                description="infra.post_deploy: gateway responses",
            )
            changed.append(f"{action.rest_api_id}: redeployed stage {action.stage_name}")
        elif isinstance(action, ThrottleStage):
            stage = apigateway_client.get_stage(restApiId=action.rest_api_id, stageName=action.stage_name)
            current = (stage.get("methodSettings") or {}).get("*/*", {})
            if (current.get("throttlingRateLimit") == float(action.rate_limit)
                    and current.get("throttlingBurstLimit") == action.burst_limit):
                continue
            apigateway_client.update_stage(
                restApiId=action.rest_api_id, stageName=action.stage_name,
                patchOperations=[
                    {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(action.rate_limit)},
                    {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(action.burst_limit)},
                ],
            )
            changed.append(f"{action.rest_api_id}: stage {action.stage_name} throttling "
                           f"{action.rate_limit}/s, burst {action.burst_limit}")
        else:  # pragma: no cover - exhaustive over Action
            raise TypeError(f"unknown action {action!r}")
    return changed


def _gateway_response_matches(client: Any, action: PutGatewayResponse) -> bool:
    try:
        current = client.get_gateway_response(restApiId=action.rest_api_id, responseType=action.response_type)
    except Exception as exc:
        if _error_code(exc) == "NotFoundException":
            return False
        raise
    return (
        not current.get("defaultResponse", False)
        and current.get("statusCode") == action.status_code
        and (current.get("responseParameters") or {}) == action.response_parameters
        and (current.get("responseTemplates") or {}) == action.response_templates
    )


def deployed_file(project_dir: str | Path, stage: str) -> Path:
    """Where ``chalice deploy --stage`` records what it deployed."""
    return Path(project_dir) / ".chalice" / "deployed" / f"{stage}.json"


def run(stage: str, *, project_dir: str | Path = ".", region: str | None = None, dry_run: bool = False,
        session: Any = None) -> list[str]:
    """Plan from ``.chalice/deployed/{stage}.json`` and apply (or, with ``dry_run``, just describe)."""
    path = deployed_file(project_dir, stage)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found - run `chalice deploy --stage {stage}` first")
    from infra.package import throttling

    actions = plan_post_deploy(json.loads(path.read_text(encoding="utf-8")), throttle=throttling(stage))
    if dry_run:
        return [repr(a) for a in actions]
    if session is None:
        import boto3  # deploy-time dependency only

        session = boto3.session.Session(region_name=region)
    return execute(actions, lambda_client=session.client("lambda"), apigateway_client=session.client("apigateway"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.post_deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", default=None)
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--dry-run", action="store_true", help="print the planned actions only")
    args = parser.parse_args(argv)
    lines = run(args.stage, project_dir=args.project_dir, region=args.region, dry_run=args.dry_run)
    print("\n".join(lines) if lines else "post-deploy: nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
