"""Sign-out rules (pure): which verified tokens a session record or a user's cut-off refuses."""
from __future__ import annotations

import uuid

import pytest

from chalicelib import sessions
from chalicelib.tokens import AccessClaims
from infra.cfn import STATEFUL_TEMPLATE, load_template


def claims(authenticated_at: int, session_id: str | None = None) -> AccessClaims:
    return AccessClaims(username="ann", subject="", token_id=str(uuid.uuid4()), expires_at=authenticated_at + 3600,
                        session_id=session_id or str(uuid.uuid4()), authenticated_at=authenticated_at)


def test_an_ended_session_refuses_its_tokens():
    assert sessions.refusal(claims(100), session_ended=True, cutoff=None)
    assert sessions.refusal(claims(100), session_ended=False, cutoff=None) is None


@pytest.mark.parametrize(("authenticated_at", "refused"), [(99, True), (100, True), (101, False)])
def test_a_cutoff_refuses_sessions_signed_in_up_to_its_second(authenticated_at, refused):
    # Given a cut-off at 100.500 s; Then sessions of second 100 or earlier are refused, later ones not
    cutoff = sessions.Cutoff(at_ms=100_500)
    assert bool(sessions.refusal(claims(authenticated_at), False, cutoff)) is refused


def test_an_exempt_session_of_the_cutoffs_second_is_accepted():
    # Given a session signed in during the cut-off's second and listed as after it
    token = claims(100)
    cutoff = sessions.Cutoff(at_ms=100_500, exempt_sessions=frozenset({token.session_id}))
    # Then it is accepted, and an exemption never reaches an earlier second
    assert sessions.refusal(token, False, cutoff) is None
    assert sessions.refusal(claims(99, token.session_id), False, cutoff)


@pytest.mark.parametrize(("authenticated_at", "started_ms", "exempt"), [
    (100, 100_501, True),   # same second, began after the cut-off
    (100, 100_500, False),  # began at the cut-off itself: not provably after
    (100, 100_200, False),  # began before the cut-off
    (101, 101_000, False),  # a later second needs no exemption
])
def test_only_sign_ins_provably_after_the_cutoff_in_its_second_are_exempted(authenticated_at, started_ms, exempt):
    cutoff = sessions.Cutoff(at_ms=100_500)
    assert sessions.exempt_from(cutoff, claims(authenticated_at), started_ms) is exempt
    assert sessions.exempt_from(None, claims(authenticated_at), started_ms) is False


def test_sign_out_records_outlive_every_token_of_the_sessions_they_end():
    # Given the app client's token validities in infra/stateful.yaml
    client = next(r["Properties"] for r in load_template(STATEFUL_TEMPLATE)["Resources"].values()
                  if r["Type"] == "AWS::Cognito::UserPoolClient")
    assert client["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"}
    assert client["EnableTokenRevocation"] is True
    # Then a record lives as long as a refresh token can mint tokens plus one access token's life
    longest = int(client["RefreshTokenValidity"]) * 86400 + int(client["AccessTokenValidity"]) * 60
    assert sessions.SESSION_LIFETIME_SECONDS == longest
