"""Sign-out with several sessions: ``POST /auth/logout`` ends one, ``POST /auth/logout-all`` ends all.

Sessions are real moto Cognito sign-ins (each with its own refresh token and ``origin_jti``); the
authorizer is the app's own ``bearer_auth`` run by chalice's local gateway with API Gateway's 401.
"""
from __future__ import annotations

import json
import types

import pytest
from api_helpers import PASSWORD, body_of, call, member

import moto.cognitoidp.models as moto_cognito_models
from chalicelib import auth, sessions

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def sign_in(client, username: str) -> dict:
    response = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.body
    return body_of(response)


def refreshed(client, refresh_token: str) -> str:
    response = call(client, "POST", "/auth/refresh", {"refresh_token": refresh_token})
    assert response.status_code == 200, response.body
    return body_of(response)["access_token"]


def works(client, access_token: str) -> bool:
    status = call(client, "GET", "/me", token=access_token).status_code
    assert status in (200, 401), status
    return status == 200


def refresh_status(client, refresh_token: str) -> int:
    return call(client, "POST", "/auth/refresh", {"refresh_token": refresh_token}).status_code


# --- logout: this session ------------------------------------------------------------------------

def test_logout_ends_every_token_of_its_session_and_no_other_session(client):
    # Given a user signed in on two devices, the laptop's session refreshed once
    username, _ = member(client, log_in=False)
    laptop, phone = sign_in(client, username), sign_in(client, username)
    laptop_refreshed = refreshed(client, laptop["refresh_token"])
    assert works(client, laptop["access_token"]) and works(client, laptop_refreshed)
    # When the laptop logs out with its newest token, handing back its refresh token
    response = call(client, "POST", "/auth/logout", {"refresh_token": laptop["refresh_token"]},
                    token=laptop_refreshed)
    # Then every access token of the laptop's session is refused, the one refreshed before the logout too
    assert response.status_code == 204
    assert not works(client, laptop_refreshed)
    assert not works(client, laptop["access_token"])
    # And its refresh token mints nothing any more
    assert refresh_status(client, laptop["refresh_token"]) == 401
    # And the phone's session is untouched: its token works and it still refreshes
    assert works(client, phone["access_token"])
    assert works(client, refreshed(client, phone["refresh_token"]))


def test_a_refresh_token_kept_back_at_logout_mints_no_working_token(client):
    # Given a signed-in session
    username, _ = member(client, log_in=False)
    session = sign_in(client, username)
    # When it logs out without handing back its refresh token (an older client)
    assert call(client, "POST", "/auth/logout", token=session["access_token"]).status_code == 204
    # Then refreshing is refused all the same: the session, not the token, has ended
    assert refresh_status(client, session["refresh_token"]) == 401
    # And signing in again starts a new session that works
    assert works(client, sign_in(client, username)["access_token"])


def test_logout_is_a_no_op_for_an_unknown_refresh_token_but_still_ends_the_session(client):
    # Given a session
    username, _ = member(client, log_in=False)
    session = sign_in(client, username)
    # When it logs out naming a refresh token Cognito never issued
    response = call(client, "POST", "/auth/logout", {"refresh_token": "not-a-refresh-token"},
                    token=session["access_token"])
    # Then the logout succeeds and the session is over
    assert response.status_code == 204
    assert not works(client, session["access_token"])


# --- logout-all: every session ----------------------------------------------------------------------

def test_logout_all_ends_every_session_of_the_user_only(client):
    # Given a user with two sessions (one refreshed) and another user
    username, _ = member(client, log_in=False)
    laptop, phone = sign_in(client, username), sign_in(client, username)
    laptop_refreshed = refreshed(client, laptop["refresh_token"])
    _, other_token = member(client)
    # When the phone logs out everywhere
    assert call(client, "POST", "/auth/logout-all", token=phone["access_token"]).status_code == 204
    # Then no token of any of the user's sessions works, and neither session refreshes
    for token in (laptop["access_token"], laptop_refreshed, phone["access_token"]):
        assert not works(client, token)
    assert refresh_status(client, laptop["refresh_token"]) == 401
    assert refresh_status(client, phone["refresh_token"]) == 401
    # And the other user is untouched
    assert works(client, other_token)


