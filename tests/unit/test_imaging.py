"""Pixel behaviour of chalicelib.imaging.process_photo, on small images built in memory."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from chalicelib import imaging
from chalicelib.imaging import CropBox, Edits, ImageRejected, process_photo

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _process(data: bytes, **kw):
    return process_photo(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, **kw)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _decode(body: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(body))
    im.load()
    return im


def _close(pixel, expected, tol=12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected))


def _two_halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue."""
    im = Image.new("RGB", (width, height), RED)
    im.paste(BLUE, (width // 2, 0, width, height))
    return im


def _exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 22.0, 5.0)
    gps[3], gps[4] = "E", (4.0, 53.0, 30.0)
    return exif


def _noisy(width: int, height: int, seed: int) -> Image.Image:
    rng = random.Random(seed)
    small = Image.frombytes("RGB", (max(1, width // 8), max(1, height // 8)), rng.randbytes((width // 8) * (height // 8) * 3))
    return small.resize((width, height), Image.Resampling.BICUBIC)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_exif_orientation_6_produces_upright_output_with_swapped_dimensions():
    # Given a stored 80x40 JPEG (red left, blue right) whose EXIF says "rotate 90° CW to display"
    data = _encode(_two_halves(80, 40), "JPEG", quality=95, exif=_exif_with_gps(orientation=6))
    # When processed
    photo = _process(data)
    # Then the photo is 40x80 and every rendition shows red on top, blue at the bottom
    assert (photo.width, photo.height) == (40, 80)
    for r in photo.renditions:
        out = _decode(r.body).convert("RGB")
        assert out.size == (40, 80) == (r.width, r.height)
        assert _close(out.getpixel((20, 10)), RED) and _close(out.getpixel((20, 70)), BLUE)


def test_every_rendition_is_stripped_of_exif_gps_and_comments():
    # Given a JPEG with EXIF (incl. GPS), a comment and an ICC profile, big enough for a WebP rendition
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(_noisy(400, 300, seed=7), "JPEG", quality=95, exif=_exif_with_gps(), comment=b"secret", icc_profile=srgb)
    # When processed
    photo = _process(data)
    # Then no rendition carries EXIF, GPS, comments or ICC, neither parsed nor as raw bytes
    assert {r.extension for r in photo.renditions} >= {"jpg"}
    for r in photo.renditions:
        out = _decode(r.body)
        assert len(out.getexif()) == 0
        assert out.info.get("icc_profile") in (None, b"")
        for marker in (b"GPS", b"Exif", b"secret", b"TestCam", b"ICC_PROFILE", b"XMP"):
            assert marker not in r.body, (r.name, r.extension, marker)


def test_png_with_alpha_is_flattened_on_white_in_jpeg():
    # Given a transparent PNG with an opaque red square in the middle
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (16, 16, 48, 48))
    # When processed
    photo = _process(_encode(im, "PNG"))
    # Then the JPEG is RGB with white where it was transparent and red where it was opaque
    out = _decode(photo.renditions[0].body)
    assert photo.format == "png" and out.mode == "RGB"
    assert _close(out.getpixel((2, 2)), (255, 255, 255)) and _close(out.getpixel((32, 32)), RED)


@pytest.mark.parametrize("mode", ["P", "LA", "L", "I;16", "RGB"])
def test_other_pixel_modes_end_as_rgb_jpeg(mode):
    # Given a PNG in an unusual mode / When processed / Then the output is an 8-bit RGB JPEG
    im = Image.new("RGB", (32, 24), (200, 120, 40))
    im = im.convert("LA") if mode == "LA" else im.convert(mode) if mode != "I;16" else im.convert("L").convert("I;16")
    photo = _process(_encode(im, "PNG"))
    out = _decode(photo.renditions[0].body)
    assert out.mode == "RGB" and out.size == (32, 24)


def test_text_bytes_are_rejected_as_unsupported_format():
    # Given plain text / When processed / Then unsupported_format with a readable message
    with pytest.raises(ImageRejected) as exc:
        _process(b"hello, I am definitely a photo")
    assert exc.value.code == "unsupported_format" and "JPEG" in exc.value.message


def test_bytes_over_the_limit_are_rejected_as_too_large():
    # Given a valid JPEG larger than max_bytes / When processed / Then too_large
    data = _encode(_noisy(64, 64, seed=1), "JPEG")
    with pytest.raises(ImageRejected) as exc:
        process_photo(data, max_bytes=len(data) - 1, max_pixels=MAX_PIXELS)
    assert exc.value.code == "too_large"


def test_png_claiming_50000x50000_is_rejected_from_the_header_without_decoding():
    # Given a ~100-byte PNG whose IHDR claims 50000x50000 RGB (2.5 gigapixels) over a tiny all-zero IDAT
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 150001, 9))
        + _png_chunk(b"IEND", b"")
    )
    assert len(bomb) < 1024
    # When processed (the decoded bitmap would need 7.5 GB)
    with pytest.raises(ImageRejected) as exc:
        _process(bomb)
    # Then it is a clean too_many_pixels rejection naming the size
    assert exc.value.code == "too_many_pixels" and "50000×50000" in exc.value.message


