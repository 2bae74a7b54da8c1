"""`dip inpaint` with the files people have: masks in any mode, lossy masks, 16-bit images, EXIF rotation, known
pixels kept, images too large for the memory (refused before allocating) and --max-side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image

from conftest import MIRROR, TINY, dip, make_image
from dip.data.images import read_mask, read_picture
from dip.errors import DipError

# The masks here are drawn as the pipeline's (white = known) with 40% damage: say so (auto would refuse to guess).
FAST = [*TINY, "--iterations", "5", "--threads", "1", "--mask-convention", "white-known"]
H, W = 24, 40  # not square: a rotation changes the shape


@pytest.fixture
def known() -> np.ndarray:
    return np.random.default_rng(3).random((H, W)) >= 0.4


def _image(path: Path, rgb: bool = True) -> Path:
    return make_image(path, (H, W), rgb=rgb)


def _one_line_refusal(r, culprit: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("dip: error: ") and culprit in lines[0], lines


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------- masks in any mode
def _save_mask(kind: str, known: np.ndarray, path: Path) -> Path:
    m = np.where(known, 255, 0).astype(np.uint8)
    if kind == "L 0/1":
        Image.fromarray(known.astype(np.uint8)).save(path)
    elif kind == "1-bit":
        Image.fromarray(m).convert("1").save(path)
    elif kind == "RGB":
        Image.fromarray(np.stack([m] * 3, -1)).save(path)
    elif kind == "RGBA opaque":
        Image.fromarray(np.stack([m] * 3 + [np.full_like(m, 255)], -1)).save(path)
    elif kind == "RGBA alpha":  # an editor's eraser: colours anything, alpha 0 where missing
        colours = np.random.default_rng(0).integers(0, 256, (H, W, 3)).astype(np.uint8)
        Image.fromarray(np.dstack([colours, m])).save(path)
    elif kind == "LA alpha":
        Image.fromarray(np.dstack([np.full_like(m, 77), m]), mode="LA").save(path)
    elif kind == "P":
        Image.fromarray(np.stack([m] * 3, -1)).convert("P", palette=Image.Palette.ADAPTIVE, colors=2).save(path)
    elif kind == "16-bit":
        Image.fromarray(np.where(known, 65535, 0).astype(np.uint16)).save(path)
    return path


MASK_KINDS = ["L 0/1", "1-bit", "RGB", "RGBA opaque", "RGBA alpha", "LA alpha", "P", "16-bit"]


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_in_any_mode_read_the_same(tmp_path, known, kind):
    path = _save_mask(kind, known, tmp_path / "mask.png")
    assert np.array_equal(read_mask(path, (H, W)), known)


def test_rgb_mask_whose_channels_disagree_is_refused_naming_a_pixel(tmp_path, known):
    m = np.stack([np.where(known, 255, 0).astype(np.uint8)] * 3, -1)
    m[5, 7] = (255, 0, 0)  # one red stroke pixel
    Image.fromarray(m).save(tmp_path / "mask.png")
    r = dip("inpaint", _image(tmp_path / "img.png"), tmp_path / "mask.png", "-o", tmp_path / "out.png", *FAST)
    _one_line_refusal(r, "mask.png: mask's colour channels disagree at pixel x=7, y=5 (values (255, 0, 0))")
    assert _files(tmp_path) == ["img.png", "mask.png"]


def test_jpeg_mask_is_cut_at_half_by_dip_inpaint_and_refused_by_the_pipeline_reader(tmp_path, known):
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(tmp_path / "mask.jpg", quality=85)
    img, out = _image(tmp_path / "img.png"), tmp_path / "out.png"
    r = dip("inpaint", img, tmp_path / "mask.jpg", "-o", out, *FAST)
    assert r.returncode == 0, r.stderr
    assert "mask.jpg: soft edges (" in r.stderr and "thresholded at half" in r.stderr
    with pytest.raises(DipError, match="not binary"):  # the pipeline's masks stay exact
        read_mask(tmp_path / "mask.jpg", (H, W))
    assert (read_mask(tmp_path / "mask.jpg", (H, W), threshold=128) == known).mean() > 0.95
    r = dip("inpaint", img, tmp_path / "mask.jpg", "-o", tmp_path / "t.png", "--mask-threshold", "128", *FAST)
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(out)).shape == (H, W, 3)


@pytest.mark.parametrize("bad", ["0", "300"])
def test_threshold_outside_the_scale_is_refused(tmp_path, known, bad):
    mask = _save_mask("RGB", known, tmp_path / "mask.png")
    r = dip("inpaint", _image(tmp_path / "img.png"), mask, "-o", tmp_path / "out.png", "--mask-threshold", bad)
    _one_line_refusal(r, "--mask-threshold: must be in (0, 255]")
    assert not (tmp_path / "out.png").exists()


def test_help_states_the_alpha_rule():
    r = dip("inpaint", "--help")
    assert "A mask with transparency: its alpha is the mask (opaque counts as white)" in " ".join(r.stdout.split())


# ----------------------------------------------------------------- 16 bits in and out, EXIF
def _deep(rgb: bool) -> np.ndarray:
    """A 16-bit image whose values are not multiples of 257 (so 8 bits would lose them)."""
    y, x = np.mgrid[0:H, 0:W]
    g = (1000 + 997 * x + 1511 * y).astype(np.uint16)
    return np.stack([g, g + 7, g + 13], -1) if rgb else g


@pytest.mark.parametrize("rgb", [False, True], ids=["gray16", "rgb16"])
def test_16_bit_images_are_read_restored_and_written_in_16_bits(tmp_path, known, rgb):
    a = _deep(rgb)
    img = tmp_path / "img.png"
    if rgb:
        png.from_array(a.reshape(H, -1), "RGB;16").save(str(img))
        assert Image.open(img).mode == "RGB"  # what PIL makes of it: the high bytes only
    else:
        Image.fromarray(a).save(img)
    picture = read_picture(img)
    assert picture.bits == 16
    assert np.allclose(np.moveaxis(picture.pixels, 0, -1).squeeze() * 65535, a, atol=0.01)
    mask, out = _save_mask("L 0/1", known, tmp_path / "mask.png"), tmp_path / "out.png"
    r = dip("inpaint", img, mask, "-o", out, *FAST)
    assert r.returncode == 0, r.stderr
    assert "16-bit" in r.stdout
    _, _, rows, info = png.Reader(filename=str(out)).asDirect()
    assert info["bitdepth"] == 16 and info["planes"] == (3 if rgb else 1)
    written = np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(a.shape)
    assert np.array_equal(written[known], a[known])  # known pixels exactly, all 16 bits


def _with_orientation(path: Path, upright: Image.Image, **save) -> Path:
    """Save ``upright`` as a camera does: pixels stored turned, EXIF orientation 6 (display: rotate 90° CW)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, **save)
    return path


