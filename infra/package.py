"""Build the production artifact: ``chalice package`` for the declared runtime, plus the imaging layer.

``make package STAGE=prod`` runs (in ``.venv-package``, made from the runtime's Python)::

    python -m infra.package --stage prod [--region us-east-1] [--out build/package/prod-us-east-1] [--architecture x86_64]

``--region R`` applies that region's environment file (``.chalice/env/<stage>/<R>.json``, written by
``infra.stage_env`` from the deployed stacks): the artifact to deploy in R (its queues, its replica's
counters stream). Without it the stream mapping names a placeholder (a build check, not deployable).

1. Refuses to run unless this interpreter is the runtime declared in ``infra/deploy.json``
   (Chalice targets the Python it runs on).
2. Writes the per-function IAM policies (``infra.policies``) with CloudFormation pseudo parameters
   for region, account and partition, so the template is account- and region-neutral.
3. Runs ``chalice package --stage S`` strictly (``infra.strict_chalice``: a dependency without a
   compatible wheel fails the build) on a staging copy of exactly what ships: ``app.py``,
   ``chalicelib/``, ``requirements.txt``, ``.chalice/config.json`` and the policies.
4. Builds ``imaging-layer.zip`` from ``requirements-imaging.txt`` with Chalice's own dependency
   builder (same wheel/glibc rules, same strictness), for the workers only.
5. Finishes ``sam.json`` (:func:`finalize_template`, pure): explicit function names (as
   ``chalice deploy`` names them) and literal log-group names (Chalice 1.34 references
   ``${ApiHandler}`` while the resource is ``APIHandler``), ``ReportBatchItemFailures`` on every SQS
   event source, the layer attached to the image workers, our JSON gateway responses and the
   stage's API throttling.

Output (``--out``): ``deployment.zip``, ``imaging-layer.zip``, ``sam.json``, ``inputs.sha256``.
A build whose inputs hash matches ``inputs.sha256`` is reused (``--force`` rebuilds).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from infra import policies

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEPLOY_SETTINGS = Path(__file__).resolve().parent / "deploy.json"
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
IMAGING_FUNCTIONS = ("process_uploads", "process_edits")
IMAGING_REQUIREMENTS = "requirements-imaging.txt"
LAYER_ZIP = "imaging-layer.zip"
LAYER_LOGICAL_ID = "ImagingLayer"
# What the build depends on: a change to any of these rebuilds (see inputs_digest).
INPUTS = ("app.py", "chalicelib", "requirements.txt", IMAGING_REQUIREMENTS, ".chalice/config.json",
          "infra/package.py", "infra/policies.py", "infra/gateway_responses.json", "infra/strict_chalice.py", "infra/deploy.json")
PSEUDO = policies.Target(stage="", region="${AWS::Region}", account="${AWS::AccountId}",
                         partition="${AWS::Partition}")


def deploy_settings(path: Path = DEPLOY_SETTINGS) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def throttling(stage: str, settings: dict[str, Any] | None = None) -> dict[str, int] | None:
    """The stage's API Gateway throttling ``{"rate_limit", "burst_limit"}`` (None: none declared)."""
    return (settings or deploy_settings()).get("throttling", {}).get(stage)


def require_runtime(runtime: str, version: tuple[int, int] = sys.version_info[:2]) -> None:
    """Refuse to package on an interpreter other than the declared runtime's."""
    have = f"python{version[0]}.{version[1]}"
    if have != runtime:
        raise SystemExit(
            f"error: the Lambda runtime is {runtime} (infra/deploy.json) but this is {have}. Chalice builds "
            f"the package for the Python it runs on, so run it from {runtime}: `make package` creates "
            f".venv-package from {runtime} (install it, e.g. `pyenv install 3.12`, or set PACKAGE_PYTHON=...).")


# --------------------------------------------------------------------------- template (pure)


def _cfn_name(function: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in function.replace("-", "_").split("_"))


def _logical_ids(function: str) -> tuple[str, str]:
    """(function resource, log-group resource) in Chalice's template for one function."""
    cfn = _cfn_name(function)
    return ("APIHandler" if function == "api_handler" else cfn), f"{cfn}LogGroup"


def _substitute_pseudo(value: Any) -> Any:
    """Wrap every string that uses ``${AWS::...}`` in ``Fn::Sub`` (policies built with PSEUDO)."""
    if isinstance(value, str) and "${AWS::" in value:
        return {"Fn::Sub": value}
    if isinstance(value, list):
        return [_substitute_pseudo(v) for v in value]
    if isinstance(value, dict):
        return {k: _substitute_pseudo(v) for k, v in value.items()}
    return value


def _gateway_responses() -> dict[str, Any]:
    """SAM ``GatewayResponses`` from ``infra/gateway_responses.json`` (what post_deploy puts on path A)."""
    from infra.post_deploy import load_gateway_responses

    out: dict[str, Any] = {}
    for response in load_gateway_responses().values():
        spec: dict[str, Any] = {
            "ResponseParameters": {"Headers": response.header_values()},
            "ResponseTemplates": {"application/json": json.dumps(response.body())},
        }
        if response.status_code is not None:
            spec["StatusCode"] = response.status_code
        out[response.response_type] = spec
    return out


