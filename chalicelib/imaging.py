"""Image-processing core of the photo pipeline: untrusted upload bytes in, stored renditions out.

No AWS I/O here. The SQS worker calls :func:`process_photo` with the uploaded bytes and stores the
returned renditions; the API calls :meth:`Edits.from_dict` / :func:`validate_edits` to answer 400 before
queueing. Nothing the client said is trusted: the format is sniffed from magic bytes, sizes come from the
file header and are checked before any pixel is decoded.

Library choice (measured, see ``bench/renditions.py``): libvips through ``pyvips`` + ``pyvips-binary``.
Versus a naive Pillow pipeline on a 12 MP JPEG it needs ~1/2 the CPU and <1/2 the peak memory: it streams
(decode → crop → resize run strip by strip, the full-size image never sits in memory) and shrinks JPEGs
in the DCT domain on load when that loses no needed resolution. Its import (~70 ms) and the pixel libraries
are only loaded by :func:`process_photo`, so the API Lambda that only validates edits pays nothing.

Module layout:
- pure geometry/validation (no imaging import): :func:`fit_within`, :func:`rendition_sizes`,
  :func:`oriented_size`, :func:`oriented_box_to_raw`, :func:`jpeg_shrink_factor`, :func:`plan_geometry`,
  :func:`validate_edits`, :class:`Edits`;
- the pixel work: :func:`process_photo` (everything below ``# --- pixel work``).

Rules:
- Formats: JPEG, PNG, WebP (first frame of animations), HEIC/HEIF (iPhone photos; primary image). The
  libvips wheel reads HEIF containers but has no HEVC decoder, so HEIF pixels are decoded by ``pi-heif``
  (libheif + libde265, decode-only, imported only on that path) and handed to the same pipeline. libheif
  applies the container's rotation/mirror (``irot``/``imir``) while decoding, and HEIF says EXIF
  orientation must then be ignored, so HEIF photos are upright after decoding. The pixel limit is
  checked on the container's declared size before anything is decoded.
- Renditions fit the longest edge into 320/1080/2048 px and never upscale: a 600 px image gives
  thumb 320, medium 600, large 600 (identical renditions share one encode).
- Output: EXIF orientation applied, all metadata stripped (EXIF/GPS, XMP, IPTC, comments, ICC), pixels
  converted to sRGB (embedded ICC profile honoured, CMYK without profile via a generic CMYK profile),
  transparency flattened on white. JPEG q82 progressive + optimised Huffman; WebP (q80) is added for the
  renditions whose spec asks for it, and kept only when smaller than the JPEG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = [
    "CropBox",
    "Edits",
    "GeometryPlan",
    "ImageRejected",
    "ProcessedPhoto",
    "RENDITIONS",
    "Rendition",
    "RenditionSpec",
    "fit_within",
    "jpeg_shrink_factor",
    "oriented_box_to_raw",
    "oriented_size",
    "plan_geometry",
    "process_photo",
    "rendition_sizes",
    "sniff_format",
    "validate_edits",
]

JPEG_QUALITY = 82
WEBP_QUALITY = 80
# libwebp effort 0..6 (default 4). Measured on the bench photo's medium rendition: effort 2 costs ~1/3 of the
# CPU of effort 4 for files ~5 % larger; Lambda bills the CPU on every upload, so 2.
WEBP_EFFORT = 2
BLUR_MAX = 50.0
SHARPEN_MAX = 10.0
ROTATIONS = (90, 180, 270)
# Unsharp-mask radius (Gaussian sigma, in working pixels) used by the ``sharpen`` edit.
SHARPEN_SIGMA = 1.0


class ImageRejected(Exception):
    """The upload cannot become a photo. ``code`` is machine-readable, ``message`` is for humans.

    Codes: ``unsupported_format``, ``too_large``, ``too_many_pixels``, ``corrupt``, ``invalid_edits``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RenditionSpec:
    """A rendition fits its longest edge into ``max_edge`` px (never upscaled); ``webp`` asks for a WebP
    candidate next to the JPEG (kept only when smaller)."""

    name: str
    max_edge: int
    webp: bool = True


