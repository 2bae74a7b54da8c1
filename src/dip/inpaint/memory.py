"""How much memory a fit needs, and whether the device has it: checked before anything is allocated.

The need is dominated by the activations the skip network keeps for the backward pass. They are counted, not
guessed: the preset's network runs once on PyTorch's ``meta`` device (shapes only, no memory, milliseconds) at
the padded size, and forward hooks add up every tensor that a training step keeps alive:

- each module's output (convolution, BatchNorm, 1x1 head; in-place LeakyReLUs reuse BatchNorm's output);
- the reflection-padded copy of the input of every k > 1 convolution (what the convolution saves);
- the concatenation [skip, upsampled deeper] that every up block starts from.

A step needs more than what it keeps (gradients of the activations during the backward pass, the allocator's
slack), so the count is scaled by ``ACTIVATION_FACTOR``, measured with peak RSS on CPU fp32 fits of 256x256
and 512x512 (docs: README "Inpaint your own image"; the measurement script is ``tools/measure_memory.py``).
Parameters, gradients, Adam's two moments and the guard's snapshot add 8 copies of the weights; the
observation, mask, output average, stopping-rule buffers and evaluation copies add ``IMAGE_COPIES`` copies of
the image. The estimate is for fp32 (bf16 needs less, so it is conservative there).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch import nn

from dip.core.network import ReflectConv2d, SkipConfig, SkipNet, Up, input_channels
from dip.errors import DipError

ACTIVATION_FACTOR = 1.5  # measured peak / counted activations (see the module docstring)
IMAGE_COPIES = 16  # fp32 copies of the (padded) image the fit holds besides the network
WEIGHT_COPIES = 8  # parameters, gradients, Adam's two moments, the guard's snapshot of all three plus slack
MIB = 1 << 20
RUNTIME_BYTES = 64 * MIB  # what the first step adds regardless of size (oneDNN, thread pools)


def activation_bytes(params: dict[str, Any], channels: int, height: int, width: int) -> int:
    """Bytes of the activations one training step keeps, counted on the meta device (fp32)."""
    cfg = SkipConfig.from_preset(params, channels)
    with torch.device("meta"):
        net = SkipNet(cfg)
    hp, wp = cfg.padded(height, width)
    counted = [0]

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, Up):  # its input is the concatenation [skip, upsampled]
            counted[0] += inputs[0].numel()
            return
        if list(module.children()) or getattr(module, "inplace", False):
            return
        counted[0] += output.numel()
        if isinstance(module, ReflectConv2d) and module.padding_mode == "reflect":
            x = inputs[0]
            ph, pw = module.padding
            counted[0] += x.shape[0] * x.shape[1] * (x.shape[2] + 2 * ph) * (x.shape[3] + 2 * pw)

    for module in net.modules():
        module.register_forward_hook(count)
    z = torch.empty(1, input_channels(params), hp, wp, device="meta")
    net(z)
    counted[0] += 2 * z.numel()  # z and its perturbed copy
    return 4 * counted[0]


def fit_bytes(params: dict[str, Any], channels: int, height: int, width: int) -> int:
    """Estimated peak memory of a fit at ``height`` x ``width`` beyond what the process already holds."""
    cfg = SkipConfig.from_preset(params, channels)
    with torch.device("meta"):
        weights = sum(p.numel() for p in SkipNet(cfg).parameters())
    hp, wp = cfg.padded(height, width)
    image = 4 * channels * hp * wp
    return int(ACTIVATION_FACTOR * activation_bytes(params, channels, height, width)
               + WEIGHT_COPIES * 4 * weights + IMAGE_COPIES * image + RUNTIME_BYTES)


def available_bytes(device: torch.device) -> int:
    """Memory a fit can use now: CUDA ``mem_get_info`` free bytes, else the kernel's MemAvailable.

    ``DIP_AVAILABLE_MEMORY_MB`` overrides both (tests use it to provoke the refusal without allocating).
    """
    forced = os.environ.get("DIP_AVAILABLE_MEMORY_MB")
    if forced:
        return int(float(forced) * MIB)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62  # unknown (not Linux): do not refuse


def check_memory(subject: str, params: dict[str, Any], channels: int, height: int, width: int,
                 device: torch.device, way_out: Callable[[int], str]) -> int:
    """Raise :class:`DipError` (one line: need, available, ``way_out(available)``) when the fit cannot fit;
    return the need. ``way_out`` is only called for a refusal (finding a smaller size that fits costs estimates)."""
    need, have = fit_bytes(params, channels, height, width), available_bytes(device)
    if need > have:
        where = "GPU memory free" if device.type == "cuda" else "memory available"
        raise DipError(subject, f"a {width}x{height} fit needs about {need / MIB:,.0f} MiB but only "
                                f"{have / MIB:,.0f} MiB {where} on {device.type}; {way_out(have)}")
    return need
