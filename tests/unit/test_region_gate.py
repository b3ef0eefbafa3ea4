"""The embedded AWS's region-down gate: requests signed for a region that is down get AWS's 503."""
from __future__ import annotations

import io
import json

from devstack.chaos import ChaosFlags
from devstack.embedded_aws import RegionGate, signed_region

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261202/{region}/dynamodb/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc")


def environ(**extra) -> dict:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "wsgi.input": io.BytesIO(b""), **extra}


def test_the_signed_region_is_read_from_the_authorization_header():
    assert signed_region(environ(HTTP_AUTHORIZATION=AUTH.format(region="eu-west-1"))) == "eu-west-1"


def test_the_signed_region_is_read_from_a_presigned_url():
    query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=testing%2F20261202%2Fus-east-1%2Fs3%2Faws4_request"
    assert signed_region(environ(QUERY_STRING=query)) == "us-east-1"


def test_the_signed_region_is_read_from_a_presigned_post_form():
    body = (b'--b\r\nContent-Disposition: form-data; name="X-Amz-Credential"\r\n\r\n'
            b"testing/20261202/us-east-1/s3/aws4_request\r\n--b\r\n")
    assert signed_region(environ(), body) == "us-east-1"


def test_an_unsigned_request_has_no_region():
    assert signed_region(environ()) is None


class Recorder:
    def __init__(self):
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        start_response("200 OK", [])
        return [b"ok"]


def call(app, env):
    started = {}
    body = b"".join(app(env, lambda status, headers: started.update(status=status, headers=dict(headers))))
    return started["status"], started["headers"], body


def test_a_request_signed_for_a_down_region_gets_503_service_unavailable_and_never_reaches_moto(tmp_path):
    flags = ChaosFlags(tmp_path)
    flags.set_region_down("us-east-1", True)
    moto = Recorder()
    status, headers, body = call(RegionGate(moto, flags), environ(
        HTTP_AUTHORIZATION=AUTH.format(region="us-east-1"), HTTP_X_AMZ_TARGET="DynamoDB_20120810.GetItem"))
    assert status.startswith("503")
    assert json.loads(body)["__type"] == "ServiceUnavailable"
    assert moto.calls == 0


def test_requests_for_other_regions_pass_while_one_is_down(tmp_path):
    flags = ChaosFlags(tmp_path)
    flags.set_region_down("us-east-1", True)
    moto = Recorder()
    status, _, _ = call(RegionGate(moto, flags), environ(HTTP_AUTHORIZATION=AUTH.format(region="eu-west-1")))
    assert status.startswith("200") and moto.calls == 1


def test_a_region_brought_back_up_is_served_again_with_its_data_untouched(tmp_path):
    flags = ChaosFlags(tmp_path)
    flags.set_region_down("us-east-1", True)
    flags.set_region_down("us-east-1", False)
    moto = Recorder()
    status, _, _ = call(RegionGate(moto, flags), environ(HTTP_AUTHORIZATION=AUTH.format(region="us-east-1")))
    assert status.startswith("200") and moto.calls == 1


def test_s3_requests_to_a_down_region_get_an_xml_error(tmp_path):
    flags = ChaosFlags(tmp_path)
    flags.set_region_down("us-east-1", True)
    status, headers, body = call(RegionGate(Recorder(), flags), environ(
        REQUEST_METHOD="GET", HTTP_AUTHORIZATION=AUTH.format(region="us-east-1").replace("dynamodb", "s3")))
    assert status.startswith("503") and b"<Code>ServiceUnavailable</Code>" in body
    assert headers["Content-Type"] == "application/xml"