# Largest first matters: smaller renditions are resized from the previous (larger) one.
# WebP candidates only for the thumb (the rendition feeds and grids serve most): a WebP encode of
# large alone costs about as much CPU as the rest of the pipeline (bench row "ours+webp-large"), and
# medium's saved ~9 % of bytes for ~30 % more CPU per upload. Flip ``webp`` to trade CPU for bytes.
RENDITIONS: tuple[RenditionSpec, ...] = (
    RenditionSpec("large", 2048, webp=False),
    RenditionSpec("medium", 1080, webp=False),
    RenditionSpec("thumb", 320, webp=True),
)


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    content_type: str
    extension: str
    body: bytes


@dataclass(frozen=True)
class ProcessedPhoto:
    """``width``/``height`` are those of the photo after orientation and edits, at full resolution."""

    width: int
    height: int
    format: str
    renditions: list[Rendition]


# --------------------------------------------------------------------------------------- sniffing

_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1"}


def sniff_format(data: bytes) -> str | None:
    """Detect the format from magic bytes only: "jpeg", "png", "webp", "heic", "heif" or None.

    ISO-BMFF: an ``ftyp`` box whose major brand is heic/heix/hevc/heim/heis (→ "heic") or mif1/msf1
    (→ "heif"; an HEVC brand among the compatible brands upgrades it to "heic"). AVIF and everything else → None.
    """
    head = bytes(data[:64])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        major = head[8:12]
        if major in _HEIC_BRANDS:
            return "heic"
        if major in _HEIF_BRANDS:
            end = min(max(box_size, 16), len(head))
            compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
            return "heic" if compatible & _HEIC_BRANDS else "heif"
    return None


# --------------------------------------------------------------------------------------- edits


