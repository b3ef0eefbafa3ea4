"""Photoscale API and workers: the table of contents.

Each handler parses its input, calls one function in ``chalicelib`` and shapes the response.
Errors are mapped to HTTP in one place (``chalicelib.http.error_middleware``). Routes are served
under the API Gateway stage ``api``, so CloudFront's ``/api/*`` behaviour reaches them unchanged.
"""
from __future__ import annotations

from aws_lambda_powertools.logging import correlation_paths
from chalice import Chalice, ConvertToMiddleware
from chalice.app import AuthResponse

from chalicelib import auth, health, http, users
from chalicelib.errors import Unauthorized
from chalicelib.observability import logger, metrics
from chalicelib.schemas import Confirm, LogIn, ProfileUpdate, Refresh, SignUp

app = Chalice(app_name="photoscale")
app.register_middleware(
    ConvertToMiddleware(logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)),
    "http",
)
app.register_middleware(ConvertToMiddleware(metrics.log_metrics), "all")
app.register_middleware(http.error_middleware, "http")


# ----- Start of event handlers ------------------------------------------------------------

@app.authorizer(ttl_seconds=0)
def bearer_auth(auth_request):
    """Verify the access token on every protected request (no caching: sign-out is immediate).

    Raising ``Exception("Unauthorized")`` is API Gateway's contract for a 401.
    """
    try:
        claims = auth.authorize(auth_request.token)
    except Unauthorized as exc:
        logger.info("token refused", extra={"reason": exc.message})
        raise Exception("Unauthorized") from None
    return AuthResponse(
        routes=["*"],
        principal_id=claims.username,
        context={"username": claims.username, "token_id": claims.token_id, "expires_at": str(claims.expires_at)},
    )


@app.route("/health", methods=["GET"])
def get_health():
    healthy, report = health.check()
    return http.json_response(report, status=200 if healthy else 503)


@app.route("/auth/signup", methods=["POST"])
def sign_up():
    body = http.parse_body(SignUp, app.current_request.raw_body)
    return http.json_response(users.sign_up(body.username, body.email, body.password), status=201)


@app.route("/auth/confirm", methods=["POST"])
def confirm_sign_up():
    body = http.parse_body(Confirm, app.current_request.raw_body)
    auth.confirm(body.username, body.code)
    return http.no_content()


@app.route("/auth/login", methods=["POST"])
def log_in():
    body = http.parse_body(LogIn, app.current_request.raw_body)
    return http.json_response(auth.log_in(body.username, body.password))


@app.route("/auth/refresh", methods=["POST"])
def refresh_session():
    body = http.parse_body(Refresh, app.current_request.raw_body)
    return http.json_response(auth.refresh(body.refresh_token))


@app.route("/auth/logout", methods=["POST"], authorizer=bearer_auth)
def log_out():
    caller = _caller()
    auth.log_out(
        caller["username"],
        caller["token_id"],
        int(caller["expires_at"]),
        app.current_request.headers.get("authorization"),
    )
    return http.no_content()


@app.route("/me", methods=["GET"], authorizer=bearer_auth)
def get_me():
    return http.json_response(users.profile(_caller()["username"]))


@app.route("/me", methods=["PATCH"], authorizer=bearer_auth)
def update_me():
    body = http.parse_body(ProfileUpdate, app.current_request.raw_body)
    return http.json_response(users.update_profile(_caller()["username"], body.display_name, body.bio))


@app.route("/users/{username}", methods=["GET"])
def get_user(username):
    return http.json_response(users.profile(username))


# ----- End of event handlers --------------------------------------------------------------

def _caller() -> dict:
    """The authorizer's context for this request: username, token id and expiry."""
    return app.current_request.context["authorizer"]
