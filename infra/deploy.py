"""The whole ``chalice deploy`` path in one command: ``make deploy STAGE=prod``.

Runs in ``.venv-package`` (the runtime's Python, see ``infra.package``), with AWS credentials::

    python -m infra.deploy --stage prod [--region eu-west-1]

1. writes the per-function IAM policies for this stage, region and account (``infra.policies``;
   user pool / distribution ids from the stage's environment, set by ``infra.stage_env``);
2. builds the imaging layer for the stage's runtime/architecture and publishes it unless the latest
   version already has the same content (its description carries the sha256);
3. attaches that layer version to the image workers in ``.chalice/config.json``;
4. ``chalice deploy --stage`` (strict: a dependency without a Lambda wheel fails the deploy);
5. ``infra.post_deploy``: ReportBatchItemFailures on the SQS mappings, gateway responses, stage
   throttling. Skipping it would silently drop failed messages, hence one command.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from infra import package, policies

CONFIG = package.PROJECT_DIR / ".chalice" / "config.json"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    runtime = package.deploy_settings()["runtime"]
    package.require_runtime(runtime)

    import boto3

    from infra import post_deploy
    from infra.strict_chalice import run as run_chalice

    session = boto3.session.Session(region_name=args.region)
    if not session.region_name:
        raise SystemExit("error: no AWS region: pass --region or set AWS_REGION")
    account = session.client("sts").get_caller_identity()["Account"]
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    target = policies.target_from_config(args.stage, session.region_name, account, config,
                                         partition=session.get_partition_for_region(session.region_name))
    for path in policies.write_policies(target):
        print(f"wrote {path.relative_to(package.PROJECT_DIR)}")

    architecture = package.architecture_of(args.stage)
    layer_zip = package.PROJECT_DIR / "build" / "deploy" / args.stage / package.LAYER_ZIP
    layer_zip.parent.mkdir(parents=True, exist_ok=True)
    package.build_layer(package.PROJECT_DIR / package.IMAGING_REQUIREMENTS, runtime, architecture, layer_zip)
    arn = publish_layer(session.client("lambda"), f"{policies.APP_NAME}-{args.stage}-imaging", layer_zip,
                        runtime, architecture)
    print(f"imaging layer: {arn}")
    CONFIG.write_text(json.dumps(with_worker_layers(config, args.stage, arn), indent=2) + "\n", encoding="utf-8")

    if run_chalice(["--project-dir", str(package.PROJECT_DIR), "deploy", "--stage", args.stage]) != 0:
        return 1
    lines = post_deploy.run(args.stage, project_dir=package.PROJECT_DIR, session=session)
    print("\n".join(lines) if lines else "post-deploy: nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