def finalize_template(template: dict[str, Any], *, stage: str, runtime: str, architecture: str,
                      throttle: dict[str, int] | None, layer_uri: str | None) -> dict[str, Any]:
    """The deployable template from ``chalice package``'s ``sam.json`` (pure; see module doc, step 5)."""
    out = copy.deepcopy(template)
    resources = out["Resources"]
    for function in policies.FUNCTIONS:
        fn_id, log_id = _logical_ids(function)
        if fn_id not in resources:
            raise KeyError(f"{fn_id} (function {function}) not in the packaged template")
        props = resources[fn_id]["Properties"]
        name = policies.function_name(stage, function)
        props["FunctionName"] = name
        if log_id in resources:
            resources[log_id]["Properties"]["LogGroupName"] = f"/aws/lambda/{name}"
            resources[fn_id]["DependsOn"] = sorted({*resources[fn_id].get("DependsOn", []), log_id})
        for event in props.get("Events", {}).values():
            if event.get("Type") in ("SQS", "DynamoDB"):
                types = event["Properties"].setdefault("FunctionResponseTypes", [])
                if REPORT_BATCH_ITEM_FAILURES not in types:
                    types.append(REPORT_BATCH_ITEM_FAILURES)
        if layer_uri and function in IMAGING_FUNCTIONS:
            props["Layers"] = [{"Ref": LAYER_LOGICAL_ID}, *props.get("Layers", [])]
    if layer_uri:
        resources[LAYER_LOGICAL_ID] = {
            "Type": "AWS::Serverless::LayerVersion",
            "Properties": {
                "LayerName": f"{policies.APP_NAME}-{stage}-imaging",
                "Description": "libvips (pyvips-binary), pyvips, Pillow, pi-heif for the image workers",
                "ContentUri": layer_uri,
                "CompatibleRuntimes": [runtime],
                "CompatibleArchitectures": [architecture],
                "RetentionPolicy": "Delete",
            },
        }
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Role":
            resource["Properties"]["Policies"] = _substitute_pseudo(resource["Properties"].get("Policies", []))
    if "RestAPI" in resources:
        resources["RestAPI"]["Properties"]["GatewayResponses"] = _gateway_responses()
    if throttle and "RestAPI" in resources:
        resources["RestAPI"]["Properties"]["MethodSettings"] = [{
            "ResourcePath": "/*", "HttpMethod": "*",
            "ThrottlingRateLimit": throttle["rate_limit"], "ThrottlingBurstLimit": throttle["burst_limit"],
        }]
    return out


# --------------------------------------------------------------------------- build (I/O)


def inputs_digest(stage: str, architecture: str, runtime: str, project_dir: Path = PROJECT_DIR,
                  environment: dict | None = None) -> str:
    """sha256 over every input file (path and bytes) and the build parameters (the applied region
    environment included: another region's artifact is another build)."""
    digest = hashlib.sha256(f"{stage}\0{architecture}\0{runtime}\0".encode())
    if environment is not None:
        digest.update(json.dumps(environment, sort_keys=True).encode() + b"\0")
    for name in INPUTS:
        root = project_dir / name
        files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def region_env(stage: str, region: str | None, project_dir: Path = PROJECT_DIR) -> dict | None:
    """``region``'s environment file for ``stage`` (``infra.stage_env`` writes it from the deployed
    stacks), or None when no region is asked for. A region asked for without its file is an error."""
    from infra import stage_env

    return None if region is None else stage_env.read_region_env(stage, region, project_dir / ".chalice" / "env")


