"""One optimisation step of Deep Image Prior: perturb z, forward, masked loss, backward, Adam.

    z_t = z + σ·ε_t,  ε_t ~ N(0, I)       (``reg_noise_std`` σ; a fresh draw every iteration)
    θ ← Adam(θ, ∇_θ L(f_θ(z_t)))

Split in two because the backtracking guard looks at the state between them: :meth:`EagerStep.gradients`
computes the loss and the gradients, :meth:`EagerStep.update` applies Adam. :class:`GraphStep` does the same
with forward + loss + backward captured once as a CUDA graph and replayed.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from dip.core import compute


class Perturbation:
    """ε_t for z_t = z + σ·ε_t, drawn from its own generator (seeded per fit, saved in checkpoints)."""

    def __init__(self, std: float, seed: int, device: torch.device):
        self.std = std
        self.generator = torch.Generator(device=device).manual_seed(seed)


class EagerStep:
    """Forward, loss and backward op by op (CPU, MPS, and CUDA when graphs are off)."""

    def __init__(self, net: nn.Module, z: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor],
                 optimizer: torch.optim.Optimizer, noise: Perturbation, precision: str, device: torch.device):
        self.net, self.z, self.loss, self.optimizer = net, z, loss, optimizer
        self.noise, self.precision, self.device = noise, precision, device
        self.autocast_cache = True
        self.output: torch.Tensor | None = None  # f_θ(z + σε) of the last gradients() call, detached
        self.last_input: torch.Tensor = z  # z + σε of the last gradients() call

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """f_θ(z) at the padded size, in fp32 (bf16 runs under autocast; the loss stays fp32)."""
        with compute.autocast(self.device, self.precision, cache=self.autocast_cache):
            out = self.net(z)
        return out.float()

    def estimate(self) -> torch.Tensor:
        """The current estimate f_θ(z), without the perturbation (what output.png holds), no gradient."""
        with torch.no_grad():
            return self.forward(self.z)

    def gradients(self) -> torch.Tensor:
        """L(f_θ(z + σ·ε)) with its gradients in the parameters' ``.grad``; returns the loss."""
        z = self.z
        if self.noise.std > 0:
            z = z + torch.randn(z.shape, generator=self.noise.generator, device=self.device) * self.noise.std
        self.optimizer.zero_grad(set_to_none=True)
        out = self.forward(z)
        loss = self.loss(out)
        loss.backward()
        self.output, self.last_input = out.detach(), z
        return loss

    def update(self) -> None:
        """θ ← Adam(θ, ∇θ)."""
        self.optimizer.step()


class GraphStep(EagerStep):
    """The same step with forward + loss + backward replayed as one CUDA graph (captured at the first call).

    The same kernels as the eager step, launched at once instead of ~500 times from Python: the noise is drawn
    eagerly into a fixed buffer (the same draw as ``torch.randn``), the gradients live in the graph's memory and
    are overwritten by every replay, and Adam steps eagerly, unchanged. Parameters are only ever updated in place
    (Adam, ``load_state_dict``), so the graph always sees the current ones.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.autocast_cache = False  # autocast's weight cache cannot live across graph capture
        self.graph: torch.cuda.CUDAGraph | None = None
        self.buffer = torch.zeros(self.z.shape, device=self.device)
        self.graph_loss: torch.Tensor | None = None

    def gradients(self) -> torch.Tensor:
        std = self.noise.std
        if self.graph is None:
            self.graph, self.graph_loss, self.output = self.capture(
                lambda: self.forward(self.z + self.buffer * std if std > 0 else self.z))
        if std > 0:
            self.buffer.normal_(generator=self.noise.generator)
        self.graph.replay()  # also refreshes self.output, the graph's output buffer
        return self.graph_loss

    def capture(self, forward: Callable[[], torch.Tensor]
                ) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        """Capture ``loss(forward()).backward()`` after warm-up runs on a side stream (cudnn autotuning,
        workspaces); returns the graph and its loss and output buffers.

        The warm-up runs change nothing a fit keeps: their gradients are dropped and the BatchNorm running
        statistics they moved are put back.
        """
        buffers = {k: v.clone() for k, v in self.net.named_buffers()}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.optimizer.zero_grad(set_to_none=True)
                self.loss(forward()).backward()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = forward()
            loss = self.loss(out)
            loss.backward()
        with torch.no_grad():
            for k, v in self.net.named_buffers():
                v.copy_(buffers[k])
        return graph, loss, out.detach()
