"""The domain's vocabulary of failures.

Each error names what went wrong in business terms and carries the HTTP status and stable error
code the API answers with. Handlers never catch these: ``chalicelib.http`` turns any
:class:`PhotoscaleError` into ``{"error": {"code", "message"}}`` in one place.
"""
from __future__ import annotations

from typing import Any

from chalice.app import ChaliceUnhandledError


class PhotoscaleError(ChaliceUnhandledError):
    """Base of every error the API reports to clients.

    Chalice turns exceptions raised by a view into its own 500 response before middleware sees
    them, except subclasses of ``ChaliceUnhandledError``: inheriting from it is what lets the one
    HTTP error middleware (``chalicelib.http``) map every domain error.
    """

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the error adds (``Retry-After`` on 429 and 503)."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class BadRequest(PhotoscaleError):
    """The request is malformed or fails validation."""

    status, code = 400, "bad_request"


class ValidationFailed(BadRequest):
    """One or more fields are invalid; ``details`` lists them."""

    code = "validation_failed"


class InvalidCursor(BadRequest):
    """A pagination cursor was forged, altered or belongs to another listing."""

    code = "invalid_cursor"


class Unauthorized(PhotoscaleError):
    """No valid credentials: missing, forged, expired or revoked token, or wrong password."""

    status, code = 401, "unauthorized"


class InvalidCredentials(Unauthorized):
    """Username and password do not match an account."""

    code = "invalid_credentials"


class Forbidden(PhotoscaleError):
    """The caller is known but may not do this."""

    status, code = 403, "forbidden"


class AccountNotConfirmed(Forbidden):
    """The account exists but its email has not been confirmed yet."""

    code = "account_not_confirmed"


class NotFound(PhotoscaleError):
    """The addressed resource does not exist."""

    status, code = 404, "not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class PhotoNotFound(NotFound):
    code = "photo_not_found"


class NotPhotoOwner(Forbidden):
    """Only the photo's owner may change or delete it."""

    code = "not_photo_owner"


class Conflict(PhotoscaleError):
    """The request conflicts with the current state."""

    status, code = 409, "conflict"


class UsernameTaken(Conflict):
    code = "username_taken"


class PhotoNotReady(Conflict):
    """The photo is still processing (or failed), so it cannot be edited yet."""

    code = "photo_not_ready"


class StaleVersion(Conflict):
    """An edit was based on a version of the photo that has since been replaced."""

    code = "stale_version"


class PayloadTooLarge(PhotoscaleError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(PhotoscaleError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(PhotoscaleError):
    """Over a rate limit or quota; ``retry_after`` says when to try again."""

    status, code = 429, "too_many_requests"


class ServiceUnavailable(PhotoscaleError):
    """A dependency is down or throttling; the client may retry."""

    status, code = 503, "service_unavailable"


class PrimaryRegionUnavailable(ServiceUnavailable):
    """An identity write (sign-up, confirmation, password change) needs the primary region, which is down."""

    code = "primary_region_unavailable"


class HomeRegionUnknown(ServiceUnavailable):
    """A write of a caller whose profile (and so home region) is not in this region's replica yet,
    even read strongly consistent: it is still replicating from the region that created it."""

    code = "home_region_unknown"