@dataclass(frozen=True)
class CropBox:
    """A rectangle in pixels of the *oriented* original (as the user sees it)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Edits:
    """User edits, applied in the order crop → rotate (clockwise) → blur → sharpen, before renditions.

    ``blur`` is a Gaussian radius (sigma) in pixels of the full-resolution photo, 0 < r ≤ 50;
    ``sharpen`` is an unsharp-mask amount, 0 < a ≤ 10 (1 = +100 % edge contrast).
    """

    crop: CropBox | None = None
    rotate: int | None = None
    blur: float | None = None
    sharpen: float | None = None

    @classmethod
    def from_dict(cls, d: Any) -> Edits:
        """Parse API JSON ``{crop?: {x, y, width, height}, rotate?, blur?, sharpen?}``.

        Raises ValueError with a message naming the field for wrong shapes, types and ranges. Bounds
        against the actual photo are checked by :func:`validate_edits`.
        """
        if not isinstance(d, Mapping):
            raise ValueError("edits: must be a JSON object")
        unknown = sorted(set(d) - {"crop", "rotate", "blur", "sharpen"})
        if unknown:
            raise ValueError(f"edits: unknown field(s) {', '.join(map(str, unknown))}")
        crop = None
        if d.get("crop") is not None:
            c = d["crop"]
            if not isinstance(c, Mapping):
                raise ValueError("crop: must be an object with x, y, width, height")
            missing = [k for k in ("x", "y", "width", "height") if k not in c]
            if missing:
                raise ValueError(f"crop: missing {', '.join(missing)}")
            extra = sorted(set(c) - {"x", "y", "width", "height"})
            if extra:
                raise ValueError(f"crop: unknown field(s) {', '.join(map(str, extra))}")
            crop = CropBox(*(_as_int(c[k], f"crop.{k}") for k in ("x", "y", "width", "height")))
        rotate = None
        if d.get("rotate") is not None:
            rotate = _as_int(d["rotate"], "rotate")
        blur = _as_number(d["blur"], "blur") if d.get("blur") is not None else None
        sharpen = _as_number(d["sharpen"], "sharpen") if d.get("sharpen") is not None else None
        edits = cls(crop=crop, rotate=rotate, blur=blur, sharpen=sharpen)
        problems = _value_problems(edits)
        if problems:
            raise ValueError("; ".join(problems))
        return edits

    def is_empty(self) -> bool:
        return self.crop is None and self.rotate is None and self.blur is None and self.sharpen is None


def _as_int(v: Any, field: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{field}: must be an integer")
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError(f"{field}: must be an integer")
        v = int(v)
    return v


def _as_number(v: Any, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{field}: must be a finite number")
    return float(v)


def _value_problems(edits: Edits) -> list[str]:
    problems: list[str] = []
    c = edits.crop
    if c is not None:
        if c.x < 0:
            problems.append("crop.x: must be ≥ 0")
        if c.y < 0:
            problems.append("crop.y: must be ≥ 0")
        if c.width < 1:
            problems.append("crop.width: must be ≥ 1")
        if c.height < 1:
            problems.append("crop.height: must be ≥ 1")
    if edits.rotate is not None and edits.rotate not in ROTATIONS:
        problems.append("rotate: must be 90, 180 or 270 (degrees clockwise)")
    if edits.blur is not None and not (0 < edits.blur <= BLUR_MAX):
        problems.append(f"blur: must be > 0 and ≤ {BLUR_MAX:g}")
    if edits.sharpen is not None and not (0 < edits.sharpen <= SHARPEN_MAX):
        problems.append(f"sharpen: must be > 0 and ≤ {SHARPEN_MAX:g}")
    return problems


def validate_edits(edits: Edits, width: int, height: int) -> list[str]:
    """Field-level problems of ``edits`` for a photo of ``width``×``height`` (oriented); [] if valid.

    Pure. The crop must lie fully inside the photo.
    """
    problems = _value_problems(edits)
    c = edits.crop
    if c is not None and not problems:
        if c.x + c.width > width:
            problems.append(f"crop: x + width = {c.x + c.width} exceeds the photo width {width}")
        if c.y + c.height > height:
            problems.append(f"crop: y + height = {c.y + c.height} exceeds the photo height {height}")
    return problems


# --------------------------------------------------------------------------------------- geometry


def fit_within(width: int, height: int, max_edge: int) -> tuple[int, int]:
    """Scale (width, height) so the longest edge is at most ``max_edge``; never upscale; each edge ≥ 1."""
    longest = max(width, height)
    if longest <= max_edge:
        return width, height
    scale = max_edge / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def rendition_sizes(
    width: int, height: int, specs: Sequence[RenditionSpec] = RENDITIONS
) -> list[tuple[str, int, int]]:
    """(name, width, height) of every rendition of a ``width``×``height`` photo, in ``specs`` order."""
    return [(s.name, *fit_within(width, height, s.max_edge)) for s in specs]


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """Size as displayed: EXIF orientations 5..8 swap the axes."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _oriented_point_to_raw(u: float, v: float, w: int, h: int, orientation: int) -> tuple[float, float]:
    # (u, v): continuous coordinates in the oriented image; (w, h): raw (stored) size.
    if orientation == 2:
        return w - u, v
    if orientation == 3:
        return w - u, h - v
    if orientation == 4:
        return u, h - v
    if orientation == 5:
        return v, u
    if orientation == 6:
        return v, h - u
    if orientation == 7:
        return w - v, h - u
    if orientation == 8:
        return w - v, u
    return u, v


def oriented_box_to_raw(box: CropBox, raw_width: int, raw_height: int, orientation: int) -> CropBox:
    """Map a rectangle given in oriented (displayed) coordinates to the stored pixel grid."""
    x0, y0 = _oriented_point_to_raw(box.x, box.y, raw_width, raw_height, orientation)
    x1, y1 = _oriented_point_to_raw(box.x + box.width, box.y + box.height, raw_width, raw_height, orientation)
    left, top = int(min(x0, x1)), int(min(y0, y1))
    return CropBox(left, top, int(max(x0, x1)) - left, int(max(y0, y1)) - top)


