"""Test images for the photo pipeline, built with Pillow so their content is known exactly.

- :func:`phone_photo_jpeg`: what a phone camera stores: a landscape sensor image plus EXIF orientation 6
  ("rotate 90° clockwise to display") and GPS tags. The *upright* picture is painted in four coloured
  quadrants (:data:`UPRIGHT_QUADRANTS`), so any wrong rotation or mirroring moves a colour.
- :func:`solid_jpeg`: a plain image with no metadata.
- :func:`decompression_bomb_png`: a small, valid PNG whose header claims a huge canvas.
- :func:`dominant_colour` / :func:`quadrant_colours`: read colours back from rendition bytes.
"""
from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageOps

RED = (220, 30, 30)
GREEN = (30, 200, 30)
BLUE = (30, 30, 220)
YELLOW = (230, 220, 30)

#: The upright picture's quadrant colours: (top-left, top-right, bottom-left, bottom-right).
UPRIGHT_QUADRANTS = (RED, GREEN, BLUE, YELLOW)

EXIF_ORIENTATION = 0x0112
EXIF_GPS_IFD = 0x8825


def upright_picture(width: int, height: int) -> Image.Image:
    """The picture as a person should see it: four solid quadrants (see :data:`UPRIGHT_QUADRANTS`)."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    top_left, top_right, bottom_left, bottom_right = UPRIGHT_QUADRANTS
    image.paste(top_left, (0, 0, half_w, half_h))
    image.paste(top_right, (half_w, 0, width, half_h))
    image.paste(bottom_left, (0, half_h, width, height))
    image.paste(bottom_right, (half_w, half_h, width, height))
    return image


def phone_photo_jpeg(raw_width: int = 1200, raw_height: int = 800) -> bytes:
    """A ``raw_width``×``raw_height`` landscape JPEG with EXIF orientation 6 and GPS tags.

    The stored pixels are the upright (``raw_height``×``raw_width`` portrait) picture turned 90°
    counter-clockwise, exactly what orientation 6 asks a viewer to undo by turning it 90° clockwise.
    """
    upright = upright_picture(raw_height, raw_width)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    assert stored.size == (raw_width, raw_height)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif[0x010F] = "PhotoscaleTestCam"  # Make
    exif[EXIF_GPS_IFD] = {
        1: "N", 2: (52.0, 22.0, 12.5),  # GPSLatitudeRef, GPSLatitude
        3: "E", 4: (4.0, 53.0, 36.0),  # GPSLongitudeRef, GPSLongitude
    }
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=92, exif=exif)
    data = out.getvalue()
    # Self-check: a correct viewer shows the upright picture, and the GPS tags really are in the file.
    with Image.open(io.BytesIO(data)) as check:
        assert check.getexif()[EXIF_ORIENTATION] == 6
        assert check.getexif().get_ifd(EXIF_GPS_IFD), "GPS IFD missing from the test photo"
        assert ImageOps.exif_transpose(check).size == (raw_height, raw_width)
    return data


def solid_jpeg(width: int = 640, height: int = 480, colour: tuple[int, int, int] = GREEN) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def decompression_bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A complete, valid 1-bit greyscale PNG of ``width``×``height`` zero pixels (~110 KB for 30000²).

    Decoded to 8-bit RGB it would need ``width * height * 3`` bytes (2.7 GB for 30000²).
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte "None" + packed 1-bit pixels
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row * 1000) for _ in range(height // 1000)]
    chunks.append(compressor.compress(row * (height % 1000)))
    chunks.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(chunks)) + _png_chunk(
        b"IEND", b""
    )


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def colour_at(image: Image.Image, fx: float, fy: float) -> tuple[int, int, int]:
    """The RGB colour at fractional position (``fx``, ``fy``) of ``image``."""
    rgb = image.convert("RGB")
    x = min(rgb.width - 1, int(rgb.width * fx))
    y = min(rgb.height - 1, int(rgb.height * fy))
    return rgb.getpixel((x, y))[:3]


def quadrant_colours(image: Image.Image) -> tuple[tuple[int, int, int], ...]:
    """Colours at the centres of the four quadrants: (top-left, top-right, bottom-left, bottom-right)."""
    return tuple(colour_at(image, fx, fy) for fy in (0.25, 0.75) for fx in (0.25, 0.75))


def close_to(actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    """Whether two colours match within ``tolerance`` per channel (JPEG is lossy)."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))
