"""HEIC/HEIF (iPhone photos) through chalicelib.imaging.process_photo, on real HEIC files.

The fixtures are encoded with pillow-heif (dev-only, it has an HEVC encoder); the worker decodes them
with pi-heif, as in Lambda.
"""
from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image

from chalicelib import imaging
from chalicelib.imaging import ImageRejected, process_photo, sniff_format

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def heic(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=95, **kw)
    return buf.getvalue()


def two_halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue."""
    im = Image.new("RGB", (width, height), RED)
    im.paste(BLUE, (width // 2, 0, width, height))
    return im


def exif_with_gps(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestPhone"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 22.0, 5.0)
    gps[3], gps[4] = "E", (4.0, 53.0, 30.0)
    return exif.tobytes()


def process(data: bytes, **kw):
    return process_photo(data, max_bytes=MAX_BYTES, max_pixels=kw.pop("max_pixels", MAX_PIXELS), **kw)


def decoded(body: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(body))
    im.load()
    return im


def close(pixel, expected, tol=16) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected))


def test_an_iphone_style_heic_becomes_upright_stripped_jpeg_renditions():
    # Given a HEIC whose 80x40 stored picture (red left, blue right) is to be shown rotated 90° CW, as an
    # iPhone held upright writes it (HEIF rotation + EXIF orientation 6), with GPS in its EXIF
    data = heic(two_halves(80, 40), exif=exif_with_gps(orientation=6))
    assert sniff_format(data) == "heic"
    # When the worker processes it
    photo = process(data)
    # Then it is a 40x80 portrait photo, every rendition red on top and blue below (rotated once, not twice)
    assert (photo.format, photo.width, photo.height) == ("heic", 40, 80)
    assert {r.name for r in photo.renditions} == {"thumb", "medium", "large"}
    for rendition in photo.renditions:
        out = decoded(rendition.body).convert("RGB")
        assert out.size == (40, 80) == (rendition.width, rendition.height)
        assert close(out.getpixel((20, 10)), RED) and close(out.getpixel((20, 70)), BLUE)
        # And no rendition carries the EXIF, the GPS position or the camera name
        assert len(decoded(rendition.body).getexif()) == 0
        for marker in (b"Exif", b"GPS", b"TestPhone"):
            assert marker not in rendition.body, (rendition.name, marker)


def test_a_display_p3_heic_is_converted_to_srgb():
    # Given a flat HEIC tagged Display P3 whose pixels are sRGB red expressed in P3 (≈ 234, 51, 35)
    p3 = imaging._vips().Image.black(1, 1, bands=3).copy(interpretation="srgb").icc_transform("p3")
    data = heic(Image.new("RGB", (64, 64), (234, 51, 35)), icc_profile=p3.get("icc-profile-data"))
    # When processed
    out = decoded(process(data).renditions[0].body)
    # Then the output is untagged sRGB red again (the profile was honoured, then dropped)
    assert out.info.get("icc_profile") in (None, b"")
    assert close(out.getpixel((32, 32)), RED, tol=12)


def test_a_heic_with_transparency_is_flattened_on_white():
    # Given a HEIC with alpha: left half opaque red, right half fully transparent
    im = Image.new("RGBA", (64, 32), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (32, 0, 64, 32))
    # When processed / Then the transparent half is white
    out = decoded(process(heic(im)).renditions[0].body).convert("RGB")
    assert close(out.getpixel((8, 16)), RED) and close(out.getpixel((56, 16)), WHITE)


def test_a_heic_over_the_pixel_limit_is_rejected_before_any_pixel_is_decoded(monkeypatch):
    # Given a 300x200 HEIC and a limit of 10,000 pixels, and a decoder that must not be reached
    data = heic(two_halves(300, 200))

    def must_not_decode(*args):
        raise AssertionError("decoded pixels of an image over the limit")

    monkeypatch.setattr(imaging, "_decode_heif", must_not_decode)
    # When processed / Then too_many_pixels, from the container's declared size
    with pytest.raises(ImageRejected) as exc:
        process(data, max_pixels=10_000)
    assert exc.value.code == "too_many_pixels" and "300×200" in exc.value.message


def test_a_truncated_heic_is_rejected_as_corrupt():
    # Given the first half of a real HEIC / When processed / Then corrupt, with a readable message
    data = heic(two_halves(120, 80))
    with pytest.raises(ImageRejected) as exc:
        process(data[: len(data) // 2])
    assert exc.value.code == "corrupt" and "HEIC" in exc.value.message


def test_only_a_heif_header_is_rejected_as_corrupt():
    # Given the start of an HEIC file and nothing else / When processed / Then corrupt, not a crash
    with pytest.raises(ImageRejected) as exc:
        process(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    assert exc.value.code == "corrupt"
