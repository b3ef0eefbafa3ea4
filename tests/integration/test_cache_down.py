"""The site through the local DAX stand-in, and through `python -m devstack.chaos cache-down` / `cache-up`.

``make run`` (and the ``local_stack`` fixture) starts the API with the stand-in as its ``DAX_ENDPOINT``.
With the cache tier taken away, every request still succeeds (reads and profile writes fall back to
DynamoDB, logged); once it is back, reads go through it again.
"""
from __future__ import annotations

import time

from devstack import chaos


def status(local_stack) -> dict:
    return chaos.control(local_stack.dax_control_url, "cache-status")


def profile(api, username: str) -> dict:
    response = api.get(f"/users/{username}")
    assert response.status_code == 200, response.text
    return response.json()


def test_profiles_are_read_through_the_dax_stand_in(api, local_stack):
    username, tokens = api.new_user()
    assert api.patch("/me", token=tokens["access_token"], json={"bio": "first"}).status_code == 200
    before = status(local_stack)["upstream_reads"]
    assert profile(api, username)["bio"] == "first"  # written through DAX: the item cache has it
    assert profile(api, username)["bio"] == "first"
    after = status(local_stack)
    assert after["up"] and after["items"] > 0
    assert after["upstream_reads"] - before <= 1  # the second read was served from the item cache


def test_the_site_keeps_serving_with_the_cache_down_and_recovers(api, local_stack):
    username, tokens = api.new_user()
    assert profile(api, username)["username"] == username
    try:
        assert chaos.control(local_stack.dax_control_url, "cache-down")["up"] is False
        for _ in range(3):
            assert profile(api, username)["username"] == username
        patched = api.patch("/me", token=tokens["access_token"], json={"bio": "while down"})
        assert patched.status_code == 200, patched.text
        assert profile(api, username)["bio"] == "while down"
        assert api.get("/me", token=tokens["access_token"]).status_code == 200
    finally:
        chaos.control(local_stack.dax_control_url, "cache-up")
    log = (local_stack.config.log_dir / "api.log").read_text()
    assert "DAX unavailable, reading from DynamoDB" in log

    # Then: after DAX_RETRY_SECONDS one request tries the stand-in again, and reads go through it
    # (her own profile: read past the in-process cache every time, so each read reaches the cache tier)
    deadline = time.monotonic() + 60
    while status(local_stack)["items"] == 0:
        assert time.monotonic() < deadline, "reads never went back to the DAX stand-in"
        mine = api.get("/me", token=tokens["access_token"])
        assert mine.status_code == 200 and mine.json()["bio"] == "while down", mine.text
        time.sleep(0.5)


def test_chaos_cli_reports_a_missing_stack(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(chaos, "CONTROL_FILE", tmp_path / "dax.json")
    assert chaos.main(["cache-down"]) == 2
    assert "make run" in capsys.readouterr().err
