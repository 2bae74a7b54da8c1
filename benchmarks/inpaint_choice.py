"""`dip inpaint`'s default against the biharmonic fill, on the missing pixels, against the ground truth.

    python -m benchmarks.inpaint_choice --out /tmp/choice [--side 64] [--cases kate,house-text] [--dip-only]
                                        [-- --precision fp32 --threads 1 ...]   # passed on to dip inpaint

Cases: kate with its own text mask (the fig7 dataset; a window on its text) and Table 1 images with text,
scratch and hole masks drawn here from a seed (:func:`text_mask`, :func:`scratch_mask`, :func:`hole_mask`; the
text uses Pillow's bundled font, so its pixels follow the Pillow version), all cropped to ``--side`` (0: the
whole image). For each case the clean image and the mask are written to OUT/CASE/,
``dip inpaint clean.png mask.png -o default.png [options after --]`` runs (``--dip-only`` also runs
``--holdout 0``: the network alone, the old default), and every result is scored on the missing pixels (PSNR,
data range 1, as written) beside the biharmonic fill of :func:`dip.core.classical.fill`. Rows go to stdout and OUT/choice.csv. scikit-image's bundled sample images are kept
out on purpose: they are the independent check.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from benchmarks.common import data_folder

DATA = data_folder(None)
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while", "a", "photo", "keeps",
         "its", "scratches"]


def text_mask(h: int, w: int, seed: int) -> np.ndarray:
    """Known pixels (True) around lines of seeded words in Pillow's bundled font, strokes ~3 px, like kate's."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("L", (w, h), 0)
    draw, size = ImageDraw.Draw(canvas), max(10, h // 14)
    font = ImageFont.load_default(size=size)
    for top in range(size // 2, h - size, int(size * 1.8)):
        line = " ".join(rng.choice(WORDS, size=8))
        draw.text((int(rng.integers(0, size)), top), line, fill=255, font=font)
    return ~ndimage.binary_dilation(np.asarray(canvas) > 127, iterations=1)


def scratch_mask(h: int, w: int, seed: int, count: int = 12) -> np.ndarray:
    """Known pixels around ``count`` seeded random line segments 2-4 px wide (scratches)."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.2, 0.6) * max(h, w)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        draw.line([(int(x0), int(y0)), (int(x1), int(y1))], fill=255, width=int(rng.integers(2, 5)))
    return np.asarray(canvas) == 0


def hole_mask(h: int, w: int, seed: int, count: int = 4) -> np.ndarray:
    """Known pixels around ``count`` seeded discs of radius 6-10% of the side (holes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    missing = np.zeros((h, w), dtype=bool)
    for _ in range(count):
        r = rng.uniform(0.06, 0.10) * min(h, w)
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        missing |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return ~missing


MASKS = {"text": text_mask, "scratch": scratch_mask, "holes": hole_mask}
# name -> (dataset, image, mask kind or None for the dataset's own, crop centre (row, col) or None: the middle)
CASES = {
    "kate": ("fig7", "kate", None, (232, 264)),  # a window on the text (the 128x128 one at (168, 200))
    "house-text": ("table1", "house", "text", None),
    "peppers-scratch": ("table1", "peppers", "scratch", None),
    "cameraman-holes": ("table1", "cameraman", "holes", None),
    "barbara-text": ("table1", "barbara", "text", None),
    "boat-scratch": ("table1", "boat", "scratch", None),
    "montage-holes": ("table1", "montage", "holes", None),
    # 512x512 photos for the 5-minute budget at full size (--side 0); images never used to tune the choice
    "lena-text": ("table1", "lena", "text", None),
    "couple-holes": ("table1", "couple", "holes", None),
    "hill-scratch": ("table1", "hill", "scratch", None),
    "man-text": ("table1", "man", "text", None),
    # the independent check: scikit-image's bundled sample (never used to tune anything; 512x512 RGB)
    "astronaut-scratch": ("skimage", "astronaut", "scratch", None),
}


def prepare(case: str, folder: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Write OUT/CASE/clean.png and mask.png; return the clean image (C, H, W) in [0, 1] and the known mask."""
    dataset, name, kind, centre = CASES[case]
    if dataset == "skimage":
        import skimage.data

        clean = np.asarray(getattr(skimage.data, name)())
    else:
        clean = np.asarray(Image.open(DATA / dataset / f"{name}.png"))
    own = None if kind else np.asarray(Image.open(DATA / dataset / f"{name}_mask.png").convert("L")) > 127
    if side:
        cy, cx = centre or (clean.shape[0] // 2, clean.shape[1] // 2)
        t, l = cy - side // 2, cx - side // 2
        clean, own = clean[t:t + side, l:l + side], None if own is None else own[t:t + side, l:l + side]
    known = own if own is not None else MASKS[kind](*clean.shape[:2], seed=sum(map(ord, case)))
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(clean).save(folder / "clean.png")
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(folder / "mask.png")
    chw = clean.astype(np.float64) / 255.0
    return (chw[None] if chw.ndim == 2 else chw.transpose(2, 0, 1)), known


def missing_psnr(clean: np.ndarray, known: np.ndarray, result: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(clean[:, ~known], result[:, ~known], data_range=1.0))


def first_estimate(stderr: str) -> str:
    """The time ``dip inpaint``'s first estimate line promised (e.g. ``4.8 min``), or "" when it printed none."""
    line = next((x for x in stderr.splitlines() if "estimated time: " in x), "")
    return line.split("estimated time: ", 1)[-1].split(" (", 1)[0] if line else ""


def stopped(stderr: str) -> str:
    """Where the stopping rule ended the fit, as ``N/T`` iterations, or "" when it ran every iteration."""
    line = next((x for x in stderr.splitlines() if "; stopping after " in x), "")
    return "/".join(line.split("; stopping after ", 1)[1].split(" iterations")[0].split(" of ")) if line else ""


def inpaint(folder: Path, name: str, extra: list[str]) -> tuple[np.ndarray, float, str, str, str]:
    """Run ``dip inpaint`` on the case; the result in [0, 1], its wall seconds, the line that says what, the
    first time estimate, and where the stopping rule ended it (``N/T``, or "")."""
    out = folder / f"{name}.png"
    cmd = [sys.executable, "-m", "dip", "inpaint", str(folder / "clean.png"), str(folder / "mask.png"), "-o",
           str(out), "--no-progress", *extra]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"inpaint_choice: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    a = np.asarray(Image.open(out)).astype(np.float64) / 255.0
    what = r.stdout.strip().splitlines()[-1].split(": ", 1)[-1]
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), seconds, what, first_estimate(r.stderr), \
        stopped(r.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.inpaint_choice", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated (default: all): " + ", ".join(CASES))
    ap.add_argument("--dip-only", action="store_true", help="also run --holdout 0 (the network alone)")
    ap.add_argument("--side", type=int, default=64, help="crop side (default %(default)s; 0: whole images)")
    ap.add_argument("inpaint_args", nargs="*", help="after --: options for dip inpaint")
    args = ap.parse_args(argv)
    from dip.core.classical import fill

    rows = []
    for case in args.cases.split(","):
        folder = args.out / case
        clean, known = prepare(case, folder, args.side)
        t = time.perf_counter()
        bih = fill(clean, known)
        row = {"case": case, "size": f"{clean.shape[2]}x{clean.shape[1]}", "missing_pct": 100 * (1 - known.mean()),
               "biharmonic": missing_psnr(clean, known, bih), "biharmonic_s": time.perf_counter() - t}
        result, row["default_s"], row["default_what"], row["default_eta"], row["default_stopped"] = inpaint(
            folder, "default", args.inpaint_args)
        row["default"] = missing_psnr(clean, known, result)
        if args.dip_only:
            result, row["dip_only_s"], *_ = inpaint(folder, "dip_only", [*args.inpaint_args, "--holdout", "0"])
            row["dip_only"] = missing_psnr(clean, known, result)
        rows.append(row)
        print(", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.out / "choice.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
