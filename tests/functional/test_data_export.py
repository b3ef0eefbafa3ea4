"""POST /me/export: a zip of exactly the caller's data, a 24 h link, one export in flight per user."""
from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import parse_qs, urlparse

import pytest

from api_helpers import body_of, call, member
from chalicelib import celebrities, settings
from test_account_erasure import put_media
from test_feed import post_ready_photo, run_worker, take_fanout_messages

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def export_client(client):
    celebrities.reset_cache()
    yield client
    celebrities.reset_cache()


def download(deployed, url: str) -> zipfile.ZipFile:
    """Fetch the presigned object (through boto3 inside the mock; the URL's path ends in the key)."""
    bucket = deployed["outputs"]["MediaBucket"]
    key = urlparse(url).path.split(bucket, 1)[-1].lstrip("/") if bucket in url else urlparse(url).path.lstrip("/")
    body = deployed["clients"]("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body))


def presigned_until(url: str) -> int:
    """When an S3 presigned URL stops working: its signing time plus its ``X-Amz-Expires``."""
    from datetime import datetime, timezone

    query = parse_qs(urlparse(url).query)
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return int(signed.timestamp()) + int(query["X-Amz-Expires"][0])


def test_an_export_contains_exactly_the_users_data_and_nobody_elses(export_client, deployed):
    # Given a user with a photo, a follower who likes it, and someone they follow with a photo they like
    me, my_token = member(export_client)
    fan, fan_token = member(export_client)
    idol, idol_token = member(export_client)
    mine = post_ready_photo(export_client, my_token, caption="my caption")
    theirs = post_ready_photo(export_client, idol_token, caption="not mine")
    put_media(deployed, mine)
    put_media(deployed, theirs)
    assert call(export_client, "PUT", f"/users/{me}/follow", token=fan_token).status_code == 204
    assert call(export_client, "PUT", f"/users/{idol}/follow", token=my_token).status_code == 204
    assert call(export_client, "PUT", f"/photos/{mine.photo_id}/like", token=fan_token).status_code == 200
    assert call(export_client, "PUT", f"/photos/{theirs.photo_id}/like", token=my_token).status_code == 200

    # When the user asks for an export and the worker builds it
    response = call(export_client, "POST", "/me/export", token=my_token)
    assert response.status_code == 202, response.body
    job = body_of(response)
    assert body_of(call(export_client, "GET", f"/me/export/{job['job']}", token=my_token))["status"] == "running"
    run_worker(export_client, *take_fanout_messages(deployed, "export_account"))

    # Then a 24 h link to a zip with the user's data and nothing of anyone else's
    ready = body_of(call(export_client, "GET", f"/me/export/{job['job']}", token=my_token))
    assert ready["status"] == "ready"
    assert presigned_until(ready["download_url"]) in (ready["expires_at"] - 1, ready["expires_at"])
    archive = download(deployed, ready["download_url"])
    assert sorted(archive.namelist()) == sorted(["profile.json", "photos.json", f"photos/{mine.photo_id}.jpg",
                                                 "following.json", "followers.json", "liked.json"])
    profile = json.loads(archive.read("profile.json"))
    assert profile["username"] == me and profile["email"] == f"{me}@example.com" and profile["followers"] == 1
    photos = json.loads(archive.read("photos.json"))
    assert [(p["id"], p["caption"], p["likes"]) for p in photos] == [(mine.photo_id, "my caption", 1)]
    assert archive.read(f"photos/{mine.photo_id}.jpg") == b"original"
    assert json.loads(archive.read("following.json")) == [idol]
    assert json.loads(archive.read("followers.json")) == [fan]
    assert json.loads(archive.read("liked.json")) == [theirs.photo_id]
    everything = b"".join(archive.read(name) for name in archive.namelist()).decode(errors="replace")
    assert "not mine" not in everything and f"{fan}@example.com" not in everything

    # And nobody else can read the job
    assert call(export_client, "GET", f"/me/export/{job['job']}", token=fan_token).status_code == 404


def test_one_export_at_a_time_and_the_export_quota_applies(export_client, deployed, monkeypatch):
    monkeypatch.setenv("QUOTA_EXPORTS", "2/86400")
    settings.reset_settings()
    _, token = member(export_client)
    assert call(export_client, "POST", "/me/export", token=token).status_code == 202
    busy = call(export_client, "POST", "/me/export", token=token)
    assert busy.status_code == 409 and body_of(busy)["error"]["code"] == "conflict"
    run_worker(export_client, *take_fanout_messages(deployed, "export_account"))
    assert call(export_client, "POST", "/me/export", token=token).status_code == 202
    run_worker(export_client, *take_fanout_messages(deployed, "export_account"))
    assert call(export_client, "POST", "/me/export", token=token).status_code == 429
    settings.reset_settings()


def test_a_redelivered_export_message_is_harmless(export_client, deployed):
    _, token = member(export_client)
    job = body_of(call(export_client, "POST", "/me/export", token=token))["job"]
    messages = take_fanout_messages(deployed, "export_account")
    run_worker(export_client, *messages)
    first = body_of(call(export_client, "GET", f"/me/export/{job}", token=token))
    run_worker(export_client, *messages)
    again = body_of(call(export_client, "GET", f"/me/export/{job}", token=token))
    assert first["status"] == again["status"] == "ready" and first["expires_at"] == again["expires_at"]


def test_export_job_ids_are_checked(export_client):
    _, token = member(export_client)
    response = call(export_client, "GET", "/me/export/not-a-job", token=token)
    assert response.status_code == 400
    assert call(export_client, "GET", "/me/export/" + "a" * 32, token=token).status_code == 404


def test_in_aws_the_link_is_a_cloudfront_signed_url_good_for_24_hours_from_ready(export_client, deployed,
                                                                                  monkeypatch):
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from chalicelib.secrets import exports_signing_key

    # Given a stage with the exports key group (infra/edge.yaml) and its private key in Secrets Manager
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    deployed["clients"]("secretsmanager").create_secret(Name="photoscale/test/exports-signing-key", SecretString=pem)
    for name, value in (("EXPORTS_KEY_PAIR_ID", "K2JCJMDEHXQW5F"), ("EXPORTS_BASE_URL", "https://photos.example.com/"),
                        ("EXPORTS_SIGNING_SECRET", "photoscale/test/exports-signing-key")):
        monkeypatch.setenv(name, value)
    settings.reset_settings()  # the conftest resets settings and forgets the key again afterwards
    exports_signing_key().forget()
    me, token = member(export_client)
    job = body_of(call(export_client, "POST", "/me/export", token=token))["job"]
    run_worker(export_client, *take_fanout_messages(deployed, "export_account"))

    # When the status is read twice
    first, again = (body_of(call(export_client, "GET", f"/me/export/{job}", token=token)) for _ in range(2))

    # Then the link is the distribution's /exports/ path of the zip, ending 24 h after it was ready
    # on every read, signed with a canned policy the key group's public key verifies
    url = urlparse(first["download_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"https://photos.example.com/exports/{me}/{job}.zip"
    query = parse_qs(url.query)
    assert query["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]
    assert int(query["Expires"][0]) == first["expires_at"] == again["expires_at"]
    assert again["download_url"] == first["download_url"]
    policy = json.dumps({"Statement": [{"Resource": f"https://photos.example.com/exports/{me}/{job}.zip",
                                        "Condition": {"DateLessThan": {"AWS:EpochTime": first["expires_at"]}}}]},
                        separators=(",", ":")).encode()
    signature = base64.b64decode(query["Signature"][0].translate(str.maketrans("-_~", "+=/")))
    key.public_key().verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # raises if not
    # And the path is the zip's key in the media bucket (what the /exports/* behaviour's origin serves)
    assert download(deployed, first["download_url"]).namelist()
