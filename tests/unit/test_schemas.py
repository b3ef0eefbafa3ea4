"""Request bodies: the password policy, usernames, emails, profile limits and unknown fields."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.schemas import LogIn, ProfileUpdate, Refresh, SignUp, clean_text, password_problems
from infra.cfn import STATEFUL_TEMPLATE, load_template


def random_username() -> str:
    return f"User_{uuid.uuid4().hex[:10]}"


def signup(**overrides: Any) -> dict[str, Any]:
    body = {"username": random_username(), "email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "Passw0rdOK"}
    body.update(overrides)
    return body


def bad_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


@pytest.fixture(scope="module")
def pool_policy() -> dict[str, Any]:
    template = load_template(STATEFUL_TEMPLATE)
    pools = [r for r in template["Resources"].values() if r["Type"] == "AWS::Cognito::UserPool"]
    assert len(pools) == 1
    return pools[0]["Properties"]["Policies"]["PasswordPolicy"]


# --- the password policy ----------------------------------------------------------------------

def test_our_password_policy_agrees_with_the_user_pools(pool_policy: dict[str, Any]):
    # Given the user pool's PasswordPolicy in infra/stateful.yaml
    minimum = int(pool_policy["MinimumLength"])
    base = "Aa1" + "b" * (minimum - 3)  # exactly the minimum, meets every class
    # Then a password meeting exactly the pool's policy is accepted by ours
    assert password_problems(base) == []
    # And one character short is refused
    assert password_problems(base[:-1]) == [f"at least {minimum} characters"]
    # And each class the pool requires is required by us too, and no other
    requirements = {
        "RequireLowercase": ("a lowercase letter", "AA1" + "B" * (minimum - 3)),
        "RequireUppercase": ("an uppercase letter", "aa1" + "b" * (minimum - 3)),
        "RequireNumbers": ("a digit", "Aab" + "b" * (minimum - 3)),
    }
    for flag, (problem, missing_it) in requirements.items():
        if pool_policy.get(flag):
            assert problem in password_problems(missing_it), flag
        else:
            assert password_problems(missing_it) == [], flag
    # And symbols are required by neither (the pool says RequireSymbols false; ours never checks them)
    assert pool_policy.get("RequireSymbols") is False
    assert password_problems(base) == []


def test_our_minimum_length_is_the_pools(pool_policy: dict[str, Any]):
    # Given the pool's minimum length
    minimum = int(pool_policy["MinimumLength"])
    # Then one character less is too short for us, and exactly the minimum is enough
    assert password_problems("Aa1" + "b" * (minimum - 4)) == [f"at least {minimum} characters"]
    assert password_problems("Aa1" + "b" * (minimum - 3)) == []


def test_a_weak_password_is_refused_naming_everything_it_lacks():
    # Given a short all-lowercase password
    with pytest.raises(ValidationError) as raised:
        SignUp.model_validate(signup(password="abc"))
    # Then the error is on the password and names each missing requirement
    assert bad_fields(raised.value) == {"password"}
    message = raised.value.errors()[0]["msg"]
    for need in ("at least 8 characters", "an uppercase letter", "a digit"):
        assert need in message


# --- usernames and emails ---------------------------------------------------------------------

def test_usernames_and_emails_are_normalised_to_lowercase():
    # Given mixed-case input with surrounding spaces
    name = random_username()
    body = SignUp.model_validate(signup(username=f"  {name} ", email=" Mixed.Case@Example.COM "))
    # Then they are stripped and lowercased
    assert body.username == name.lower()
    assert body.email == "mixed.case@example.com"


def test_login_usernames_are_lowercased_too():
    # Given a mixed-case login name
    # When / Then it is matched in lowercase
    name = random_username()
    assert LogIn.model_validate({"username": name, "password": "x"}).username == name.lower()


@pytest.mark.parametrize("username", ["ab", "a" * 31, "has space", "dash-ed", "dot.ted", "émile", "semi;colon", ""])
def test_bad_usernames_are_rejected(username: str):
    # Given a username too short, too long or with other characters
    # When / Then only the username is reported
    with pytest.raises(ValidationError) as raised:
        SignUp.model_validate(signup(username=username))
    assert bad_fields(raised.value) == {"username"}


@pytest.mark.parametrize("username", ["abc", "a" * 30, "under_score_9", "ALLCAPS"])
def test_good_usernames_are_accepted(username: str):
    # Given a valid username of any case
    # When / Then it is accepted, lowercased
    assert SignUp.model_validate(signup(username=username)).username == username.lower()


@pytest.mark.parametrize("email", ["no-at-sign", "two@@example.com", "a@b", "a @example.com", "@example.com",
                                   "x@example.c", "a" * 65 + "@example.com", ""])
def test_bad_emails_are_rejected(email: str):
    # Given a malformed email address
    # When / Then only the email is reported
    with pytest.raises(ValidationError) as raised:
        SignUp.model_validate(signup(email=email))
    assert bad_fields(raised.value) == {"email"}


def test_every_bad_field_is_reported_together():
    # Given three invalid fields
    # When / Then all three are reported at once
    with pytest.raises(ValidationError) as raised:
        SignUp.model_validate({"username": "x", "email": "nope", "password": "weak"})
    assert bad_fields(raised.value) == {"username", "email", "password"}


def test_missing_fields_are_reported():
    # Given an empty body
    # When / Then every required field is reported
    with pytest.raises(ValidationError) as raised:
        SignUp.model_validate({})
    assert bad_fields(raised.value) == {"username", "email", "password"}


# --- profiles ----------------------------------------------------------------------------------

def test_profile_fields_up_to_their_limits_are_accepted():
    # Given a display name of 50 and a bio of 300 characters
    # When / Then both are accepted
    body = ProfileUpdate.model_validate({"display_name": "d" * 50, "bio": "b" * 300})
    assert (len(body.display_name), len(body.bio)) == (50, 300)


def test_a_profile_update_may_change_one_field_only():
    # Given only a bio (with newline and tab)
    # When / Then the display name stays unset and whitespace controls are allowed
    body = ProfileUpdate.model_validate({"bio": "hello\nworld\ttab"})
    assert body.display_name is None
    assert body.bio == "hello\nworld\ttab"  # newline and tab are allowed


@pytest.mark.parametrize(("field", "length"), [("display_name", 51), ("bio", 301)])
def test_profile_fields_over_their_limits_are_rejected(field: str, length: int):
    # Given a field one character over its limit
    # When / Then it is rejected
    with pytest.raises(ValidationError) as raised:
        ProfileUpdate.model_validate({field: "x" * length})
    assert bad_fields(raised.value) == {field}


@pytest.mark.parametrize("text", ["bell\x07", "nul\x00byte", "esc\x1b[31m", "del\x7f", "cr\rreturn"])
@pytest.mark.parametrize("field", ["display_name", "bio"])
def test_control_characters_are_refused(field: str, text: str):
    # Given text with a control character
    # When / Then the field is refused
    with pytest.raises(ValidationError) as raised:
        ProfileUpdate.model_validate({field: text})
    assert bad_fields(raised.value) == {field}
    assert "control characters" in raised.value.errors()[0]["msg"]


# --- unknown fields ----------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "body"), [
    (SignUp, signup(admin=True)),
    (LogIn, {"username": "someone", "password": "x", "remember": True}),
    (Refresh, {"refresh_token": "t", "username": "x"}),
    (ProfileUpdate, {"bio": "hi", "followers": 10**6}),
])
def test_unknown_fields_are_refused(model, body: dict[str, Any]):
    # Given a body with a field the API does not define
    # When / Then it is refused rather than ignored
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    assert [e["type"] for e in raised.value.errors()] == ["extra_forbidden"]


# --- the one text rule -------------------------------------------------------------------------------

@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f",
                                  "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                                  "\u2066", "\u2067", "\u2068", "\u2069"])
@pytest.mark.parametrize("multiline", [False, True])
def test_clean_text_refuses_controls_and_bidi_overrides(char: str, multiline: bool):
    with pytest.raises(ValueError, match="control characters"):
        clean_text(f"a{char}b", multiline=multiline)


def test_clean_text_keeps_tab_and_line_feed_in_multiline_fields_only():
    assert clean_text("a\tb\nc", multiline=True) == "a\tb\nc"
    for char in ("\t", "\n", "\r"):
        with pytest.raises(ValueError):
            clean_text(f"a{char}b")


def test_clean_text_normalises_to_nfc_and_limits_count_the_normalised_text():
    assert clean_text("e\u0301") == "\u00e9"
    # Given 50 decomposed letters (100 code points): within a 50-character limit once normalised
    body = ProfileUpdate.model_validate({"display_name": "e\u0301" * 50})
    assert body.display_name == "\u00e9" * 50
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"display_name": "e\u0301" * 51})


def test_right_to_left_text_without_overrides_is_accepted():
    assert clean_text("שלום مرحبا") == "שלום مرحبا"


@pytest.mark.parametrize("value", ["caption\x85", "\x1ccaption", "caption\x1f", "\x0bcaption"])
def test_controls_that_str_strip_counts_as_whitespace_are_refused_not_stripped(value: str):
    # Given a control character at the edge of a caption (str.strip would silently drop these)
    from chalicelib.schemas import CaptionUpdate

    # When / Then the field is refused, the same as the character anywhere else
    with pytest.raises(ValidationError, match="control characters"):
        CaptionUpdate.model_validate({"caption": value})
