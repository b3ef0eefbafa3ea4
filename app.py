"""Photoscale API and workers: the table of contents.

Each handler parses its input, calls one function in ``chalicelib`` and shapes the response.
Errors are mapped to HTTP in one place (``chalicelib.http.error_middleware``). Routes are served
under the API Gateway stage ``api``, so CloudFront's ``/api/*`` behaviour reaches them unchanged.
"""
from __future__ import annotations

from aws_lambda_powertools.logging import correlation_paths
from chalice import Chalice, ConvertToMiddleware, Rate
from chalice.app import AuthResponse

from chalicelib import auth, erasure, export, feed, follows, health, http, likes, photos, quotas, regions, users
from chalicelib.errors import Unauthorized
from chalicelib.observability import logger, metrics
from chalicelib.schemas import CaptionUpdate, Confirm, DeleteAccount, LogIn, LogOut, NewPhoto, ProfileUpdate, Refresh, SignUp
from chalicelib.settings import event_source_queue, event_source_stream, get_settings

app = Chalice(app_name="photoscale")
app.register_middleware(
    ConvertToMiddleware(logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)),
    "http",
)
app.register_middleware(ConvertToMiddleware(metrics.log_metrics), "all")
app.register_middleware(http.error_middleware, "http")
app.register_middleware(http.path_parameter_middleware, "http")
app.register_middleware(regions.middleware, "http")  # a write away from the caller's home region is forwarded


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
    return AuthResponse(routes=["*"], principal_id=claims.username, context=auth.authorizer_context(claims))


@app.route("/health", methods=["GET"])
def get_health():
    healthy, report = health.check()
    return http.json_response(report, status=200 if healthy else 503)


@app.route("/openapi.json", methods=["GET"])
def get_openapi():
    from chalicelib import openapi  # the description is built on the first request, not at cold start

    return http.json_response(openapi.document())


@app.route("/auth/signup", methods=["POST"])
def sign_up():
    body = http.parse_body(SignUp, app.current_request.raw_body)
    return http.json_response(users.sign_up(body.username, body.email, body.password, _client_ip()), status=201)


@app.route("/auth/confirm", methods=["POST"])
def confirm_sign_up():
    body = http.parse_body(Confirm, app.current_request.raw_body)
    auth.confirm(body.username, body.code)
    return http.no_content()


@app.route("/auth/login", methods=["POST"])
def log_in():
    body = http.parse_body(LogIn, app.current_request.raw_body)
    return http.json_response(auth.log_in(body.username, body.password, _client_ip()))


@app.route("/auth/refresh", methods=["POST"])
def refresh_session():
    body = http.parse_body(Refresh, app.current_request.raw_body)
    return http.json_response(auth.refresh(body.refresh_token))


@app.route("/auth/logout", methods=["POST"], authorizer=bearer_auth)
def log_out():
    body = http.parse_body(LogOut, app.current_request.raw_body, optional=True)
    auth.log_out(auth.caller_claims(_caller()), body.refresh_token)
    return http.no_content()


@app.route("/auth/logout-all", methods=["POST"], authorizer=bearer_auth)
def log_out_everywhere():
    auth.log_out_everywhere(auth.caller_claims(_caller()), app.current_request.headers.get("authorization"))
    return http.no_content()


@app.route("/me", methods=["GET"], authorizer=bearer_auth)
def get_me():
    caller = _caller()["username"]
    return http.json_response(users.profile(caller, viewer=caller))


@app.route("/me", methods=["PATCH"], authorizer=bearer_auth)
def update_me():
    body = http.parse_body(ProfileUpdate, app.current_request.raw_body)
    return http.json_response(users.update_profile(_caller()["username"], body.display_name, body.bio))


@app.route("/me", methods=["DELETE"], authorizer=bearer_auth)
def delete_me():
    body = http.parse_body(DeleteAccount, app.current_request.raw_body)
    return http.json_response(erasure.request_deletion(_caller()["username"], body.password, _client_ip()), status=202)


@app.route("/me/deletion", methods=["GET"])
def get_deletion():
    """Public: the job id (unguessable, from the 202) is the capability; the user's sessions are over."""
    return http.json_response(erasure.deletion_status((app.current_request.query_params or {}).get("job") or ""))


@app.route("/me/export", methods=["POST"], authorizer=bearer_auth)
def export_me():
    return http.json_response(export.request_export(_caller()["username"]), status=202)


@app.route("/me/export/{job}", methods=["GET"], authorizer=bearer_auth)
def get_export(job):
    return http.json_response(export.export_status(_caller()["username"], job))


@app.route("/users/{username}", methods=["GET"])
def get_user(username):
    return http.json_response(users.profile(username, viewer=_reader()))


@app.route("/photos", methods=["POST"], authorizer=bearer_auth)
def create_photo():
    body = http.parse_body(NewPhoto, app.current_request.raw_body)
    created = photos.create_photo(_caller()["username"], body.content_type, body.size, body.caption)
    return http.json_response(created, status=201)


@app.route("/photos/{photo_id}", methods=["GET"])
def get_photo(photo_id):
    return http.json_response(likes.photo_for_viewer(photo_id, _optional_caller()))


