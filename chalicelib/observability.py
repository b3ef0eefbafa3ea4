"""Logger, metrics and tracer, created once and shared by every function.

Powertools reads its service name, metrics namespace and log level from ``POWERTOOLS_*``
variables in the stage config. The X-Ray SDK costs ~0.3 s of import, so the tracer is built only
when a worker asks for it (:func:`get_tracer`); the API function relies on Lambda's active tracing.
"""
from __future__ import annotations

import functools

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()

CORRELATION_ATTRIBUTE = "correlation_id"


@functools.lru_cache(maxsize=1)
def get_tracer():
    """The Powertools tracer (imports the X-Ray SDK on first call)."""
    from aws_lambda_powertools import Tracer

    return Tracer()


def correlation_attributes() -> dict:
    """SQS message attributes carrying the current correlation id to downstream workers."""
    correlation_id = logger.get_correlation_id()
    if not correlation_id:
        return {}
    return {CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": correlation_id}}


def adopt_correlation_id(record: dict) -> None:
    """Continue the correlation id an SQS record carries (Lambda's record shape); a record without
    one clears the previous record's."""
    attribute = (record.get("messageAttributes") or {}).get(CORRELATION_ATTRIBUTE) or {}
    logger.set_correlation_id(attribute.get("stringValue") or None)
