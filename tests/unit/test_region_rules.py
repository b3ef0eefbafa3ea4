"""Home-region decisions: where a request is served, and what a failover write may miscount (pure)."""
from __future__ import annotations

import pytest

from chalicelib import regions
from chalicelib.errors import HomeRegionUnknown
from chalicelib.regions import FAILOVER, FORWARD, LOCAL, UNKNOWN, Decision
from chalicelib.settings import _REQUIRED, load_settings

HERE, HOME = "eu-west-1", "us-east-1"


def never_asked() -> bool:
    raise AssertionError("the home region's health was asked though it cannot matter")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_reads_are_served_locally_whoever_is_home(method):
    assert regions.decide(method, HERE, HOME, False, "http://home", never_asked) == Decision(LOCAL)


def test_a_write_of_a_user_at_home_here_is_served_locally():
    assert regions.decide("PUT", HERE, HERE, False, "http://here", never_asked) == Decision(LOCAL)


def test_a_write_of_a_caller_whose_home_is_not_known_here_is_refused_for_a_retry():
    # Given a caller with no profile in this replica (still replicating from where it was made)
    # When they write / Then the write is neither served here nor forwarded: it is retried later
    assert regions.decide("POST", HERE, None, False, "http://home", never_asked) == Decision(UNKNOWN)
    assert regions.decide("PUT", HERE, None, False, None, never_asked) == Decision(UNKNOWN)


def test_a_write_of_a_caller_whose_home_is_not_known_here_is_accepted_when_every_other_region_is_down():
    # the profile can only be replicating from a region that is down: the home is down, failover
    assert regions.decide("PUT", HERE, None, False, None, never_asked, lambda: False) == Decision(FAILOVER)


def test_a_read_of_a_caller_whose_home_is_not_known_here_is_served_locally():
    assert regions.decide("GET", HERE, None, False, None, never_asked) == Decision(LOCAL)


def test_a_forwarded_write_whose_home_is_not_known_here_is_served_where_it_lands():
    # the forwarding region took this one for the home: bouncing or refusing it would loop
    assert regions.decide("PATCH", HERE, None, True, None, never_asked) == Decision(LOCAL)


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


# --- route: the wrapper, with the caller's home looked up by the app -------------------------------

class Request:
    """The parts of a Chalice request :func:`regions.route` reads."""

    def __init__(self, method: str, caller: str | None, path: str = "/photos/{photo_id}/like",
                 params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> None:
        self.method, self.path, self.uri_params = method, path, params or {"photo_id": "P1"}
        self.headers = headers or {}
        self.context = {"authorizer": {"username": caller}} if caller else {}
        self.query_params, self.raw_body = None, b""


@pytest.fixture
def two_regions(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """This region and the home region serving; returns each region's health as
    :func:`regions.region_healthy` answers it (set by the test)."""
    env = {name: name.lower() for name in _REQUIRED.values()}
    env.update(AWS_REGION=HERE, ACTIVE_REGIONS=f"{HOME},{HERE}", REGION_API_URLS='{"us-east-1": "http://home"}')
    healthy: dict[str, bool] = {}
    monkeypatch.setattr(regions, "get_settings", lambda: load_settings(env))
    monkeypatch.setattr(regions, "region_healthy", lambda region: healthy[region])
    return healthy


@pytest.fixture
def home_up(two_regions: dict[str, bool]) -> None:
    two_regions[HOME] = True


@pytest.fixture
def home_down(two_regions: dict[str, bool]) -> None:
    two_regions[HOME] = False


def not_served() -> None:
    raise AssertionError("the write was served here")


def no_suspects(counters) -> None:
    raise AssertionError(f"suspects noted: {counters}")


def test_route_refuses_a_write_whose_home_is_unknown_with_503_and_retry_after(home_up):
    # Given a caller the app finds no profile for, even read consistently, and the other region up
    looked_up: list[str] = []

    def home_of(username: str) -> None:
        looked_up.append(username)
        return None

    # When they like a photo through this region
    with pytest.raises(HomeRegionUnknown) as refused:
        regions.route(Request("PUT", "ann"), not_served, home_of, no_suspects)
    # Then nothing is served or noted, and the client is told to retry shortly
    assert looked_up == ["ann"]
    assert (refused.value.status, refused.value.code) == (503, "home_region_unknown")
    assert refused.value.headers == {"Retry-After": str(regions.UNKNOWN_HOME_RETRY_AFTER)}


def test_route_serves_a_read_of_a_caller_whose_home_is_unknown_without_looking_it_up(two_regions):
    def home_of(username: str) -> None:
        raise AssertionError("the home was looked up for a read")

    assert regions.route(Request("GET", "ann"), lambda: "served", home_of, no_suspects) == "served"


def test_route_serves_an_anonymous_write_here(two_regions):
    def home_of(username: str) -> None:
        raise AssertionError("the home was looked up for an anonymous request")

    assert regions.route(Request("POST", None, "/auth/signup", {}), lambda: "served", home_of, no_suspects) == "served"


class Recorded:
    def __init__(self) -> None:
        self.noted: list[list[tuple[str, str]]] = []

    def __call__(self, counters: list[tuple[str, str]]) -> None:
        self.noted.append(counters)


def test_route_accepts_a_write_whose_home_is_unknown_while_every_other_region_is_down_and_notes_suspects(home_down):
    from chalice.app import Response

    # Given a caller with no profile here, and the only other region down
    noted = Recorded()
    # When they like a photo
    response = regions.route(Request("PUT", "ann"), lambda: Response(body="", status_code=200),
                             lambda username: None, noted)
    # Then it is accepted here (failover) and the like count is noted for reconciliation
    assert response.status_code == 200
    assert noted.noted == [[("likes", "P1")]]
