"""The whole ``chalice deploy`` path in one command: ``make deploy STAGE=prod``.

Runs in ``.venv-package`` (the runtime's Python, see ``infra.package``), with AWS credentials::

    python -m infra.deploy --stage prod [--region eu-west-1]

Every serving region of the stage (``infra/deploy.json`` ``regions``, primary first; ``--region`` for
one), one after the other, each with its own environment (``.chalice/env/<stage>/<region>.json``, from
``infra.stage_env``) and its own Chalice deployment state: Chalice keeps one
``.chalice/deployed/<stage>.json`` per stage, so each region's is kept as
``.chalice/deployed/<stage>.<region>.json`` and swapped in for that region's deploy (an existing
single-region ``<stage>.json`` is adopted as the primary's). Per region:

0. the stage's stacks in that region (:func:`stack_plan`, ``infra/deploy.json`` ``stacks``: prod's cache
   tier, ``infra/dax.yaml``; dev has none) are created or updated, and their outputs recorded in the
   region's environment file (``cache_tier``); then the region's environment is applied to the stage in
   ``.chalice/config.json`` (the API function in the cache tier's VPC with its ``DAX_ENDPOINT``);
1. writes the per-function IAM policies for this stage, region and account (``infra.policies``;
   user pool / distribution ids from the stage's environment, set by ``infra.stage_env``);
2. builds the imaging layer for the stage's runtime/architecture and publishes it unless the latest
   version already has the same content (its description carries the sha256);
3. attaches that layer version to the image workers in ``.chalice/config.json``;
4. ``chalice deploy --stage`` (strict: a dependency without a Lambda wheel fails the deploy);
5. ``infra.post_deploy``: ReportBatchItemFailures on the SQS mappings, gateway responses, stage
   throttling. Skipping it would silently drop failed messages, hence one command.

``python -m infra.deploy --stage prod --region eu-west-1 --observability-parameters`` prints the
observability stack's parameters for that region (``DaxClusterName`` from the recorded cache tier,
``ReplicaRegion``), for ``aws cloudformation deploy --parameter-overrides``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import package, policies

CONFIG = package.PROJECT_DIR / ".chalice" / "config.json"


#: The stack whose outputs place the API function in the cache tier (``infra.stage_env.with_cache_tier``).
CACHE_TIER = "cache_tier"


@dataclass(frozen=True)
class StackStep:
    """One CloudFormation stack the deploy creates or updates in a region before Chalice (what, not how)."""

    key: str  # its entry in infra/deploy.json "stacks", and in the region's environment file
    stack_name: str
    template: Path
    region: str
    parameters: tuple[tuple[str, str], ...] = ()
    capabilities: tuple[str, ...] = ()


def stack_plan(stage: str, region: str, settings: dict[str, Any] | None = None,
               project_dir: Path = package.PROJECT_DIR) -> list[StackStep]:
    """The stacks ``stage`` has in ``region``, in order (pure: from ``infra/deploy.json`` ``stacks``)."""
    settings = package.deploy_settings() if settings is None else settings
    steps = []
    for key, spec in settings.get("stacks", {}).items():
        if stage not in spec["stages"]:
            continue
        steps.append(StackStep(
            key=key, stack_name=spec["stack_name"].format(stage=stage), template=Path(project_dir) / spec["template"],
            region=region,
            parameters=tuple(sorted((name, str(value).format(stage=stage))
                                    for name, value in spec.get("parameters", {}).items())),
            capabilities=tuple(spec.get("capabilities", ()))))
    return steps


def deploy_stack(cloudformation: Any, step: StackStep) -> dict[str, str]:
    """Create ``step``'s stack, or update it (nothing to update is fine), wait until it is complete,
    and return its outputs. A failure raises (the waiter's error names the stack's status)."""
    from botocore.exceptions import ClientError

    from infra import stage_env

    request = {"StackName": step.stack_name, "TemplateBody": step.template.read_text(encoding="utf-8"),
               "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in step.parameters],
               "Capabilities": list(step.capabilities)}
    try:
        cloudformation.describe_stacks(StackName=step.stack_name)
        exists = True
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        exists = False
    waiter = None
    if exists:
        try:
            cloudformation.update_stack(**request)
            waiter = "stack_update_complete"
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
    else:
        cloudformation.create_stack(**request)
        waiter = "stack_create_complete"
    if waiter:  # a DAX cluster takes 10-15 minutes to create
        cloudformation.get_waiter(waiter).wait(StackName=step.stack_name,
                                               WaiterConfig={"Delay": 15, "MaxAttempts": 160})
    return stage_env.stack_outputs(cloudformation, step.stack_name)


def deploy_stacks(stage: str, region: str, cloudformation: Any, env_dir: Path | None = None,
                  settings: dict[str, Any] | None = None, steps: list[StackStep] | None = None) -> dict[str, dict]:
    """Run the region's :func:`stack_plan` (or ``steps``) and record each stack's outputs under its key in
    the region's environment file (which ``infra.stage_env`` wrote before); returns them by key."""
    from infra import stage_env

    steps = stack_plan(stage, region, settings) if steps is None else steps
    outputs = {step.key: deploy_stack(cloudformation, step) for step in steps}
    path = stage_env.region_env_file(stage, region, env_dir or stage_env.ENV_DIR)
    if outputs:
        if not path.exists():
            raise SystemExit(f"error: no environment for {stage} in {region}: run python -m infra.stage_env --stage {stage}")
        document = json.loads(path.read_text(encoding="utf-8"))
        document.update(outputs)
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return outputs


