"""Fitting a randomly initialised skip network to one degraded image: the Deep Image Prior loop.

The parts, each in its own module, read like the method:

- the request and its inputs (:mod:`dip.engine.request`), z and the network (:mod:`dip.core.network`);
- the objective, L(x) = ||m ⊙ (x − y)||² / (C·H·W) (:mod:`dip.core.objective`);
- the step: z + σ·ε, forward, backward, Adam; eager or as a CUDA graph (:mod:`dip.core.step`);
- the guard: the authors' backtracking rule and its snapshots (:mod:`dip.core.guard`);
- the curve of evaluations (:mod:`dip.core.curve`) and the checkpoint (:mod:`dip.engine.checkpoint`, which stores what :meth:`Fit.state_dict` gives);
- observers of every iteration's output that never touch the fit: the output average (:mod:`dip.core.averaging`)
  and the ground-truth-free stopping rule (:mod:`dip.core.stopping`);
- the outputs, written as one atomic folder (:mod:`dip.engine.outputs`).

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

from dip.core import compute
from dip.core.averaging import OutputAverage
from dip.core.curve import Curve
from dip.core.guard import Guard
from dip.core.network import SkipConfig, SkipNet, network_input
from dip.core.objective import MaskedMSE
from dip.core.quality import psnr_known
from dip.core.step import EagerStep, GraphStep, Perturbation
from dip.core.stopping import VarianceStop
from dip.data.atomic import check_out_dir
from dip.data.crop import CropBox
from dip.engine.checkpoint import Checkpoint
from dip.engine.holdout import Validation
from dip.engine.interrupts import StopRequests
from dip.engine.outputs import RunRecord, fit_metrics, observer_images, write_fit_outputs
from dip.engine.progress import Progress
from dip.engine.request import FitRequest, fingerprint, load_inputs
from dip.engine.state import TrainingState
from dip.errors import Interrupted

__all__ = ["Fit", "FitRequest"]
log = logging.getLogger("dip.engine.fit")
NOISE_SEED_OFFSET = 1_000_003  # the perturbation's generator is seeded with seed + this (fixed: in checkpoints)


class Fit:
    """One fitting run, set up from a :class:`FitRequest`; :meth:`run` does the whole job.

    Building it reads and validates the inputs (nothing is written before that) and creates the network, z,
    Adam, the step, the guard, the curve and the checkpoint. :meth:`iterate` runs one iteration; benchmarks use
    it with ``quiet=True`` and :meth:`close` instead of :meth:`run`. An engine (:mod:`dip.engine.engines`) is a
    subclass that overrides the hooks :meth:`build_network`, :meth:`build_guard`, :meth:`evaluate`,
    :meth:`final_estimate` and :meth:`extra_images` (:class:`dip.engine.authors.AuthorsFit`).
    """

    engine = "ours"
    shown: str | None = None  # the reference engine: what its notebook shows at the end (output_shown.png)

    def __init__(self, req: FitRequest, progress: bool | None = None, quiet: bool = False):
        self.req, self.params = req, req.params
        p = self.params
        self.inputs = load_inputs(req)
        # dip inpaint's validation set: held-out known pixels, removed from inputs.known before anything reads it
        self.validation = Validation.attach(self.inputs, req.holdout, req.seed, req.holdout_patience,
                                            req.holdout_watch)
        self.placement = req.placement or compute.place(req.device, req.threads, req.precision, req.memory_format,
                                                        req.cuda_graph, req.deterministic)
        self.device = self.placement.device
        c, h, w = self.inputs.image.shape
        self.frame = CropBox(0, 0, h, w)  # the image inside the network's padded canvas
        cfg = SkipConfig.from_preset(p, c)
        padded = cfg.padded(h, w)
        self.objective = MaskedMSE(self.inputs.image, self.inputs.known, padded, self.device)

        torch.manual_seed(req.seed)  # the network's initialisation and z come from the seed, on the CPU
        self.net = self.build_network(cfg).to(self.device)
        self.step = build_step(self.net, p, padded, self.objective, req, self.placement)
        self.optimizer = self.step.optimizer

        self.average = OutputAverage(p["ema_weight"])
        self.stopping = VarianceStop(p["es_alpha"], p["es_patience"], self.device, self.net.parameters())
        self.observers = {"average": self.average, "stopping": self.stopping}  # fed every iteration's output
        if self.validation is not None:
            self.observers["validation"] = self.validation  # (it watches evaluations; here for the checkpoint)
        self.guard = self.build_guard()
        self.curve = Curve(self.inputs.gt)
        self.training = TrainingState(self.net, self.optimizer, self.step, self.curve, self.guard, self.observers,
                                      self.device)
        self.checkpoint = Checkpoint(req.checkpoint_folder, fingerprint(req, self.inputs, self.device.type,
                                                                         self.placement.threads))
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
        if not self.progress.quiet:  # the first line of every fit's log, once its inputs and output are sound
            log.info(compute.describe(self.device, self.req.precision, self.placement.threads))
        self.resume()
        return finish(self, iterate_to_end(self))

    def iterate(self, it: int) -> None:
        """Iteration ``it``: gradients at the current state, an evaluation when due, then the Adam step unless
        the guard restored an earlier state instead."""
        loss = self.step.gradients()
        observe(self, it)
        accepted = True
        if self.due(it):
            compute.synchronize(self.device)  # queued device work is iteration time, not evaluation time
            t = time.perf_counter()
            accepted = self.evaluate(it, float(loss.detach()))
            self.eval_seconds += time.perf_counter() - t
        if accepted:
            self.step.update()
        self.progress.update(1)

    def rule(self) -> Validation | VarianceStop:
        """The rule that ends the loop under stop_early: the held-out pixels' when there are some, else ES-EMV."""
        return self.validation or self.stopping

    def due(self, it: int) -> bool:
        """Whether iteration ``it`` evaluates: every ``eval_every``-th and the last."""
        return it % self.params["eval_every"] == 0 or it == self.total - 1

    def estimate(self) -> np.ndarray:
        """f_θ(z) without the perturbation, cropped to the image, as a (C, H, W) numpy array."""
        return self.frame.cut(self.step.estimate())[0].cpu().numpy()

    # ------------------------------------------------------------------ an engine's hooks
    def build_network(self, cfg: SkipConfig) -> torch.nn.Module:
        """The skip network of the preset (:mod:`dip.core.network`)."""
        return SkipNet(cfg)

    def build_guard(self) -> Guard:
        """The rule that keeps or undoes a state at each evaluation: the authors' backtracking (:mod:`dip.core.guard`)."""
        return Guard(self.params["backtrack_db"], self.params["max_backtracks"], f"fit {self.req.out}")

    def evaluate(self, it: int, loss: float | None, est: np.ndarray | None = None) -> bool:
        """Score the estimate after ``it`` steps, add it to the curve, and let the guard keep or undo the state."""
        est = self.estimate() if est is None else est
        finite = loss is None or np.isfinite(loss)
        pm = psnr_known(self.inputs.image, est, self.inputs.known) if finite else float("nan")
        if not self.guard.check(it, pm, self.net, self.optimizer, loss):
            return False
        extra = {} if self.validation is None else {"psnr_val": self.validation.evaluate(it, watched(self, est))}
        self.curve.add(it, float("nan") if loss is None else loss, pm, est, **extra)
        fired = self.rule().fired()
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

    def extra_images(self) -> dict[str, np.ndarray]:
        """Images an engine writes besides output.png and the observers' (none for ours)."""
        return {}

    # ------------------------------------------------------------------ its own state
    def save(self, iteration: int, seconds: float) -> None:
        """Checkpoint at an iteration boundary: the training state (:mod:`dip.engine.state`) and the time so far."""
        self.checkpoint.save(iteration, self.training.state_dict(seconds))

    def resume(self) -> None:
        """Go on from a checkpoint of this very fit (same fingerprint), if there is one."""
        state = self.checkpoint.load()
        if state is not None:
            self.training.load_state_dict(state)
            self.prior_seconds = state["seconds"]
            self.start = self.resumed_from = state["iteration"]
            log.info("resumed from %s at iteration %d", self.checkpoint.path, self.start)

    def close(self) -> None:
        """Wait for pending evaluations and stop the metrics thread."""
        self.curve.close()


