"""Logs carry no secrets: passwords, tokens, signatures of presigned URLs and email addresses never
appear in what the functions log (Powertools writes JSON lines to stdout; Python logging is captured too)."""
from __future__ import annotations

import io
import logging
import re

import pytest

from api_helpers import PASSWORD, body_of, call, new_username
from chalicelib import celebrities
from chalicelib.observability import logger
from test_feed import run_worker, take_fanout_messages

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SIGNATURE_MARKERS = re.compile(r"X-Amz-Signature|Signature=|X-Amz-Credential|x-amz-signature|\"policy\"", re.I)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@pytest.fixture
def app_log(caplog):
    """What the functions log: the app's Powertools logger at DEBUG (the dev stage's level), as the JSON
    lines its own formatter writes, plus every other logger at Lambda's default level (WARNING)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    previous = logger.log_level
    logger.addHandler(handler)
    logger.setLevel("DEBUG")
    caplog.set_level(logging.WARNING)
    yield lambda: stream.getvalue() + "\n" + caplog.text
    logger.setLevel(previous)
    logger.removeHandler(handler)


def test_sign_up_log_in_refresh_upload_and_export_log_no_secrets(client, deployed, app_log):
    celebrities.reset_cache()
    username = new_username()
    email = f"{username}@example.com"
    secrets: list[str] = [PASSWORD, email, "Wr0ngPassword"]

    # sign-up (and a taken name), log-in (and a wrong password), refresh
    assert call(client, "POST", "/auth/signup", {"username": username, "email": email, "password": PASSWORD}).status_code == 201
    assert call(client, "POST", "/auth/signup", {"username": username, "email": email, "password": PASSWORD}).status_code == 409
    assert call(client, "POST", "/auth/login", {"username": username, "password": "Wr0ngPassword"}).status_code == 401
    tokens = body_of(call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD}))
    secrets += [tokens["access_token"], tokens["refresh_token"]]
    refreshed = body_of(call(client, "POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]}))
    secrets.append(refreshed["access_token"])
    assert call(client, "POST", "/auth/refresh", {"refresh_token": "not-a-refresh-token"}).status_code == 401
    token = refreshed["access_token"]
    assert call(client, "GET", "/me", token="forged." + token[7:]).status_code == 401

    # upload: the presigned POST's policy and signature
    upload = body_of(call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 100}, token=token))["upload"]
    secrets += [value for name, value in upload["fields"].items() if name.lower() in ("policy", "x-amz-signature")]

    # export: the presigned GET's signature
    job = body_of(call(client, "POST", "/me/export", token=token))["job"]
    run_worker(client, *take_fanout_messages(deployed, "export_account"))
    url = body_of(call(client, "GET", f"/me/export/{job}", token=token))["download_url"]
    secrets.append(re.search(r"X-Amz-Signature=([0-9a-f]+)", url).group(1))

    # account deletion re-confirms the password
    assert call(client, "DELETE", "/me", {"password": "Wr0ngPassword"}, token=token).status_code == 401
    assert call(client, "DELETE", "/me", {"password": PASSWORD}, token=token).status_code == 202
    run_worker(client, *take_fanout_messages(deployed, "erase_account"))

    logged = app_log()
    assert logged.strip(), "nothing was captured: the test would prove nothing"
    assert [s[:12] for s in secrets if s and s in logged] == []
    assert SIGNATURE_MARKERS.findall(logged) == []
    assert EMAIL.findall(logged) == []