def jpeg_shrink_factor(src_width: int, src_height: int, need_width: int, need_height: int) -> int:
    """Largest libjpeg DCT scale-down (1, 2, 4, 8) that still yields at least the needed pixels.

    Shrink-on-load only discards resolution that the biggest rendition would throw away anyway.
    """
    for factor in (8, 4, 2):
        if src_width // factor >= need_width and src_height // factor >= need_height:
            return factor
    return 1


@dataclass(frozen=True)
class GeometryPlan:
    """Where the pixels go, computed from header values only.

    - ``raw_crop``: region of the stored (unrotated) image to read;
    - ``work_raw_size``: size to resize that region to, still in stored orientation (resizing before
      rotating keeps the rotation cheap);
    - ``width``/``height``: final full-resolution size (after orientation, crop, rotate);
    - ``work_scale``: working pixels per full-resolution pixel (≤ 1), used to scale blur radii;
    - ``sizes``: (name, width, height) of every rendition, in spec order.
    """

    raw_crop: CropBox
    work_raw_size: tuple[int, int]
    width: int
    height: int
    work_scale: float
    sizes: list[tuple[str, int, int]]


def plan_geometry(
    raw_width: int,
    raw_height: int,
    orientation: int,
    edits: Edits | None = None,
    specs: Sequence[RenditionSpec] = RENDITIONS,
) -> GeometryPlan:
    """Plan the pipeline: orientation → crop → rotate, then fit the largest rendition. Pure."""
    if orientation not in range(1, 9):
        orientation = 1
    ow, oh = oriented_size(raw_width, raw_height, orientation)
    crop = edits.crop if edits and edits.crop else CropBox(0, 0, ow, oh)
    raw_crop = oriented_box_to_raw(crop, raw_width, raw_height, orientation)
    rotate = (edits.rotate if edits else None) or 0
    swap_rotate = rotate in (90, 270)
    final_w, final_h = (crop.height, crop.width) if swap_rotate else (crop.width, crop.height)
    sizes = rendition_sizes(final_w, final_h, specs)
    work_w, work_h = max((s[1:] for s in sizes), key=lambda wh: wh[0] * wh[1])
    # Back from final orientation to the stored one: undo the rotate edit, then the EXIF orientation.
    ww, wh = (work_h, work_w) if swap_rotate else (work_w, work_h)
    ww, wh = oriented_size(ww, wh, orientation)
    return GeometryPlan(
        raw_crop=raw_crop,
        work_raw_size=(ww, wh),
        width=final_w,
        height=final_h,
        work_scale=work_w / final_w,
        sizes=sizes,
    )


# --------------------------------------------------------------------------------------- pixel work

_VIPS: Any = None


def _vips() -> Any:
    """Import pyvips on first use (keeps validation-only callers cold-start cheap).

    Process-wide settings made once: operation cache off (no pixel buffers kept between warm Lambda
    invocations) and untrusted loaders blocked (defence in depth; we call explicit loaders anyway).
    """
    global _VIPS
    if _VIPS is None:
        import pyvips

        pyvips.cache_set_max(0)
        pyvips.block_untrusted_set(True)
        _VIPS = pyvips
    return _VIPS


_LOADERS = {"jpeg": "jpegload_buffer", "png": "pngload_buffer", "webp": "webpload_buffer"}
_HEIF_FORMATS = ("heic", "heif")


def _open_heif(data: bytes) -> Any:
    """The primary image of a HEIF container, not yet decoded (``pi_heif`` is imported only here)."""
    import pi_heif

    try:
        return pi_heif.open_heif(data, convert_hdr_to_8bit=True)
    except (RuntimeError, ValueError, OSError, SyntaxError) as exc:
        raise ImageRejected("corrupt", "The HEIC/HEIF header could not be read.") from exc


