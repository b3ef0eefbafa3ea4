"""infra/dax.yaml: the prod cache tier (the DAX cluster, its VPC and what the API function needs in it)."""
from __future__ import annotations

from pathlib import Path

from infra.cfn import load_template

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "infra" / "dax.yaml")
RESOURCES = TEMPLATE["Resources"]


def of_type(kind):
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def test_the_cache_tier_is_for_prod_only():
    assert TEMPLATE["Parameters"]["Stage"]["AllowedValues"] == ["prod"]


def test_the_cluster_uses_its_subnet_and_parameter_groups_with_encryption():
    [cluster] = of_type("AWS::DAX::Cluster").values()
    props = cluster["Properties"]
    assert props["SubnetGroupName"] == {"Ref": "DaxSubnets"}
    assert props["ParameterGroupName"] == {"Ref": "DaxParameters"}
    assert props["ClusterEndpointEncryptionType"] == "TLS" and props["SSESpecification"]["SSEEnabled"]
    values = RESOURCES["DaxParameters"]["Properties"]["ParameterNameValues"]
    assert set(values) == {"record-ttl-millis", "query-ttl-millis"}


def test_only_the_api_functions_security_group_reaches_the_dax_nodes():
    [rule] = RESOURCES["DaxSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert rule["SourceSecurityGroupId"] == {"Ref": "ApiSecurityGroup"} and rule["FromPort"] == 9111


def test_the_vpc_reaches_every_api_the_api_function_calls_without_a_nat():
    endpoints = of_type("AWS::EC2::VPCEndpoint").values()
    services = {e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[-1]: e["Properties"]["VpcEndpointType"]
                for e in endpoints}
    assert services == {"dynamodb": "Gateway", "s3": "Gateway", "sqs": "Interface",
                        "secretsmanager": "Interface", "cognito-idp": "Interface"}
    assert not of_type("AWS::EC2::NatGateway") and not of_type("AWS::EC2::InternetGateway")


def test_the_clusters_own_role_reaches_only_the_cached_tables():
    [statement] = RESOURCES["DaxRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    tables = [r["Fn::Sub"].rsplit("/", 1)[-1] for r in statement["Resource"]]
    assert tables == ["photoscale-${Stage}-users", "photoscale-${Stage}-counters"]
