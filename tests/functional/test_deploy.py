"""infra.deploy against moto: the imaging layer is published once per content, and attached to the workers."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.deploy import publish_layer, with_worker_layers


def _layer_zip(path: Path, content: str) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/marker.py", content)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def lambda_client(aws_credentials: None):
    with mock_aws():
        yield boto3.client("lambda", region_name="us-east-1")


def test_same_layer_content_is_published_once(lambda_client, tmp_path: Path) -> None:
    # Given a layer zip published once
    layer = _layer_zip(tmp_path / "layer.zip", "A = 1\n")
    first = publish_layer(lambda_client, "photoscale-prod-imaging", layer, "python3.12", "arm64")
    # When the deploy runs again with the same content
    second = publish_layer(lambda_client, "photoscale-prod-imaging", layer, "python3.12", "arm64")
    # Then the existing version is reused
    assert second == first
    assert len(lambda_client.list_layer_versions(LayerName="photoscale-prod-imaging")["LayerVersions"]) == 1


def test_changed_layer_content_gets_a_new_version(lambda_client, tmp_path: Path) -> None:
    first = publish_layer(lambda_client, "photoscale-prod-imaging", _layer_zip(tmp_path / "a.zip", "A = 1\n"),
                          "python3.12", "arm64")
    second = publish_layer(lambda_client, "photoscale-prod-imaging", _layer_zip(tmp_path / "b.zip", "A = 2\n"),
                           "python3.12", "arm64")
    assert second != first and second.endswith(":2")
    # And going back to the first content publishes again (only the latest version is compared)
    third = publish_layer(lambda_client, "photoscale-prod-imaging", tmp_path / "a.zip", "python3.12", "arm64")
    assert third.endswith(":3")
    assert publish_layer(lambda_client, "photoscale-prod-imaging", tmp_path / "a.zip", "python3.12", "arm64") == third


def test_layer_is_attached_to_the_image_workers_of_that_stage_only() -> None:
    # Given a config with prod settings for the workers
    config = {"stages": {"prod": {"lambda_functions": {"process_uploads": {"lambda_memory_size": 2048}}},
                         "dev": {}}}
    # When the published layer is recorded
    updated = with_worker_layers(config, "prod", "arn:aws:lambda:us-east-1:123456789012:layer:x:3")
    functions = updated["stages"]["prod"]["lambda_functions"]
    # Then both workers have exactly that layer, their other settings are kept, and nothing else changes
    assert functions["process_uploads"] == {"lambda_memory_size": 2048,
                                            "layers": ["arn:aws:lambda:us-east-1:123456789012:layer:x:3"]}
    assert functions["process_edits"] == {"layers": ["arn:aws:lambda:us-east-1:123456789012:layer:x:3"]}
    assert set(functions) == {"process_uploads", "process_edits"} and updated["stages"]["dev"] == {}
    assert "layers" not in config["stages"]["prod"]["lambda_functions"]["process_uploads"]  # pure


def test_each_region_keeps_its_own_chalice_deployment_state(tmp_path: Path) -> None:
    from infra.deploy import deployed_state, keep_state, swap_in_state

    # Given a single-region stage already deployed (Chalice's prod.json) and becoming two regions
    current, _ = deployed_state("prod", "us-east-1", tmp_path)
    current.parent.mkdir(parents=True)
    current.write_text('{"resources": ["us"]}')
    # When the primary deploys: it adopts the existing state, and keeps it as its own
    swap_in_state("prod", "us-east-1", "us-east-1", tmp_path)
    assert current.read_text() == '{"resources": ["us"]}'
    keep_state("prod", "us-east-1", tmp_path)
    # And the other region deploys for the first time: it starts from no state (a new API, new functions)
    swap_in_state("prod", "eu-west-1", "us-east-1", tmp_path)
    assert not current.exists()
    current.write_text('{"resources": ["eu"]}')  # what chalice deploy writes there
    keep_state("prod", "eu-west-1", tmp_path)
    # Then the next deploy of each region starts from that region's own state
    swap_in_state("prod", "us-east-1", "us-east-1", tmp_path)
    assert current.read_text() == '{"resources": ["us"]}'
    swap_in_state("prod", "eu-west-1", "us-east-1", tmp_path)
    assert current.read_text() == '{"resources": ["eu"]}'
