"""Smoke test of the load scenario (bench/load.py): a few seconds, three members, its own stack.

It runs the benchmark exactly as ``make bench`` does, in a subprocess (locust patches the standard
library with gevent, which must never happen inside pytest), and reads its ``--json`` figures.
No timing is asserted: only that nothing failed and that every route of the mix was exercised.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadmix import READY, ROUTES, SIGN_UP

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_load_run_exercises_every_route_without_errors(tmp_path: Path):
    # GIVEN the benchmark with 3 members for a few seconds against a stack of its own
    out = tmp_path / "load.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--users", "3", "--seconds", "6", "--creators", "2",
         "--json", str(out), "--log-dir", str(tmp_path / "stack")],
        cwd=ROOT, capture_output=True, text=True, timeout=400, stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(out.read_text())

    # THEN nothing failed (429s included), every route ran, and uploads reached ready
    assert result["errors"] == 0, result["error_examples"]
    assert result["routes_missing"] == []
    assert set(ROUTES) <= set(result["routes"])
    assert result["routes"][READY]["requests"] >= 1
    # AND every route with AWS calls of its own was replayed directly (sign-up is never replayed)
    assert result["direct_dropped"] == {}
    for name, route in result["routes"].items():
        if route["aws_calls"]:
            assert route["direct_samples"] >= 1, name
    assert result["routes"][SIGN_UP]["aws_calls"] is None
    assert "throughput: " in completed.stdout and "errors: 0 (none)" in completed.stdout
