"""Request bodies of the public API, validated with field-level messages."""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

USERNAME_PATTERN = r"^[A-Za-z0-9_]{3,30}$"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


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
    username: str = Field(max_length=30)
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)

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
    username: str = Field(max_length=30)
    code: str = Field(min_length=1, max_length=20)

    _check_username = field_validator("username")(_username)


class LogIn(_Body):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)

    @field_validator("username")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class Refresh(_Body):
    refresh_token: str = Field(min_length=1, max_length=4096)


class ProfileUpdate(_Body):
    display_name: str | None = Field(default=None, max_length=50)
    bio: str | None = Field(default=None, max_length=300)

    @field_validator("display_name", "bio")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value


class NewPhoto(_Body):
    content_type: str = Field(max_length=100)
    size: int
    caption: str | None = Field(default=None, max_length=2200)

    @field_validator("content_type")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class CaptionUpdate(_Body):
    caption: str = Field(max_length=2200)

    @field_validator("caption")
    @classmethod
    def _printable(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value
