"""What defines one fit: the request (flags or pipeline config), its validated inputs, and their fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import dip
from dip.data.crop import CropBox, check_crop_options, crop_record
from dip.data.images import read_image, read_mask, sha256_file
from dip.errors import DipError

if TYPE_CHECKING:  # pragma: no cover - torch is not imported here (dip baseline starts without it)
    from dip.core.compute import Placement


@dataclass
class FitRequest:
    """Everything that defines one fit (the CLI fills it from flags, the pipeline from its config)."""

    image: Path
    out: Path
    preset: str
    params: dict[str, Any]
    mask: Path | None = None
    gt: Path | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    precision: str = "fp32"
    memory_format: str = "auto"
    cuda_graph: str = "auto"
    deterministic: bool = False
    crop: int | None = None
    crop_at: tuple[int, int] | None = None
    checkpoint_every: int = 0
    checkpoint_dir: Path | None = None
    keep_checkpoint: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    write_observed: bool = True
    stop_early: bool = False  # end the loop when the stopping rule has fired (dip inpaint --stop auto)
    holdout: float = 0.0  # fraction of the known pixels held out of the loss as a validation set (dip.engine.holdout)
    holdout_patience: int = 200  # iterations without a better held-out PSNR before the validation rule fires
    holdout_watch: str = "estimate"  # estimate: the rule scores f_θ(z); average: the output average (dip.engine.holdout)
    engine: str = "ours"  # ours | authors (the reference engine, dip.engine.authors)
    authors_code: Path | None = None  # the fetched authors_code dataset folder (engine authors)
    manifest: Path | None = None  # the manifest that verifies it
    placement: Placement | None = None  # where it computes, when the command resolved it (dip inpaint); None: the fit
    #                                     resolves it from device, threads, precision, memory_format and cuda_graph

    @property
    def checkpoint_folder(self) -> Path:
        """Where the checkpoint lives: ``--checkpoint-dir``, else ``<out>.ckpt`` beside the output."""
        return self.checkpoint_dir or self.out.with_name(self.out.name + ".ckpt")


@dataclass(frozen=True)
class FitOptions:
    """The options ``dip fit`` and ``dip inpaint`` share (:func:`dip.cli._add_fit_options`), typed: what a
    :class:`FitRequest` is made of besides the files. ``precision`` None: ``dip inpaint --preset auto`` picks it."""

    preset: str
    presets: Path | None = None  # --presets-file
    iterations: int | None = None
    lr: float | None = None
    reg_noise_std: float | None = None
    eval_every: int | None = None
    sets: tuple[tuple[str, Any], ...] = ()  # --set KEY=VALUE, in order
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    precision: str | None = "fp32"
    memory_format: str = "auto"
    cuda_graph: str = "auto"
    deterministic: bool = False
    crop: int | None = None
    crop_at: tuple[int, int] | None = None
    checkpoint_every: int = 0
    checkpoint_dir: Path | None = None
    keep_checkpoint: bool = False
    progress: bool | None = None

    @classmethod
    def from_namespace(cls, args: Any) -> FitOptions:
        """The options of a parsed command line (argparse's namespace of dip fit or dip inpaint)."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if f.name != "sets"}
        return cls(**values, sets=tuple(args.set))

    def check(self) -> None:
        """Refuse (one line) values that cannot work, before any file is read."""
        if self.checkpoint_every < 0:
            raise DipError("--checkpoint-every", f"must be >= 0, got {self.checkpoint_every}")
        check_crop_options(self.crop, self.crop_at)

    def params(self, preset: str, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """``preset`` resolved with ``defaults`` (e.g. ``dip inpaint``'s budget of iterations for the image size)
        and, over them, every hyperparameter given on the command line."""
        from dip.data.presets import resolve

        names = ("iterations", "lr", "reg_noise_std", "eval_every")
        overrides = dict(defaults or {})
        overrides.update({k: getattr(self, k) for k in names if getattr(self, k) is not None})
        overrides.update(dict(self.sets))
        return resolve(preset, overrides, self.presets)

    def request(self, preset: str | None = None, precision: str | None = None,
                defaults: dict[str, Any] | None = None, **own: Any) -> FitRequest:
        """The fit's request: ``preset`` and ``precision`` (default: the options'), the preset's parameters with
        ``defaults`` under the command line's, the checked options, and the command's ``own`` fields (image,
        mask, gt, out, tags, ...; they win over the options')."""
        self.check()
        name = preset or self.preset
        precision = precision or self.precision
        if precision == "auto":  # the request, its fingerprint and the record hold the precision that runs
            from dip.core import compute

            precision = compute.resolve_precision(precision, compute.pick_device(self.device))
        shared = {"preset": name, "params": self.params(name, defaults), "precision": precision}
        shared.update({k: getattr(self, k) for k in PASSED_ON})
        return FitRequest(**{**shared, **own})


# The options a FitRequest takes as they are (preset, precision and the hyperparameters are resolved first).
PASSED_ON = tuple(sorted({f.name for f in fields(FitOptions)} & {f.name for f in fields(FitRequest)}
                         - {"preset", "precision"}))


@dataclass
class Inputs:
    """Validated arrays: observation (C, H, W) in [0, 1], known-pixel mask (H, W) bool, ground truth or None."""

    image: np.ndarray
    known: np.ndarray
    gt: np.ndarray | None
    crop: CropBox | None  # the box of the source image the arrays are (metrics.json: its record)
    hashes: dict[str, dict[str, str] | None]

    @property
    def observed(self) -> np.ndarray:
        """The degraded image the fit sees: missing pixels set to 0."""
        return self.image * self.known


def load_inputs(req: FitRequest) -> Inputs:
    """Read and validate image, mask and ground truth; crop (centrally unless ``crop_at``) when asked."""
    image = read_image(req.image)
    c, h, w = image.shape
    known = read_mask(req.mask, (h, w)) if req.mask else np.ones((h, w), dtype=bool)
    gt = None
    if req.gt is not None:
        gt = image if Path(req.gt) == Path(req.image) else read_image(req.gt)
        if gt.shape != image.shape:
            raise DipError(req.gt, f"ground truth is {gt.shape[2]}x{gt.shape[1]}x{gt.shape[0]} "
                                   f"but the image is {w}x{h}x{c}")
    box = CropBox.of(req.crop, req.crop_at, (h, w), req.image)
    if box is not None:
        image, known = box.cut(image), box.cut(known)
        gt = None if gt is None else box.cut(gt)
        if not known.any():
            raise DipError(req.mask, "mask has no known pixel inside the crop")
    hashes = {name: (None if p is None else {"path": str(p), "sha256": sha256_file(p)})
              for name, p in (("image", req.image), ("mask", req.mask), ("gt", req.gt))}
    return Inputs(image=np.ascontiguousarray(image), known=np.ascontiguousarray(known), gt=gt, crop=box,
                  hashes=hashes)


def fingerprint(req: FitRequest, inputs: Inputs, device: str, threads: int) -> str:
    """Hash of everything that changes the numbers: a checkpoint is only resumed under the same hash."""
    key = {
        "params": {k: v for k, v in req.params.items() if k != "description"},
        "seed": req.seed, "precision": req.precision, "device": device, "threads": threads,
        "memory_format": req.memory_format, "deterministic": req.deterministic, "crop": crop_record(inputs.crop),
        "inputs": {k: (v or {}).get("sha256") for k, v in inputs.hashes.items()}, "version": dip.__version__,
        "engine": req.engine,
    }
    if req.holdout:  # only then: the fingerprints of fits without held-out pixels stay as they were
        key["holdout"] = [req.holdout, req.holdout_patience]
        if req.holdout_watch != "estimate":  # what the rule keeps (and checkpoints) differs
            key["holdout"].append(req.holdout_watch)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
