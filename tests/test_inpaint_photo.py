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
    """known pixels (True) of a photo with a thin scratch: 7.5% damage."""
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


# ----------------------------------------------------------------- point 6: masks as people draw them
def _drawn(known: np.ndarray, white_is_damage: bool) -> np.ndarray:
    return np.where(known != white_is_damage, 255, 0).astype(np.uint8)


def _filled(out: Path, img: Path) -> np.ndarray:
    """Where the written picture differs from the photo: the pixels dip inpaint filled in."""
    return (np.asarray(Image.open(out)) != np.asarray(Image.open(img))).any(axis=2)


@pytest.mark.parametrize("white_is_damage", [True, False], ids=["white on black (LaMa)", "black on white (dip)"])
def test_auto_reads_the_smaller_tone_as_the_damage_and_says_so(tmp_path, white_is_damage):
    img, _ = _photo(tmp_path)
    Image.fromarray(_drawn(_scratch(), white_is_damage)).save(tmp_path / "drawn.png")
    out = tmp_path / "out.png"
    r = dip("inpaint", img, tmp_path / "drawn.png", "-o", out, *FAST)
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "drawn.png: " in line]
    damage, keep = ("white", "black") if white_is_damage else ("black", "white")
    assert len(said) == 1 and f"drawn.png: {damage} = fill in (7.5% of the mask), {keep} = keep (auto: the " \
        "smaller part is the damage" in said[0], said
    assert ("as LaMa, IOPaint and OpenCV read masks" in said[0]) == white_is_damage
    assert f"--mask-convention {'white-known' if white_is_damage else 'white-missing'} reads it the other way" in said[0]
    assert not _filled(out, img)[_scratch()].any()  # the kept pixels are the photo's: only the scratch was filled


def test_the_flag_forces_either_reading(tmp_path):
    img, _ = _photo(tmp_path)
    Image.fromarray(_drawn(_scratch(), True)).save(tmp_path / "drawn.png")  # white scratch on black
    for convention, damage_share in (("white-missing", "7.5%"), ("white-known", "92.5%")):
        out = tmp_path / f"{convention}.png"
        r = dip("inpaint", img, tmp_path / "drawn.png", "-o", out, *FAST, "--mask-convention", convention)
        assert r.returncode == 0, r.stderr
        assert f"fill in ({damage_share} of the mask" in r.stderr and f"(--mask-convention {convention})" in r.stderr
    assert "that is most of the image" in r.stderr  # the forced reading fills 95%: said, not silent
    assert not _filled(tmp_path / "white-missing.png", img)[_scratch()].any()
    assert not _filled(tmp_path / "white-known.png", img)[~_scratch()].any()


@pytest.mark.parametrize("white_share", [0.5, 0.4, 0.62])
def test_auto_refuses_to_guess_naming_the_flag(tmp_path, white_share):
    img, _ = _photo(tmp_path)
    known = np.random.default_rng(0).permutation(H * W).reshape(H, W) < round(white_share * H * W)
    Image.fromarray(_drawn(known, False)).save(tmp_path / "drawn.png")
    r = dip("inpaint", img, tmp_path / "drawn.png", "-o", tmp_path / "out.png", *FAST)
    _one_line_refusal(r, "drawn.png: cannot tell which tone marks the damage: white covers "
                         f"{100 * known.mean():.1f}% of the mask")
    assert "give --mask-convention white-missing (white = fill in" in r.stderr and "white-known" in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_the_issues_mask_no_longer_fills_most_of_the_photo(tmp_path):
    """The finding: a mask drawn white-on-black (3.3% damage) was read as 96.7% missing without a word."""
    from dip.inpaint.drawn_mask import read_drawn_mask

    known = np.ones((120, 120), bool)
    known[40:44, 10:110] = False  # text-like strokes: 3.3% of the pixels
    known[70:74, 10:110] = False
    Image.fromarray(_drawn(known, True)).save(tmp_path / "m.png")
    drawn = read_drawn_mask(tmp_path / "m.png", (120, 120))
    assert np.array_equal(drawn.known, known)
    assert "white = fill in (5.6% of the mask)" in drawn.lines[-1]


def _soft_text(white_is_damage: bool) -> Image.Image:
    """Text drawn with an editor's default, anti-aliased brush: white strokes on black (or the reverse)."""
    from PIL import ImageDraw, ImageFont

    im = Image.new("L", (160, 64), 0)
    ImageDraw.Draw(im).text((4, 8), "Hi there", fill=255, font=ImageFont.load_default(size=28))
    return im if white_is_damage else Image.eval(im, lambda v: 255 - v)


@pytest.mark.parametrize("white_is_damage", [True, False])
def test_soft_edges_are_thresholded_at_half_with_one_line(tmp_path, white_is_damage):
    from dip.inpaint.drawn_mask import read_drawn_mask

    im = _soft_text(white_is_damage)
    a = np.asarray(im)
    assert ((a > 0) & (a < 255)).mean() > 0.02  # really anti-aliased
    im.save(tmp_path / "text.png")
    drawn = read_drawn_mask(tmp_path / "text.png", (64, 160))
    assert len(drawn.lines) == 2 and "text.png: soft edges (" in drawn.lines[0]
    assert "thresholded at half" in drawn.lines[0]
    assert np.array_equal(drawn.known, (a >= 128) != white_is_damage)