def build_step(net: torch.nn.Module, p: dict[str, Any], padded: tuple[int, int], objective: MaskedMSE,
               req: FitRequest, placement: compute.Placement) -> EagerStep:
    """z from the seed (on the CPU), Adam on ``net``, the seeded perturbation σ·ε, and the step that runs them:
    eager, or replayed as a CUDA graph. Channels-last memory where the placement asks for it."""
    z = network_input(p, padded, torch.Generator().manual_seed(req.seed)).to(placement.device)
    if placement.channels_last:
        net.to(memory_format=torch.channels_last)  # in place
        z = z.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=p["lr"])
    noise = Perturbation(p["reg_noise_std"], req.seed + NOISE_SEED_OFFSET, placement.device)
    step = GraphStep if placement.cuda_graph else EagerStep
    return step(net, z, objective, optimizer, noise, req.precision, placement.device)


def watched(fit: Fit, est: np.ndarray) -> np.ndarray:
    """What the validation rule scores: the estimate ``est``, or the output average a_t (``holdout_watch``; before
    any training output there is no average, and the estimate stands for it: the time probe's evaluation at the
    untrained state)."""
    if fit.validation.watch == "average" and fit.average.average is not None:
        return fit.average.average[0].float().cpu().numpy()
    return est


def observe(fit: Fit, it: int) -> None:
    """Hand iteration ``it``'s training output, cut to the image, to every observer (average, stopping rule)."""
    output = fit.frame.cut(fit.step.output)
    for observer in fit.observers.values():
        observer.observe(it, output)


