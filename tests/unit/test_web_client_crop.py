"""The web client's crop geometry (edge/src/js/crop.js), run by node: crops are in the original's frame."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CROP_JS = Path(__file__).resolve().parents[2] / "edge" / "src" / "js" / "crop.js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

SCRIPT = """
import * as crop from %s;
const [name, args] = JSON.parse(process.argv[1]);
console.log(JSON.stringify(crop[name](...args)));
"""


def js(name: str, *args) -> object:
    script = SCRIPT % json.dumps(CROP_JS.as_uri())
    result = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps([name, list(args)])],
                            capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout)


#: A 640x480 original already cropped to its top-left 320x240 quarter (what GET /photos/{id} answers).
CROPPED = {"width": 320, "height": 240, "frame": {"width": 640, "height": 480},
           "edits": {"crop": {"x": 0, "y": 0, "width": 320, "height": 240}}}


def test_a_crop_after_a_crop_is_drawn_in_the_original_frame_not_the_current_image():
    # GIVEN a photo whose current version is the original's top-left quarter
    # WHEN the user asks for the original's right half (outside the current 320x240 image)
    right_half = {"x": 320, "y": 0, "width": 320, "height": 480}
    # THEN the edit frame is the original's, and the box is drawn over the frame's right half
    assert js("editFrame", CROPPED) == {"width": 640, "height": 480}
    assert js("boxFractions", right_half, js("editFrame", CROPPED)) == {"left": 0.5, "top": 0, "width": 0.5, "height": 1}
    # AND the current image is placed where it lies in the original: its top-left quarter
    assert js("currentPlacement", CROPPED) == {"left": 0, "top": 0, "width": 0.5, "height": 0.5,
                                               "unrotate": 0, "imageWidth": 1, "imageHeight": 1}
    # AND the box is not clamped to the current image's size (it fits the original)
    assert js("clampCrop", right_half, js("editFrame", CROPPED)) == right_half


def test_a_turned_version_is_turned_back_into_its_place_in_the_frame():
    # GIVEN the original's right half (320x480 of 640x480), turned a quarter clockwise: now 480x320
    turned = {"width": 480, "height": 320, "frame": {"width": 640, "height": 480},
              "edits": {"crop": {"x": 320, "y": 0, "width": 320, "height": 480}, "rotate": 90}}
    # THEN it sits over the frame's right half, turned back by 270 degrees, its sides swapped
    assert js("currentPlacement", turned) == {"left": 0.5, "top": 0, "width": 0.5, "height": 1,
                                              "unrotate": 270, "imageWidth": 1.5, "imageHeight": 2 / 3}
    # AND the form starts from the current edits (a new edit replaces them all)
    assert js("currentCrop", turned) == {"x": 320, "y": 0, "width": 320, "height": 480}
    assert js("currentRotation", turned) == 90


def test_an_unedited_photo_is_its_whole_frame_and_old_photos_fall_back_to_their_size():
    # GIVEN a fresh photo (no edits) and one processed before frames were recorded
    fresh = {"width": 640, "height": 480, "frame": {"width": 640, "height": 480}}
    old = {"width": 800, "height": 600}
    # THEN the crop is the whole frame (nothing is sent), and the old photo's frame is its size
    whole = js("currentCrop", fresh)
    assert whole == {"x": 0, "y": 0, "width": 640, "height": 480}
    assert js("isWholeFrame", whole, js("editFrame", fresh)) is True
    assert js("editFrame", old) == {"width": 800, "height": 600}
    # AND a box typed beyond the frame is clamped to it
    assert js("clampCrop", {"x": 600, "y": -5, "width": 100, "height": 900}, {"width": 640, "height": 480}) == {
        "x": 600, "y": 0, "width": 40, "height": 480}


def test_unchanged_edits_are_recognised_whatever_the_key_order():
    assert js("sameEdits", {"rotate": 90, "crop": {"y": 0, "x": 1, "width": 2, "height": 3}},
              {"crop": {"x": 1, "y": 0, "width": 2, "height": 3}, "rotate": 90}) is True
    assert js("sameEdits", {"rotate": 90}, {"rotate": 180}) is False
