"""Write deployed stacks' outputs into a Chalice stage's environment variables, per region.

``python -m infra.stage_env --stage prod [--stack photoscale-prod-stateful] [--edge-stack photoscale-prod-edge]
[--dax-stack photoscale-prod-dax] [--routing-stack photoscale-prod-routing]``
reads the CloudFormation outputs and names them with the one rule (``infra.cfn.output_env_name``), so
Lambda reads exactly the variables the local stack sets from the same template.

Regions (``infra/deploy.json`` ``regions``, primary first): each region has its own stateful stack
(queues, buckets, regional tables), so each region gets its **own** environment, written to
``.chalice/env/<stage>/<region>.json`` (generated, not committed); ``infra.deploy`` merges a region's file
into the stage's ``environment_variables`` just before deploying that region. The global resources'
outputs exist in the primary's stack only (docs/multi-region.md): a replica region gets the same pool
and client ids, and the ARNs of its own replicas. On top come the multi-region variables every region
reads: ``ACTIVE_REGIONS``, ``PRIMARY_REGION``, ``PRIMARY_USER_POOL_ID``/``_CLIENT_ID``,
``TRUSTED_ISSUERS``, ``MEDIA_BUCKETS``, ``FANOUT_QUEUE_URLS`` and (with routing stacks) ``REGION_API_URLS``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from infra.cfn import output_env_name

CONFIG = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"
ENV_DIR = CONFIG.parent / "env"

#: Outputs of the primary-only (global) resources of infra/stateful.yaml, and how a replica region's
#: value follows from the primary's: "same" (one pool id / client id / issuer everywhere) or "arn"
#: (the replica's ARN: the primary's with the replica's region).
GLOBAL_OUTPUTS: dict[str, str] = {
    "UserPoolId": "same", "UserPoolClientId": "same", "UserPoolIssuer": "same",
    "UserPoolArn": "arn", "CursorSecretArn": "arn",
}


def replica_arn(arn: str, region: str) -> str:
    """``arn`` of a replicated resource as its replica in ``region`` names it (the region field swapped)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or not parts[3]:
        raise ValueError(f"not a regional ARN: {arn!r}")
    parts[3] = region
    return ":".join(parts)


def replica_outputs(primary_outputs: dict[str, str], region: str) -> dict[str, str]:
    """The global resources' outputs as seen from ``region`` (pure)."""
    out = {}
    for name, rule in GLOBAL_OUTPUTS.items():
        if name in primary_outputs:
            value = primary_outputs[name]
            out[name] = replica_arn(value, region) if rule == "arn" else value
    return out


def trusted_issuers(primary: str, pool_id: str, issuer: str, client_id: str) -> dict[str, str]:
    """The authorizer's allow-list: the replicated pool's multi-region issuer (``UserPoolIssuer``: tokens
    of either region validate everywhere), plus the pool's original issuer, which tokens issued before
    the pool switched to the multi-region issuer still carry (at most one token lifetime)."""
    return {issuer: client_id, f"https://cognito-idp.{primary}.amazonaws.com/{pool_id}": client_id}


