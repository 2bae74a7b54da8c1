"""The `dip` command: fit, inpaint, mask (here) and fetch, report, gate, figure7, describe (their modules).

The conventions every command line follows (-o/--output, hidden old spellings, defaults in the help, WxH):
:mod:`dip.cliconv`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dip import cliconv
from dip.clitext import CONVENTION_HELP, INPAINT_PRESETS, MASK_RULES, PROGRESS_HELP  # the help of dip inpaint
from dip.core import modes
from dip.errors import EXIT_INTERRUPTED, EXIT_USAGE, DipError, os_problem

DELEGATED: dict[str, tuple[str, str, str]] = {
    "fetch": ("dip.data.fetch", "main", "fetch and verify the input images (mirror or HTTPS, sha256-checked)"),
    "report": ("dip.report.aggregate", "main", "aggregate fits into metrics.csv, Table 1, curves and summary.json"),
    "gate": ("dip.report.gate", "main", "the CI regression gate: a metrics.csv against the committed baseline"),
    "figure7": ("dip.report.figure7", "main", "draw the Figure 7 montage"),
    "baseline": ("dip.engine.baseline", "main", "the classical (biharmonic) fill of a fit's inputs, scored like the fit"),
    "describe": ("dip.describe", "main", "print a preset's network, its shapes and parameter count"),
}
RENAMED = {"compare": "gate"}  # old command names, still accepted (not listed in --help)


def _key_value(text: str) -> tuple[str, Any]:
    from dip.data.presets import parse_key_value

    try:
        return parse_key_value(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_fit_options(p: cliconv.Parser, default_preset: str | None, preset_help: str, precision_help: str,
                     inpaint: bool = False) -> None:
    """The options fit and inpaint share; dip inpaint puts the reproduction-only ones in an "advanced" group."""
    if inpaint:
        hyper = run = cliconv.group(p, "fit")
        adv_h = adv_r = cliconv.group(p, "advanced (reproduction and tuning; the defaults suit a photo)")
    else:
        hyper = adv_h = cliconv.group(p, "hyperparameters (override single preset values)")
        run = adv_r = cliconv.group(p, "run")
    hyper.add_argument("--preset", required=default_preset is None, default=default_preset, help=preset_help)
    adv_h.add_argument("--presets-file", dest="presets", type=Path, metavar="FILE",
                       help="another presets file (default: the packaged presets.yaml)")
    cliconv.hidden_alias(adv_h, "--presets", "presets", type=Path)
    hyper.add_argument("--iterations", type=int, help="(default: the preset's)")
    adv_h.add_argument("--lr", type=float, help="Adam's learning rate (default: the preset's)")
    adv_h.add_argument("--reg-noise-std", type=float, help="sigma of the input perturbation (default: the preset's)")
    adv_h.add_argument("--eval-every", type=int, help="iterations between evaluations (default: the preset's)")
    adv_h.add_argument("--set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="override any preset key, value in YAML (e.g. --set n_down=[32,32,32,32,32]); repeatable")
    run.add_argument("--seed", type=int, default=0, help="seeds the network, its input z and the perturbation")
    run.add_argument("--device", default="auto", choices=modes.DEVICES,
                     help="auto: CUDA, else MPS, else the CPU")
    run.add_argument("--threads", type=int, help="torch threads (default: SLURM_CPUS_PER_TASK or the CPU affinity)")
    run.add_argument("--precision", default="fp32", choices=modes.PRECISION_CHOICES, help=precision_help)
    adv_r.add_argument("--memory-format", default="auto", choices=modes.MEMORY_FORMATS,
                       help="the layout of activations (auto: the faster one for the device and precision)")
    adv_r.add_argument("--cuda-graph", default="auto", choices=modes.CUDA_GRAPH_MODES,
                       help="replay forward + backward as one CUDA graph (auto: on CUDA devices; same numbers)")
    adv_r.add_argument("--deterministic", action="store_true",
                       help="CUDA: deterministic algorithms, no cudnn autotuning (CPU runs are deterministic anyway)")
    adv_r.add_argument("--crop", type=int, metavar="N",
                       help="fit an NxN crop (reduced-cost profiles); central unless --crop-at")
    adv_r.add_argument("--crop-at", type=cliconv.parse_corner, metavar="TOP,LEFT", help="top-left corner of the --crop window")
    adv_r.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                       help="write a resumable checkpoint every N iterations (0: only on SIGINT/SIGTERM)")
    adv_r.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                       help="default: a .ckpt folder beside the output")
    adv_r.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint after success")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=PROGRESS_HELP)


class _Parser(cliconv.Parser):
    """The `dip` parser: the project's convention (:mod:`dip.cliconv`)."""


