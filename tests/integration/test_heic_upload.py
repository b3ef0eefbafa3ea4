"""An iPhone photo (HEIC) uploaded through the real local stack becomes a ready, upright photo."""
from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image

import images
from api_client import ApiClient
from devstack.stack import LocalStack
from test_photo_pipeline import PhotoClient

pytestmark = pytest.mark.integration


@pytest.fixture
def site(api: ApiClient, local_stack: LocalStack) -> PhotoClient:
    return PhotoClient(api, local_stack.site_url)


def iphone_heic(raw_width: int = 1200, raw_height: int = 800) -> bytes:
    """A landscape-stored HEIC shown portrait (rotation 90° CW), with EXIF orientation 6 and GPS."""
    exif = Image.Exif()
    exif[0x0112] = 6
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 22.0, 5.0), "E", (4.0, 53.0, 30.0)
    buf = io.BytesIO()
    picture = images.upright_picture(raw_height, raw_width).transpose(Image.Transpose.ROTATE_90)
    pillow_heif.from_pillow(picture).save(buf, quality=90, exif=exif.tobytes())
    return buf.getvalue()


def test_a_heic_upload_through_the_stack_ends_ready_with_upright_stripped_renditions(site: PhotoClient):
    # Given a signed-in user with an iPhone photo
    user = site.new_user()
    data = iphone_heic()
    # When they upload it as image/heic and the worker processes it
    photo = site.wait_processed(site.upload(user, data, content_type="image/heic", caption="from my phone"))
    # Then it is ready, portrait, and its renditions are JPEGs without the GPS position
    assert photo["status"] == "ready", photo
    assert (photo["width"], photo["height"]) == (800, 1200)
    for name in ("thumb", "medium", "large"):
        served = site.media(photo["renditions"][name])
        assert served.status_code == 200, (name, served.status_code)
        image = images.open_image(served.content)
        assert image.format == "JPEG" and image.height > image.width, (name, image.size)
        for actual, wanted in zip(images.quadrant_colours(image), images.UPRIGHT_QUADRANTS):
            assert images.close_to(actual, wanted), (name, images.quadrant_colours(image))
        assert not image.getexif(), name
        assert b"Exif\x00\x00" not in served.content and b"GPS" not in served.content, name
