"""Score `dip inpaint` results against the clean image, and draw the README's before/after picture.

    .venv/bin/python tools/inpaint_compare.py CLEAN MASK RESULT [RESULT ...] [--picture OUT.png --side 320]

For each RESULT it prints three PSNRs against CLEAN (scikit-image, data range 1, 8-bit files as written):
the whole image as written, the missing pixels only (where MASK is black), and the whole image with the known
pixels put back (what `dip inpaint` writes by default; equal to the first for such a file, and the way to
score a `--no-keep-known` result like `dip fit`'s output.png, which is raw network output).

``--picture`` writes a side-by-side PNG: the damaged input (CLEAN x MASK, what the fit sees) and the first
RESULT, each downscaled to ``--side`` pixels (LANCZOS), with a caption strip under each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.metrics import peak_signal_noise_ratio

from dip.data.images import read_image, read_mask


def scores(clean: np.ndarray, known: np.ndarray, result: np.ndarray) -> dict[str, float]:
    """PSNR (dB) of ``result`` against ``clean`` ((C, H, W) in [0, 1]): whole, missing only, known put back."""
    composed = np.where(known[None], clean, result)
    return {
        "whole": float(peak_signal_noise_ratio(clean, result, data_range=1.0)),
        "missing": float(peak_signal_noise_ratio(clean[:, ~known], result[:, ~known], data_range=1.0)),
        "known_put_back": float(peak_signal_noise_ratio(clean, composed, data_range=1.0)),
    }


def panel(pixels: np.ndarray, side: int, caption: str) -> Image.Image:
    """(C, H, W) in [0, 1] -> an RGB image ``side`` wide with ``caption`` in a strip below."""
    a = np.rint(np.moveaxis(pixels, 0, -1) * 255).astype(np.uint8)
    im = Image.fromarray(a.squeeze()).convert("RGB")
    im = im.resize((side, round(im.height * side / im.width)), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (im.width, im.height + 22), "white")
    out.paste(im, (0, 0))
    ImageDraw.Draw(out).text((6, im.height + 5), caption, fill="black")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clean", type=Path)
    ap.add_argument("mask", type=Path)
    ap.add_argument("results", type=Path, nargs="+")
    ap.add_argument("--picture", type=Path, help="write the before/after side-by-side here")
    ap.add_argument("--side", type=int, default=320, help="width of each panel (pixels)")
    ap.add_argument("--caption", default="dip inpaint (--preset auto)", help="caption of the result panel")
    args = ap.parse_args()
    clean = read_image(args.clean).astype(np.float64)
    known = read_mask(args.mask, clean.shape[1:])
    for path in args.results:
        s = scores(clean, known, read_image(path).astype(np.float64))
        print(f"{path}: whole {s['whole']:.2f} dB, missing pixels {s['missing']:.2f} dB, "
              f"known put back {s['known_put_back']:.2f} dB")
    if args.picture:
        first = read_image(args.results[0]).astype(np.float64)
        left = panel(clean * known[None], args.side, "damaged: image x mask")
        right = panel(first, args.side, args.caption)
        both = Image.new("RGB", (left.width + right.width + 8, max(left.height, right.height)), "white")
        both.paste(left, (0, 0))
        both.paste(right, (left.width + 8, 0))
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        both.save(args.picture, optimize=True)
        print(f"wrote {args.picture} ({both.width}x{both.height})")


if __name__ == "__main__":
    main()