def observability_parameters(stage: str, region: str, regions: list[str], region_env: dict[str, Any]) -> dict[str, str]:
    """The observability stack's parameters for ``region`` (pure): the cache tier's cluster (empty: no
    DAX alarms) and the global tables' other region (empty for a single-region stage)."""
    others = [r for r in regions if r != region]
    return {"Stage": stage,
            "DaxClusterName": region_env.get(CACHE_TIER, {}).get("DaxClusterName", ""),
            "ReplicaRegion": others[0] if others else ""}


def with_worker_layers(config: dict[str, Any], stage: str, layer_arn: str) -> dict[str, Any]:
    """``config`` with ``layer_arn`` as the only layer of the image workers in ``stage`` (pure)."""
    updated = json.loads(json.dumps(config))
    functions = updated.setdefault("stages", {}).setdefault(stage, {}).setdefault("lambda_functions", {})
    for function in package.IMAGING_FUNCTIONS:
        functions.setdefault(function, {})["layers"] = [layer_arn]
    return updated


def publish_layer(lambda_client: Any, name: str, zip_path: Path, runtime: str, architecture: str) -> str:
    """The ARN of a layer version with this zip's content: the latest one if it matches, else a new one."""
    body = zip_path.read_bytes()
    description = f"photoscale imaging layer sha256:{hashlib.sha256(body).hexdigest()}"
    versions = lambda_client.list_layer_versions(LayerName=name).get("LayerVersions", [])
    latest = max(versions, key=lambda v: v["Version"], default=None)
    if latest and latest.get("Description") == description:
        return latest["LayerVersionArn"]
    return lambda_client.publish_layer_version(
        LayerName=name, Description=description, Content={"ZipFile": body},
        CompatibleRuntimes=[runtime], CompatibleArchitectures=[architecture],
    )["LayerVersionArn"]


def deployed_state(stage: str, region: str, project_dir: Path = package.PROJECT_DIR) -> tuple[Path, Path]:
    """(the file Chalice reads and writes for ``stage``, where ``region``'s copy is kept)."""
    deployed = Path(project_dir) / ".chalice" / "deployed"
    return deployed / f"{stage}.json", deployed / f"{stage}.{region}.json"


