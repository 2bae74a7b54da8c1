"""`dip figure7`: the Figure 7 montage (png + pdf).

Top row: text inpainting on kate.png; bottom row: Barbara with 50% of pixels missing. Columns: the corrupted
observation (the fit's observed.png), ours (output.png, with its final-iterate PSNR), with ``--kate-baseline`` /
``--barbara-baseline`` the classical fill of the same inputs (``dip baseline``'s output.png, with its PSNR; refused
when made from another mask than the fit's), and the original (the source image, cropped with metrics.json's
``crop`` box when the fit was run on a crop). Under each result its PSNR, and on the missing pixels alone when
recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dip.cliconv import Parser, output_option
from dip.data.atomic import StagedFiles
from dip.data.config import PAPER_PROFILE
from dip.data.crop import CropBox
from dip.data.images import read_image, to_uint8
from dip.errors import DipError
from dip.report.classical import check_against_fit, check_baseline, inputs_of, key_of
from dip.report.results import check_profile, load_fit_metrics


@dataclass
class Row:
    """One row of the montage: uint8 images and the labels under 'ours' and the classical fill (if any)."""

    observed: np.ndarray
    ours: np.ndarray
    original: np.ndarray
    label: str
    classical: np.ndarray | None = None
    classical_label: str = ""
    classical_title: str = ""


def crop(a: np.ndarray, box: dict[str, int] | None, where: Path) -> np.ndarray:
    """``a`` (H, W[, 3]) cut to metrics.json's crop box {top, left, height, width}; unchanged when box is None."""
    cropbox = CropBox.from_record(box, where)
    if cropbox is None:
        return a
    if not cropbox.inside(a.shape[:2]):
        raise DipError(where, f"crop box {box} lies outside the {a.shape[1]}x{a.shape[0]} source image")
    return a[cropbox.slices]


def load_row(fit_dir: Path, image: Path, profile: str, paper: float | None) -> Row:
    """Read a fit's observed/output PNGs and metrics.json, and the cropped original; check they agree in size."""
    m = load_fit_metrics(fit_dir)
    where = fit_dir / "metrics.json"
    check_profile(m, where, profile)
    observed = to_uint8(read_image(fit_dir / "observed.png"))
    ours = to_uint8(read_image(fit_dir / "output.png"))
    original = crop(to_uint8(read_image(image)), m.get("crop"), where)
    for name, a in (("observed.png", observed), ("output.png", ours)):
        if a.shape != original.shape:
            raise DipError(fit_dir / name, f"is {_size(a)} but the (cropped) original {image} is {_size(original)}")
    label = _label(m)
    if paper is not None:
        label += f"\n(paper {paper:.2f} dB)"
    return Row(observed, ours, original, label)


def _label(m: dict[str, Any]) -> str:
    """'PSNR x dB', and the PSNR on the missing pixels alone on a second line when metrics.json has it."""
    psnr, missing = m.get("psnr"), m.get("psnr_missing")
    label = "PSNR n/a" if psnr is None else f"PSNR {psnr:.2f} dB"
    return label + ("" if missing is None else f"\nmissing pixels {missing:.2f} dB")


def add_classical(row: Row, fit_dir: Path, baseline_dir: Path, profile: str) -> Row:
    """The row with the classical fill of the same inputs beside ours (refused when made from another mask,
    image or crop than the fit's, or for another task, image or seed)."""
    fit, m = load_fit_metrics(fit_dir), load_fit_metrics(baseline_dir)
    where = baseline_dir / "metrics.json"
    check_baseline(m, where, profile)
    check_against_fit(m, where, (fit_dir, inputs_of(fit)) if key_of(m) == key_of(fit) else None, key_of(m))
    classical = to_uint8(read_image(baseline_dir / "output.png"))
    if classical.shape != row.ours.shape:
        raise DipError(baseline_dir / "output.png", f"is {_size(classical)} but the fit's output is {_size(row.ours)}")
    return Row(row.observed, row.ours, row.original, row.label, classical, _label(m),
               f"Classical fill ({m['method']})")


