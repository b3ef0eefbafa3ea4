"""The pure quota rules: limits table, fixed windows, Retry-After, keys and the client IP."""
from __future__ import annotations

import pytest

from chalicelib import quotas
from chalicelib.quotas import DEFAULT_LIMITS, Limit, client_ip, limits_from, parse_limit, quota_key, retry_after, window_start
from chalicelib.settings import SettingsError, _REQUIRED, load_settings


def test_the_default_limits_are_the_documented_ones():
    # Given the defaults of every stage / Then they are the limits
    assert DEFAULT_LIMITS[quotas.UPLOAD_GRANTS] == Limit(60, 3600)
    assert DEFAULT_LIMITS[quotas.PENDING_UPLOADS] == Limit(10, 0)
    assert DEFAULT_LIMITS[quotas.FOLLOWS].window == DEFAULT_LIMITS[quotas.LIKES].window == 60
    assert DEFAULT_LIMITS[quotas.SIGNUPS].window == 3600
    assert set(quotas.MESSAGES) == set(DEFAULT_LIMITS)


@pytest.mark.parametrize(("text", "limit"), [("60/3600", Limit(60, 3600)), ("10", Limit(10, 0)), (" 5/60 ", Limit(5, 60))])
def test_a_quota_setting_reads_as_limit_per_window_seconds(text, limit):
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["0/60", "-1/60", "five/60", "5/minute", "5/-60", ""])
def test_a_malformed_quota_setting_is_refused(text):
    with pytest.raises(ValueError):
        parse_limit(text)


def test_environment_overrides_one_quota_and_keeps_the_others():
    # Given QUOTA_FOLLOWS / When the limits are read / Then only follows change
    limits = limits_from({"QUOTA_FOLLOWS": "100/60"})
    assert limits[quotas.FOLLOWS] == Limit(100, 60)
    assert limits[quotas.LIKES] == DEFAULT_LIMITS[quotas.LIKES]


def test_settings_name_a_bad_quota_variable():
    # Given a complete environment with a malformed quota
    env = {name: "x" for name in _REQUIRED.values()} | {"AWS_REGION": "eu-west-1", "QUOTA_LIKES": "lots"}
    # When loaded / Then the variable is named
    with pytest.raises(SettingsError, match="QUOTA_LIKES"):
        load_settings(env)


def test_settings_carry_the_limits_and_the_trusted_client_ip_header():
    env = {name: "x" for name in _REQUIRED.values()} | {
        "AWS_REGION": "eu-west-1", "QUOTA_SIGNUPS": "3/60", "CLIENT_IP_HEADER": "CloudFront-Viewer-Address"}
    loaded = load_settings(env)
    assert loaded.quota_limits[quotas.SIGNUPS] == Limit(3, 60)
    assert loaded.client_ip_header == "CloudFront-Viewer-Address"
    assert load_settings({**env, "CLIENT_IP_HEADER": ""}).client_ip_header is None


@pytest.mark.parametrize(("now", "window", "start", "wait"), [
    (3600.0, 3600, 3600, 3600),       # first instant of a window: the whole window to wait
    (3600.5, 3600, 3600, 3600),       # rounded up to whole seconds
    (7199.2, 3600, 3600, 1),          # last fraction of a second: at least 1
    (125.0, 60, 120, 55),
])
def test_fixed_windows_align_to_their_length_and_retry_after_is_the_rest_of_the_window(now, window, start, wait):
    assert window_start(now, window) == start
    assert retry_after(now, window) == wait


def test_quota_keys_are_per_action_subject_and_window():
    # Given one subject's keys / Then each action, subject (case-folded) and window has its own item
    key = quota_key("follows", "Alice", 3600)
    assert key == "quota#follows#alice#3600"
    assert len({key, quota_key("likes", "alice", 3600), quota_key("follows", "bob", 3600),
                quota_key("follows", "alice", 7200)}) == 4


@pytest.mark.parametrize(("window", "text"), [(3600, "hour"), (60, "minute"), (900, "15 minutes"),
                                              (7200, "2 hours"), (86400, "day"), (45, "45 seconds")])
def test_windows_are_described_in_words(window, text):
    assert quotas.describe_window(window) == text


@pytest.mark.parametrize(("header", "ip"), [
    ("198.51.100.10:46532", "198.51.100.10"),
    ("2001:db8::7:46532", "2001:db8::7"),
    ("[2001:db8::7]:46532", "2001:db8::7"),
    ("198.51.100.10", "198.51.100.10"),
])
def test_the_client_ip_comes_from_the_trusted_cdn_header_without_its_port(header, ip):
    headers = {"cloudfront-viewer-address": header}
    assert client_ip("130.176.0.1", headers, "CloudFront-Viewer-Address") == ip


def test_the_client_ip_is_the_source_ip_without_a_trusted_header_or_when_it_is_missing():
    forged = {"CloudFront-Viewer-Address": "10.0.0.1:1", "X-Forwarded-For": "10.0.0.2"}
    assert client_ip("192.0.2.4", forged, None) == "192.0.2.4"
    assert client_ip("192.0.2.4", {}, "CloudFront-Viewer-Address") == "192.0.2.4"
    assert client_ip(None, None, None) == "unknown"
