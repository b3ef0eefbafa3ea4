"""Cognito user-pool operations, in the service's own vocabulary.

Wraps the ``cognito-idp`` client: sign-up, confirmation, password login, refresh, sign-out. Every
Cognito error code that a client can cause maps to one domain error; anything else propagates.

Writes to the pool go to the primary region's pool (:func:`chalicelib.aws.identity_writer`), the one
writable copy; when it cannot be reached (connection failure, 5xx, throttling after retries) they
answer 503 ``primary_region_unavailable``. Log-in, refresh and sign-out use this region's pool, so
they keep working while the primary region is down.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, errors
from chalicelib.settings import get_settings


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    token_type: str = "Bearer"


_ERRORS: dict[str, type[errors.PhotoscaleError]] = {
    "UsernameExistsException": errors.UsernameTaken,
    "AliasExistsException": errors.Conflict,
    "InvalidPasswordException": errors.ValidationFailed,
    "InvalidParameterException": errors.ValidationFailed,
    "NotAuthorizedException": errors.InvalidCredentials,
    "UserNotFoundException": errors.InvalidCredentials,
    "UserNotConfirmedException": errors.AccountNotConfirmed,
    "CodeMismatchException": errors.BadRequest,
    "ExpiredCodeException": errors.BadRequest,
    "TooManyRequestsException": errors.TooManyRequests,
    "LimitExceededException": errors.TooManyRequests,
    "TooManyFailedAttemptsException": errors.TooManyRequests,
}


def _translate(exc: ClientError, message: str | None = None) -> errors.PhotoscaleError | ClientError:
    code = exc.response.get("Error", {}).get("Code", "")
    error_class = _ERRORS.get(code)
    if error_class is None:
        return exc
    text = message or exc.response.get("Error", {}).get("Message") or code
    if error_class is errors.ValidationFailed and code == "InvalidPasswordException":
        return errors.ValidationFailed(
            "Password is too weak: use at least 8 characters with upper and lower case letters and a digit.",
            details=[{"field": "password", "message": "too weak"}],
        )
    return error_class(text)


def _idp():
    return aws.client("cognito-idp")


T = TypeVar("T")

#: Seconds a client is told to wait before retrying an identity write during a primary outage.
PRIMARY_RETRY_AFTER_SECONDS = 30


def _on_primary(write: Callable[..., T]) -> T:
    """Run ``write(client)`` against the primary pool; its transient failure is the primary's outage."""
    try:
        return write(aws.identity_writer())
    except (ClientError, BotoCoreError) as exc:
        if aws.is_transient(exc):
            raise errors.PrimaryRegionUnavailable(
                f"Account changes need the primary region ({get_settings().primary_region}), which is "
                "unavailable; signing in and everything else keep working.",
                retry_after=PRIMARY_RETRY_AFTER_SECONDS) from exc
        raise


def sign_up(username: str, email: str, password: str) -> bool:
    """Create the account in the primary pool; returns whether it is already confirmed (stage setting)."""
    settings = get_settings()

    def write(idp) -> None:
        idp.sign_up(
            ClientId=settings.primary_user_pool_client_id,
            Username=username,
            Password=password,
            UserAttributes=[{"Name": "email", "Value": email}],
        )
        if settings.auto_confirm_signup:
            idp.admin_confirm_sign_up(UserPoolId=settings.primary_user_pool_id, Username=username)

    try:
        _on_primary(write)
    except ClientError as exc:
        message = "That username is taken." if "UsernameExists" in str(exc) else None
        raise _translate(exc, message) from exc
    return settings.auto_confirm_signup


def confirm_sign_up(username: str, code: str) -> None:
    client_id = get_settings().primary_user_pool_client_id
    try:
        _on_primary(lambda idp: idp.confirm_sign_up(ClientId=client_id, Username=username, ConfirmationCode=code))
    except ClientError as exc:
        raise _translate(exc) from exc


def log_in(username: str, password: str) -> TokenSet:
    try:
        result = _idp().initiate_auth(
            ClientId=get_settings().user_pool_client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError as exc:
        raise _translate(exc, "Wrong username or password.") from exc
    return _token_set(result)


def refresh(refresh_token: str) -> TokenSet:
    try:
        result = _idp().initiate_auth(
            ClientId=get_settings().user_pool_client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )
    except ClientError as exc:
        raise _translate(exc, "Refresh token is invalid or has been revoked.") from exc
    except KeyError:  # moto raises a bare KeyError for a refresh token it never issued
        raise errors.Unauthorized("Refresh token is invalid or has been revoked.") from None
    return _token_set(result)


def revoke_refresh_token(refresh_token: str) -> None:
    """End one sign-in's refresh token in Cognito (``RevokeToken``): it can mint no more tokens.

    An unknown or already revoked token is not an error: the session is over either way.
    """
    try:
        _idp().revoke_token(Token=refresh_token, ClientId=get_settings().user_pool_client_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NotAuthorizedException", "UnsupportedTokenTypeException"):
            raise


def sign_out_everywhere(access_token: str) -> None:
    """Invalidate every refresh token of the token's user in Cognito (``GlobalSignOut``)."""
    try:
        _idp().global_sign_out(AccessToken=access_token)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NotAuthorizedException":
            raise


def _token_set(result: dict) -> TokenSet:
    if "AuthenticationResult" not in result:
        challenge = result.get("ChallengeName", "an unsupported challenge")
        raise errors.Forbidden(f"Sign-in requires {challenge}.")
    auth = result["AuthenticationResult"]
    return TokenSet(
        access_token=auth["AccessToken"],
        expires_in=int(auth.get("ExpiresIn", 3600)),
        refresh_token=auth.get("RefreshToken"),
    )


@dataclass(frozen=True)
class Account:
    """What this region's pool knows of an identity that :mod:`chalicelib.users` needs."""

    email: str | None
    created_at: float  # epoch seconds (Cognito's UserCreateDate)


def account(username: str) -> Account | None:
    """The identity in this region's pool (``AdminGetUser``; a replica answers reads); None if absent."""
    try:
        found = _idp().admin_get_user(UserPoolId=get_settings().user_pool_id, Username=username)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "UserNotFoundException":
            return None
        raise
    attributes = {a["Name"]: a["Value"] for a in found.get("UserAttributes", [])}
    return Account(email=attributes.get("email"), created_at=found["UserCreateDate"].timestamp())


def disable_user(username: str) -> None:
    """No new sign-in or refresh for the user (``AdminDisableUser`` on the primary pool); an absent user is fine."""
    pool_id = get_settings().primary_user_pool_id
    try:
        _on_primary(lambda idp: idp.admin_disable_user(UserPoolId=pool_id, Username=username))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "UserNotFoundException":
            raise


def delete_user(username: str) -> None:
    """Remove the user from the primary pool (``AdminDeleteUser``); already gone is fine (idempotent)."""
    pool_id = get_settings().primary_user_pool_id
    try:
        _on_primary(lambda idp: idp.admin_delete_user(UserPoolId=pool_id, Username=username))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "UserNotFoundException":
            raise