def _decode_heif(vips: Any, heif: Any) -> Any:
    """Decode the HEIF image (rotation/mirror applied by libheif) into a vips image over its pixels.

    The ICC profile, if any, rides along so the sRGB conversion honours it (iPhones embed Display P3).
    """
    try:
        pixels = heif.data  # the decode happens here
        width, height, stride = heif.size[0], heif.size[1], heif.stride
        bands = len(heif.mode)  # RGB or RGBA, 8 bit per sample after convert_hdr_to_8bit
    except (RuntimeError, ValueError, OSError) as exc:
        raise ImageRejected("corrupt", "The HEIC/HEIF image data is truncated or corrupt.") from exc
    if stride != width * bands:  # rows padded: pack them for vips
        pixels = b"".join(pixels[row * stride:row * stride + width * bands] for row in range(height))
    im = vips.Image.new_from_memory(bytes(pixels), width, height, bands, "uchar").copy(interpretation="srgb")
    icc = heif.info.get("icc_profile")
    if icc:
        im.set_type(vips.GValue.blob_type, "icc-profile-data", bytes(icc))
    return im


def process_photo(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    edits: Edits | None = None,
    renditions: Sequence[RenditionSpec] = RENDITIONS,
) -> ProcessedPhoto:
    """Validate untrusted upload bytes and produce the renditions (see the module docstring for rules).

    Raises :class:`ImageRejected`. The pixel count is checked from the header before any pixel is decoded,
    so decompression bombs end as ``too_many_pixels`` without allocating.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageRejected("unsupported_format", "The upload is not binary image data.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise ImageRejected(
            "too_large", f"The file is {len(data):,} bytes; the limit is {max_bytes:,} bytes."
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("unsupported_format", "This is not a JPEG, PNG, WebP or HEIC image.")
    vips = _vips()
    load_opts = {"access": "sequential", "fail_on": "error"}
    if fmt in _HEIF_FORMATS:
        loader = None
        heif = _open_heif(data)  # lazy: parses the container, decodes no pixels
        (raw_w, raw_h), orientation = heif.size, 1
    else:
        loader = getattr(vips.Image, _LOADERS[fmt])
        try:
            header = loader(data, **load_opts)  # lazy: parses the header, decodes no pixels
            raw_w, raw_h = header.width, header.height
            orientation = header.get("orientation") if header.get_typeof("orientation") else 1
        except vips.Error as exc:
            raise ImageRejected("corrupt", "The image header could not be read.") from exc
    if raw_w * raw_h > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image is {raw_w}×{raw_h} = {raw_w * raw_h:,} pixels; the limit is {max_pixels:,}.",
        )
    orientation = orientation if orientation in range(1, 9) else 1
    if edits is not None and not edits.is_empty():
        problems = validate_edits(edits, *oriented_size(raw_w, raw_h, orientation))
        if problems:
            raise ImageRejected("invalid_edits", "; ".join(problems))
    plan = plan_geometry(raw_w, raw_h, orientation, edits, renditions)
    if loader is None:
        header = _decode_heif(vips, heif)
        del heif
    try:
        work = _decode_to_working(vips, loader, data, load_opts, header, fmt, plan)
        del header
        work = _apply_orientation(work, orientation)
        if edits is not None:
            work = _apply_edits(vips, work, edits, plan.work_scale)
        work = work.copy_memory()
        out = _encode_renditions(work, plan, renditions)
    except vips.Error as exc:
        raise ImageRejected("corrupt", "The image data is truncated or corrupt.") from exc
    return ProcessedPhoto(width=plan.width, height=plan.height, format=fmt, renditions=out)


def _decode_to_working(vips: Any, loader: Any, data: bytes, load_opts: dict, header: Any, fmt: str, plan: GeometryPlan) -> Any:
    """Decode (shrinking JPEGs on load), crop, flatten, resize to the working size, convert to sRGB."""
    box = plan.raw_crop
    tw, th = plan.work_raw_size
    im = header
    if fmt == "jpeg":
        factor = jpeg_shrink_factor(box.width, box.height, tw, th)
        if factor > 1:
            im = loader(data, shrink=factor, **load_opts)
            sx, sy = im.width / header.width, im.height / header.height
            left, top = int(box.x * sx), int(box.y * sy)
            right = min(im.width, max(left + 1, round((box.x + box.width) * sx)))
            bottom = min(im.height, max(top + 1, round((box.y + box.height) * sy)))
            box = CropBox(left, top, right - left, bottom - top)
    if (box.x, box.y, box.width, box.height) != (0, 0, im.width, im.height):
        im = im.extract_area(box.x, box.y, box.width, box.height)
    if im.hasalpha():
        max_alpha = 65535 if im.interpretation in ("rgb16", "grey16") else 255
        im = im.flatten(background=[max_alpha] * (im.bands - 1), max_alpha=max_alpha)
    if (im.width, im.height) != (tw, th):
        im = im.resize(tw / im.width, vscale=th / im.height, kernel="lanczos3")
    if im.get_typeof("icc-profile-data"):
        im = im.icc_transform("srgb", embedded=True, intent="relative", depth=8)
    elif im.interpretation == "cmyk":
        im = im.icc_transform("srgb", input_profile="cmyk", intent="relative", depth=8)
    elif im.interpretation != "srgb":
        im = im.colourspace("srgb")
    if im.bands > 3:
        im = im.extract_band(0, n=3)
    if im.format != "uchar":
        im = im.cast("uchar")
    return im


def _apply_orientation(im: Any, orientation: int) -> Any:
    """Apply EXIF orientation (2..8) as pixel operations; metadata is dropped at save time."""
    ops = {
        2: ("flip",),
        3: ("rot", "d180"),
        4: ("flipv",),
        5: ("rot", "d90", "flip"),
        6: ("rot", "d90"),
        7: ("rot", "d270", "flip"),
        8: ("rot", "d270"),
    }.get(orientation, ())
    if not ops:
        return im
    im = im.copy_memory()  # rotation needs random access; the working image is small by now
    if ops[0] == "rot":
        im = im.rot(ops[1])
        ops = ops[2:]
    if ops == ("flip",):
        im = im.fliphor()
    elif ops == ("flipv",):
        im = im.flipver()
    return im


def _apply_edits(vips: Any, im: Any, edits: Edits, work_scale: float) -> Any:
    if edits.rotate:
        im = im.copy_memory().rot(f"d{edits.rotate}")
    if edits.blur:
        sigma = edits.blur * work_scale  # the radius is in full-resolution pixels
        if sigma >= 0.2:
            im = im.gaussblur(sigma).cast("uchar")
    if edits.sharpen:
        im = im.copy_memory()
        soft = im.gaussblur(SHARPEN_SIGMA)
        im = (im + (im - soft) * edits.sharpen).cast("uchar")  # cast clips to 0..255
    return im


def _encode_renditions(work: Any, plan: GeometryPlan, specs: Sequence[RenditionSpec]) -> list[Rendition]:
    """Encode every rendition, each resized from the previous (larger) one; equal sizes share bytes."""
    out: list[Rendition] = []
    prev = work
    by_size: dict[tuple[int, int], tuple[bytes, bytes | None]] = {}
    for spec, (name, w, h) in sorted(zip(specs, plan.sizes), key=lambda p: -p[1][1] * p[1][2]):
        if (prev.width, prev.height) != (w, h):
            prev = prev.resize(w / prev.width, vscale=h / prev.height, kernel="lanczos3").copy_memory()
        jpeg, webp = by_size.get((w, h), (None, None))
        if jpeg is None:
            jpeg = prev.jpegsave_buffer(Q=JPEG_QUALITY, interlace=True, optimize_coding=True, keep="none")
        if spec.webp and webp is None:
            webp = prev.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_EFFORT, keep="none")
        by_size[(w, h)] = (jpeg, webp)
        out.append(Rendition(name, w, h, "image/jpeg", "jpg", jpeg))
        if spec.webp and webp is not None and len(webp) < len(jpeg):
            out.append(Rendition(name, w, h, "image/webp", "webp", webp))
    return out

