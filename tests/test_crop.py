"""The one crop box (dip.data.crop.CropBox): --crop/--crop-at checked once for dip fit, dip inpaint and dip
baseline, the box load_inputs cuts, the record metrics.json keeps, and the report's reading of it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import dip, make_image
from dip.data.crop import CropBox, check_crop_options, crop_record
from dip.errors import DipError


def test_the_box_is_central_unless_placed_and_records_as_before():
    box = CropBox.of(32, None, (64, 48), "img.png")
    assert box == CropBox(16, 8, 32, 32) and box.size == (32, 32)
    assert crop_record(box) == {"top": 16, "left": 8, "height": 32, "width": 32}
    assert list(crop_record(box)) == ["top", "left", "height", "width"]  # metrics.json's order
    assert CropBox.of(16, (3, 5), (64, 48), "img.png") == CropBox(3, 5, 16, 16)
    assert CropBox.of(None, None, (64, 48), "img.png") is None and crop_record(None) is None


@pytest.mark.parametrize(("crop", "at", "message"), [
    (0, None, "--crop: must be a positive integer, got 0"),
    (-3, None, "--crop: must be a positive integer, got -3"),
    (None, (1, 2), "--crop-at: needs --crop"),
])
def test_options_that_describe_no_crop_are_refused(crop, at, message):
    with pytest.raises(DipError, match=message):
        check_crop_options(crop, at)


def test_a_box_outside_the_image_is_refused_naming_it():
    with pytest.raises(DipError, match=r"--crop: 49 is larger than the image \(48x64\): img.png"):
        CropBox.of(49, None, (64, 48), "img.png")
    with pytest.raises(DipError, match=r"--crop-at: a 16x16 crop at \(50, 0\) leaves the 48x64 image img.png"):
        CropBox.of(16, (50, 0), (64, 48), "img.png")


def test_cut_takes_the_last_two_axes_and_slices_the_first_two():
    a = np.arange(2 * 6 * 5).reshape(2, 6, 5)
    box = CropBox(1, 2, 3, 2)
    assert np.array_equal(box.cut(a), a[:, 1:4, 2:4])
    assert np.array_equal(box.cut(a[0]), a[0, 1:4, 2:4])
    hwc = np.moveaxis(a, 0, -1)
    assert np.array_equal(hwc[box.slices], hwc[1:4, 2:4])
    assert np.array_equal(CropBox(0, 0, 4, 3).cut(a[None]), a[None][..., :4, :3])  # the padding crop of a fit


def test_a_record_is_read_back_or_refused():
    assert CropBox.from_record({"top": 1, "left": 2, "height": 3, "width": 4}, "m.json") == CropBox(1, 2, 3, 4)
    assert CropBox.from_record(None, "m.json") is None
    with pytest.raises(DipError, match=r"m.json: invalid crop box \{'top': 1\} \(need top, left, height, width\)"):
        CropBox.from_record({"top": 1}, "m.json")
    assert CropBox(0, 0, 4, 4).inside((4, 4)) and not CropBox(1, 0, 4, 4).inside((4, 4))


@pytest.mark.parametrize("command", ["fit", "baseline"])
def test_fit_and_baseline_refuse_the_same_crop_options_with_the_same_line(tmp_path, command):
    img = make_image(tmp_path / "img.png")
    files = ["--image", img, "--mask", img] if command == "baseline" else [img, "--preset", "table1"]
    for flags, line in ((["--crop", "0"], "dip: error: --crop: must be a positive integer, got 0"),
                        (["--crop-at", "1,2"], "dip: error: --crop-at: needs --crop")):
        r = dip(command, *files, "-o", tmp_path / "out", *flags)
        assert r.returncode == 2 and r.stderr.strip() == line, r.stderr
        assert not (tmp_path / "out").exists()