def test_logout_all_without_a_token_is_401(client):
    # Given / When logout-all is called anonymously / Then the authorizer refuses it
    assert call(client, "POST", "/auth/logout-all").status_code == 401


class Clock:
    """A settable ``time`` stand-in for moto's Cognito (token ``iat``/``auth_time``) and our session code."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import time as real_time

    clock = Clock(float(int(real_time.time())))  # the start of the current second
    fake = types.SimpleNamespace(time=clock.time)
    for module in (moto_cognito_models, sessions, auth):
        monkeypatch.setattr(module, "time", fake)
    return clock


def sign_in_at(client, clock, username: str, at: float) -> dict:
    clock.now = at
    return sign_in(client, username)


def log_out_everywhere_at(client, clock, access_token: str, at: float) -> None:
    clock.now = at
    assert call(client, "POST", "/auth/logout-all", token=access_token).status_code == 204


def test_a_cutoff_refuses_sessions_from_its_own_second_before_it_and_accepts_those_after(client, clock):
    # Given a session signed in at second S + 0.2 (Cognito stamps it with second S only)
    second = clock.now
    username, _ = member(client, log_in=False)
    before = sign_in_at(client, clock, username, second + 0.2)
    # When the user logs out everywhere at S + 0.5
    log_out_everywhere_at(client, clock, before["access_token"], second + 0.5)
    # And signs in again at S + 0.8, in the same second, and again in the next second
    same_second_after = sign_in_at(client, clock, username, second + 0.8)
    next_second = sign_in_at(client, clock, username, second + 1.1)
    # Then the session from before the cut-off is refused although it carries the same second
    assert not works(client, before["access_token"])
    # And both sessions from after it work, including the one stamped with the cut-off's second
    assert works(client, same_second_after["access_token"])
    assert works(client, next_second["access_token"])
    # And the exempted session stays exempt when refreshed
    assert works(client, refreshed(client, same_second_after["refresh_token"]))


def test_a_second_logout_all_clears_earlier_exemptions(client, clock):
    # Given a session exempted from a cut-off because it signed in just after it, in its second
    second = clock.now
    username, _ = member(client, log_in=False)
    first = sign_in_at(client, clock, username, second + 0.1)
    log_out_everywhere_at(client, clock, first["access_token"], second + 0.2)
    exempt = sign_in_at(client, clock, username, second + 0.3)
    assert works(client, exempt["access_token"])
    # When that session logs out everywhere in the same second
    log_out_everywhere_at(client, clock, exempt["access_token"], second + 0.4)
    # Then it is refused too, and a sign-in after the new cut-off works
    assert not works(client, exempt["access_token"])
    assert works(client, sign_in_at(client, clock, username, second + 0.5)["access_token"])


def test_the_authorizer_reads_the_session_and_the_cutoff_in_one_consistent_batch_get(client, api_env):
    # Given a valid token of a user who has a cut-off record
    from chalicelib.models import RevokedTokenRecord, bound

    username, _ = member(client, log_in=False)
    first = sign_in(client, username)
    assert call(client, "POST", "/auth/logout-all", token=first["access_token"]).status_code == 204
    token = sign_in(client, username)["access_token"]
    calls: list[tuple[str, dict]] = []
    connection = bound(RevokedTokenRecord)._get_connection().connection
    connection.client.meta.events.register(
        "before-call.dynamodb", lambda model, params, **_: calls.append((model.name, params)))
    # When the authorizer checks it
    claims = auth.authorize(f"Bearer {token}")
    # Then it made exactly one DynamoDB call: a consistent BatchGetItem of both records
    assert claims.username == username
    assert [name for name, _ in calls] == ["BatchGetItem"]
    (request,) = json.loads(calls[0][1]["body"])["RequestItems"].values()
    assert request["ConsistentRead"] is True
    assert {k["token_id"]["S"] for k in request["Keys"]} == {sessions.session_key(claims.session_id),
                                                              sessions.user_key(username)}
