"""Pure geometry and validation rules of chalicelib.imaging, with plain values (no pixels)."""

from __future__ import annotations

import pytest

from chalicelib.imaging import (
    CropBox,
    Edits,
    fit_within,
    jpeg_shrink_factor,
    oriented_box_to_raw,
    oriented_size,
    plan_geometry,
    rendition_sizes,
    sniff_format,
    validate_edits,
)


def test_renditions_fit_longest_edge_and_keep_aspect():
    # Given a 4000x3000 photo / When sizing renditions / Then the longest edge is 2048, 1080, 320
    assert rendition_sizes(4000, 3000) == [("large", 2048, 1536), ("medium", 1080, 810), ("thumb", 320, 240)]


def test_renditions_never_upscale_small_photos():
    # Given a 600x400 photo / When sizing / Then large and medium keep 600 px, thumb shrinks to 320
    assert rendition_sizes(600, 400) == [("large", 600, 400), ("medium", 600, 400), ("thumb", 320, 213)]


def test_fit_within_keeps_at_least_one_pixel_per_edge():
    # Given an extreme panorama / When fitted into 320 / Then the short edge is clamped to 1 px
    assert fit_within(100000, 10, 320) == (320, 1)


@pytest.mark.parametrize("orientation, expected", [(1, (40, 30)), (3, (40, 30)), (6, (30, 40)), (8, (30, 40))])
def test_oriented_size_swaps_axes_for_orientations_5_to_8(orientation, expected):
    # Given a stored 40x30 image / When oriented / Then 5..8 swap width and height
    assert oriented_size(40, 30, orientation) == expected


@pytest.mark.parametrize(
    "orientation, expected",
    [
        (1, CropBox(1, 2, 3, 4)),
        (2, CropBox(36, 2, 3, 4)),  # mirrored horizontally: x from the right
        (3, CropBox(36, 24, 3, 4)),
        (4, CropBox(1, 24, 3, 4)),
        (5, CropBox(2, 1, 4, 3)),  # transpose
        (6, CropBox(2, 26, 4, 3)),  # displayed = stored rotated 90° CW
        (7, CropBox(34, 26, 4, 3)),
        (8, CropBox(34, 1, 4, 3)),
    ],
)
def test_crop_in_displayed_coordinates_maps_onto_stored_pixels(orientation, expected):
    # Given a stored 40x30 image and a 3x4 crop at (1, 2) as displayed
    box = CropBox(1, 2, 3, 4)
    # When mapped back to stored coordinates / Then it covers the same pixels
    raw = oriented_box_to_raw(box, 40, 30, orientation)
    assert raw == expected


def test_jpeg_shrink_on_load_never_drops_below_needed_size():
    # Given sources and the largest rendition needed / When choosing the DCT scale / Then no resolution is lost
    assert jpeg_shrink_factor(4000, 3000, 2048, 1536) == 1
    assert jpeg_shrink_factor(8000, 6000, 2048, 1536) == 2
    assert jpeg_shrink_factor(1000, 800, 320, 256) == 2
    assert jpeg_shrink_factor(20000, 15000, 320, 240) == 8


def test_plan_with_orientation_crop_and_rotate():
    # Given a stored 4000x3000 photo shown rotated (orientation 6 → 3000x4000) with a crop and a 90° rotate
    edits = Edits(crop=CropBox(0, 0, 3000, 2000), rotate=90)
    # When planning
    plan = plan_geometry(4000, 3000, 6, edits)
    # Then the final photo is 2000x3000 and the work is done in stored orientation at large size
    assert (plan.width, plan.height) == (2000, 3000)
    assert plan.sizes[0] == ("large", 1365, 2048)
    assert plan.raw_crop == CropBox(0, 0, 2000, 3000)
    assert plan.work_raw_size == (1365, 2048)
    assert plan.work_scale == pytest.approx(1365 / 2000)


def test_edits_from_dict_parses_all_fields():
    # Given API JSON / When parsed / Then every field lands in the dataclass
    e = Edits.from_dict({"crop": {"x": 1, "y": 2, "width": 30, "height": 40}, "rotate": 270, "blur": 2.5, "sharpen": 1})
    assert e == Edits(crop=CropBox(1, 2, 30, 40), rotate=270, blur=2.5, sharpen=1.0)


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ([], "must be a JSON object"),
        ({"zoom": 2}, "unknown field"),
        ({"crop": {"x": 0, "y": 0, "width": 10}}, "crop: missing height"),
        ({"crop": {"x": 0.5, "y": 0, "width": 10, "height": 10}}, "crop.x: must be an integer"),
        ({"crop": {"x": -1, "y": 0, "width": 10, "height": 10}}, "crop.x: must be ≥ 0"),
        ({"rotate": 45}, "rotate: must be 90, 180 or 270"),
        ({"rotate": True}, "rotate: must be an integer"),
        ({"blur": 0}, "blur: must be > 0"),
        ({"blur": 51}, "≤ 50"),
        ({"sharpen": "x"}, "sharpen: must be a finite number"),
        ({"sharpen": float("nan")}, "sharpen: must be a finite number"),
        ({"sharpen": 11}, "≤ 10"),
    ],
)
def test_edits_from_dict_rejects_bad_input_with_field_message(payload, fragment):
    # Given malformed edits / When parsed / Then ValueError names the field
    with pytest.raises(ValueError, match=fragment):
        Edits.from_dict(payload)


def test_validate_edits_reports_crop_outside_photo():
    # Given a 100x80 photo and a crop running past the right and bottom edges
    edits = Edits(crop=CropBox(50, 40, 60, 50))
    # When validated / Then both edges are reported
    problems = validate_edits(edits, 100, 80)
    assert problems == [
        "crop: x + width = 110 exceeds the photo width 100",
        "crop: y + height = 90 exceeds the photo height 80",
    ]


def test_validate_edits_accepts_crop_touching_edges_and_valid_values():
    # Given a full-frame crop and in-range values / When validated / Then no problems
    assert validate_edits(Edits(crop=CropBox(0, 0, 100, 80), rotate=180, blur=50, sharpen=10), 100, 80) == []


def test_validate_edits_reports_bad_values_on_directly_built_edits():
    # Given edits built in code with bad values / When validated / Then each field is reported
    problems = validate_edits(Edits(crop=CropBox(0, 0, 0, 5), rotate=45, blur=-1, sharpen=0), 100, 80)
    assert [p.split(":")[0] for p in problems] == ["crop.width", "rotate", "blur", "sharpen"]


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"\xff\xd8\xff\xe0rest", "jpeg"),
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf", "heif"),
        (b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif", None),
        (b"GIF89a", None),
        (b"hello world", None),
        (b"", None),
    ],
)
def test_sniff_format_uses_magic_bytes(head, expected):
    # Given leading bytes / When sniffed / Then the format (or None) follows the magic bytes only
    assert sniff_format(head) == expected
