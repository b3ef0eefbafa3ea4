"""The OpenAPI 3.1 description of the public API, served at ``GET /api/openapi.json``.

Request bodies come from the pydantic models the handlers validate with (:mod:`chalicelib.schemas`,
JSON Schema 2020-12, which OpenAPI 3.1 uses as is); response shapes are written here, next to the
list of routes. ``tests/unit/test_openapi.py`` checks the routes against ``app.py`` both ways and the
integration fuzzing (schemathesis) checks that every answer the running stack gives conforms.

Built on the first request and cached (pydantic's schema generation stays off the cold start).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

TITLE = "Photoscale API"
VERSION = "1.0.0"

USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9_]{3,30}$"}
PHOTO_ID = {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$", "description": "A ULID."}
JOB_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_SIZE = {"type": "object", "required": ["width", "height"], "additionalProperties": False,
         "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}}}
_URL_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_NULLABLE_INT = {"type": ["integer", "null"]}
_CURSOR = {"type": ["string", "null"], "description": "Opaque; pass as ?cursor= for the next page (null: no more)."}

#: Response bodies (``components.schemas``), written to match what the services return.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code, e.g. validation_failed."},
                "message": {"type": "string"},
                "details": {"description": "Field-level problems (a list of {field, message}) or extra facts."},
            },
        }},
    },
    "Health": {
        "type": "object", "required": ["status", "region", "checks"],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "region": {"type": "string"},
            "checks": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["status", "latency_ms"],
                "properties": {"status": {"enum": ["ok", "failing"]}, "latency_ms": {"type": "number"},
                               "error": {"type": "string"}, "uploads_backlog": {"type": "integer"}},
            }},
        },
    },
    "SignedUp": {
        "type": "object", "required": ["username", "confirmed"], "additionalProperties": False,
        "properties": {"username": USERNAME, "confirmed": {"type": "boolean"}},
    },
    "Tokens": {
        "type": "object", "required": ["access_token", "expires_in", "token_type"], "additionalProperties": False,
        "properties": {"access_token": {"type": "string"}, "expires_in": {"type": "integer"},
                       "refresh_token": {"type": ["string", "null"]}, "token_type": {"const": "Bearer"}},
    },
    "Profile": {
        "type": "object", "additionalProperties": False,
        "required": ["username", "display_name", "bio", "followers", "following", "photos", "created_at"],
        "properties": {"username": {"type": "string"}, "display_name": {"type": "string"}, "bio": {"type": "string"},
                       "followers": {"type": "integer"}, "following": {"type": "integer"},
                       "photos": {"type": "integer"}, "created_at": {"type": ["string", "null"]}},
    },
    "Photo": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "owner", "caption", "status", "width", "height", "renditions", "likes", "created_at"],
        "properties": {
            "id": PHOTO_ID, "owner": {"type": "string"}, "caption": {"type": "string"},
            "status": {"enum": ["pending", "ready", "failed", "deleting"]},
            "width": _NULLABLE_INT, "height": _NULLABLE_INT,
            "renditions": {**_URL_MAP, "description": "Rendition name -> media URL (empty until ready)."},
            "rendition_sizes": {"type": "object", "additionalProperties": _SIZE},
            "webp": _URL_MAP,
            "version": {"type": "string", "description": "Content version; pass as base_version when editing."},
            "frame": {**_SIZE, "description": "The original's oriented size: the frame crops are checked against."},
            "likes": {"type": "integer"}, "created_at": {"type": ["string", "null"]},
            "error": {"type": "string", "description": "Why processing failed (status failed)."},
            "liked": {"type": "boolean", "description": "Whether the signed-in viewer likes it."},
            "owner_display_name": {"type": "string", "description": "In feed items."},
        },
    },
    "NewUpload": {
        "type": "object", "required": ["photo", "upload"], "additionalProperties": False,
        "properties": {
            "photo": {"$ref": "#/components/schemas/Photo"},
            "upload": {"type": "object", "required": ["url", "fields"], "additionalProperties": False,
                       "description": "A presigned S3 POST: send the fields and then the file as multipart form data.",
                       "properties": {"url": {"type": "string"}, "fields": {"type": "object",
                                                                           "additionalProperties": {"type": "string"}}}},
        },
    },
    "EditQueued": {
        "type": "object", "required": ["edit_id", "photo"], "additionalProperties": False,
        "properties": {"edit_id": {"type": "string"}, "photo": {"$ref": "#/components/schemas/Photo"}},
    },
    "Edits": {
        "type": "object", "additionalProperties": False,
        "description": "Applied to the original in the order crop, rotate, blur, sharpen; at least one.",
        "properties": {
            "crop": {"type": ["object", "null"], "required": ["x", "y", "width", "height"],
                     "additionalProperties": False,
                     "properties": {"x": {"type": "integer", "minimum": 0}, "y": {"type": "integer", "minimum": 0},
                                    "width": {"type": "integer", "minimum": 1},
                                    "height": {"type": "integer", "minimum": 1}}},
            "rotate": {"enum": [90, 180, 270, None], "description": "Degrees clockwise."},
            "blur": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 50},
            "sharpen": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 10},
            "base_version": {"type": ["string", "null"],
                             "description": "The version the edit was made on; 409 stale_version if replaced."},
        },
    },
    "PhotoPage": {
        "type": "object", "required": ["items", "next_cursor"], "additionalProperties": False,
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Photo"}},
                       "next_cursor": _CURSOR},
    },
    "UserPage": {
        "type": "object", "required": ["items", "next_cursor"], "additionalProperties": False,
        "properties": {"items": {"type": "array", "items": {
            "type": "object", "required": ["username", "display_name"], "additionalProperties": False,
            "properties": {"username": {"type": "string"}, "display_name": {"type": "string"}}}},
            "next_cursor": _CURSOR},
    },
    "LikeState": {
        "type": "object", "required": ["likes", "liked"], "additionalProperties": False,
        "properties": {"likes": {"type": "integer"}, "liked": {"type": "boolean"}},
    },
    "JobStarted": {
        "type": "object", "required": ["job", "status", "status_url"], "additionalProperties": False,
        "properties": {"job": JOB_ID, "status": {"type": "string"},
                       "status_url": {"type": "string", "description": "Where to poll the job's progress."}},
    },
    "DeletionProgress": {
        "type": "object", "required": ["job", "status", "steps_done", "steps_total"], "additionalProperties": False,
        "properties": {"job": JOB_ID, "status": {"type": "string"}, "steps_done": {"type": "integer"},
                       "steps_total": {"type": "integer"}, "updated_at": {"type": ["string", "null"]}},
    },
    "ExportStatus": {
        "type": "object", "required": ["job", "status"], "additionalProperties": False,
        "properties": {"job": JOB_ID, "status": {"type": "string"},
                       "download_url": {"type": "string", "description": "The zip's link when ready: a CloudFront signed URL "
                                        "(S3 presigned locally), valid until expires_at (24 h after ready)."},
                       "expires_at": {"type": "integer", "description": "Epoch second the link expires."}},
    },
    "OpenApiDocument": {"type": "object", "required": ["openapi", "paths"]},
}

_ERROR_TEXT = {
    400: "Malformed or invalid request (field-level problems in details).",
    401: "Missing, invalid, expired or revoked credentials.",
    403: "Not allowed (not the owner, account not confirmed).",
    404: "No such resource.",
    409: "Conflicts with the current state.",
    413: "Request body too large.",
    415: "Request body is not JSON.",
    429: "Over a rate limit or quota; Retry-After says when to try again.",
    503: "A dependency is busy or down; Retry-After says when to try again.",
}


@dataclass(frozen=True)
class Operation:
    """One route of ``app.py`` as the description tells it."""

    method: str
    path: str
    summary: str
    status: int
    response: str | None = None  # a components.schemas name; None for an empty body
    body: str | None = None  # a chalicelib.schemas model name, or "Edits"
    body_optional: bool = False
    signed_in: bool = False
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=())


_BODY = (400, 413, 415)
_PAGE = ("limit", "cursor")

#: Every public route. The unit test keeps this list and ``app.routes`` equal.
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/health", "Dependency health (200 ok, 503 degraded)", 200, "Health"),
    Operation("GET", "/openapi.json", "This description", 200, "OpenApiDocument"),
    Operation("POST", "/auth/signup", "Create an account", 201, "SignedUp", "SignUp", errors=(*_BODY, 409, 429)),
    Operation("POST", "/auth/confirm", "Confirm an account with the emailed code", 204, None, "Confirm",
              errors=(*_BODY, 401, 403, 409, 429)),
    Operation("POST", "/auth/login", "Sign in with username and password", 200, "Tokens", "LogIn",
              errors=(*_BODY, 401, 403, 429)),
    Operation("POST", "/auth/refresh", "A new access token for a refresh token", 200, "Tokens", "Refresh",
              errors=(*_BODY, 401, 403, 429)),
    Operation("POST", "/auth/logout", "End this session (and revoke the refresh token if given)", 204, None,
              "LogOut", body_optional=True, signed_in=True, errors=_BODY),
    Operation("POST", "/auth/logout-all", "End every session of the caller", 204, None, signed_in=True),
    Operation("GET", "/me", "The caller's profile", 200, "Profile", signed_in=True, errors=(404,)),
    Operation("PATCH", "/me", "Change the caller's display name or bio", 200, "Profile", "ProfileUpdate",
              signed_in=True, errors=(*_BODY, 404)),
    Operation("DELETE", "/me", "Delete the caller's account (password re-confirms); erasure follows", 202,
              "JobStarted", "DeleteAccount", signed_in=True, errors=(*_BODY, 401, 429)),
    Operation("GET", "/me/deletion", "Progress of an account deletion (the job id from the 202)", 200,
              "DeletionProgress", errors=(400, 404), query=("job",)),
    Operation("POST", "/me/export", "Start an export of the caller's data (one at a time)", 202, "JobStarted",
              signed_in=True, errors=(409, 429)),
    Operation("GET", "/me/export/{job}", "An export's status and, when ready, its download link", 200,
              "ExportStatus", signed_in=True, errors=(400, 404)),
    Operation("GET", "/users/{username}", "A user's profile", 200, "Profile", errors=(404,)),
    Operation("POST", "/photos", "Start an upload: a pending photo and a presigned S3 POST", 201, "NewUpload",
              "NewPhoto", signed_in=True, errors=(*_BODY, 429)),
    Operation("GET", "/photos/{photo_id}", "A photo", 200, "Photo", errors=(404,)),
    Operation("PATCH", "/photos/{photo_id}", "Change a photo's caption (owner only)", 200, "Photo", "CaptionUpdate",
              signed_in=True, errors=(*_BODY, 403, 404, 409)),
    Operation("DELETE", "/photos/{photo_id}", "Delete a photo (owner only; retry-safe)", 204, None,
              signed_in=True, errors=(403, 404)),
    Operation("POST", "/photos/{photo_id}/edits", "Queue an edit of a ready photo (owner only)", 202, "EditQueued",
              "Edits", signed_in=True, errors=(*_BODY, 403, 404, 409)),
    Operation("GET", "/users/{username}/photos", "A user's ready photos, newest first", 200, "PhotoPage",
              errors=(404,), query=_PAGE),
    Operation("PUT", "/users/{username}/follow", "Follow a user (idempotent)", 204, None, signed_in=True,
              errors=(404, 429)),
    Operation("DELETE", "/users/{username}/follow", "Unfollow a user (idempotent)", 204, None, signed_in=True,
              errors=(404, 429)),
    Operation("GET", "/users/{username}/followers", "Who follows a user", 200, "UserPage", errors=(404,),
              query=_PAGE),
    Operation("GET", "/users/{username}/following", "Whom a user follows", 200, "UserPage", errors=(404,),
              query=_PAGE),
    Operation("PUT", "/photos/{photo_id}/like", "Like a photo (idempotent)", 200, "LikeState", signed_in=True,
              errors=(404, 409, 429)),
    Operation("DELETE", "/photos/{photo_id}/like", "Unlike a photo (idempotent)", 200, "LikeState",
              signed_in=True, errors=(404, 409, 429)),
    Operation("GET", "/feed", "The caller's home feed, newest first", 200, "PhotoPage", signed_in=True,
              query=_PAGE),
)

_PATH_PARAMETERS = {"username": USERNAME, "photo_id": PHOTO_ID, "job": JOB_ID}
_QUERY_PARAMETERS = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    "cursor": {"type": "string", "description": "next_cursor of the previous page."},
    "job": {**JOB_ID, "description": "The job id from the 202."},
}


def _request_body_schema(name: str) -> dict[str, Any]:
    if name == "Edits":
        return {"$ref": "#/components/schemas/Edits"}
    from chalicelib import schemas

    return getattr(schemas, name).model_json_schema(mode="validation")


def _json(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_TEXT[status], "content": _json("Error")}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return response


def operation_object(op: Operation) -> dict[str, Any]:
    """The OpenAPI operation object of ``op`` (pure but for the pydantic schema of its body)."""
    parameters = [{"name": name, "in": "path", "required": True, "schema": _PATH_PARAMETERS[name]}
                  for name in path_parameters(op.path)]
    parameters += [{"name": name, "in": "query", "required": False, "schema": _QUERY_PARAMETERS[name]}
                   for name in op.query]
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = _json(op.response)
    responses: dict[str, Any] = {str(op.status): success}
    # Every route: bad path parameters (400) and a busy dependency (503); protected routes: 401.
    statuses = set(op.errors) | {503}
    if parameters:
        statuses.add(400)
    if op.signed_in:
        statuses.add(401)
    for status in sorted(statuses):
        if status == 503 and op.response == "Health":
            responses["503"] = {"description": "Degraded: some dependency is failing.", "content": _json("Health")}
            continue
        responses[str(status)] = _error_response(status)
    obj: dict[str, Any] = {"operationId": operation_id(op), "summary": op.summary, "responses": responses}
    if parameters:
        obj["parameters"] = parameters
    if op.body is not None:
        obj["requestBody"] = {"required": not op.body_optional,
                              "content": {"application/json": {"schema": _request_body_schema(op.body)}}}
    obj["security"] = [{"bearerAuth": []}] if op.signed_in else []
    return obj


def path_parameters(path: str) -> list[str]:
    """``/users/{username}/photos`` -> ``["username"]`` (pure)."""
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def operation_id(op: Operation) -> str:
    """A stable id from method and path: ``PUT /users/{username}/follow`` -> ``put_users_username_follow``."""
    words = [part.strip("{}").replace("-", "_").replace(".", "_") for part in op.path.split("/") if part]
    return "_".join([op.method.lower(), *words])


@functools.cache
def document() -> dict[str, Any]:
    """The whole description (built once per container)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = operation_object(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Every error answers {\"error\": {\"code\", \"message\", \"details\"?}}."},
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                               "description": "The access_token of POST /auth/login."}},
        },
    }