def _stage_project(staging: Path, stage: str, architecture: str | None, project_dir: Path,
                   environment: dict | None = None) -> None:
    """Copy exactly what ships into ``staging`` (kept between builds: Chalice caches its deps there),
    with ``environment`` (a region's environment file) applied to the stage's configuration."""
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(project_dir / name, staging / name)
    if (staging / "chalicelib").exists():
        shutil.rmtree(staging / "chalicelib")
    shutil.copytree(project_dir / "chalicelib", staging / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    chalice_dir = staging / ".chalice"
    chalice_dir.mkdir(exist_ok=True)
    config = json.loads((project_dir / ".chalice" / "config.json").read_text(encoding="utf-8"))
    if architecture:
        config["stages"].setdefault(stage, {})["lambda_architecture"] = architecture
    if environment is not None:
        from infra import stage_env

        config = stage_env.config_for_region(config, stage, environment)
    (chalice_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    if (chalice_dir / "policies").exists():
        shutil.rmtree(chalice_dir / "policies")
    policies.write_policies(policies.Target(stage=stage, region=PSEUDO.region, account=PSEUDO.account,
                                            partition=PSEUDO.partition), staging)


def build_layer(requirements: Path, runtime: str, architecture: str, out_zip: Path) -> None:
    """Install ``requirements`` for the runtime/architecture into ``python/`` and zip it (strict)."""
    from chalice.deploy.packager import BaseLambdaDeploymentPackager, DependencyBuilder, MissingDependencyError
    from chalice.utils import OSUtils

    abi = BaseLambdaDeploymentPackager._RUNTIME_TO_ABI[runtime]
    with tempfile.TemporaryDirectory(prefix="layer-") as tmp:
        site = Path(tmp) / "python"
        try:
            DependencyBuilder(OSUtils(), architecture=architecture).build_site_packages(
                abi, str(requirements), str(site))
        except MissingDependencyError as exc:
            names = ", ".join(sorted(p.identifier for p in exc.missing))
            raise SystemExit(f"error: cannot install for Lambda {runtime}/{architecture}: {names}") from None
        with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(site.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, path.relative_to(tmp).as_posix())


def architecture_of(stage: str, project_dir: Path = PROJECT_DIR) -> str:
    config = json.loads((project_dir / ".chalice" / "config.json").read_text(encoding="utf-8"))
    return config.get("stages", {}).get(stage, {}).get("lambda_architecture") \
        or config.get("lambda_architecture") or "x86_64"


def build(stage: str, out: Path, *, architecture: str | None = None, force: bool = False,
          region: str | None = None, project_dir: Path = PROJECT_DIR) -> Path:
    """Build (or reuse) the artifact for ``stage`` in ``out`` (with ``region``'s environment applied
    when given); returns ``out``."""
    from infra.strict_chalice import MissingLambdaDependencies, make_chalice_strict

    settings = deploy_settings()
    runtime = settings["runtime"]
    require_runtime(runtime)
    arch = architecture or architecture_of(stage, project_dir)
    environment = region_env(stage, region, project_dir)
    digest = inputs_digest(stage, arch, runtime, project_dir, environment)
    stamp = out / "inputs.sha256"
    if not force and stamp.is_file() and stamp.read_text().strip() == digest:
        print(f"package for {stage} ({runtime}/{arch}) is up to date in {out}")
        return out
    staging = project_dir / "build" / "staging" / f"{stage}-{arch}"
    staging.mkdir(parents=True, exist_ok=True)
    _stage_project(staging, stage, architecture, project_dir, environment)
    if out.exists():
        shutil.rmtree(out)
    make_chalice_strict()
    from chalice.cli import cli

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice package needs a region; unused
    if environment is None and not os.environ.get("COUNTERS_STREAM_ARN"):
        # app.py names the counters stream at import (the aggregator's event source). Its ARN is a
        # deployed stack's output, per region: --region applies .chalice/env/<stage>/<region>.json
        # (infra.stage_env). Without one the package names a placeholder that a deploy must not keep.
        os.environ["COUNTERS_STREAM_ARN"] = (f"arn:aws:dynamodb:us-east-1:000000000000:table/photoscale-{stage}-counters"
                                             "/stream/PACKAGE-PLACEHOLDER")
        print("warning: COUNTERS_STREAM_ARN unset: the stream mapping names a placeholder; set it from the "
              "region's .chalice/env/<stage>/<region>.json (infra.stage_env) before deploying this package")
    print(f"chalice package --stage {stage} for {runtime}/{arch} ...")
    try:
        cli.main(args=["--project-dir", str(staging), "package", "--stage", stage, str(out)],
                 prog_name="chalice", obj={}, standalone_mode=False)
    except MissingLambdaDependencies as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"building {LAYER_ZIP} from {IMAGING_REQUIREMENTS} ...")
    build_layer(project_dir / IMAGING_REQUIREMENTS, runtime, arch, out / LAYER_ZIP)
    sam = out / "sam.json"
    template = finalize_template(json.loads(sam.read_text(encoding="utf-8")), stage=stage, runtime=runtime,
                                 architecture=arch, throttle=throttling(stage, settings),
                                 layer_uri=f"./{LAYER_ZIP}")
    sam.write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
    stamp.write_text(digest + "\n")
    for name in ("deployment.zip", LAYER_ZIP):
        with zipfile.ZipFile(out / name) as zf:
            unzipped = sum(i.file_size for i in zf.infolist())
        print(f"{name}: {(out / name).stat().st_size / 2**20:.1f} MB zipped, {unzipped / 2**20:.1f} MB unzipped")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", type=Path, help="output directory (default build/package/<stage>)")
    parser.add_argument("--architecture", choices=("x86_64", "arm64"),
                        help="override the stage's lambda_architecture (the x86_64 import check)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    parser.add_argument("--region", help="apply this region's environment (.chalice/env/<stage>/<region>.json "
                                         "from infra.stage_env): the artifact to deploy there")
    args = parser.parse_args(argv)
    out = args.out or PROJECT_DIR / "build" / "package" / (f"{args.stage}-{args.region}" if args.region else args.stage)
    build(args.stage, out.resolve(), architecture=args.architecture, force=args.force, region=args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main())