def iterate_to_end(fit: Fit) -> float:
    """Iterate from ``fit.start`` to the budget (or until ``--stop auto``'s rule fires), checkpointing every
    ``checkpoint_every`` iterations and on SIGINT/SIGTERM (then :class:`Interrupted`); the loop's seconds."""
    fit.progress.begin(fit.start)
    every = fit.req.checkpoint_every
    t0 = time.perf_counter()
    fit.net.train()
    with StopRequests() as stop:
        for it in range(fit.start, fit.total):
            if stop.requested:  # SIGINT/SIGTERM: keep every finished iteration, then leave
                fit.save(it, fit.prior_seconds + time.perf_counter() - t0)
                fit.progress.close()
                raise Interrupted(f"fit {fit.req.out}", f"stopped by {stop.requested} at iteration {it}; "
                                  "checkpoint saved, run the same command to resume")
            fit.iterate(it)
            if fit.req.stop_early and fit.due(it) and (fired := fit.rule().fired()) is not None:
                fit.stopped_at = it + 1
                log.info("the stopping rule fired at iteration %d (%s); stopping after %d of %d iterations", fired,
                         rule_best(fit), fit.stopped_at, fit.total)
                break
            if every and (it + 1) % every == 0 and it + 1 < fit.total:
                fit.save(it + 1, fit.prior_seconds + time.perf_counter() - t0)
    compute.synchronize(fit.device)
    return time.perf_counter() - t0


def finish(fit: Fit, loop_seconds: float) -> dict[str, Any]:
    """The guarded final estimate, the engine's and the observers' images, metrics.json, one atomic folder;
    the checkpoint goes unless kept. Returns the metrics."""
    estimate = fit.final_estimate()
    fit.progress.close()
    fit.close()
    images = {"output.png": estimate, **fit.extra_images(),
              **observer_images(fit.average, fit.stopping, stopping_estimate(fit))}
    if fit.validation is not None:
        images.update(fit.validation.images())
    fit.images = images  # the float images, for dip inpaint (which writes 16 bits and keeps known pixels)
    metrics = fit_metrics(fit.req, fit.inputs, images, run_record(fit, loop_seconds))
    if fit.validation is not None:
        metrics.update(fit.validation.metrics(fit.inputs.gt), holdout=fit.req.holdout)
    write_fit_outputs(fit.req, fit.inputs, images, fit.curve, metrics)
    if not fit.req.keep_checkpoint:
        fit.checkpoint.remove()
    return metrics


def rule_best(fit: Fit) -> str:
    """Where the rule that ended the loop saw its best: the held-out PSNR's peak, or the variance's minimum."""
    if fit.validation is not None:
        v = fit.validation
        return (f"no better held-out PSNR for {v.patience} iterations: best held-out PSNR of the {v.watched} "
                f"{v.best[0]:.2f} dB at {v.best[1]}")
    return f"minimum output variance at {fit.stopping.result()[0]}"


def stopping_estimate(fit: Fit) -> np.ndarray | None:
    """f_θ(z) at the stopping rule's iteration t* (the parameters it kept), cropped like ``Fit.estimate``."""
    est = fit.stopping.estimate(fit.net, fit.step.estimate)
    return None if est is None else fit.frame.cut(est)[0].cpu().numpy()


def run_record(fit: Fit, loop_seconds: float) -> RunRecord:
    """What metrics.json says about this run (besides the images' scores)."""
    es_iter, _ = fit.stopping.result()
    return RunRecord(
        engine=fit.engine, shown=fit.shown, iterations=fit.total, output_iteration=fit.output_iteration,
        ran=(fit.stopped_at or fit.total) - fit.start, loop_seconds=loop_seconds,
        eval_seconds=fit.eval_seconds, prior_seconds=fit.prior_seconds, resumed_from=fit.resumed_from,
        stopped_at=fit.stopped_at, es_iter=es_iter if es_iter >= 0 else None, es_fired_at=fit.stopping.fired(),
        best=fit.curve.best, backtracks=fit.guard.backtracks, placement=fit.placement)