def test_truncated_jpeg_is_rejected_as_corrupt():
    # Given the first half of a JPEG / When processed / Then corrupt
    data = _encode(_noisy(256, 192, seed=3), "JPEG", quality=90)
    with pytest.raises(ImageRejected) as exc:
        _process(data[: len(data) // 2])
    assert exc.value.code == "corrupt"


def test_garbage_after_a_png_signature_is_rejected_as_corrupt():
    # Given PNG magic followed by junk / When processed / Then corrupt
    with pytest.raises(ImageRejected) as exc:
        _process(b"\x89PNG\r\n\x1a\n" + b"\x13" * 200)
    assert exc.value.code == "corrupt"


def test_small_images_are_never_upscaled():
    # Given a 600x400 JPEG / When processed / Then large and medium stay 600x400 and thumb is 320 wide
    photo = _process(_encode(_noisy(600, 400, seed=5), "JPEG"))
    sizes = {(r.name, r.extension): (r.width, r.height) for r in photo.renditions}
    assert sizes[("large", "jpg")] == (600, 400)
    assert sizes[("medium", "jpg")] == (600, 400)
    assert sizes[("thumb", "jpg")] == (320, 213)
    assert _decode(next(r.body for r in photo.renditions if r.name == "thumb")).size == (320, 213)


def test_crop_then_rotate_gives_expected_dimensions_and_content():
    # Given a 400x300 image, red left half / blue right half
    data = _encode(_two_halves(400, 300), "PNG")
    # When cropping the 100x50 box straddling the middle and rotating 90° clockwise
    edits = Edits(crop=CropBox(150, 100, 100, 50), rotate=90)
    photo = _process(data, edits=edits)
    # Then the photo is 50x100 with red (the crop's left) on top and blue at the bottom
    assert (photo.width, photo.height) == (50, 100)
    out = _decode(photo.renditions[0].body)
    assert out.size == (50, 100)
    assert _close(out.getpixel((25, 10)), RED) and _close(out.getpixel((25, 90)), BLUE)


def test_crop_is_in_displayed_coordinates_of_an_exif_rotated_photo():
    # Given an 80x40 JPEG displayed as 40x80 (orientation 6: red on top, blue at the bottom)
    data = _encode(_two_halves(80, 40), "JPEG", quality=95, exif=_exif_with_gps(orientation=6))
    # When cropping the displayed bottom half
    photo = _process(data, edits=Edits(crop=CropBox(0, 40, 40, 40)))
    # Then the result is all blue
    out = _decode(photo.renditions[0].body)
    assert out.size == (40, 40) and _close(out.getpixel((20, 20)), BLUE)


def test_out_of_bounds_crop_is_rejected_as_invalid_edits():
    # Given a 100x80 image and a crop past its right edge / When processed / Then invalid_edits
    with pytest.raises(ImageRejected) as exc:
        _process(_encode(_noisy(100, 80, seed=2), "PNG"), edits=Edits(crop=CropBox(50, 0, 60, 10)))
    assert exc.value.code == "invalid_edits" and "width 100" in exc.value.message


def test_blur_and_sharpen_keep_dimensions_and_change_pixels():
    # Given a textured image / When blurred, and separately sharpened
    data = _encode(_noisy(200, 160, seed=4), "PNG")
    plain = _decode(_process(data).renditions[0].body)
    blurred = _decode(_process(data, edits=Edits(blur=4)).renditions[0].body)
    sharpened = _decode(_process(data, edits=Edits(sharpen=3)).renditions[0].body)
    # Then sizes stay, and blur lowers / sharpen raises local contrast
    from PIL import ImageFilter, ImageStat

    def edge_energy(im: Image.Image) -> float:
        return sum(ImageStat.Stat(im.convert("L").filter(ImageFilter.FIND_EDGES)).mean)

    assert plain.size == blurred.size == sharpened.size == (200, 160)
    assert edge_energy(blurred) < edge_energy(plain) < edge_energy(sharpened)


def test_webp_is_kept_only_when_smaller_than_the_jpeg(monkeypatch):
    # Given a smooth photo-like image, where WebP beats JPEG
    data = _encode(_noisy(1200, 900, seed=11), "JPEG", quality=95)
    webp_everywhere_but_large = (
        imaging.RenditionSpec("large", 2048, webp=False),
        imaging.RenditionSpec("medium", 1080, webp=True),
        imaging.RenditionSpec("thumb", 320, webp=True),
    )
    # When processed with WebP candidates for thumb and medium
    photo = _process(data, renditions=webp_everywhere_but_large)
    by_key = {(r.name, r.extension): r for r in photo.renditions}
    # Then WebP variants appear (only for thumb/medium), each smaller than its JPEG sibling
    webps = [r for r in photo.renditions if r.extension == "webp"]
    assert webps and {r.name for r in webps} <= {"thumb", "medium"}
    for r in webps:
        assert r.content_type == "image/webp"
        assert len(r.body) < len(by_key[(r.name, "jpg")].body)
        assert _decode(r.body).size == (r.width, r.height)
    # And when WebP is made to lose (quality 100 lossy is bigger than JPEG q82), none is kept
    monkeypatch.setattr(imaging, "WEBP_QUALITY", 100)
    photo = _process(data, renditions=webp_everywhere_but_large)
    assert [r.extension for r in photo.renditions] == ["jpg", "jpg", "jpg"]


def _vips_profile(name: str) -> bytes:
    """The ICC profile libvips ships under ``name`` (e.g. "p3"), to tag test images with."""
    im = imaging._vips().Image.black(1, 1, bands=3).copy(interpretation="srgb").icc_transform(name)
    return im.get("icc-profile-data")


def test_display_p3_image_is_converted_to_srgb_without_profile():
    # Given a flat JPEG tagged Display P3 whose pixels are sRGB red expressed in P3 (≈ 234, 51, 35)
    data = _encode(Image.new("RGB", (64, 64), (234, 51, 35)), "JPEG", quality=95, icc_profile=_vips_profile("p3"))
    # When processed
    out = _decode(_process(data).renditions[0].body)
    # Then the output is untagged sRGB and the colour is sRGB red again (the profile was honoured)
    assert out.mode == "RGB" and out.info.get("icc_profile") in (None, b"")
    assert _close(out.getpixel((32, 32)), RED, tol=10)


def test_cmyk_jpeg_is_converted_to_srgb_without_profile():
    # Given a CMYK JPEG filled with magenta + yellow ink (red) and no profile
    data = _encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)
    # When processed
    out = _decode(_process(data).renditions[0].body)
    # Then it is an untagged RGB JPEG and the colour is a red (not the inverted cyan)
    r, g, b = out.getpixel((32, 32))
    assert out.mode == "RGB" and out.info.get("icc_profile") in (None, b"")
    assert r > 180 and g < 90 and b < 90