@pytest.mark.parametrize("what", ["gradient", "photo"])
def test_a_mask_that_is_not_two_toned_is_refused(tmp_path, what):
    img = make_image(tmp_path / "photo.png", (H, W), rgb=True)
    if what == "gradient":
        Image.fromarray(np.tile(np.linspace(0, 255, W), (H, 1)).astype(np.uint8)).save(tmp_path / "mask.png")
    else:
        make_image(tmp_path / "mask.png", (H, W), seed=5)  # a photo given as the mask
    r = dip("inpaint", img, tmp_path / "mask.png", "-o", tmp_path / "out.png", *FAST)
    _one_line_refusal(r, "mask.png: not a two-toned mask: only ")
    assert "--mask-threshold T" in r.stderr


@pytest.mark.parametrize("layer", ["eraser", "strokes on an empty layer"])
def test_a_mask_with_transparency_reads_its_alpha_by_the_same_rule(tmp_path, layer):
    from dip.inpaint.drawn_mask import read_drawn_mask

    known = _scratch()
    opaque = known if layer == "eraser" else ~known  # erased damage, or painted damage on a transparent layer
    colours = np.random.default_rng(0).integers(0, 256, (H, W, 3)).astype(np.uint8)
    Image.fromarray(np.dstack([colours, np.where(opaque, 255, 0).astype(np.uint8)])).save(tmp_path / "m.png")
    drawn = read_drawn_mask(tmp_path / "m.png", (H, W))
    assert np.array_equal(drawn.known, known)
    damaged = "transparent" if layer == "eraser" else "opaque"
    assert f"m.png: {damaged} = fill in (7.5% of the mask)" in drawn.lines[-1]


def test_the_pipelines_masks_are_read_exactly_as_before(tmp_path):
    """dip fit and the workflow keep 255 = known, whatever the share (the ci numbers depend on it)."""
    from dip.data.images import read_mask

    Image.fromarray(_drawn(_scratch(), True)).save(tmp_path / "m.png")  # white = the 5% damage
    assert np.array_equal(read_mask(tmp_path / "m.png", (H, W)), ~_scratch())  # still white = known


# ----------------------------------------------------------------- point 7: photos beyond PIL's decompression-bomb limit
def _big_png(path: Path, width: int, height: int) -> Path:
    """A 1-bit grayscale PNG, all white, written row by row: a 20000x20000 photo in 76 kB, nothing large in memory."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, z = b"\x00" + b"\xff" * ((width + 7) // 8), zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_a_photo_beyond_the_bomb_limit_gets_the_memory_refusal_with_a_max_side(tmp_path):
    """The finding: a 20000x20000 PNG gave "internal error DecompressionBombError ... (this is a bug)", exit 1."""
    big = _big_png(tmp_path / "big.png", 20000, 20000)
    assert 20000 * 20000 > 2 * Image.MAX_IMAGE_PIXELS  # beyond PIL's limit: Image.open itself refuses it
    r = dip("inpaint", big, big, "-o", tmp_path / "out.png")
    _one_line_refusal(r, "big.png: a 20000x20000 fit needs about ")
    side = int(r.stderr.split("use --max-side ")[1].split()[0])
    assert 64 <= side < 20000 and side % 64 == 0, r.stderr
    assert "to fit a smaller copy and upsample the fill, or a GPU with more memory" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]


def test_the_pipelines_data_keeps_the_bomb_guard(tmp_path):
    big = _big_png(tmp_path / "big.png", 20000, 20000)
    r = dip("fit", big, big, "--preset", "table1", "-o", tmp_path / "fit")
    _one_line_refusal(r, "big.png: too large to decode safely (Image size (400000000 pixels)")


def test_max_side_works_for_a_photo_beyond_the_bomb_limit(tmp_path, monkeypatch):
    """The same path at a lowered limit (PIL's MAX_IMAGE_PIXELS, in this process): a 96x64 photo is "a bomb"."""
    from dip.cli import main
    from dip.data.images import read_image
    from dip.errors import DipError

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses more than 2000 pixels
    img = make_image(tmp_path / "photo.png", (64, 96), rgb=True)
    known = np.ones((64, 96), bool)
    known[30:33, 5:90] = False
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(DipError, match="too large to decode safely"):
        read_image(img)  # as the pipeline reads its data
    out = tmp_path / "out.png"
    assert main(["inpaint", str(img), str(tmp_path / "mask.png"), "-o", str(out), "--max-side", "32", *FAST]) == 0
    assert Image.MAX_IMAGE_PIXELS == 1000  # lifted only while the person's files were read
    with pytest.raises(Image.DecompressionBombError):
        Image.open(out)  # the result has the photo's full size, beyond the limit too
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    a, original = np.asarray(Image.open(out)), np.asarray(Image.open(img))
    assert a.shape == (64, 96, 3)
    assert np.array_equal(a[known], original[known])
