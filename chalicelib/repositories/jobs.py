"""Fan-out checkpoints (``JobsTable``, ``job_id`` = ``fanout#{photo_id}``, TTL ``expires_at``)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from chalicelib import keys
from chalicelib.models import FanoutJobRecord, bound


@dataclass(frozen=True)
class FanoutJob:
    status: str
    position: dict | None


def load_fanout(photo_id: str) -> FanoutJob | None:
    """The photo's fan-out checkpoint (consistent read), or None before the first."""
    model = bound(FanoutJobRecord)
    try:
        record = model.get(keys.fanout_job_id(photo_id), consistent_read=True)
    except model.DoesNotExist:
        return None
    return FanoutJob(record.status, json.loads(record.position) if record.position else None)


def save_fanout(photo_id: str, status: str, position: dict, written: int, updated_at: str, expires_at: int) -> None:
    """Checkpoint: the position after the last page whose feeds were all written."""
    model = bound(FanoutJobRecord)
    model(keys.fanout_job_id(photo_id)).update(actions=[
        FanoutJobRecord.status.set(status),
        FanoutJobRecord.position.set(json.dumps(position, sort_keys=True)),
        FanoutJobRecord.written.add(written),
        FanoutJobRecord.updated_at.set(updated_at),
        FanoutJobRecord.expires_at.set(expires_at),
    ])
