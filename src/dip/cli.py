"""The `dip` command: fit, inpaint, mask (here) and fetch, report, compare, figure7, baseline, describe (their modules)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dip.core import modes
from dip.errors import EXIT_INTERRUPTED, EXIT_USAGE, DipError

DELEGATED: dict[str, tuple[str, str, str]] = {
    "fetch": ("dip.data.fetch", "main", "fetch and verify the input images (mirror or HTTPS, sha256-checked)"),
    "report": ("dip.report.aggregate", "main", "aggregate fits into metrics.csv, Table 1, curves and summary.json"),
    "compare": ("dip.report.gate", "main", "compare a metrics.csv with a baseline (CI regression gate)"),
    "figure7": ("dip.report.figure7", "main", "draw the Figure 7 montage"),
    "baseline": ("dip.engine.baseline", "main", "the classical (biharmonic) fill of a fit's inputs, scored like the fit"),
    "describe": ("dip.describe", "main", "print a preset's network, its shapes and parameter count"),
}


# The mask rules of dip inpaint (dip.data.images.read_mask); the README says the same.
MASK_RULES = ("white (255, or 1 in a 0/1 mask) = keep, black (0) = fill in; any mode: gray, 1-bit, palette, "
              "16-bit, or RGB whose channels agree. An alpha channel that is not fully opaque is the mask itself "
              "(transparent = fill in, opaque = keep; the colours are then ignored). A lossy mask (JPEG, soft "
              "edges) needs --mask-threshold T: values >= T (0-255 scale) are kept")


# Which preset suits which damage (dip inpaint --help; the README says the same). auto's thresholds and table:
# src/dip/inpaint/auto.yaml.
INPAINT_PRESETS = (
    "auto (default): picked from the mask and the device, printed with the reason. By damage: scattered missing "
    "pixels (Table 1's 50%% dropped pixels): table1; text and thin scratches: fig7_text; large holes: "
    "large_holes (6 scales, no skips; Figure 8) or large_holes_meshgrid (coordinates as input; Figure 6). "
    "On a CUDA GPU auto uses these; on a CPU their reduced versions table1_cpu, fig7_text_cpu, large_holes_cpu "
    "(narrower network, fewer iterations, bf16), so a 512x512 photo takes minutes, not hours")


def _key_value(text: str) -> tuple[str, Any]:
    from dip.data.presets import parse_key_value

    try:
        return parse_key_value(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _pair(text: str) -> tuple[int, int]:
    try:
        top, left = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TOP,LEFT such as 192,200, got {text!r}") from None
    return top, left


def _add_fit_options(p: argparse.ArgumentParser, default_preset: str | None, preset_help: str | None = None) -> None:
    g = p.add_argument_group("hyperparameters (override single preset values)")
    g.add_argument("--preset", required=default_preset is None, default=default_preset,
                   help=preset_help or "named preset from presets.yaml (table1, fig7_text, large_holes, "
                                       "large_holes_meshgrid, and the reduced *_cpu ones)")
    g.add_argument("--presets", type=Path, help="another presets file (default: the packaged one)")
    g.add_argument("--iterations", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--reg-noise-std", type=float)
    g.add_argument("--eval-every", type=int)
    g.add_argument("--set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="override any preset key, value in YAML (e.g. --set n_down=[32,32,32,32,32])")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", choices=modes.DEVICES)
    r.add_argument("--threads", type=int, help="torch threads (default: SLURM_CPUS_PER_TASK or the CPU affinity)")
    r.add_argument("--precision", default="fp32", choices=modes.PRECISIONS,
                   help="default fp32; dip inpaint --preset auto: the precision auto picks for the device")
    r.add_argument("--memory-format", default="auto", choices=modes.MEMORY_FORMATS)
    r.add_argument("--cuda-graph", default="auto", choices=modes.CUDA_GRAPH_MODES,
                   help="replay forward + backward as one CUDA graph (auto: on CUDA devices; same numbers)")
    r.add_argument("--deterministic", action="store_true",
                   help="CUDA: deterministic algorithms, no cudnn autotuning (CPU runs are deterministic anyway)")
    r.add_argument("--crop", type=int, help="fit an NxN crop (reduced-cost profiles); central unless --crop-at")
    r.add_argument("--crop-at", type=_pair, metavar="TOP,LEFT", help="top-left corner of the --crop window")
    r.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="write a resumable checkpoint every N iterations (0: only on SIGINT/SIGTERM)")
    r.add_argument("--checkpoint-dir", type=Path, help="default: <out>.ckpt beside the output")
    r.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint after success")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm bar (default: only on a terminal; plain lines otherwise)")


class _Parser(argparse.ArgumentParser):
    """argparse with the project's one-line error format: usage, then ``dip: error: <problem>`` (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"dip: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dip", description="Deep Image Prior: fitting, masks and the "
                                     "reproduction pipeline's tools.")
    parser.add_argument("--version", action="version", version=f"dip {__import__('dip').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    f = sub.add_parser("fit", help="fit one image (the reproduction workhorse)",
                       description="Fit the skip network to IMAGE x MASK and score it against the ground truth.")
    f.add_argument("--image", type=Path, required=True, help="the clean image; the observation is IMAGE x MASK")
    f.add_argument("--mask", type=Path, help="255/1 = known, 0 = missing (default: every pixel known)")
    f.add_argument("--gt", type=Path, help="ground truth (default: IMAGE)")
    f.add_argument("--out", type=Path, required=True, help="output directory")
    f.add_argument("--tag", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="recorded in metrics.json under tags (the pipeline records profile, task, image)")
    e = f.add_argument_group("engine")
    e.add_argument("--engine", choices=["ours", "authors"], default="ours",
                   help="ours (dip.engine.fit) or authors: the authors' network (their models package, fetched as the "
                        "manifest's authors_code dataset) in a loop written after their notebooks (dip.engine.authors; "
                        "fp32 only); it also writes output_shown.png, what the notebook shows at the end")
    e.add_argument("--authors-code", type=Path, default=Path("data/raw/authors_code"), metavar="DIR",
                   help="the fetched authors_code dataset (default: %(default)s; `dip fetch --dataset authors_code`)")
    e.add_argument("--manifest", type=Path, default=Path("config/datasets.yaml"),
                   help="the manifest that verifies the authors' code (default: %(default)s)")
    _add_fit_options(f, None)

    i = sub.add_parser("inpaint", help="restore your own damaged image (no ground truth)",
                       description="Fill in the missing pixels of IMAGE (8- or 16-bit gray or RGB, any format PIL "
                                   "reads; EXIF orientation applied to image and mask alike).")
    i.add_argument("image", type=Path)
    i.add_argument("mask", type=Path, help=f"the same size as IMAGE: {MASK_RULES}")
    i.add_argument("-o", "--output", type=Path, required=True,
                   help="restored image (PNG; 16 bits when IMAGE has 16)")
    i.add_argument("--mask-threshold", type=float, metavar="T",
                   help="accept a lossy mask (JPEG, soft edges): values >= T (1-255) are kept, the rest filled in")
    i.add_argument("--keep-known", action=argparse.BooleanOptionalAction, default=True,
                   help="write the known pixels of IMAGE unchanged and only fill the missing ones (default); "
                        "--no-keep-known writes the network's output everywhere")
    i.add_argument("--max-side", type=int, metavar="N",
                   help="fit a copy whose longer side is N (LANCZOS; the mask nearest) and upsample the fill back "
                        "to full size: for images too large for the memory (dip refuses those before starting)")
    i.add_argument("--stop", choices=["never", "auto"], default="never",
                   help="auto: stop when the ground-truth-free rule (ES-EMV, docs/stopping.md) fires and write "
                        "its minimum-variance output; never: run all iterations and write the final one")
    i.add_argument("--average", action="store_true",
                   help="write the exponential moving average of the outputs (weight ema_weight) instead")
    add_holdout_options(i)
    _add_fit_options(i, "auto", INPAINT_PRESETS)
    i.set_defaults(precision=None)  # None: the precision --preset auto picks for the device, else fp32

    m = sub.add_parser("mask", help="write a reproducible random mask")
    m.add_argument("--bernoulli", type=float, required=True, metavar="P", help="fraction of pixels dropped")
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("--like", type=Path, required=True, help="image whose size the mask takes")
    m.add_argument("-o", "--output", type=Path, required=True)

    for name, (_, _, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def add_holdout_options(i: argparse.ArgumentParser) -> None:
    """dip inpaint's validation set (dip.engine.holdout) and the choice it makes (dip.inpaint.choice); docs/stopping.md."""
    i.add_argument("--holdout", type=float, default=0.05, metavar="F",
                   help="hold this fraction of the known pixels (copies of the damage's shapes, seeded) out of the "
                        "fit; their PSNR picks the output (with --stop auto: ends the fit) and chooses between DIP, "
                        "the biharmonic fill or a blend (default %(default)s; 0: off, the final iterate as before)")
    i.add_argument("--holdout-patience", type=int, default=200, metavar="N",
                   help="--stop auto with --holdout: stop after N iterations without a better held-out PSNR "
                        "(default %(default)s)")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o = {k: getattr(args, k) for k in ("iterations", "lr", "reg_noise_std", "eval_every") if getattr(args, k) is not None}
    o.update(dict(args.set))
    return o


def _request(args: argparse.Namespace, **kw: Any):
    from dip.data.presets import resolve
    from dip.engine.request import FitRequest

    if args.checkpoint_every < 0:
        raise DipError("--checkpoint-every", f"must be >= 0, got {args.checkpoint_every}")
    if args.crop is not None and args.crop <= 0:
        raise DipError("--crop", f"must be a positive integer, got {args.crop}")
    if args.crop_at is not None and args.crop is None:
        raise DipError("--crop-at", "needs --crop")
    params = resolve(args.preset, _overrides(args), args.presets)
    return FitRequest(preset=args.preset, params=params, seed=args.seed, device=args.device, threads=args.threads,
                      precision=args.precision, memory_format=args.memory_format, cuda_graph=args.cuda_graph,
                      deterministic=args.deterministic, crop=args.crop, crop_at=args.crop_at,
                      checkpoint_every=args.checkpoint_every, checkpoint_dir=args.checkpoint_dir,
                      keep_checkpoint=args.keep_checkpoint, **kw)


def cmd_fit(args: argparse.Namespace) -> int:
    from dip.engine.engines import run_fit

    req = _request(args, image=args.image, mask=args.mask, gt=args.gt or args.image, out=args.out,
                   tags={k: str(v) for k, v in args.tag}, engine=args.engine, authors_code=args.authors_code,
                   manifest=args.manifest)
    m = run_fit(req, progress=args.progress)
    psnr_txt = f"psnr {m['psnr']:.2f} dB, ssim {m['ssim']:.4f}, " if m["psnr"] is not None else ""
    print(f"{args.out}: {psnr_txt}masked psnr {m['psnr_masked']:.2f} dB, {m['iterations']} iterations, "
          f"{m['seconds_per_iter']:.4f} s/it, {m['backtracks']} backtracks")
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    from dip.inpaint.command import run

    run(args, _request)
    return 0


def cmd_mask(args: argparse.Namespace) -> int:
    import numpy as np

    from dip.data.images import read_image, write_png

    if not 0.0 <= args.bernoulli < 1.0:
        raise DipError("--bernoulli", f"must be in [0, 1), got {args.bernoulli}")
    _, h, w = read_image(args.like).shape
    rng = np.random.Generator(np.random.PCG64(args.seed))
    known = rng.random((h, w)) >= args.bernoulli
    write_png(args.output, np.where(known, 255, 0).astype(np.uint8))
    print(f"{args.output}: {w}x{h}, {100 * (1 - known.mean()):.2f}% missing (seed {args.seed})")
    return 0


COMMANDS = {"fit": cmd_fit, "inpaint": cmd_inpaint, "mask": cmd_mask}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.INFO, format="[dip] %(message)s", stream=sys.stderr)
    try:
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


_OS_PROBLEMS = {
    errno.ENOSPC: "no space left on device (free some space, then run the same command again)",
    errno.EDQUOT: "disk quota exceeded (free some space, then run the same command again)",
    errno.EROFS: "read-only file system (choose another output location)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EEXIST: "a file is in the way (a directory is needed here)",
    errno.ENOTDIR: "a file is in the way (a directory is needed here)",
}


def os_problem(e: OSError) -> str:
    """A short, actionable description of an operating-system error."""
    return _OS_PROBLEMS.get(e.errno, e.strerror or str(e))
