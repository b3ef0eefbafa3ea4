"""The failover drill (issue 10): steady traffic from clients near both regions, us-east-1 taken down,
traffic kept going, us-east-1 brought back; then everything must have converged.

One two-region stack for the module (the only two-region stack in the suite) and one run of the
scenario (:class:`bench.failover.Drill`, the same code ``bench/failover.py`` measures); each test
asserts one property of that run. The stack is the real local one: an embedded AWS, per region its
chalice local, event pump and DAX stand-in, the replicator, and the edge routing by health checks.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.failover import PRIMARY, SECONDARY, Drill, DrillResult, drill_stack_config
from devstack.stack import LocalStack

# One worker runs the whole module (make test: --dist loadgroup), so the two-region stack starts once.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("failover-drill")]


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrillResult]:
    with LocalStack(drill_stack_config(tmp_path_factory.mktemp("drill-stack"))) as stack:
        yield Drill(stack, users_per_region=2, rounds_before=1, rounds_down=3, rounds_after=1).run()


def test_the_region_went_down_and_clients_near_it_were_switched_to_the_other(drill: DrillResult):
    start, end = drill.switch
    assert start is not None and end is not None, "no request near us-east-1 succeeded via eu-west-1"
    assert drill.failover_seconds < 15


def test_every_request_after_the_switch_is_served_by_eu_west_1(drill: DrillResult):
    strays = drill.served_elsewhere_after_switch
    assert not strays, [(c.method, c.route, c.status, c.region) for c in strays]
    _, end = drill.switch
    after = [c for c in drill.during("down") if c.started >= end]
    assert after and all(not c.failed for c in after), [(c.route, c.status) for c in after if c.failed]


def test_users_signed_in_before_the_failure_stay_signed_in(drill: DrillResult):
    assert drill.stale_sessions == []


def test_identity_writes_answer_primary_region_unavailable_while_the_primary_is_down(drill: DrillResult):
    assert drill.primary_writes_refused == [503]


def test_no_acknowledged_write_is_missing_in_either_region_after_recovery(drill: DrillResult):
    assert drill.acked_follows and drill.acked_likes
    assert drill.missing == {PRIMARY: [], SECONDARY: []}


def test_photos_uploaded_in_either_region_are_visible_in_both(drill: DrillResult):
    assert {PRIMARY, SECONDARY} <= set(drill.photos.values())  # uploads were granted by both regions
    assert not [m for region in drill.missing.values() for m in region if m.startswith("photo ")]


def test_the_original_of_every_photo_is_kept_in_both_regions(drill: DrillResult):
    # an edit processed in either region reads the original (S3 replication carries uploads/ both ways)
    assert not [(r, m) for r, region in drill.missing.items() for m in region if m.startswith("original ")]


def test_counts_are_exact_in_both_regions_after_reconciliation(drill: DrillResult):
    assert drill.counts_wrong == {PRIMARY: [], SECONDARY: []}
