"""`dip inpaint` on typed options: parsed once into a frozen InpaintOptions, the preset and precision returned as a
value (autopreset.pick), and the device resolved once for the memory checks, auto's choice, the probe and the fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, make_image
from dip.cli import build_parser
from dip.inpaint.options import InpaintOptions


def _options(*flags: str) -> InpaintOptions:
    return InpaintOptions.from_namespace(build_parser().parse_args(["inpaint", "img.png", "mask.png", "-o", "out.png",
                                                                     *flags]))


def test_the_options_are_parsed_once_and_frozen():
    opts = _options("--set", "lr=0.02", "--iterations", "7", "--crop", "16", "--no-keep-known")
    assert (opts.fit.preset, opts.fit.precision, opts.fit.device) == ("auto", None, "auto")
    assert opts.fit.sets == (("lr", 0.02),) and opts.fit.crop == 16 and opts.keep_known is False
    assert opts.fit.params("table1")["iterations"] == 7 and opts.fit.params("table1")["lr"] == 0.02
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.fit.precision = "bf16"  # type: ignore[misc]


def test_the_choice_is_returned_not_written_into_the_options(monkeypatch):
    from dip.core import compute
    from dip.inpaint import autopreset

    monkeypatch.setattr(compute, "native_bf16", lambda: False)
    known = np.random.default_rng(3).random((24, 40)) >= 0.4  # scattered damage
    opts = _options()
    auto = autopreset.pick(opts.fit.preset, opts.fit.precision, known, "cpu")
    assert (auto.preset, auto.precision, auto.reduced) == ("table1_cpu", "fp32", True)
    assert auto.auto is not None and "--preset auto: table1_cpu (fp32)" in auto.auto.line()
    assert (opts.fit.preset, opts.fit.precision) == ("auto", None)  # unchanged
    assert autopreset.pick("auto", "bf16", known, "cpu").precision == "bf16"  # --precision wins over auto
    named = autopreset.pick("fig7_text", None, known, "cpu")
    assert (named.preset, named.precision, named.auto, named.reduced) == ("fig7_text", "fp32", None, False)


def test_dip_inpaint_resolves_the_device_once(tmp_path, monkeypatch):
    """One pick_device and one place for the header check, auto's choice, the mask check, the probe and the fit."""
    from dip.cli import main
    from dip.core import compute

    calls = {"pick_device": 0, "place": 0}

    def counted(name, real):
        def call(*args, **kw):
            calls[name] += 1
            return real(*args, **kw)
        return call

    for name in calls:
        monkeypatch.setattr(compute, name, counted(name, getattr(compute, name)))
    img = make_image(tmp_path / "img.png", (24, 40), rgb=True)
    known = np.random.default_rng(3).random((24, 40)) >= 0.4
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    assert main(["inpaint", str(img), str(tmp_path / "mask.png"), "-o", str(tmp_path / "out.png"), *TINY,
                 "--iterations", "3", "--threads", "1", "--mask-convention", "white-known", "--no-progress"]) == 0
    assert calls == {"pick_device": 1, "place": 1}


@pytest.mark.parametrize("side, expected", [(512, 320), (373, None), (380, 581), (256, None), (2048, 100)])
def test_auto_scales_the_cpu_iterations_with_the_image(side, expected):
    """auto.yaml's CPU budget: min(600, max(100, 83886080 / (H*W))) iterations; None where the preset's 600 hold."""
    from dip.inpaint import autopreset

    known = np.ones((side, side), bool)
    known[side // 2, 2:-2] = False  # a thin line: strokes -> fig7_text_cpu (600 iterations)
    choice = autopreset.choose(known, "cpu")
    assert choice.preset == "fig7_text_cpu"
    assert choice.iterations == expected
    assert ("iterations for this size" in choice.line()) == (expected is not None)
    assert autopreset.choose(known, "cuda").iterations is None  # a GPU runs the full preset


def test_the_budget_reaches_the_fit_unless_iterations_are_given(tmp_path, monkeypatch):
    """`dip inpaint` fits auto's budgeted iterations; --iterations (or --set iterations=) wins over it."""
    from dip.inpaint import autopreset
    from dip.inpaint.command import run

    monkeypatch.setattr(autopreset, "budget_iterations", lambda entry, preset, pixels: 7)
    img = make_image(tmp_path / "img.png", size=(24, 40))
    known = np.ones((24, 40), bool)
    known[12, 4:-4] = False  # strokes
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    common = [str(img), str(tmp_path / "mask.png"), *TINY, "--device", "cpu", "--threads", "1", "--no-progress"]
    for flags, iterations in (([], 7), (["--iterations", "5"], 5), (["--set", "iterations=4"], 4)):
        out = tmp_path / f"out{iterations}.png"
        opts = InpaintOptions.from_namespace(build_parser().parse_args(["inpaint", *common, "-o", str(out), *flags]))
        assert run(opts)["iterations"] == iterations and out.exists()
