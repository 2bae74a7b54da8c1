"""Fitting a randomly initialised skip network to one degraded image: the Deep Image Prior loop.

The parts, each in its own module, read like the method:

- the request and its inputs (:mod:`dip.request`), z and the network (:mod:`dip.model`);
- the objective, L(x) = ||m ⊙ (x − y)||² / (C·H·W) (:mod:`dip.objective`);
- the step: z + σ·ε, forward, backward, Adam; eager or as a CUDA graph (:mod:`dip.step`);
- the guard: the authors' backtracking rule and its snapshots (:mod:`dip.guard`);
- the curve of evaluations (:mod:`dip.curve`) and the checkpoint (:mod:`dip.checkpoint`);
- observers of every iteration's output that never touch the fit: the output average (:mod:`dip.averaging`)
  and the ground-truth-free stopping rule (:mod:`dip.stopping`);
- the outputs, written as one atomic folder (:mod:`dip.outputs`).

:class:`Fit` composes them. Every ``eval_every`` iterations (and at the last) it evaluates the estimate f_θ(z)
without the perturbation (the authors show the perturbed training output; see the README's deviations) and asks
the guard whether to keep the state. After the last step the final iterate is evaluated and guarded like any
other, so ``output.png`` never holds a state the guard would have refused.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from dip import runtime
from dip.averaging import OutputAverage
from dip.checkpoint import Checkpoint, fit_state, restore_fit
from dip.curve import Curve
from dip.errors import Interrupted
from dip.guard import Guard
from dip.interrupts import StopRequests
from dip.metrics import psnr_known
from dip.model import SkipConfig, SkipNet, network_input
from dip.objective import MaskedMSE
from dip.outputs import check_out_dir, fit_metrics, observer_images, write_fit_outputs
from dip.progress import Progress
from dip.request import FitRequest, fingerprint, load_inputs
from dip.step import EagerStep, GraphStep, Perturbation
from dip.stopping import VarianceStop

__all__ = ["Fit", "FitRequest", "run_fit"]
log = logging.getLogger("dip.fit")
NOISE_SEED_OFFSET = 1_000_003  # the perturbation's generator is seeded with seed + this (fixed: in checkpoints)


class Fit:
    """One fitting run, set up from a :class:`FitRequest`; :meth:`run` does the whole job.

    Building it reads and validates the inputs (nothing is written before that) and creates the network, z,
    Adam, the step, the guard, the curve and the checkpoint. :meth:`iterate` runs one iteration; benchmarks use
    it with ``quiet=True`` and :meth:`close` instead of :meth:`run`. The reference engine
    (:class:`dip.authors.AuthorsFit`) is a subclass with the authors' network and loop.
    """

    engine = "ours"
    shown: str | None = None  # the reference engine: what its notebook shows at the end (output_shown.png)

    def __init__(self, req: FitRequest, progress: bool | None = None, quiet: bool = False):
        self.req, self.params = req, req.params
        p = self.params
        self.inputs = load_inputs(req)
        self.device = runtime.pick_device(req.device)
        self.threads = runtime.configure(self.device, req.threads, req.precision, req.deterministic)
        self.channels_last = runtime.use_channels_last(req.memory_format, self.device, req.precision)
        self.cuda_graph = runtime.use_cuda_graph(req.cuda_graph, self.device)
        c, h, w = self.inputs.image.shape
        self.size = (h, w)
        cfg = SkipConfig.from_preset(p, c)
        padded = cfg.padded(h, w)
        self.objective = MaskedMSE(self.inputs.image, self.inputs.known, padded, self.device)

        torch.manual_seed(req.seed)  # the network's initialisation and z come from the seed, on the CPU
        self.net = self.build_network(cfg).to(self.device)
        z = network_input(p, padded, torch.Generator().manual_seed(req.seed)).to(self.device)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            z = z.contiguous(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=p["lr"])
        noise = Perturbation(p["reg_noise_std"], req.seed + NOISE_SEED_OFFSET, self.device)
        step = GraphStep if self.cuda_graph else EagerStep
        self.step = step(self.net, z, self.objective, self.optimizer, noise, req.precision, self.device)

        self.average = OutputAverage(p["ema_weight"])
        self.stopping = VarianceStop(p["es_alpha"], p["es_patience"], self.device)
        self.observers = {"average": self.average, "stopping": self.stopping}  # fed every iteration's output
        self.guard = Guard(p["backtrack_db"], p["max_backtracks"], f"fit {req.out}")
        self.curve = Curve(self.inputs.gt)
        self.checkpoint = Checkpoint(req.checkpoint_folder, fingerprint(req, self.inputs, self.device.type,
                                                                         self.threads))
        self.total = p["iterations"]
        self.start = 0
        self.resumed_from: int | None = None
        self.prior_seconds = 0.0  # wall time of the runs this one resumed
        self.eval_seconds = 0.0
        self.output_iteration: int | None = None  # the iteration whose state output.png holds
        self.stopped_at: int | None = None  # where --stop auto ended the loop (the rule fired)
        self.images: dict[str, np.ndarray] = {}  # file name -> float image, once run() has finished
        self.progress = Progress(self.total, progress, req.tags.get("image", "fit"), quiet=quiet)

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        """Resume if a matching checkpoint exists, iterate to the end, guard the final iterate, write outputs."""
        check_out_dir(self.req.out)
        self.resume()
        self.progress.begin(self.start)
        every = self.req.checkpoint_every
        t0 = time.perf_counter()
        self.net.train()
        with StopRequests() as stop:
            for it in range(self.start, self.total):
                if stop.requested:  # SIGINT/SIGTERM: keep every finished iteration, then leave
                    self.save(it, self.prior_seconds + time.perf_counter() - t0)
                    self.progress.close()
                    raise Interrupted(f"fit {self.req.out}", f"stopped by {stop.requested} at iteration {it}; "
                                      "checkpoint saved, run the same command to resume")
                self.iterate(it)
                if self.req.stop_early and self.due(it) and (fired := self.stopping.fired()) is not None:
                    self.stopped_at = it + 1
                    log.info("the stopping rule fired at iteration %d (minimum output variance at %d); stopping",
                             fired, self.stopping.result()[0])
                    break
                if every and (it + 1) % every == 0 and it + 1 < self.total:
                    self.save(it + 1, self.prior_seconds + time.perf_counter() - t0)
        runtime.synchronize(self.device)
        loop_s = time.perf_counter() - t0
        estimate = self.final_estimate()
        self.progress.close()
        self.close()
        ran = (self.stopped_at or self.total) - self.start
        images = {"output.png": estimate, **self.extra_images(), **observer_images(self.average, self.stopping)}
        self.images = images  # the float images, for dip inpaint (which writes 16 bits and keeps known pixels)
        metrics = fit_metrics(self, images, ran=ran, loop_seconds=loop_s)
        write_fit_outputs(self.req, self.inputs, images, self.curve, metrics)
        if not self.req.keep_checkpoint:
            self.checkpoint.remove()
        return metrics

    def build_network(self, cfg: SkipConfig) -> torch.nn.Module:
        """The skip network of the preset (:mod:`dip.model`)."""
        return SkipNet(cfg)

    def extra_images(self) -> dict[str, np.ndarray]:
        """Images an engine writes besides output.png and the observers' (none for ours)."""
        return {}

    def iterate(self, it: int) -> None:
        """Iteration ``it``: gradients at the current state, an evaluation when due, then the Adam step unless
        the guard restored an earlier state instead."""
        loss = self.step.gradients()
        h, w = self.size
        output = self.step.output[..., :h, :w]
        for observer in self.observers.values():
            observer.observe(it, output)
        accepted = True
        if self.due(it):
            runtime.synchronize(self.device)  # queued device work is iteration time, not evaluation time
            t = time.perf_counter()
            accepted = self.evaluate(it, float(loss.detach()))
            self.eval_seconds += time.perf_counter() - t
        if accepted:
            self.step.update()
        self.progress.update(1)

    def due(self, it: int) -> bool:
        """Whether iteration ``it`` evaluates: every ``eval_every``-th and the last."""
        return it % self.params["eval_every"] == 0 or it == self.total - 1

    def estimate(self) -> np.ndarray:
        """f_θ(z) without the perturbation, cropped to the image, as a (C, H, W) numpy array."""
        h, w = self.size
        return self.step.estimate()[0, :, :h, :w].cpu().numpy()

    def evaluate(self, it: int, loss: float | None, est: np.ndarray | None = None) -> bool:
        """Score the estimate after ``it`` steps, add it to the curve, and let the guard keep or undo the state."""
        est = self.estimate() if est is None else est
        finite = loss is None or np.isfinite(loss)
        pm = psnr_known(self.inputs.image, est, self.inputs.known) if finite else float("nan")
        if not self.guard.check(it, pm, self.net, self.optimizer, loss):
            return False
        self.curve.add(it, float("nan") if loss is None else loss, pm, est)
        fired = self.stopping.fired()
        self.progress.report(it, pm, self.curve.last, None if fired is None else f"stop rule fired at {fired}")
        return True

    def final_estimate(self) -> np.ndarray:
        """The estimate after the last step, guarded like every evaluation: when the guard refuses it, the last
        accepted state is restored and its estimate is the output (``output_iteration`` in metrics.json)."""
        end = self.stopped_at or self.total
        est = self.estimate()
        if self.evaluate(end, None, est):
            self.output_iteration = end
            return est
        self.output_iteration = self.guard.good_iteration
        return self.estimate()

    # ------------------------------------------------------------------ checkpoints
    def save(self, iteration: int, seconds: float) -> None:
        """Checkpoint at an iteration boundary: everything :meth:`resume` needs to go on bit for bit."""
        self.checkpoint.save(iteration, fit_state(self, seconds))

    def resume(self) -> None:
        """Go on from a checkpoint of this very fit (same fingerprint), if there is one."""
        state = self.checkpoint.load()
        if state is not None:
            restore_fit(self, state)
            log.info("resumed from %s at iteration %d", self.checkpoint.path, self.start)

    def close(self) -> None:
        """Wait for pending evaluations and stop the metrics thread."""
        self.curve.close()


def run_fit(req: FitRequest, progress: bool | None = None) -> dict[str, Any]:
    """Run one fit end to end with the request's engine (ours, or the authors' reference) and return its metrics."""
    if req.engine == "authors":
        from dip.authors import AuthorsFit

        return AuthorsFit(req, progress=progress).run()
    return Fit(req, progress=progress).run()
