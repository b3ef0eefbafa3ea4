"""Request bodies of the public API, validated with field-level messages.

Every text field is a :func:`text` field: one rule for all of them (see :func:`clean_text`).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

USERNAME_PATTERN = r"^[A-Za-z0-9_]{3,30}$"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
#: C0 controls, DEL, C1 controls, and the bidi embeddings/overrides/isolates that reorder text.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: The same, less tab and line feed, for fields that hold several lines (bio, caption).
_FORBIDDEN_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORBIDDEN_TEXT_MESSAGE = "must not contain control characters or bidirectional overrides"


def clean_text(value: str, *, multiline: bool = False) -> str:
    """The one rule for text from clients (pure): NFC-normalised, no controls, no bidi overrides.

    Refused: C0 controls (U+0000-U+001F; multi-line fields keep tab and line feed), DEL and C1
    controls (U+007F-U+009F), bidi embeddings and overrides (U+202A-U+202E) and isolates
    (U+2066-U+2069). Accepted text is returned in Unicode normal form C, so equal text is stored
    (and compared, and counted against length limits) the same way whatever the client sent.
    """
    forbidden = _FORBIDDEN_MULTILINE if multiline else _FORBIDDEN
    if forbidden.search(value):
        raise ValueError(FORBIDDEN_TEXT_MESSAGE)
    return unicodedata.normalize("NFC", value)


def text(max_length: int, *, min_length: int = 0, multiline: bool = False):
    """A text field type: :func:`clean_text`, then the length limits on the normalised text.

    The characters are checked before surrounding whitespace is stripped: ``str.strip`` counts
    some controls (U+001C-U+001F, U+0085) as whitespace and would otherwise hide them.
    """

    def refuse(value):
        if isinstance(value, str):
            clean_text(value, multiline=multiline)
        return value

    def check(value: str) -> str:
        value = clean_text(value, multiline=multiline)
        if len(value) < min_length:
            raise ValueError(f"must be at least {min_length} characters")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return value

    return Annotated[str, BeforeValidator(refuse), Field(max_length=max_length * 4), AfterValidator(check)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _username(value: str) -> str:
    if not re.match(USERNAME_PATTERN, value):
        raise ValueError("must be 3-30 letters, digits or underscores")
    return value.lower()


def password_problems(password: str) -> list[str]:
    """The user pool's password policy (``infra/stateful.yaml``), enforced by us as well."""
    problems = []
    if len(password) < 8:
        problems.append("at least 8 characters")
    if not re.search(r"[a-z]", password):
        problems.append("a lowercase letter")
    if not re.search(r"[A-Z]", password):
        problems.append("an uppercase letter")
    if not re.search(r"[0-9]", password):
        problems.append("a digit")
    return problems


class SignUp(_Body):
    username: text(30)
    email: text(254)
    password: text(256)

    _check_username = field_validator("username")(_username)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be a valid email address")
        return value.lower()

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        problems = password_problems(value)
        if problems:
            raise ValueError("too weak: needs " + ", ".join(problems))
        return value


class Confirm(_Body):
    username: text(30)
    code: text(20, min_length=1)

    _check_username = field_validator("username")(_username)


class LogIn(_Body):
    username: text(128, min_length=1)
    password: text(256, min_length=1)

    @field_validator("username")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class Refresh(_Body):
    refresh_token: text(4096, min_length=1)


class LogOut(_Body):
    """``POST /auth/logout``; the refresh token (optional) is revoked in Cognito as well."""

    refresh_token: text(4096, min_length=1) | None = None


class DeleteAccount(_Body):
    """``DELETE /me``: the current password re-confirms the erasure."""

    password: text(256, min_length=1)


class ProfileUpdate(_Body):
    display_name: text(50) | None = None
    bio: text(300, multiline=True) | None = None


class NewPhoto(_Body):
    content_type: text(100)
    size: int
    caption: text(2200, multiline=True) | None = None

    @field_validator("content_type")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class CaptionUpdate(_Body):
    caption: text(2200, multiline=True)