@app.route("/photos/{photo_id}", methods=["PATCH"], authorizer=bearer_auth)
def update_photo(photo_id):
    body = http.parse_body(CaptionUpdate, app.current_request.raw_body)
    caller = _caller()["username"]
    photos.update_caption(photo_id, caller, body.caption)
    return http.json_response(photos.get_photo(photo_id, viewer=caller))


@app.route("/photos/{photo_id}", methods=["DELETE"], authorizer=bearer_auth)
def delete_photo(photo_id):
    photos.delete_photo(photo_id, _caller()["username"])
    return http.no_content()


@app.route("/photos/{photo_id}/edits", methods=["POST"], authorizer=bearer_auth)
def edit_photo(photo_id):
    edits = http.parse_json(app.current_request.raw_body)
    return http.json_response(photos.request_edit(photo_id, _caller()["username"], edits), status=202)


@app.route("/users/{username}/photos", methods=["GET"])
def list_user_photos(username):
    params = app.current_request.query_params
    limit = http.query_int(params, "limit", default=20, low=1, high=100)
    return http.json_response(photos.list_user_photos(username, limit, (params or {}).get("cursor"), viewer=_reader()))


@app.route("/users/{username}/follow", methods=["PUT"], authorizer=bearer_auth)
def follow_user(username):
    feed.follow(_caller()["username"], username)
    return http.no_content()


@app.route("/users/{username}/follow", methods=["DELETE"], authorizer=bearer_auth)
def unfollow_user(username):
    feed.unfollow(_caller()["username"], username)
    return http.no_content()


@app.route("/users/{username}/followers", methods=["GET"])
def list_followers(username):
    params = app.current_request.query_params
    limit = http.query_int(params, "limit", default=20, low=1, high=100)
    return http.json_response(follows.list_followers(username, limit, (params or {}).get("cursor")))


@app.route("/users/{username}/following", methods=["GET"])
def list_following(username):
    params = app.current_request.query_params
    limit = http.query_int(params, "limit", default=20, low=1, high=100)
    return http.json_response(follows.list_following(username, limit, (params or {}).get("cursor")))


@app.route("/photos/{photo_id}/like", methods=["PUT"], authorizer=bearer_auth)
def like_photo(photo_id):
    return http.json_response(likes.like(_caller()["username"], photo_id))


@app.route("/photos/{photo_id}/like", methods=["DELETE"], authorizer=bearer_auth)
def unlike_photo(photo_id):
    return http.json_response(likes.unlike(_caller()["username"], photo_id))


@app.route("/feed", methods=["GET"], authorizer=bearer_auth)
def get_feed():
    params = app.current_request.query_params
    limit = http.query_int(params, "limit", default=20, low=1, high=100)
    return http.json_response(feed.read_feed(_caller()["username"], limit, (params or {}).get("cursor")))


@app.on_sqs_message(queue=event_source_queue("UPLOADS_QUEUE_NAME"), batch_size=10)
def process_uploads(event):
    from chalicelib import pipeline  # imaging code loads only in the worker function

    return pipeline.handle_uploads(event.to_dict(), event.context)


@app.on_sqs_message(queue=event_source_queue("EDITS_QUEUE_NAME"), batch_size=5)
def process_edits(event):
    from chalicelib import pipeline

    return pipeline.handle_edits(event.to_dict(), event.context)


@app.on_sqs_message(queue=event_source_queue("FANOUT_QUEUE_NAME"), batch_size=10)
def fan_out_feed(event):
    from chalicelib import feed as feeds  # Powertools' batch utilities load only in this worker (see handle_fanout)

    return feeds.handle_fanout(event.to_dict(), event.context)


@app.on_dynamodb_record(stream_arn=event_source_stream("COUNTERS_STREAM_ARN"), batch_size=1000,
                        starting_position="TRIM_HORIZON", maximum_batching_window_in_seconds=1)
def aggregate_counters(event):
    from chalicelib import aggregator  # this region's counter totals from the shards' changes

    return aggregator.handle_stream(event.to_dict(), event.context)
@app.schedule(Rate(15, unit=Rate.MINUTES))
def reconcile_counters(event):
    """Recount suspect counters, then a page of all counters, from their edges (primary region only)."""
    from chalicelib import reconcile

    return reconcile.run()


# ----- End of event handlers --------------------------------------------------------------

http.translate_transient_errors(app)  # after every route: DynamoDB throttling anywhere -> 503

def _caller() -> dict:
    """The authorizer's context for this request: username, token id and expiry."""
    return app.current_request.context["authorizer"]


def _client_ip() -> str:
    """The client IP per-IP quotas count against (see ``chalicelib.quotas.client_ip``)."""
    request = app.current_request
    return quotas.client_ip(request.context.get("identity", {}).get("sourceIp"), request.headers,
                            get_settings().client_ip_header)


def _reader() -> str | None:
    """Who reads a public route, for freshness only (a valid token's user; the session is not checked)."""
    return auth.reader(app.current_request.headers.get("authorization"))


def _optional_caller() -> str | None:
    """The caller on a public route: the username of a valid bearer token, else None (anonymous)."""
    return auth.optional_caller(app.current_request.headers.get("authorization"))
