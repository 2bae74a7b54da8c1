"""A stopped `dip fit`: SIGKILL, SIGINT and SIGTERM, the checkpoint they leave, and resuming from it.

Every test waits for an observable event before it signals: a `[dip] it N/M` progress line on stderr (printed
per evaluation when stderr is not a terminal, i.e. with --no-progress) tells that the loop runs and how far
it got. Deadlines only bound a failure. The checkpoint is read with `torch.load(weights_only=True)` (key
`iteration`): it is plain data, and a checkpoint that is not (one whose unpickling would run code) is refused.
"""

from __future__ import annotations

import json
import logging
import math
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
    return torch.load(path, map_location="cpu", weights_only=True)["iteration"]


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


# ----------------------------------------------------------------------------------- a checkpoint is data, not code

class RunsCode:
    """What a hostile checkpoint holds: an object whose unpickling calls ``exec``, here to write a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_a_checkpoint_that_would_run_code_is_refused_and_the_fit_starts_fresh(tmp_path, img, mask):
    ckdir, marker = tmp_path / "ck", tmp_path / "PWNED"
    common = ["--iterations", "30", "--checkpoint-every", "10", "--checkpoint-dir", ckdir]
    fit(*fit_args(img, mask, tmp_path / "fresh", *common, "--keep-checkpoint"))
    real = torch.load(ckdir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert real["iteration"] == 20
    # the attacker's best effort: this very fit's checkpoint (the right fingerprint) with a payload added
    torch.save({**real, "observers": {**real["observers"], "payload": RunsCode(marker)}}, ckdir / "checkpoint.pt")

    err = fit(*fit_args(img, mask, tmp_path / "out", *common))
    assert not marker.exists(), "loading the checkpoint ran the code planted in it"
    said = [line for line in err.splitlines() if "checkpoint" in line]
    assert len(said) == 1 and re.fullmatch(
        rf"\[dip\] ignoring unreadable checkpoint {re.escape(str(ckdir / 'checkpoint.pt'))} \(it holds a Python "
        r"object \(\S*exec\) besides tensors and plain data; refused: loading it could run code\); starting from "
        r"iteration 0", said[0]), err
    assert metrics(tmp_path / "out")["resumed_from"] is None  # a fresh start: the same numbers as a fresh fit
    for name in ("output.png", "output_ema.png", "curve.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


@pytest.mark.parametrize("content", ["code", "garbage", "truncated"])
def test_an_unreadable_checkpoint_is_one_warning_line_and_none(tmp_path, caplog, content):
    from dip.engine.checkpoint import Checkpoint

    ck, marker = Checkpoint(tmp_path / "ck", "f" * 64), tmp_path / "PWNED"
    ck.save(10, {"z": torch.zeros(2), "curve": [{"iteration": 0, "loss": 1.0}], "best": (-math.inf, -1)})
    assert ck.load()["iteration"] == 10  # what save writes loads as plain data
    if content == "code":
        torch.save({"fingerprint": ck.fingerprint, "iteration": 10, "z": RunsCode(marker)}, ck.path)
    elif content == "garbage":
        ck.path.write_bytes(b"\x80\x02not a checkpoint")
    else:
        ck.path.write_bytes(ck.path.read_bytes()[:200])
    with caplog.at_level(logging.WARNING, logger="dip.engine.checkpoint"):
        assert ck.load() is None
    assert not marker.exists()
    assert len(caplog.records) == 1 and "\n" not in caplog.text.strip(), caplog.text
    assert caplog.records[0].getMessage().startswith(f"ignoring unreadable checkpoint {ck.path} (")
    assert "weights_only" not in caplog.text  # never the advice to load it with full pickle
