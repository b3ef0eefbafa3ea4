"""Tiny CloudFormation helpers shared by deploy tooling, the local stack and tests.

Stdlib + PyYAML only, so it can be imported anywhere outside the Lambda package.

- :func:`load_template` reads a template, turning the YAML short tags (``!Ref``,
  ``!Sub``, ``!GetAtt`` ...) into the long JSON forms (``{"Ref": ...}``,
  ``{"Fn::Sub": ...}``) so code only ever deals with one representation.
- :func:`output_env_name` is the single rule mapping a stack output name to the
  environment variable the app reads (``UploadsQueueUrl`` -> ``UPLOADS_QUEUE_URL``).
- :func:`global_table_names` / :func:`regional_table_names`: which tables of the stateful
  template are DynamoDB global tables (replicated to every serving region) and which stay
  regional, read from the resource types; the local replicator uses the first.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "load_template", "output_env_name", "global_table_names", "regional_table_names", "table_name",
    "INFRA_DIR", "STATEFUL_TEMPLATE", "GLOBAL_TABLE", "REGIONAL_TABLE",
]

INFRA_DIR = Path(__file__).resolve().parent
STATEFUL_TEMPLATE = INFRA_DIR / "stateful.yaml"
GLOBAL_TABLE = "AWS::DynamoDB::GlobalTable"
REGIONAL_TABLE = "AWS::DynamoDB::Table"

# Short tag -> long form key. "Ref" and "Condition" are not prefixed with Fn::.
_TAGS: dict[str, str] = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub", "GetAtt", "Join", "If", "Equals", "Not", "And", "Or", "Select",
            "Split", "FindInMap", "Base64", "GetAZs", "ImportValue", "Cidr", "Length",
            "ToJsonString",
        )
    },
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form intrinsic tags."""


def _construct(long_name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                # "Resource.Attr" -> ["Resource", "Attr"]; attr may itself contain dots.
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


for _short, _long in _TAGS.items():
    _CfnLoader.add_constructor(f"!{_short}", _construct(_long))


def load_template(path: str | Path) -> dict[str, Any]:
    """Load a CloudFormation YAML (or JSON) template with intrinsics in long form."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    return data


_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def output_env_name(output_name: str) -> str:
    """Map a stack output name to its env var: CamelCase words joined by ``_``, upper-cased.

    ``UploadsQueueUrl`` -> ``UPLOADS_QUEUE_URL``, ``UserPoolClientId`` -> ``USER_POOL_CLIENT_ID``,
    ``UploadsDlqUrl`` -> ``UPLOADS_DLQ_URL`` (acronym runs such as ``DLQUrl`` also split before
    the last capital: ``DLQ_URL``).
    """
    return _WORD_BOUNDARY.sub("_", output_name).upper()


def table_name(resource: dict[str, Any], stage: str) -> str:
    """The physical ``TableName`` of a table resource for ``stage`` (a literal or ``!Sub`` over ``${Stage}``)."""
    name = resource["Properties"]["TableName"]
    if isinstance(name, dict):
        if set(name) != {"Fn::Sub"} or not isinstance(name["Fn::Sub"], str):
            raise ValueError(f"TableName {name!r}: only a literal or a !Sub string is supported")
        name = name["Fn::Sub"].replace("${Stage}", stage)
    if "${" in name:
        raise ValueError(f"TableName {name!r}: only ${{Stage}} may be substituted (names are the same in every region)")
    return name


def _table_names(template: dict[str, Any], rtype: str, stage: str) -> list[str]:
    return [table_name(resource, stage) for resource in template.get("Resources", {}).values()
            if resource["Type"] == rtype]


def global_table_names(template: dict[str, Any], stage: str = "local") -> list[str]:
    """Physical names of the template's global tables (``AWS::DynamoDB::GlobalTable``), in template order.

    These replicate to every serving region under one name; everything else is regional.
    """
    return _table_names(template, GLOBAL_TABLE, stage)


def regional_table_names(template: dict[str, Any], stage: str = "local") -> list[str]:
    """Physical names of the template's regional tables (``AWS::DynamoDB::Table``), in template order."""
    return _table_names(template, REGIONAL_TABLE, stage)
