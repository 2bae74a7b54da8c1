"""A stopped `dip fit`: SIGKILL, SIGINT and SIGTERM, the checkpoint they leave, and resuming from it.

Every test waits for an observable event before it signals: a `[dip] it N/M` progress line on stderr (printed
per evaluation when stderr is not a terminal, i.e. with --no-progress) tells that the loop runs and how far
it got. Deadlines only bound a failure. The checkpoint is read with `torch.load` (key `iteration`).
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
import torch

from conftest import TINY, Watched, dip, make_image, make_mask

BASE = ["--preset", "table1", "--threads", "1", "--no-progress", *TINY]


def fit_args(img: Path, mask: Path, out: Path, *extra: str) -> list[str]:
    return ["fit", "--image", img, "--mask", mask, "--out", out, *BASE, *extra]


def fit(*args: str) -> str:
    r = dip(*args)
    assert r.returncode == 0, r.stderr
    return r.stderr


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def checkpoint_iteration(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["iteration"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_after_sigkill_is_bitwise_identical(tmp_path, img, mask, precision):
    extra = ["--iterations", "200", "--checkpoint-every", "10", "--precision", precision]
    ref = tmp_path / "ref"
    fit(*fit_args(img, mask, ref, *extra))

    out = tmp_path / "killed"
    ckpt = tmp_path / "killed.ckpt" / "checkpoint.pt"
    p = Watched(*fit_args(img, mask, out, *extra))
    try:
        # "it N/200" with N > 30 is printed after the checkpoints of iterations 10, 20 and 30 were moved into place
        p.wait_for(r"\[dip\] it (\d+)/200 ", when=lambda m: int(m.group(1)) > 30)
    finally:
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait()
    assert p.proc.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed fit must leave no output"
    at = checkpoint_iteration(ckpt)
    assert at % 10 == 0 and 30 <= at < 200, at

    fit(*fit_args(img, mask, out, *extra))
    m, r = metrics(out), metrics(ref)
    assert m["resumed_from"] == at
    assert (out / "output.png").read_bytes() == (ref / "output.png").read_bytes()
    assert m["psnr"] == r["psnr"] and m["ssim"] == r["ssim"] and m["psnr_best"] == r["psnr_best"]
    assert (out / "curve.csv").read_text() == (ref / "curve.csv").read_text()
    assert not ckpt.parent.exists(), "the checkpoint is removed after success"
    assert not list(tmp_path.glob("*.tmp-*"))


ITERS = "1000"  # ~5 s on an idle core: the first progress line comes long before the end


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted fit with the signal tests' arguments: what a resumed fit must equal."""
    d = tmp_path_factory.mktemp("uninterrupted")
    img, mask = make_image(d / "img.png"), make_mask(d / "mask.png")
    fit(*fit_args(img, mask, d / "ref", "--iterations", ITERS))
    return d / "ref"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_checkpoint_exits_130_and_the_same_command_resumes(tmp_path, uninterrupted, sig):
    img, mask = make_image(tmp_path / "img.png"), make_mask(tmp_path / "mask.png")  # the fixture's inputs
    out = tmp_path / "out"
    ckpt = tmp_path / "out.ckpt" / "checkpoint.pt"
    args = fit_args(img, mask, out, "--iterations", ITERS)
    p = Watched(*args)
    try:
        p.wait_for(rf"\[dip\] it \d+/{ITERS} ")  # inside the loop: the stop handler is installed
        p.proc.send_signal(sig)
        rc, err = p.finish()
    finally:
        p.kill()
    assert rc == 130, err
    last = err.strip().splitlines()[-1]
    m = re.fullmatch(rf"dip: error: fit {re.escape(str(out))}: stopped by {sig.name} at iteration (\d+); "
                     r"checkpoint saved, run the same command to resume", last)
    assert m, last
    at = int(m.group(1))
    assert 0 < at < int(ITERS)
    assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))
    assert checkpoint_iteration(ckpt) == at  # the checkpoint holds what the message says

    err = fit(*args)  # the same command again
    assert f"resumed from {ckpt} at iteration {at}" in err
    assert metrics(out)["resumed_from"] == at and metrics(out)["iterations"] == int(ITERS)
    assert (out / "output.png").read_bytes() == (uninterrupted / "output.png").read_bytes()
    assert (out / "curve.csv").read_text() == (uninterrupted / "curve.csv").read_text()
    assert not ckpt.parent.exists()


def _other_inputs(tmp_path: Path) -> dict[str, tuple[list, list]]:
    """(base, other) --image/--mask/--crop arguments that differ in exactly one respect each; see CHANGES."""
    img, mask = make_image(tmp_path / "img.png"), make_mask(tmp_path / "mask.png")
    other_img, other_mask = make_image(tmp_path / "img2.png", seed=5), make_mask(tmp_path / "mask2.png", seed=7)
    big, big_mask = make_image(tmp_path / "big.png", (40, 40)), make_mask(tmp_path / "bigmask.png", (40, 40))
    same = ["--image", img, "--mask", mask]
    return {
        "lr": (same, same + ["--lr", "0.002"]),
        "seed": (same, same + ["--seed", "1"]),
        "precision": (same, same + ["--precision", "bf16"]),
        "image": (same, ["--image", other_img, "--mask", mask]),
        "mask": (same, ["--image", img, "--mask", other_mask]),
        # same files, same shapes, another window: only the crop differs
        "crop": (["--image", big, "--mask", big_mask, "--crop", "32"],
                 ["--image", big, "--mask", big_mask, "--crop", "32", "--crop-at", "0,0"]),
    }


CHANGES = ["lr", "seed", "precision", "image", "mask", "crop"]


@pytest.mark.parametrize("change", CHANGES)
def test_checkpoint_from_other_arguments_or_inputs_is_not_mixed_in(tmp_path, change):
    base, other = _other_inputs(tmp_path)[change]
    ckdir = tmp_path / "ck"
    common = ["--iterations", "30", *BASE, "--checkpoint-every", "10", "--checkpoint-dir", ckdir]
    fit("fit", "--out", tmp_path / "first", *base, *common, "--keep-checkpoint")
    assert checkpoint_iteration(ckdir / "checkpoint.pt") == 20

    err = fit("fit", "--out", tmp_path / "other", *other, *common)
    assert "made with other arguments or inputs" in err and "resumed from" not in err
    assert metrics(tmp_path / "other")["resumed_from"] is None
    fresh = tmp_path / "fresh"
    fit("fit", "--out", fresh, *other, "--iterations", "30", *BASE)
    assert (tmp_path / "other" / "output.png").read_bytes() == (fresh / "output.png").read_bytes()
    assert (tmp_path / "other" / "curve.csv").read_text() == (fresh / "curve.csv").read_text()
