"""Home-region decisions: where a request is served, and what a failover write may miscount (pure)."""
from __future__ import annotations

import pytest

from chalicelib import regions
from chalicelib.regions import FAILOVER, FORWARD, LOCAL, Decision

HERE, HOME = "eu-west-1", "us-east-1"


def never_asked() -> bool:
    raise AssertionError("the home region's health was asked though it cannot matter")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_reads_are_served_locally_whoever_is_home(method):
    assert regions.decide(method, HERE, HOME, False, "http://home", never_asked) == Decision(LOCAL)


def test_a_write_of_a_user_at_home_here_is_served_locally():
    assert regions.decide("PUT", HERE, HERE, False, "http://here", never_asked) == Decision(LOCAL)


def test_a_write_of_a_user_without_a_profile_yet_is_served_locally():
    assert regions.decide("POST", HERE, None, False, None, never_asked) == Decision(LOCAL)


def test_a_request_already_forwarded_is_never_forwarded_again():
    assert regions.decide("POST", HERE, HOME, True, "http://home", never_asked) == Decision(LOCAL)


def test_a_write_of_a_user_whose_healthy_home_is_elsewhere_is_forwarded_there():
    assert regions.decide("PATCH", HERE, HOME, False, "http://home", lambda: True) == Decision(FORWARD, HOME)


def test_a_write_of_a_user_whose_home_is_down_is_accepted_here():
    assert regions.decide("DELETE", HERE, HOME, False, "http://home", lambda: False) == Decision(FAILOVER, HOME)


def test_a_write_whose_home_has_no_known_api_is_accepted_here():
    assert regions.decide("PUT", HERE, HOME, False, None, never_asked) == Decision(FAILOVER, HOME)


@pytest.mark.parametrize("route, params, expected", [
    ("/users/{username}/follow", {"username": "Bob"}, [("followers", "bob"), ("following", "ann")]),
    ("/photos/{photo_id}/like", {"photo_id": "P1"}, [("likes", "P1")]),
    ("/photos", None, [("photos", "ann")]),
    ("/photos/{photo_id}", {"photo_id": "P1"}, [("photos", "ann")]),
    ("/me", None, []),
    ("/auth/logout", None, []),
])
def test_a_failover_write_names_the_counters_it_may_have_double_counted(route, params, expected):
    assert regions.suspect_counters(route, params, "ann") == expected


def test_the_forwarded_path_is_the_route_with_its_parameters_quoted():
    assert regions.concrete_path("/users/{username}/follow", {"username": "ann"}) == "/users/ann/follow"
    assert regions.concrete_path("/photos/{photo_id}", {"photo_id": "a/b"}) == "/photos/a%2Fb"
    assert regions.concrete_path("/feed", None) == "/feed"