def test_exif_rotated_jpeg_and_mask_are_turned_alike(tmp_path, known):
    upright = Image.open(_image(tmp_path / "upright.png"))
    img = _with_orientation(tmp_path / "photo.jpg", upright, quality=100, subsampling=0)
    mask = _with_orientation(tmp_path / "mask.png", Image.fromarray(np.where(known, 255, 0).astype(np.uint8)))
    assert Image.open(img).size == (H, W)  # stored turned
    picture = read_picture(img)
    assert picture.pixels.shape == (3, H, W)
    assert np.abs(picture.pixels * 255 - np.moveaxis(np.asarray(upright, np.float32), -1, 0)).mean() < 2  # 180°: 47
    assert np.array_equal(read_mask(mask, (H, W)), known)
    out = tmp_path / "out.png"
    r = dip("inpaint", img, mask, "-o", out, *FAST)
    assert r.returncode == 0, r.stderr
    written = np.asarray(Image.open(out))
    assert written.shape == (H, W, 3)
    assert np.array_equal(written[known], np.moveaxis(np.rint(picture.pixels * 255), 0, -1).astype(np.uint8)[known])


# ----------------------------------------------------------------- known pixels kept
def test_known_pixels_are_kept_unless_no_keep_known(tmp_path, known):
    img, mask = _image(tmp_path / "img.png"), _save_mask("RGB", known, tmp_path / "mask.png")
    original = np.asarray(Image.open(img))
    kept, raw = tmp_path / "kept.png", tmp_path / "raw.png"
    # --holdout 0: the network's output alone (with held-out pixels the picture may be the classical fill, which
    # keeps the known pixels by itself)
    assert dip("inpaint", img, mask, "-o", kept, *FAST, "--holdout", "0").returncode == 0
    assert dip("inpaint", img, mask, "-o", raw, "--no-keep-known", *FAST, "--holdout", "0").returncode == 0
    kept_a, raw_a = np.asarray(Image.open(kept)), np.asarray(Image.open(raw))
    assert np.array_equal(kept_a[known], original[known])
    assert np.array_equal(kept_a[~known], raw_a[~known])  # the same fit: the fill is the network's output
    assert not np.array_equal(raw_a[known], original[known])  # 5 iterations do not reproduce the image


