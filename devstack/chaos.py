"""Chaos controls for the running local stack (``make run``).

    .venv/bin/python -m devstack.chaos cache-down            # the DAX stand-in goes away (and loses its cache)
    .venv/bin/python -m devstack.chaos cache-up              # it comes back, cold
    .venv/bin/python -m devstack.chaos cache-status
    .venv/bin/python -m devstack.chaos region-down us-east-1 # that region's API, workers and AWS stop answering
    .venv/bin/python -m devstack.chaos region-up us-east-1   # ... and come back (its data stayed)
    .venv/bin/python -m devstack.chaos replication-pause     # the replicators stop applying (changes queue up)
    .venv/bin/python -m devstack.chaos replication-resume    # ... and catch up, nothing lost
    .venv/bin/python -m devstack.chaos status                # regions, replication lag p50/p99, backlog

With the cache down the API keeps serving: its reads fall back to DynamoDB (the embedded AWS),
each fallback logged and counted as ``DaxFallbacks``; once the stand-in is back, the circuit breaker
lets a request try it again after ``DAX_RETRY_SECONDS`` and reads go through it again.

Region and replication chaos are flag files in the stack's chaos directory (``.devstack/chaos`` for
``make run``, named by ``PHOTOSCALE_CHAOS_DIR`` in every process of the stack): each stand-in looks
at them on every request or poll, so a command takes effect at once and survives nothing but the
stack. While ``region-down.<region>`` exists, that region's ``chalice local`` answers 503 on
``/health`` and drops every other request unanswered, its event pump stops polling, and the embedded
AWS answers 503 ``ServiceUnavailable`` to every request signed for that region (SigV4 credential
scope), so the other region's calls into it fail as they would in AWS. The region's data stays.
The stand-ins' control URLs are read from ``.devstack/dax.json`` and ``.devstack/regions.json``
(written by ``make run``) unless ``--control`` / ``--chaos-dir`` name them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path

STATE_DIR = Path(__file__).resolve().parent.parent / ".devstack"
CONTROL_FILE = STATE_DIR / "dax.json"
REGIONS_FILE = STATE_DIR / "regions.json"
DEFAULT_CHAOS_DIR = STATE_DIR / "chaos"
CHAOS_DIR_ENV = "PHOTOSCALE_CHAOS_DIR"
COMMANDS = {"cache-down": "/cache-down", "cache-up": "/cache-up", "cache-status": "/status"}
REGION_COMMANDS = ("region-down", "region-up")
REPLICATION_COMMANDS = ("replication-pause", "replication-resume")

_REGION_PREFIX = "region-down."
_PAUSED = "replication-paused"


class ChaosFlags:
    """The stack's chaos state: flag files in one directory, read by every stand-in process."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_env(cls, environ=os.environ) -> ChaosFlags | None:
        value = environ.get(CHAOS_DIR_ENV)
        return cls(value) if value else None

    def down_regions(self) -> frozenset[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return frozenset()
        return frozenset(n[len(_REGION_PREFIX):] for n in names if n.startswith(_REGION_PREFIX))

    def region_down(self, region: str) -> bool:
        return (self.directory / f"{_REGION_PREFIX}{region}").exists()

    def set_region_down(self, region: str, down: bool) -> None:
        self._set(f"{_REGION_PREFIX}{region}", down)

    def replication_paused(self) -> bool:
        return (self.directory / _PAUSED).exists()

    def set_replication_paused(self, paused: bool) -> None:
        self._set(_PAUSED, paused)

    def clear(self) -> None:
        for name in list(os.listdir(self.directory)) if self.directory.exists() else []:
            if name.startswith(_REGION_PREFIX) or name == _PAUSED:
                (self.directory / name).unlink(missing_ok=True)

    def _set(self, name: str, on: bool) -> None:
        path = self.directory / name
        if on:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            path.unlink(missing_ok=True)


def control(url: str, command: str, timeout: float = 10.0) -> dict:
    """Send ``command`` (a key of :data:`COMMANDS`) to the stand-in's control URL; returns its status."""
    request = urllib.request.Request(url.rstrip("/") + COMMANDS[command], data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def replication_status(url: str, timeout: float = 5.0) -> dict:
    """The replicator's status (``GET {url}/status``): lag percentiles, backlog, paused."""
    with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=timeout) as response:
        return json.loads(response.read())


def _cache(args) -> int:
    url = args.control
    if url is None:
        if not CONTROL_FILE.exists():
            print(f"no running stack found ({CONTROL_FILE} is missing): start it with `make run`", file=sys.stderr)
            return 2
        url = json.loads(CONTROL_FILE.read_text())["control"]
    try:
        status = control(url, args.command)
    except OSError as exc:
        print(f"cannot reach the DAX stand-in's control at {url}: {exc}", file=sys.stderr)
        return 1
    state = "up" if status["up"] else "DOWN"
    print(f"DAX stand-in {state} at {status['endpoint']}: {status['items']} items, {status['queries']} queries cached, "
          f"{status['upstream_reads']} reads sent to DynamoDB")
    return 0


def _regions_state(args) -> dict | None:
    if args.chaos_dir:
        return {"chaos_dir": args.chaos_dir, "regions": [], "replicator": None}
    if not REGIONS_FILE.exists():
        print(f"no running stack found ({REGIONS_FILE} is missing): start it with `make run`", file=sys.stderr)
        return None
    return json.loads(REGIONS_FILE.read_text())


def _regions(args) -> int:
    state = _regions_state(args)
    if state is None:
        return 2
    flags = ChaosFlags(state["chaos_dir"])
    if args.command in REGION_COMMANDS:
        if not args.region:
            print(f"{args.command} needs a REGION", file=sys.stderr)
            return 2
        if state["regions"] and args.region not in state["regions"]:
            print(f"{args.region} is not one of the stack's regions {state['regions']}", file=sys.stderr)
            return 2
        flags.set_region_down(args.region, args.command == "region-down")
    elif args.command in REPLICATION_COMMANDS:
        flags.set_replication_paused(args.command == "replication-pause")
    down = sorted(flags.down_regions())
    regions = state["regions"] or down
    print("regions: " + ", ".join(f"{r} {'DOWN' if r in down else 'up'}" for r in regions))
    print(f"replication: {'PAUSED' if flags.replication_paused() else 'running'}")
    if state.get("replicator"):
        try:
            status = replication_status(state["replicator"])
        except OSError as exc:
            print(f"cannot reach the replicator at {state['replicator']}: {exc}", file=sys.stderr)
            return 1
        lag = status["lag_ms"]
        print(f"replication lag p50 {lag['p50']} ms, p99 {lag['p99']} ms over {lag['count']} changes; "
              f"backlog {status['backlog']} (items {status['backlog_items']}, objects {status['backlog_objects']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=sorted([*COMMANDS, *REGION_COMMANDS, *REPLICATION_COMMANDS, "status"]))
    parser.add_argument("region", nargs="?", help="the region (region-down / region-up)")
    parser.add_argument("--control", help="the DAX stand-in's control URL (default: from .devstack/dax.json)")
    parser.add_argument("--chaos-dir", help="the stack's chaos directory (default: from .devstack/regions.json)")
    args = parser.parse_args(argv)
    if args.command in COMMANDS:
        return _cache(args)
    return _regions(args)


if __name__ == "__main__":
    raise SystemExit(main())
