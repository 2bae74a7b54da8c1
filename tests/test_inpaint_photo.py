"""`dip inpaint` as a photographer uses it (issue 20): nothing they own overwritten (point 8), masks as people draw
them (point 6), photos beyond PIL's decompression-bomb limit (point 7)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, dip, make_image

FAST = [*TINY, "--iterations", "3", "--threads", "1", "--no-progress"]
H, W = 24, 40


def _one_line_refusal(r, culprit: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("dip: error: ") and culprit in lines[0], lines


def _scratch() -> np.ndarray:
    """known pixels (True) of a photo with a thin scratch: 5% damage."""
    known = np.ones((H, W), bool)
    known[10:12, 2:38] = False
    return known


def _photo(tmp_path: Path) -> tuple[Path, Path]:
    """A photo and its mask drawn black-on-white (damage black: unambiguous either way it is read)."""
    img = make_image(tmp_path / "photo.png", (H, W), rgb=True)
    Image.fromarray(np.where(_scratch(), 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    return img, tmp_path / "mask.png"


# ----------------------------------------------------------------- point 8: nothing a person owns is overwritten
@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.parametrize("target", ["photo", "mask", "photo via another path", "photo via a link"])
def test_an_output_that_is_an_input_is_refused_and_the_inputs_stay(tmp_path, target, force):
    img, mask = _photo(tmp_path)
    before = {p: p.read_bytes() for p in (img, mask)}
    (tmp_path / "sub").mkdir()
    if target == "photo via a link":
        os.link(img, tmp_path / "sub" / "same.png")  # a hard link: another name of the same file
    out = {"photo": img, "mask": mask, "photo via another path": tmp_path / "sub" / ".." / "photo.png",
           "photo via a link": tmp_path / "sub" / "same.png"}[target]
    r = dip("inpaint", img, mask, "-o", out, *FAST, *force)
    _one_line_refusal(r, f"{out}: is the {'mask' if target == 'mask' else 'input image'} (")
    assert {p: p.read_bytes() for p in (img, mask)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "photo.png", "sub"]


def test_an_existing_output_is_replaced_only_with_force(tmp_path):
    img, mask = _photo(tmp_path)
    out = tmp_path / "restored.png"
    out.write_bytes(b"someone's file")
    r = dip("inpaint", img, mask, "-o", out, *FAST)
    _one_line_refusal(r, f"{out}: exists; give --force to replace it")
    assert out.read_bytes() == b"someone's file"
    r = dip("inpaint", img, mask, "-o", out, *FAST, "--force")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(out)).shape == (H, W, 3)


def test_dip_mask_does_not_overwrite_the_image_or_an_existing_file(tmp_path):
    img = make_image(tmp_path / "img.png", (H, W))
    before = img.read_bytes()
    r = dip("mask", "--bernoulli", "0.5", "--seed", "0", "--like", img, "-o", img, "--force")
    _one_line_refusal(r, f"{img}: is the --like image")
    assert img.read_bytes() == before
    out = tmp_path / "m.png"
    assert dip("mask", "--bernoulli", "0.5", "--seed", "0", "--like", img, "-o", out).returncode == 0
    first = out.read_bytes()
    r = dip("mask", "--bernoulli", "0.5", "--seed", "1", "--like", img, "-o", out)
    _one_line_refusal(r, f"{out}: exists; give --force")
    assert out.read_bytes() == first
    assert dip("mask", "--bernoulli", "0.5", "--seed", "1", "--like", img, "-o", out, "--force").returncode == 0
    assert out.read_bytes() != first