# ----------------------------------------------------------------- memory and --max-side
def test_a_fit_too_large_for_the_memory_is_refused_before_starting(tmp_path, known, monkeypatch):
    monkeypatch.setenv("DIP_AVAILABLE_MEMORY_MB", "1")  # the child process sees 1 MiB available
    img, mask = _image(tmp_path / "img.png"), _save_mask("RGB", known, tmp_path / "mask.png")
    r = dip("inpaint", img, mask, "-o", tmp_path / "out.png", *FAST)
    _one_line_refusal(r, f"img.png: a {W}x{H} fit needs about")
    assert "but only 1 MiB memory available on cpu; use a machine or GPU with more memory" in r.stderr
    assert _files(tmp_path) == ["img.png", "mask.png"]


def test_refusal_suggests_a_max_side_that_then_fits(tmp_path, monkeypatch):
    from dip.data.presets import resolve
    from dip.inpaint.memory import fit_bytes

    params = resolve("fig7_text", {"n_down": [8] * 3, "n_up": [8] * 3, "n_skip": [2] * 3})
    big = (96, 160)
    img = make_image(tmp_path / "img.png", big, rgb=True)
    mask = tmp_path / "mask.png"
    known = np.random.default_rng(4).random(big) >= 0.3
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(mask)
    have = (fit_bytes(params, 3, 96, 160) + fit_bytes(params, 3, 77, 128)) / 2 / 2**20  # 128 fits, 160 not
    monkeypatch.setenv("DIP_AVAILABLE_MEMORY_MB", f"{have:.3f}")
    out = tmp_path / "out.png"
    r = dip("inpaint", img, mask, "-o", out, *FAST)
    _one_line_refusal(r, "use --max-side 128 to fit a smaller copy and upsample the fill, or a GPU")
    assert not out.exists()
    r = dip("inpaint", img, mask, "-o", out, *FAST, "--max-side", "128")
    assert r.returncode == 0, r.stderr
    assert "fitted at 128x77 and upsampled" in r.stdout
    written, original = np.asarray(Image.open(out)), np.asarray(Image.open(img))
    assert written.shape == (*big, 3)  # the original size
    assert np.array_equal(written[known], original[known])  # known pixels from the full-resolution original
    assert _files(tmp_path) == ["img.png", "mask.png", "out.png"]


def test_max_side_cannot_combine_with_crop(tmp_path, known):
    img, mask = _image(tmp_path / "img.png"), _save_mask("RGB", known, tmp_path / "mask.png")
    r = dip("inpaint", img, mask, "-o", tmp_path / "out.png", "--max-side", "16", "--crop", "16")
    _one_line_refusal(r, "--max-side: cannot be combined with --crop")


def test_memory_estimate_counts_activations_in_proportion_to_the_pixels():
    from dip.data.presets import resolve
    from dip.inpaint.memory import activation_bytes

    params = resolve("table1", {})
    small, large = activation_bytes(params, 1, 256, 256), activation_bytes(params, 1, 512, 512)
    assert 3.9 < large / small < 4.0  # four times the pixels (the reflection borders grow by less)
    assert 400 * 2**20 < small < 480 * 2**20  # ~7 KB per pixel for the Table 1 network (128 channels)


# ----------------------------------------------------------------- --preset auto: damage classes and devices
S = 96  # synthetic masks: S x S


