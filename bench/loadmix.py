"""The pure parts of the load scenario (``bench/load.py``): the mix, Zipf draws, percentiles,
error categories and how a recorded AWS call is replayed. No I/O, no locust (importing locust
patches the standard library with gevent; these are unit-tested in a normal process).
"""
from __future__ import annotations

import bisect
import copy
import random
import re
from urllib.parse import urlsplit

#: Realistic proportions of a photo-sharing session once signed in (weights, not percentages).
WEIGHTS: dict[str, int] = {
    "GET /feed": 25, "GET /photos/{id}": 20, "GET /users/{u}": 12, "GET /users/{u}/photos": 10,
    "PUT /photos/{id}/like": 10, "PUT /users/{u}/follow": 5, "GET /users/{u}/followers": 4,
    "GET /users/{u}/following": 3, "GET /me": 4, "PATCH /me": 2, "POST /photos": 3, "POST /auth/login": 2,
}
SIGN_UP = "POST /auth/signup"
UPLOAD_POST = "POST presigned upload (S3)"
POLL = "GET /photos/{id} (poll)"
READY = "upload -> ready"
#: Every route a run must exercise (the actions, sign-up and the upload's own steps).
ROUTES = (SIGN_UP, *WEIGHTS, UPLOAD_POST, POLL)
DIRECT = "direct "


# --- pure helpers ---------------------------------------------------------------------------------

class Zipf:
    """Draw ranks 0..n-1 with P(rank r) proportional to 1/(r+1)**s; n may grow between draws."""

    def __init__(self, s: float) -> None:
        self.s = s
        self._cumulative: list[float] = []

    def draw(self, rng: random.Random, n: int) -> int:
        while len(self._cumulative) < n:
            rank = len(self._cumulative) + 1
            self._cumulative.append((self._cumulative[-1] if self._cumulative else 0.0) + rank ** -self.s)
        return bisect.bisect_left(self._cumulative, rng.random() * self._cumulative[n - 1], 0, n - 1)


def percentile(samples: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``samples`` by linear interpolation; None if empty."""
    if not samples:
        return None
    ordered = sorted(samples)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def error_category(status: int | None, exception: BaseException | None) -> str | None:
    """None for a success; else ``429``, ``5xx``, ``4xx``, ``connection`` or ``other``."""
    if exception is None and status is not None and status < 400:
        return None
    if status == 429:
        return "429"
    if status and status >= 500:
        return "5xx"
    if status and status >= 400:
        return "4xx"
    if status == 0:
        return "connection"
    return "other"


_NAME = re.compile(r"#[A-Za-z0-9_]+")
_VALUE = re.compile(r":[A-Za-z0-9_]+")
_EXPRESSIONS = ("UpdateExpression", "KeyConditionExpression", "ProjectionExpression", "FilterExpression",
                "ConditionExpression")


def _without_condition(body: dict) -> None:
    for name in ("ConditionExpression", "Expected", "ConditionalOperator", "ReturnValuesOnConditionCheckFailure"):
        body.pop(name, None)
    text = " ".join(body.get(name, "") for name in _EXPRESSIONS)
    used_names, used_values = set(_NAME.findall(text)), set(_VALUE.findall(text))
    for key, used in (("ExpressionAttributeNames", used_names), ("ExpressionAttributeValues", used_values)):
        if key in body:
            body[key] = {k: v for k, v in body[key].items() if k in used}
            if not body[key]:
                del body[key]


def replayable(service: str, operation: str, params: dict) -> dict:
    """The parameters of a recorded call as the direct baseline replays it.

    A write's condition was settled by the app's own call (a second like of the same photo would be
    refused and cost a cancelled transaction instead of the work), so DynamoDB writes drop their
    conditions, with the expression names and values only the condition used; ``ConditionCheck``
    actions of a transaction stay (they are reads). An idempotency token would turn the replay into
    a no-op, so it goes too. Everything else is replayed as recorded.
    """
    params = copy.deepcopy(params)
    if service != "dynamodb":
        return params
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        _without_condition(params)
    elif operation == "TransactWriteItems":
        params.pop("ClientRequestToken", None)
        for action in params.get("TransactItems", []):
            for kind, body in action.items():
                if kind != "ConditionCheck":
                    _without_condition(body)
    return params


def loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