def region_variables(
    region: str,
    regions: list[str],
    stateful: dict[str, dict[str, str]],
    edge_outputs: dict[str, str] | None = None,
    routing: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """The environment of ``region``'s functions (pure).

    ``stateful`` / ``routing``: each region's stack outputs (region -> outputs); ``regions`` primary first.
    """
    primary = regions[0]
    outputs = {**stateful[region], **replica_outputs(stateful[primary], region)}
    variables = stage_variables(outputs, edge_outputs)
    pool, client = stateful[primary]["UserPoolId"], stateful[primary]["UserPoolClientId"]
    variables.update({
        "ACTIVE_REGIONS": ",".join(regions),
        "PRIMARY_REGION": primary,
        "PRIMARY_USER_POOL_ID": pool,
        "PRIMARY_USER_POOL_CLIENT_ID": client,
        "TRUSTED_ISSUERS": json.dumps(trusted_issuers(primary, pool, stateful[primary]["UserPoolIssuer"], client),
                                      sort_keys=True),
        "MEDIA_BUCKETS": json.dumps({r: stateful[r]["MediaBucket"] for r in regions}, sort_keys=True),
        "FANOUT_QUEUE_URLS": json.dumps({r: stateful[r]["FanoutQueueUrl"] for r in regions}, sort_keys=True),
    })
    if routing and all(r in routing for r in regions):
        variables["REGION_API_URLS"] = json.dumps({r: routing[r]["RegionApiUrl"] for r in regions}, sort_keys=True)
    return variables


def region_env_file(stage: str, region: str, env_dir: Path = ENV_DIR) -> Path:
    return Path(env_dir) / stage / f"{region}.json"


def read_region_env(stage: str, region: str, env_dir: Path = ENV_DIR) -> dict:
    """``region``'s environment file for ``stage``; a clear error if it was never written."""
    path = region_env_file(stage, region, env_dir)
    if not path.exists():
        raise SystemExit(f"error: no environment for {stage} in {region} ({path}): "
                         f"run python -m infra.stage_env --stage {stage}")
    return json.loads(path.read_text(encoding="utf-8"))


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


def write_region_envs(stage: str, regions: list[str], clients, *, stack: str | None = None,
                      edge_stack: str | None = None, routing_stack: str | None = None,
                      dax_stack: str | None = None, env_dir: Path = ENV_DIR,
                      table_stream=None) -> list[Path]:
    """Read every region's stacks (``clients(region)`` -> a CloudFormation client) and write each
    region's environment file. The edge stack lives in the primary region.

    ``table_stream(region, table)`` -> the stream ARN of ``table``'s replica in ``region``: a replica
    region's stack does not own the global counters table, so its stream (the aggregator's event
    source, labelled per replica) comes from DescribeTable there."""
    stack = stack or f"photoscale-{stage}-stateful"
    stateful = {r: stack_outputs(clients(r), stack) for r in regions}
    for region in regions[1:]:
        if table_stream and "CountersStreamArn" not in stateful[region]:
            table = stateful[region].get("CountersTable") or stateful[regions[0]]["CountersTable"]
            stateful[region]["CountersStreamArn"] = table_stream(region, table)
    edge = stack_outputs(clients(regions[0]), edge_stack) if edge_stack else None
    routing = {r: stack_outputs(clients(r), routing_stack) for r in regions} if routing_stack else None
    written = []
    for region in regions:
        variables = region_variables(region, regions, stateful, edge, routing)
        path = region_env_file(stage, region, env_dir)
        # The stacks infra.deploy recorded (the cache tier's outputs) stay: rewriting the variables
        # (say, once the edge exists) must not take the API function out of the cache tier's VPC.
        document: dict = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        document["environment_variables"] = variables
        if dax_stack:
            document["cache_tier"] = stack_outputs(clients(region), dax_stack)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def config_for_region(config: dict, stage: str, region_env: dict) -> dict:
    """``config`` with one region's environment file applied to the stage (pure): what ``infra.deploy``
    deploys to that region."""
    updated = update_config(config, stage, region_env["environment_variables"])
    if "cache_tier" in region_env:
        updated = with_cache_tier(updated, stage, region_env["cache_tier"])
    return updated


def replica_stream_arn(region: str, table: str) -> str:
    """The stream of ``table``'s replica in ``region`` (each replica's stream has its own label)."""
    import boto3

    return boto3.client("dynamodb", region_name=region).describe_table(TableName=table)["Table"]["LatestStreamArn"]


def main(argv: list[str] | None = None) -> int:
    import boto3

    from infra.package import deploy_settings

    parser = argparse.ArgumentParser(prog="python -m infra.stage_env", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--stack", help="stateful stack name in every region (default photoscale-<stage>-stateful)")
    parser.add_argument("--edge-stack", help="edge stack name, if deployed (photoscale-<stage>-edge, primary region)")
    parser.add_argument("--routing-stack", help="routing stack name in every region, if deployed (photoscale-<stage>-routing)")
    parser.add_argument("--dax-stack", help="cache tier stack (infra/dax.yaml) in every region, prod only: photoscale-prod-dax")
    parser.add_argument("--regions", default=None,
                        help="comma list, primary first (default: infra/deploy.json regions)")
    args = parser.parse_args(argv)
    regions = args.regions.split(",") if args.regions else list(deploy_settings()["regions"])
    written = write_region_envs(args.stage, regions, lambda r: boto3.client("cloudformation", region_name=r),
                                stack=args.stack, edge_stack=args.edge_stack, routing_stack=args.routing_stack,
                                dax_stack=args.dax_stack, table_stream=replica_stream_arn)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