def _bernoulli(p: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((S, S)) >= p


def _strokes(width: int) -> np.ndarray:
    """Text-like damage: a few thin slanted strokes and a letter-like polyline."""
    from PIL import ImageDraw

    im = Image.new("L", (S, S), 255)
    draw = ImageDraw.Draw(im)
    for i in range(4):
        draw.line([(5, 10 + 20 * i), (90, 18 + 20 * i)], fill=0, width=width)
    draw.line([(10, 90), (30, 60), (50, 90), (40, 75), (20, 75)], fill=0, width=width)
    return np.asarray(im) > 127


def _disc(radius: int) -> np.ndarray:
    y, x = np.mgrid[:S, :S]
    return (y - S // 2) ** 2 + (x - S // 3) ** 2 > radius**2


SYNTHETIC = {
    "bernoulli 0.1": (_bernoulli(0.1), "scattered"),
    "bernoulli 0.5": (_bernoulli(0.5), "scattered"),
    "bernoulli 0.7": (_bernoulli(0.7), "scattered"),
    "strokes 3 px": (_strokes(3), "strokes"),
    "strokes 6 px": (_strokes(6), "strokes"),
    "scratch 1 px": (_strokes(1), "strokes"),
    "disc r 20": (_disc(20), "holes"),
    "disc r 20 + bernoulli 0.3": (_disc(20) & _bernoulli(0.3), "holes"),
}
FULL = {"scattered": "table1", "strokes": "fig7_text", "holes": "large_holes"}
REDUCED = {"scattered": "table1_cpu", "strokes": "fig7_text_cpu", "holes": "large_holes_cpu"}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_damage_class_of_synthetic_masks(name):
    from dip.inpaint.autopreset import classify_damage

    known, kind = SYNTHETIC[name]
    assert classify_damage(known).kind == kind, classify_damage(known)


@pytest.mark.parametrize("name", ["bernoulli 0.5", "strokes 3 px", "disc r 20"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_auto_uses_the_full_preset_on_cuda_and_reduced_settings_on_a_cpu(name, device):
    from dip.data.presets import resolve
    from dip.inpaint.autopreset import choose

    known, kind = SYNTHETIC[name]
    choice = choose(known, device)
    assert choice.preset == (FULL if device == "cuda" else REDUCED)[kind]
    from dip.core.compute import native_bf16

    assert choice.precision == ("bf16" if device == "cpu" and native_bf16() else "fp32")
    resolve(choice.preset)  # a preset that exists and is valid
    line = choice.line()
    assert line.startswith(f"--preset auto: {choice.preset} ({choice.precision}) for ") and "\n" not in line
    assert ("reduced settings for cpu" in line) == (device == "cpu")


def test_every_preset_auto_can_pick_exists():
    from dip.data.presets import resolve
    from dip.inpaint.autopreset import KINDS, settings

    for device, entry in settings()["devices"].items():
        assert set(entry["presets"]) == set(KINDS), device
        for name in entry["presets"].values():
            resolve(name)


def test_reduced_presets_are_cheaper_versions_of_the_full_ones():
    from dip.data.presets import resolve

    for kind, full in FULL.items():
        f, r = resolve(full), resolve(REDUCED[kind])
        assert r["iterations"] < f["iterations"] and sum(r["n_down"]) <= sum(f["n_down"])
        assert len(r["n_down"]) == len(f["n_down"]) and r["upsample"] == f["upsample"]


def test_kate_text_mask_is_strokes():
    from dip.inpaint.autopreset import classify_damage

    mask = MIRROR / "fig7" / "kate_mask.png"
    if not mask.exists():
        pytest.skip(f"{mask} not in the data mirror")
    assert classify_damage(read_mask(mask, (512, 512))).kind == "strokes"


def test_inpaint_auto_says_what_it_chose_and_why(tmp_path, known):
    img, mask = _image(tmp_path / "img.png"), _save_mask("RGB", known, tmp_path / "mask.png")
    r = dip("inpaint", img, mask, "-o", tmp_path / "out.png", *FAST, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    chose = [line for line in r.stderr.splitlines() if "--preset auto:" in line]
    missing = f"{100 * (1 - known.mean()):.1f}% missing"
    from dip.core.compute import native_bf16

    precision = "bf16" if native_bf16() else "fp32"  # emulated bf16 is slower than fp32: auto does not pick it
    assert len(chose) == 1 and f"table1_cpu ({precision}) for scattered missing pixels on cpu: {missing}" in chose[0]
    assert ("no native bf16" in chose[0]) == (precision == "fp32"), chose
    assert "preset table1_cpu" in r.stdout


def test_auto_picks_bf16_on_a_cpu_only_where_the_cpu_has_it(monkeypatch, known):
    from dip.core import compute
    from dip.inpaint import autopreset

    monkeypatch.setattr(compute, "native_bf16", lambda: True)
    assert autopreset.choose(known, "cpu").precision == "bf16"
    monkeypatch.setattr(compute, "native_bf16", lambda: False)
    choice = autopreset.choose(known, "cpu")
    assert choice.precision == "fp32" and "no native bf16" in choice.line()
    assert autopreset.choose(known, "cuda").precision == "fp32"


@pytest.mark.parametrize("preset", ["large_holes", "large_holes_meshgrid"])
def test_large_hole_presets_run_on_a_tiny_image(tmp_path, preset):
    img = _image(tmp_path / "img.png")
    known = np.ones((H, W), bool)
    known[6:18, 10:26] = False  # a hole
    mask = _save_mask("L 0/1", known, tmp_path / "mask.png")
    narrow = ["--set", f"n_down=[4,4,4,4,4{',4' if preset == 'large_holes' else ''}]",
              "--set", f"n_up=[4,4,4,4,4{',4' if preset == 'large_holes' else ''}]"]
    out = tmp_path / "out.png"
    r = dip("inpaint", img, mask, "-o", out, "--preset", preset, *narrow, "--iterations", "3", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert f"preset {preset}" in r.stdout
    assert np.asarray(Image.open(out)).shape == (H, W, 3)


# ----------------------------------------------------------------- the ETA probe
def test_eta_is_printed_and_a_long_run_names_faster_choices(tmp_path, known, monkeypatch):
    img, mask = _image(tmp_path / "img.png"), _save_mask("RGB", known, tmp_path / "mask.png")
    r = dip("inpaint", img, mask, "-o", tmp_path / "quick.png", *FAST, "--preset", "fig7_text")
    assert r.returncode == 0, r.stderr
    assert "[dip] estimated time: " in r.stderr and "5 iterations at " in r.stderr
    assert "faster:" not in r.stderr  # far below 10 minutes
    monkeypatch.setenv("DIP_ETA_WARN_MINUTES", "0.00001")  # every run is "long"
    r = dip("inpaint", img, mask, "-o", tmp_path / "long.png", *FAST, "--preset", "fig7_text", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    faster = [line for line in r.stderr.splitlines() if "faster:" in line]
    assert len(faster) == 1, r.stderr
    assert "--preset auto (reduced settings for this device)" in faster[0] and "a CUDA GPU" in faster[0]


def test_the_estimate_counts_only_the_iterations_a_checkpoint_leaves(tmp_path, img, mask):
    """A fit that will resume from its checkpoint at iteration 8 of 12 has 4 iterations left, not 12."""
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest
    from dip.inpaint.time_estimate import Probe, estimate, eta_lines, probe_fit

    tiny = {"n_down": [8, 8, 8], "n_up": [8, 8, 8], "n_skip": [2, 2, 2], "iterations": 12, "eval_every": 2}
    req = FitRequest(image=img, mask=mask, gt=None, out=tmp_path / "fit", preset="table1",
                     params=resolve("table1", tiny), threads=1)
    assert probe_fit(req).resumes_at == 0
    fit = Fit(req, progress=False)
    fit.save(8, 1.0)
    fit.close()
    probe = probe_fit(req)
    assert probe.resumes_at == 8 and probe.seconds_per_iteration > 0
    probe = Probe(2.0, probe.resumes_at)  # 2 s per iteration, nothing else
    line = eta_lines(probe, estimate(probe, 12, 2), 12, "cpu", (32, 32), False, False)[0]
    assert line.startswith("estimated time: 8.0 s (4 iterations at 2.000 s/it on cpu, resuming at iteration 8 of 12")


def test_max_side_suggestion_scales_with_the_pixels():
    from dip.inpaint.time_estimate import faster_side

    assert faster_side(512, 512, 40 * 60, 10 * 60) == 256  # 4x too long: half the side
    assert faster_side(512, 512, 1000 * 3600, 10 * 60) is None  # not even 64 would do


def test_the_probe_does_not_change_the_result(tmp_path, known, monkeypatch):
    """Same seed, same output, with or without the throw-away probe fit before the real one."""
    import dip.inpaint.time_estimate
    from dip.cli import main

    img, mask = _image(tmp_path / "img.png"), _save_mask("RGB", known, tmp_path / "mask.png")
    with_probe, without = tmp_path / "with.png", tmp_path / "without.png"
    probed = []
    real_probe = dip.inpaint.time_estimate.probe_fit
    with monkeypatch.context() as m:
        m.setattr(dip.inpaint.time_estimate, "probe_fit", lambda req: dip.inpaint.time_estimate.Probe(1.0, 0))  # no probe at all
        assert main(["inpaint", str(img), str(mask), "-o", str(without), *FAST, "--no-keep-known"]) == 0
    monkeypatch.setattr(dip.inpaint.time_estimate, "probe_fit", lambda req: probed.append(1) or real_probe(req))
    assert main(["inpaint", str(img), str(mask), "-o", str(with_probe), *FAST, "--no-keep-known"]) == 0
    assert probed == [1]  # the probe ran...
    assert with_probe.read_bytes() == without.read_bytes()  # ...and changed nothing
