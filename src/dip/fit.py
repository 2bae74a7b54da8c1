"""Fitting a randomly initialised skip network to one degraded image (the Deep Image Prior loop).

One :class:`Fit` run: z ~ U(0, 0.1) (or a meshgrid), every iteration feeds z + N(0, reg_noise_std), Adam on
the MSE over known pixels. Every ``eval_every`` iterations it measures the masked PSNR (and PSNR/SSIM against
a ground truth when there is one) of the current estimate, net(z) without the perturbation (the authors
measure the perturbed training output; see the README's deviations), and applies their backtracking guard: a masked-PSNR drop of more than ``backtrack_db`` or a non-finite loss restores the
last good parameters and optimizer state. Checkpoints hold everything needed to resume bit for bit.
On CUDA, forward + backward of an iteration are replayed as one captured CUDA graph (:meth:`Fit.graph_step`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dip
from dip import runtime
from dip.errors import DipError, DivergedError
from dip.io import read_image, read_mask, sha256_file, to_uint8, write_png, write_text
from dip.metrics import psnr, psnr_known, ssim
from dip.model import SkipConfig, SkipNet, padded_size

log = logging.getLogger("dip.fit")
CURVE_COLUMNS = ("iteration", "loss", "psnr_masked", "psnr", "ssim")


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


@dataclass
class Inputs:
    """Validated arrays: observation, known-pixel mask and ground truth, all (C, H, W) / (H, W) in [0, 1]."""

    image: np.ndarray
    known: np.ndarray
    gt: np.ndarray | None
    crop: dict[str, int] | None
    hashes: dict[str, dict[str, str] | None]


def load_inputs(req: FitRequest) -> Inputs:
    """Read and validate image, mask and ground truth; crop centrally when asked."""
    image = read_image(req.image)
    c, h, w = image.shape
    known = read_mask(req.mask, (h, w)) if req.mask else np.ones((h, w), dtype=bool)
    gt = None
    if req.gt is not None:
        gt = image if Path(req.gt) == Path(req.image) else read_image(req.gt)
        if gt.shape != image.shape:
            raise DipError(req.gt, f"ground truth is {gt.shape[2]}x{gt.shape[1]}x{gt.shape[0]} "
                                   f"but the image is {w}x{h}x{c}")
    box = None
    if req.crop:
        if req.crop > min(h, w):
            raise DipError("--crop", f"{req.crop} is larger than the image ({w}x{h}): {req.image}")
        top, left = req.crop_at or ((h - req.crop) // 2, (w - req.crop) // 2)
        if not (0 <= top <= h - req.crop and 0 <= left <= w - req.crop):
            raise DipError("--crop-at", f"a {req.crop}x{req.crop} crop at ({top}, {left}) leaves the {w}x{h} "
                                        f"image {req.image}")
        box = {"top": top, "left": left, "height": req.crop, "width": req.crop}
        sl = (slice(top, top + req.crop), slice(left, left + req.crop))
        image, known = image[(slice(None), *sl)], known[sl]
        gt = None if gt is None else gt[(slice(None), *sl)]
        if not known.any():
            raise DipError(req.mask, "mask has no known pixel inside the crop")
    hashes = {name: (None if p is None else {"path": str(p), "sha256": sha256_file(p)})
              for name, p in (("image", req.image), ("mask", req.mask), ("gt", req.gt))}
    return Inputs(image=np.ascontiguousarray(image), known=np.ascontiguousarray(known), gt=gt, crop=box,
                  hashes=hashes)


def fingerprint(req: FitRequest, inputs: Inputs, device: torch.device, threads: int) -> str:
    """Hash of everything that changes the numbers: a checkpoint is only resumed under the same hash."""
    key = {
        "params": {k: v for k, v in req.params.items() if k != "description"},
        "seed": req.seed, "precision": req.precision, "device": device.type, "threads": threads,
        "memory_format": req.memory_format, "deterministic": req.deterministic, "crop": inputs.crop,
        "inputs": {k: (v or {}).get("sha256") for k, v in inputs.hashes.items()}, "version": dip.__version__,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def make_input(params: dict[str, Any], shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """The fixed network input z, (1, D, H, W): U(0, input_scale) noise or a 2-channel meshgrid."""
    h, w = shape
    if params["input_kind"] == "meshgrid":
        ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        return torch.stack([xs, ys])[None]
    return torch.rand((1, params["input_depth"], h, w), generator=gen) * params["input_scale"]


class Fit:
    """One fitting run; :meth:`run` does the whole job and returns the metrics dict."""

    def __init__(self, req: FitRequest, progress: bool | None = None):
        self.req = req
        self.p = req.params
        self.progress = progress

    # ---------------------------------------------------------------- set-up
    def setup(self) -> None:
        req, p = self.req, self.p
        self.inputs = load_inputs(req)  # validates everything before any output exists
        self.device = runtime.pick_device(req.device)
        self.threads = runtime.configure(self.device, req.threads, req.precision, req.deterministic)
        self.channels_last = runtime.use_channels_last(req.memory_format, self.device, req.precision)
        self.cuda_graph = runtime.use_cuda_graph(req.cuda_graph, self.device)
        self.graph: torch.cuda.CUDAGraph | None = None
        c, h, w = self.inputs.image.shape
        self.h, self.w, self.c = h, w, c
        depth = len(p["n_down"])
        hp, wp = padded_size(h, w, depth)
        obs = np.zeros((1, c, hp, wp), np.float32)
        mask = np.zeros((1, 1, hp, wp), np.float32)
        obs[0, :, :h, :w] = self.inputs.image * self.inputs.known
        mask[0, 0, :h, :w] = self.inputs.known
        dev = self.device
        self.obs = torch.from_numpy(obs).to(dev)
        self.mask = torch.from_numpy(mask).to(dev)
        self.norm = float(c * h * w)  # the authors' normalisation: mean over all pixels of the masked error

        torch.manual_seed(req.seed)  # model initialisation and z come from this seed, on the CPU
        cpu_gen = torch.Generator().manual_seed(req.seed)
        in_ch = 2 if p["input_kind"] == "meshgrid" else p["input_depth"]
        cfg = SkipConfig(in_ch, c, p["n_down"], p["n_up"], p["n_skip"], p["k_down"], p["k_up"], p["k_skip"],
                         p["upsample"])
        self.net = SkipNet(cfg).to(dev)
        self.z = make_input(p, (hp, wp), cpu_gen).to(dev)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.z = self.z.contiguous(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=p["lr"])
        self.noise_gen = torch.Generator(device=dev).manual_seed(req.seed + 1_000_003)
        self.fp = fingerprint(req, self.inputs, dev, self.threads)

        self.start = 0
        self.curve: list[dict[str, float]] = []
        self.pending: list[tuple[dict[str, float], Future | None]] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dip-eval")
        self.backtracks = 0
        self.best = (-float("inf"), -1)
        self.good: dict[str, Any] | None = None
        self.good_psnr = -float("inf")
        self.prior_seconds = 0.0
        self.resumed_from: int | None = None

    # ---------------------------------------------------------------- checkpoints
    @property
    def ckpt_dir(self) -> Path:
        return self.req.checkpoint_dir or self.req.out.with_name(self.req.out.name + ".ckpt")

    @property
    def ckpt_path(self) -> Path:
        return self.ckpt_dir / "checkpoint.pt"

    def _state(self) -> dict[str, Any]:
        """A copy of the parameters, buffers and Adam state (the guard's snapshot and the checkpoint's).

        Tensor by tensor (``clone``), not ``copy.deepcopy``: the same values at a sixth of the cost, which is
        what keeps the evaluation share small (docs/performance.md, "Evaluation cost").
        """
        opt = self.opt.state_dict()
        return {
            "net": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
            "opt": {"state": {i: {k: v.clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in st.items()}
                              for i, st in opt["state"].items()},
                    "param_groups": copy.deepcopy(opt["param_groups"])},
        }

    def save_checkpoint(self, iteration: int, seconds: float) -> None:
        self.collect(wait=True)
        state = {
            "fingerprint": self.fp, "iteration": iteration, **self._state(), "z": self.z,
            "noise_gen": self.noise_gen.get_state(), "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "curve": self.curve, "backtracks": self.backtracks, "best": self.best, "good": self.good,
            "good_psnr": self.good_psnr, "seconds": seconds,
        }
        tmp = self.ckpt_path.with_suffix(".pt.tmp")
        try:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            torch.save(state, tmp)
            os.replace(tmp, self.ckpt_path)
        except (OSError, RuntimeError) as e:  # disk full / read-only: torch.save raises a cryptic RuntimeError
            why = e.strerror if isinstance(e, OSError) and e.strerror else _write_failure(self.ckpt_dir, e)
            tmp.unlink(missing_ok=True)
            if self.ckpt_dir.is_dir() and not any(self.ckpt_dir.iterdir()):
                self.ckpt_dir.rmdir()  # an earlier checkpoint is kept; an empty folder is not
            raise DipError(self.ckpt_path, f"cannot write the checkpoint at iteration {iteration} ({why})") from None

    def try_resume(self) -> None:
        if not self.ckpt_path.exists():
            return
        try:
            s = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)  # RNG states stay on the CPU
        except Exception as e:  # a damaged checkpoint is not worth dying for: start over, loudly
            log.warning("ignoring unreadable checkpoint %s (%s); starting from iteration 0", self.ckpt_path, e)
            return
        if s.get("fingerprint") != self.fp:
            log.warning("ignoring checkpoint %s: it was made with other arguments or inputs; starting from "
                        "iteration 0 (it will be overwritten)", self.ckpt_path)
            return
        self.net.load_state_dict(s["net"])
        self.opt.load_state_dict(s["opt"])
        self.z = s["z"].to(self.device)
        self.noise_gen.set_state(s["noise_gen"])
        torch.set_rng_state(s["cpu_rng"])
        if s["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(s["cuda_rng"])
        self.curve, self.backtracks, self.best = s["curve"], s["backtracks"], tuple(s["best"])
        self.good, self.good_psnr, self.prior_seconds = s["good"], s["good_psnr"], s["seconds"]
        self.start = self.resumed_from = s["iteration"]
        log.info("resumed from %s at iteration %d", self.ckpt_path, self.start)

    # ---------------------------------------------------------------- the loop
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Network output at the padded size, in fp32 (bf16 runs under autocast; the loss stays fp32)."""
        with runtime.autocast(self.device, self.req.precision, cache=not self.cuda_graph):
            out = self.net(z)
        return out.float()

    def output(self) -> np.ndarray:
        """The current estimate: the network applied to z itself (no perturbation), cropped, as numpy."""
        with torch.no_grad():
            return self.forward(self.z)[0, :, : self.h, : self.w].cpu().numpy()

    def evaluate(self, it: int, loss: torch.Tensor) -> bool:
        """Metrics of the current estimate; returns False when the guard restored the last good state.

        The estimate is what output.png would be if the fit stopped here (z without the perturbation), so
        the curve, psnr_best and the final psnr are measured alike.
        """
        loss_v = float(loss.detach())
        out_np = self.output()
        pm = psnr_known(self.inputs.image, out_np, self.inputs.known) if np.isfinite(loss_v) else float("nan")
        if not np.isfinite(loss_v) or not np.isfinite(pm) or pm < self.good_psnr - self.p["backtrack_db"]:
            self.restore(it, loss_v, pm)
            return False
        row = {"iteration": it, "loss": loss_v, "psnr_masked": pm, "psnr": float("nan"), "ssim": float("nan")}
        gt = self.inputs.gt
        # PSNR/SSIM against the ground truth run on a worker thread while the device goes on iterating;
        # rows join the curve in order (collect) and nothing downstream depends on them but the records.
        future = None if gt is None else self.pool.submit(lambda: (psnr(gt, out_np), ssim(gt, out_np)))
        self.pending.append((row, future))
        self.collect(wait=False)
        self.good, self.good_psnr = self._state(), pm
        return True

    def collect(self, wait: bool) -> None:
        """Move finished evaluations (all of them when ``wait``) into the curve, in iteration order."""
        while self.pending and (wait or self.pending[0][1] is None or self.pending[0][1].done()):
            row, future = self.pending.pop(0)
            if future is not None:
                row["psnr"], row["ssim"] = future.result()
                if row["psnr"] > self.best[0]:
                    self.best = (row["psnr"], row["iteration"])
            self.curve.append(row)

    def restore(self, it: int, loss_v: float, pm: float) -> None:
        self.backtracks += 1
        why = "non-finite loss" if not np.isfinite(loss_v) else f"masked PSNR fell to {pm:.2f} dB from {self.good_psnr:.2f}"
        if self.good is None or self.backtracks > self.p["max_backtracks"]:
            raise DivergedError(f"fit {self.req.out}", f"diverged at iteration {it} ({why}) and could not recover "
                                f"after {self.backtracks - 1} restores; lower the learning rate")
        log.warning("iteration %d: %s; restoring the last good state (backtrack %d)", it, why, self.backtracks)
        self.net.load_state_dict(self.good["net"])
        self.opt.load_state_dict(self.good["opt"])

    def run(self) -> dict[str, Any]:
        self.setup()
        self.prepare_out()
        self.try_resume()
        total, ck = self.p["iterations"], self.req.checkpoint_every
        bar = runtime.progress(total, self.start, self.progress, desc=self.req.tags.get("image", "fit"))
        t0, self.eval_s = time.perf_counter(), 0.0
        self.net.train()
        with runtime.stop_requests() as stop:
            for it in range(self.start, total):
                if stop.requested:  # SIGINT/SIGTERM: keep every finished iteration, then leave
                    self.save_checkpoint(it, self.prior_seconds + time.perf_counter() - t0)
                    bar.close()
                    raise runtime.Interrupted(f"fit {self.req.out}", f"stopped by {stop.requested} at iteration "
                                              f"{it}; checkpoint saved, run the same command to resume")
                self.iterate(it, total, bar)
                if ck and (it + 1) % ck == 0 and it + 1 < total:
                    self.save_checkpoint(it + 1, self.prior_seconds + time.perf_counter() - t0)
        self.collect(wait=True)
        runtime.synchronize(self.device)
        loop_s = time.perf_counter() - t0
        bar.close()
        return self.finish(total - self.start, loop_s, self.eval_s)

    def iterate(self, it: int, total: int, bar: runtime.progress) -> None:
        """One iteration: perturbed forward, masked loss, evaluation (every k), Adam step."""
        p = self.p
        if self.cuda_graph:
            loss = self.graph_step()
        else:
            z = self.z
            if p["reg_noise_std"] > 0:
                z = z + torch.randn(z.shape, generator=self.noise_gen, device=self.device) * p["reg_noise_std"]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(z)
            loss.backward()
        step = True
        if it % p["eval_every"] == 0 or it == total - 1:
            runtime.synchronize(self.device)  # queued device work is iteration time, not evaluation time
            te = time.perf_counter()
            step = self.evaluate(it, loss)
            self.eval_s += time.perf_counter() - te
            bar.report(it, self.curve[-1] if self.curve else None)
        if step:
            self.opt.step()
        bar.update(1)

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        """The authors' masked MSE of net(z) against the observation."""
        return ((self.forward(z) - self.obs) * self.mask).pow(2).sum() / self.norm

    def graph_step(self) -> torch.Tensor:
        """Forward + loss + backward as one CUDA graph replay (captured at the first call); returns the loss.

        The same kernels as the eager iteration, launched at once instead of ~500 times from Python: the
        noise is drawn eagerly into a fixed buffer (the same draw as ``torch.randn``), the gradients live in
        the graph's memory and are overwritten by every replay, and Adam steps eagerly, unchanged. Parameters
        are only ever updated in place (Adam, ``load_state_dict``), so the graph always sees the current ones.
        """
        std = self.p["reg_noise_std"]
        if self.graph is None:
            self.noise = torch.zeros(self.z.shape, device=self.device)
            self.graph, self.graph_loss = self.capture(lambda: self.loss(self.z + self.noise * std if std > 0
                                                                         else self.z))
        if std > 0:
            self.noise.normal_(generator=self.noise_gen)
        self.graph.replay()
        return self.graph_loss

    def capture(self, body: Any) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Capture ``body().backward()`` after warm-up runs on a side stream (cudnn autotuning, workspaces).

        The warm-up runs change nothing a fit keeps: their gradients are dropped and the BatchNorm running
        statistics they moved are put back.
        """
        buffers = {k: v.clone() for k, v in self.net.named_buffers()}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.opt.zero_grad(set_to_none=True)
                body().backward()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = body()
            loss.backward()
        with torch.no_grad():
            for k, v in self.net.named_buffers():
                v.copy_(buffers[k])
        return graph, loss

    # ---------------------------------------------------------------- outputs
    def prepare_out(self) -> None:
        out = self.req.out
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists() and not out.is_dir():
            raise DipError(out, "output path exists and is not a directory")
        if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
            raise DipError(out, "output directory is not writable")
        for stale in out.parent.glob(out.name + ".tmp-*"):  # left by a killed run: never part of a result
            shutil.rmtree(stale, ignore_errors=True)

    def finish(self, ran: int, loop_s: float, eval_s: float) -> dict[str, Any]:
        self.collect(wait=True)
        self.pool.shutdown()
        out8 = to_uint8(self.output())
        # The claim is measured on the 8-bit file itself (in float64), so anyone can recompute it from the PNGs.
        final = _as_chw(out8)
        metrics: dict[str, Any] = {
            "psnr": None, "ssim": None, "psnr_best": None, "psnr_best_iter": None,
            "psnr_masked": psnr_known(_as_chw(to_uint8(self.inputs.image)), final, self.inputs.known),
        }
        if self.inputs.gt is not None:
            gt = _as_chw(to_uint8(self.inputs.gt))
            metrics.update(psnr=psnr(gt, final), ssim=ssim(gt, final),
                           psnr_best=self.best[0], psnr_best_iter=self.best[1])
        total_s = self.prior_seconds + loop_s
        metrics.update({
            "iterations": self.p["iterations"], "seconds_per_iter": loop_s / max(ran, 1),
            "eval_fraction": eval_s / loop_s if loop_s > 0 else 0.0, "wall_seconds": total_s,
            "backtracks": self.backtracks, "seed": self.req.seed, "device": self.device.type,
            "device_name": runtime.device_name(self.device), "precision": self.req.precision,
            "channels_last": self.channels_last, "cuda_graph": self.cuda_graph, "threads": self.threads,
            "torch": torch.__version__, "dip_version": dip.__version__, "preset": self.req.preset, "params": self.p,
            "height": self.h, "width": self.w, "channels": self.c, "crop": self.inputs.crop,
            "inputs": self.inputs.hashes, "tags": self.req.tags, "resumed_from": self.resumed_from,
        })
        self.write_outputs(out8, metrics)
        if not self.req.keep_checkpoint:
            shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        return metrics

    def write_outputs(self, out8: np.ndarray, metrics: dict[str, Any]) -> None:
        """Write into a temporary sibling directory, then move into ``out`` (metrics.json last)."""
        out = self.req.out
        tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=False)
        try:
            write_png(tmp / "output.png", out8)
            if self.req.write_observed:
                observed = self.inputs.image * self.inputs.known
                write_png(tmp / "observed.png", observed)
            if self.curve:
                lines = [",".join(CURVE_COLUMNS)]
                lines += [",".join("" if np.isnan(r[k]) else repr(r[k]) for k in CURVE_COLUMNS) for r in self.curve]
                write_text(tmp / "curve.csv", "\n".join(lines) + "\n")
            write_text(tmp / "metrics.json", json.dumps(metrics, indent=2, default=_json_default) + "\n")
            if not out.exists():
                os.rename(tmp, out)
                return
            names = sorted(f.name for f in tmp.iterdir())
            for name in sorted(names, key=lambda n: n == "metrics.json"):
                os.replace(tmp / name, out / name)
        except OSError as e:  # disk full, read-only file system: one clear line, nothing half-written
            raise DipError(out, f"cannot write the results ({e.strerror or e})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_failure(folder: Path, e: Exception) -> str:
    """Why a write into ``folder`` failed, when the exception does not say (torch.save); call before cleaning up."""
    try:
        if shutil.disk_usage(folder).free < (1 << 20):
            return "no space left on device"
    except OSError:
        pass
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _as_chw(u8: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (C, H, W) float64 in [0, 1]."""
    a = u8.astype(np.float64) / 255.0
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def run_fit(req: FitRequest, progress: bool | None = None) -> dict[str, Any]:
    """Run one fit end to end and return its metrics."""
    return Fit(req, progress=progress).run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `dip fit` command")
