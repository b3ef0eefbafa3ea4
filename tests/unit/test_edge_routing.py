"""The local edge's region choice (Route 53 latency records with health checks), as a pure function."""
from __future__ import annotations

from devstack.edge_server import RETRIED_METHODS, route_order

REGIONS = ["us-east-1", "eu-west-1"]


def test_a_client_goes_to_its_nearest_region_while_it_is_healthy():
    healthy = {"us-east-1": True, "eu-west-1": True}
    assert route_order("eu-west-1", REGIONS, healthy) == ["eu-west-1", "us-east-1"]
    assert route_order("us-east-1", REGIONS, healthy) == ["us-east-1", "eu-west-1"]


def test_a_client_without_a_known_location_goes_to_the_primary():
    healthy = {"us-east-1": True, "eu-west-1": True}
    assert route_order(None, REGIONS, healthy)[0] == "us-east-1"
    assert route_order("ap-south-1", REGIONS, healthy)[0] == "us-east-1"


def test_an_unhealthy_nearest_region_is_skipped_for_the_next_healthy_one():
    assert route_order("us-east-1", REGIONS, {"us-east-1": False, "eu-west-1": True}) == ["eu-west-1"]
    assert route_order(None, REGIONS, {"us-east-1": False, "eu-west-1": True}) == ["eu-west-1"]


def test_a_region_not_checked_yet_counts_as_healthy():
    assert route_order("eu-west-1", REGIONS, {}) == ["eu-west-1", "us-east-1"]


def test_with_every_region_unhealthy_all_are_tried_in_preference_order():
    assert route_order("eu-west-1", REGIONS, {"us-east-1": False, "eu-west-1": False}) == ["eu-west-1", "us-east-1"]


def test_only_safe_methods_are_replayed_on_another_region_after_a_connection_failure():
    assert RETRIED_METHODS == {"GET", "HEAD", "OPTIONS"}