def _add_fit(sub: Any) -> None:
    f = sub.add_parser("fit", help="fit one image (the reproduction workhorse)",
                       description="Fit the skip network to IMAGE x MASK and score it against the ground truth.")
    f.add_argument("image", type=Path, nargs="?", metavar="IMAGE",
                   help="the clean image; the observation is IMAGE x MASK")
    f.add_argument("mask", type=Path, nargs="?", metavar="MASK",
                   help="right after IMAGE; 255 (or 1) = known, 0 = missing, as dip mask writes them "
                        "(default: every pixel known)")
    cliconv.positional_alias(f, "--image", "image", type=Path)
    cliconv.positional_alias(f, "--mask", "mask", type=Path)
    cliconv.require_later(f, "image", "IMAGE")
    f.add_argument("--gt", type=Path, help="ground truth (default: IMAGE)")
    cliconv.output_option(f, "output directory (metrics.json, curve.csv, output.png, ...)")
    f.add_argument("--tag", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="recorded in metrics.json under tags (the pipeline records profile, task, image)")
    e = cliconv.group(f, "engine")
    e.add_argument("--engine", choices=["ours", "authors"], default="ours",
                   help="ours (dip.engine.fit) or authors: the authors' network (their models package, fetched as the "
                        "manifest's authors_code dataset) in a loop written after their notebooks (dip.engine.authors; "
                        "fp32 only); it also writes output_shown.png, what the notebook shows at the end")
    e.add_argument("--authors-code", type=Path, default=Path("data/raw/authors_code"), metavar="DIR",
                   help="the fetched authors_code dataset (`dip fetch --dataset authors_code`)")
    e.add_argument("--manifest", type=Path, default=Path("config/datasets.yaml"),
                   help="the manifest that verifies the authors' code")
    _add_fit_options(f, None, "named preset from presets.yaml (table1, fig7_text, large_holes, "
                              "large_holes_meshgrid, and the reduced *_cpu ones)",
                    "the fit's numeric precision (auto: bf16 where the hardware computes it natively, else fp32)")