def swap_in_state(stage: str, region: str, primary: str, project_dir: Path = package.PROJECT_DIR) -> None:
    """Make ``region``'s Chalice deployment state the current one (none yet: a first deploy there)."""
    current, kept = deployed_state(stage, region, project_dir)
    if kept.exists():
        current.write_bytes(kept.read_bytes())
    elif current.exists() and region != primary:
        current.unlink()  # another region's state: this region has no deployment yet
    # else: the primary adopts an existing single-region state file as its own


def keep_state(stage: str, region: str, project_dir: Path = package.PROJECT_DIR) -> None:
    current, kept = deployed_state(stage, region, project_dir)
    if current.exists():
        kept.write_bytes(current.read_bytes())


def region_config(config: dict[str, Any], stage: str, region: str, env_dir: Path | None = None) -> dict[str, Any]:
    """``config`` with ``region``'s environment file (``infra.stage_env``) applied to ``stage``."""
    from infra import stage_env

    return stage_env.config_for_region(config, stage,
                                       stage_env.read_region_env(stage, region, env_dir or stage_env.ENV_DIR))


def deploy_region(stage: str, region: str, regions: list[str], runtime: str) -> int:
    import boto3

    from infra import post_deploy
    from infra.strict_chalice import run as run_chalice

    session = boto3.session.Session(region_name=region)
    account = session.client("sts").get_caller_identity()["Account"]
    for key, outputs in deploy_stacks(stage, region, session.client("cloudformation")).items():
        print(f"{key} ({region}): " + ", ".join(f"{k}={v}" for k, v in sorted(outputs.items())))
    config = region_config(json.loads(CONFIG.read_text(encoding="utf-8")), stage, region)
    target = policies.target_from_config(stage, region, account, config,
                                         partition=session.get_partition_for_region(region), regions=tuple(regions))
    for path in policies.write_policies(target):
        print(f"wrote {path.relative_to(package.PROJECT_DIR)}")

    architecture = package.architecture_of(stage)
    layer_zip = package.PROJECT_DIR / "build" / "deploy" / stage / package.LAYER_ZIP
    layer_zip.parent.mkdir(parents=True, exist_ok=True)
    package.build_layer(package.PROJECT_DIR / package.IMAGING_REQUIREMENTS, runtime, architecture, layer_zip)
    arn = publish_layer(session.client("lambda"), f"{policies.APP_NAME}-{stage}-imaging", layer_zip,
                        runtime, architecture)  # layers are regional: one version per region
    print(f"imaging layer ({region}): {arn}")
    CONFIG.write_text(json.dumps(with_worker_layers(config, stage, arn), indent=2) + "\n", encoding="utf-8")

    swap_in_state(stage, region, regions[0])
    try:
        if run_chalice(["--project-dir", str(package.PROJECT_DIR), "deploy", "--stage", stage]) != 0:
            return 1
        lines = post_deploy.run(stage, project_dir=package.PROJECT_DIR, session=session)
    finally:
        keep_state(stage, region)
    print("\n".join(lines) if lines else f"post-deploy ({region}): nothing to change")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", default=None, help="deploy this one region only (default: every region)")
    parser.add_argument("--observability-parameters", action="store_true",
                        help="print the observability stack's parameters for --region (Key=Value ...) and exit")
    args = parser.parse_args(argv)
    settings = package.deploy_settings()
    if args.observability_parameters:
        from infra import stage_env

        if not args.region:
            raise SystemExit("error: --observability-parameters needs --region")
        path = stage_env.region_env_file(args.stage, args.region)
        region_env = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        parameters = observability_parameters(args.stage, args.region, list(settings["regions"]), region_env)
        print(" ".join(f"{k}={v}" for k, v in parameters.items()))
        return 0
    runtime = settings["runtime"]
    package.require_runtime(runtime)
    regions = list(settings["regions"])
    if args.region and args.region not in regions:
        raise SystemExit(f"error: {args.region} is not one of the stage's regions {regions} (infra/deploy.json)")
    for region in [args.region] if args.region else regions:
        print(f"--- {args.stage} in {region}")
        if deploy_region(args.stage, region, regions, runtime) != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
