"""The web client's error mapping (edge/src/js/api.js), run by node on sample responses."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

API_JS = Path(__file__).resolve().parents[2] / "edge" / "src" / "js" / "api.js"

SCRIPT = """
import { toError } from %s;
const cases = JSON.parse(process.argv[1]);
const out = [];
for (const c of cases) {
  const response = { status: c.status, headers: new Headers(c.headers), json: async () => c.body };
  const err = await toError(response);
  out.push({ message: err.message, code: err.code, retryAfter: err.retryAfter });
}
console.log(JSON.stringify(out));
"""


def errors_for(cases: list[dict]) -> list[dict]:
    script = SCRIPT % json.dumps(API_JS.as_uri())
    result = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(cases)],
                            capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_429_shows_the_servers_message_and_when_to_try_again():
    # Given an app quota 429, a WAF 429 (no Retry-After) and a 503 with Retry-After
    quota = {"status": 429, "headers": {"Retry-After": "3590"},
             "body": {"error": {"code": "too_many_requests", "message": "Too many uploads: at most 60 every hour."}}}
    waf = {"status": 429, "headers": {},
           "body": {"error": {"code": "too_many_requests", "message": "Too many requests from your network."}}}
    short = {"status": 429, "headers": {"Retry-After": "1"}, "body": None}
    busy = {"status": 503, "headers": {"Retry-After": "1"},
            "body": {"error": {"code": "service_unavailable", "message": "The service is busy; try again shortly."}}}
    # When the client turns them into errors
    got = errors_for([quota, waf, short, busy])
    # Then a 429 says what the limit is and when to try again, in words
    assert got[0] == {"message": "Too many uploads: at most 60 every hour. Try again in 60 minutes.",
                      "code": "too_many_requests", "retryAfter": 3590}
    assert got[1]["message"] == "Too many requests from your network."
    assert got[1]["retryAfter"] is None
    assert got[2]["message"] == "Too many requests. Try again in 1 second."
    # And other statuses keep their message, carrying Retry-After for callers
    assert got[3] == {"message": "The service is busy; try again shortly.", "code": "service_unavailable",
                      "retryAfter": 1}