def _add_inpaint(sub: Any) -> None:
    i = sub.add_parser("inpaint", help="restore your own damaged image (no ground truth)",
                       description="Fill in the damaged pixels of IMAGE (8- or 16-bit gray or RGB, any format PIL "
                                   "reads; EXIF orientation applied to image and mask alike).")
    i.add_argument("image", type=Path, metavar="IMAGE", help="the damaged photo")
    i.add_argument("mask", type=Path, metavar="MASK", help=f"the same size as IMAGE: {MASK_RULES}")
    cliconv.output_option(i, "restored image (PNG; 16 bits when IMAGE has 16)", old=())
    i.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (never IMAGE or MASK)")
    i.add_argument("--mask-convention", choices=["auto", "white-missing", "white-known"], default="auto",
                   help=CONVENTION_HELP)
    i.add_argument("--mask-threshold", type=float, metavar="T",
                   help="the tone of each mask pixel: values >= T (1-255 scale) count as white, the rest as black "
                        "(default: half, for a mask with soft edges)")
    i.add_argument("--keep-known", action=argparse.BooleanOptionalAction, default=True,
                   help="write the known pixels of IMAGE unchanged and only fill the damaged ones; "
                        "--no-keep-known writes the network's output everywhere")
    i.add_argument("--max-side", type=int, metavar="N",
                   help="fit a copy whose longer side is N (LANCZOS; the mask nearest) and upsample the fill back "
                        "to full size: for images too large for the memory (dip refuses those before starting)")
    i.add_argument("--stop", choices=["never", "auto"], default="never",
                   help="never (default): run every iteration; auto: end the fit when the validation rule fires "
                        "(--holdout-patience iterations without a better held-out PSNR; with --holdout 0, the "
                        "ES-EMV rule) and say so. Not the default: it saves iterations where the fit overfits, "
                        "and can stop too early on texture (docs/stopping.md)")
    i.add_argument("--average", action=argparse.BooleanOptionalAction, default=True,
                   help="DIP's result is the exponential moving average of the outputs (weight ema_weight), at "
                        "its best held-out PSNR where the validation rule fired, else at the end, or the final "
                        "output where that predicts the held-out pixels better: the best ground-truth-free choice "
                        "in docs/stopping.md's study (default); --no-average: the network's output f(z) instead")
    add_holdout_options(i)
    _add_fit_options(i, "auto", INPAINT_PRESETS, "the fit's numeric precision (default: fp32 for a named preset; "
                                                 "with --preset auto, what auto picks for the device: bf16 on a "
                                                 "CPU with native bf16)", inpaint=True)
    i.set_defaults(precision=None)  # None: the precision --preset auto picks for the device, else fp32


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dip", description="Deep Image Prior: fitting, masks and the "
                                     "reproduction pipeline's tools.")
    parser.add_argument("--version", action="version", version=f"dip {__import__('dip').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_fit(sub)
    _add_inpaint(sub)
    m = sub.add_parser("mask", help="write a reproducible random mask",
                       description="Write a Bernoulli mask: 255 = known, 0 = missing (the pipeline's masks).")
    m.add_argument("--bernoulli", type=float, required=True, metavar="P", help="fraction of pixels dropped")
    m.add_argument("--seed", type=int, required=True, help="seeds the mask's generator")
    m.add_argument("--like", type=Path, required=True, help="image whose size the mask takes")
    cliconv.output_option(m, "the mask (PNG)", old=())
    m.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (never the --like image)")

    for name, (_, _, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def add_holdout_options(i: argparse.ArgumentParser) -> None:
    """dip inpaint's validation set (dip.engine.holdout) and the choice it makes (dip.inpaint.choice); docs/stopping.md."""
    i.add_argument("--holdout", type=float, default=0.05, metavar="F",
                   help="hold this fraction of the known pixels (copies of the damage's shapes, seeded) out of the "
                        "fit; their PSNR picks the output (with --stop auto: ends the fit) and chooses between DIP, "
                        "the biharmonic fill or a blend (default %(default)s; 0: off, DIP's output alone)")
    i.add_argument("--holdout-patience", type=int, default=200, metavar="N",
                   help="--stop auto with --holdout: stop after N iterations without a better held-out PSNR "
                        "(default %(default)s)")


def cmd_fit(args: argparse.Namespace) -> int:
    from dip.engine.engines import run_fit
    from dip.engine.request import FitOptions

    req = FitOptions.from_namespace(args).request(
        image=args.image, mask=args.mask, gt=args.gt or args.image, out=args.output,
        tags={k: str(v) for k, v in args.tag}, engine=args.engine, authors_code=args.authors_code,
        manifest=args.manifest)
    m = run_fit(req, progress=args.progress)
    psnr_txt = f"psnr {m['psnr']:.2f} dB, ssim {m['ssim']:.4f}, " if m["psnr"] is not None else ""
    print(f"{args.output}: {psnr_txt}known-pixel psnr {m['psnr_masked']:.2f} dB, {m['iterations']} iterations, "
          f"{m['seconds_per_iter']:.4f} s/it, {m['backtracks']} backtracks")
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    from dip.inpaint.command import run
    from dip.inpaint.options import InpaintOptions

    run(InpaintOptions.from_namespace(args))
    return 0


def cmd_mask(args: argparse.Namespace) -> int:
    import numpy as np

    from dip.data.images import read_image, write_png
    from dip.data.overwrite import check_output

    if not 0.0 <= args.bernoulli < 1.0:
        raise DipError("--bernoulli", f"must be in [0, 1), got {args.bernoulli}")
    check_output(args.output, {"the --like image": args.like}, args.force)
    _, h, w = read_image(args.like).shape
    rng = np.random.Generator(np.random.PCG64(args.seed))
    known = rng.random((h, w)) >= args.bernoulli
    write_png(args.output, np.where(known, 255, 0).astype(np.uint8))
    print(f"{args.output}: {w}x{h}, {100 * (1 - known.mean()):.2f}% missing (seed {args.seed})")
    return 0


# The packages of the `[pipeline]` extra (pyproject.toml): dip inpaint, fit and mask need none of them.
PIPELINE_PACKAGES = ("pandas", "matplotlib", "tabulate", "snakemake", "dvc")
COMMANDS = {"fit": cmd_fit, "inpaint": cmd_inpaint, "mask": cmd_mask}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.INFO, format="[dip] %(message)s", stream=sys.stderr)
    try:
        if argv and argv[0] in RENAMED:
            argv[0] = RENAMED[argv[0]]
        if argv and argv[0] in DELEGATED:
            module, func, _ = DELEGATED[argv[0]]
            return int(getattr(__import__(module, fromlist=[func]), func)(argv[1:]) or 0)
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except DipError as e:
        print(f"dip: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # disk full, read-only file system, a file in the way, ...: one line, no traceback
        print(f"dip: error: {e.filename or (argv[0] if argv else 'dip')}: {os_problem(e)}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as e:
        if e.name not in PIPELINE_PACKAGES:
            raise
        print(f"dip: error: dip {argv[0]} needs the pipeline's packages ({e.name} is not installed): "
              "pip install 'dip-repro[pipeline]'", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outside a fit's loop (which checkpoints and raises Interrupted itself)
        print("dip: error: interrupted (nothing written)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug: one line in the logs; DIP_DEBUG=1 shows the traceback
        if os.environ.get("DIP_DEBUG"):
            raise
        text = (str(e).strip().splitlines() or [""])[0]
        if type(e).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA/MPS)
            print(f"dip: error: {argv[0]}: out of device memory ({text}); use a smaller --crop or another "
                  "device", file=sys.stderr)
            return EXIT_USAGE
        print(f"dip: error: internal error {type(e).__name__}: {text} (this is a bug; rerun with DIP_DEBUG=1 "
              "for the traceback)", file=sys.stderr)
        return 1
