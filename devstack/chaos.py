"""Chaos controls for the running local stack (``make run``).

    .venv/bin/python -m devstack.chaos cache-down   # the DAX stand-in goes away (and loses its cache)
    .venv/bin/python -m devstack.chaos cache-up     # it comes back, cold
    .venv/bin/python -m devstack.chaos cache-status

With the cache down the API keeps serving: its reads fall back to DynamoDB (the embedded AWS),
each fallback logged and counted as ``DaxFallbacks``; once the stand-in is back, the circuit breaker
lets a request try it again after ``DAX_RETRY_SECONDS`` and reads go through it again.
The stand-in's control URL is read from ``.devstack/dax.json`` (written by ``make run``) unless
``--control`` names it.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

CONTROL_FILE = Path(__file__).resolve().parent.parent / ".devstack" / "dax.json"
COMMANDS = {"cache-down": "/cache-down", "cache-up": "/cache-up", "cache-status": "/status"}


def control(url: str, command: str, timeout: float = 10.0) -> dict:
    """Send ``command`` (a key of :data:`COMMANDS`) to the stand-in's control URL; returns its status."""
    request = urllib.request.Request(url.rstrip("/") + COMMANDS[command], data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--control", help="the DAX stand-in's control URL (default: from .devstack/dax.json)")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())