def _size(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}" + (" RGB" if a.ndim == 3 else " gray")


def _show(ax: Any, a: np.ndarray, title: str, label: str = "") -> None:
    if a.ndim == 2:
        ax.imshow(a, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(a, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(label, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def draw(rows: list[tuple[Row, tuple[str, str, str]]], profile: str, png: Path, pdf: Path) -> None:
    """Draw the montage (Agg, no pyplot state) into ``png`` and ``pdf``: a fourth column, the classical fill,
    between ours and the original when the rows have one."""
    from matplotlib.figure import Figure

    classical = any(row.classical is not None for row, _ in rows)
    ncols = 4 if classical else 3
    fig = Figure(figsize=(3.2 * ncols, 8.4), dpi=150, layout="constrained")
    fig.get_layout_engine().set(h_pad=0.12, hspace=0.06)  # room for the PSNR label under the top row
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for (row, titles), ax in zip(rows, axes):
        _show(ax[0], row.observed, titles[0])
        _show(ax[1], row.ours, titles[1], row.label)
        if classical and row.classical is not None:
            _show(ax[2], row.classical, row.classical_title, row.classical_label)
        elif classical:
            ax[2].set_axis_off()
        _show(ax[-1], row.original, titles[2])
    title = f"Figure 7 (Deep Image Prior), profile {profile}"
    if profile != PAPER_PROFILE:
        title += "\n(reduced profile — not comparable with the paper)"
    fig.suptitle(title, fontsize=12)
    fig.savefig(png, format="png", metadata={"Software": None})
    fig.savefig(pdf, format="pdf", metadata={"CreationDate": None, "Creator": None, "Producer": None})


def main(argv: list[str] | None = None) -> int:
    """`dip figure7`."""
    p = Parser(prog="dip figure7", description="Draw the Figure 7 montage (png + pdf): "
                                "text inpainting on kate (top) and Barbara with 50% missing pixels (bottom).")
    p.add_argument("--kate-fit", type=Path, required=True, help="fit directory of the kate text-inpainting fit")
    p.add_argument("--barbara-fit", type=Path, required=True, help="fit directory of a table1 barbara fit")
    p.add_argument("--kate-image", type=Path, required=True, help="the source kate.png")
    p.add_argument("--barbara-image", type=Path, required=True, help="the source barbara.png")
    p.add_argument("--paper-barbara", type=float, help="the paper's Barbara PSNR (dB), shown under ours")
    p.add_argument("--kate-baseline", type=Path, help="the kate fit's classical fill (dip baseline folder)")
    p.add_argument("--barbara-baseline", type=Path, help="the barbara fit's classical fill (dip baseline folder)")
    p.add_argument("--profile", required=True, help="the profile both fits must be tagged with")
    output_option(p, "figure7.png; the pdf is written beside it")
    args = p.parse_args(argv)
    if args.output.suffix.lower() != ".png":
        raise DipError(args.output, "-o/--output must be a .png path (the .pdf is written beside it)")
    if args.output.parent.exists() and not args.output.parent.is_dir():
        raise DipError(args.output.parent, "is not a directory")
    kate = load_row(args.kate_fit, args.kate_image, args.profile, None)
    barbara = load_row(args.barbara_fit, args.barbara_image, args.profile, args.paper_barbara)
    if args.kate_baseline:
        kate = add_classical(kate, args.kate_fit, args.kate_baseline, args.profile)
    if args.barbara_baseline:
        barbara = add_classical(barbara, args.barbara_fit, args.barbara_baseline, args.profile)
    rows = [(kate, ("Corrupted (text)", "Ours", "Original")),
            (barbara, ("50% missing pixels", "Ours", "Original"))]
    pdf = args.output.with_suffix(".pdf")
    with StagedFiles() as st:
        draw(rows, args.profile, st.path(args.output), st.path(pdf))
    print(f"wrote {args.output} and {pdf}")
    return 0
