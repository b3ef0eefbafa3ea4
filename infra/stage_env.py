"""Write a deployed stateful stack's outputs into a Chalice stage's environment variables.

``python -m infra.stage_env --stage prod [--stack photoscale-prod-stateful] [--edge-stack photoscale-prod-edge]
[--dax-stack photoscale-prod-dax]``
reads the CloudFormation outputs and sets them in ``.chalice/config.json`` under
``stages.<stage>.environment_variables`` using the one naming rule (``infra.cfn.output_env_name``),
so Lambda reads exactly the variables the local stack sets from the same template.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from infra.cfn import output_env_name

CONFIG = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"


def stage_variables(stateful_outputs: dict[str, str], edge_outputs: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables for a stage from the stacks' outputs (pure)."""
    variables = {output_env_name(name): value for name, value in stateful_outputs.items()}
    if edge_outputs:
        # The edge template's convention-named outputs: MediaBaseUrl is the custom domain when
        # there is one (the CSP's 'self'), the cloudfront.net name otherwise.
        variables["CDN_DISTRIBUTION_ID"] = edge_outputs["CdnDistributionId"]
        variables["MEDIA_BASE_URL"] = edge_outputs["MediaBaseUrl"]
        # Export download links: CloudFront signed URLs with the exports key group's key.
        for output, variable in (("ExportsKeyPairId", "EXPORTS_KEY_PAIR_ID"), ("ExportsBaseUrl", "EXPORTS_BASE_URL")):
            if output in edge_outputs:
                variables[variable] = edge_outputs[output]
    return variables


def update_config(config: dict, stage: str, variables: dict[str, str]) -> dict:
    """``config`` with ``variables`` merged into the stage's environment (pure)."""
    updated = json.loads(json.dumps(config))
    stage_config = updated.setdefault("stages", {}).setdefault(stage, {})
    stage_config.setdefault("environment_variables", {}).update(variables)
    return updated


def with_cache_tier(config: dict, stage: str, dax_outputs: dict[str, str], function: str = "api_handler") -> dict:
    """``config`` with ``function`` (only) placed in the cache tier's VPC and given its ``DAX_ENDPOINT``
    (the outputs of ``infra/dax.yaml``; pure). Every other function stays outside any VPC."""
    updated = json.loads(json.dumps(config))
    settings = updated.setdefault("stages", {}).setdefault(stage, {}).setdefault(
        "lambda_functions", {}).setdefault(function, {})
    settings["subnet_ids"] = dax_outputs["ApiSubnetIds"].split(",")
    settings["security_group_ids"] = [dax_outputs["ApiSecurityGroupId"]]
    settings.setdefault("environment_variables", {})["DAX_ENDPOINT"] = dax_outputs["DaxEndpoint"]
    return updated


def stack_outputs(cloudformation, stack_name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m infra.stage_env", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--stack", help="stateful stack name (default photoscale-<stage>-stateful)")
    parser.add_argument("--edge-stack", help="edge stack name, if deployed (photoscale-<stage>-edge)")
    parser.add_argument("--dax-stack", help="cache tier stack (infra/dax.yaml), prod only: photoscale-prod-dax")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    cloudformation = boto3.client("cloudformation", region_name=args.region)
    stateful = stack_outputs(cloudformation, args.stack or f"photoscale-{args.stage}-stateful")
    edge = stack_outputs(cloudformation, args.edge_stack) if args.edge_stack else None
    config = update_config(json.loads(CONFIG.read_text()), args.stage, stage_variables(stateful, edge))
    if args.dax_stack:
        config = with_cache_tier(config, args.stage, stack_outputs(cloudformation, args.dax_stack))
    CONFIG.write_text(json.dumps(config, indent=2) + "\n")
    print(f"updated stage {args.stage!r} in {CONFIG}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
