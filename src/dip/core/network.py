"""The encoder-decoder "skip" network of Deep Image Prior (supplementary material, Fig. 21).

Reading the code next to the architecture figure: scale ``i`` has a *down* block ``d_i`` (stride-2 conv,
conv), a *skip* block ``s_i`` (1x1 conv) and an *up* block ``u_i`` (BatchNorm over the concatenation, conv,
1x1 conv). Every convolution is reflection padded and followed by BatchNorm and LeakyReLU(0.2); the output
is a 1x1 convolution and a sigmoid. Layer for layer this is the authors' ``models/skip.py`` (same parameter
count: 2,217,573 for the Table 1 network); the preset key ``up_1x1`` is their ``need1x1_up`` (False drops the
1x1 convolution of every up block, as their large-hole example does). A scale whose ``n_skip`` is 0 has no
skip branch: its up block sees the upsampled deeper features only.

Any H x W works: :func:`padded_size` rounds up to a multiple of ``2**depth``; the fit feeds a z of that size
and crops the output back (the padded border is treated as unknown pixels, so it never enters the loss or
the metrics). Images whose sides are multiples of 32 (all of the paper's) are not padded at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SkipConfig:
    """Hyperparameters of the skip network (all from a preset)."""

    in_channels: int
    out_channels: int
    n_down: Sequence[int]
    n_up: Sequence[int]
    n_skip: Sequence[int]
    k_down: int = 3
    k_up: int = 3
    k_skip: int = 1
    upsample: str = "bilinear"
    up_1x1: bool = True

    @property
    def depth(self) -> int:
        return len(self.n_down)

    def padded(self, height: int, width: int) -> tuple[int, int]:
        """:func:`padded_size` for this network (its depth and largest kernel)."""
        return padded_size(height, width, self.depth, max(self.k_down, self.k_up, self.k_skip))

    @classmethod
    def from_preset(cls, params: dict[str, Any], out_channels: int) -> "SkipConfig":
        """The network of a (validated) preset for images with ``out_channels`` channels: the one place a preset
        becomes a network configuration."""
        return cls(input_channels(params), out_channels, params["n_down"], params["n_up"], params["n_skip"],
                   params["k_down"], params["k_up"], params["k_skip"], params["upsample"], params["up_1x1"])


def input_channels(params: dict[str, Any]) -> int:
    """Channels of z: 2 for a meshgrid input, else the preset's ``input_depth``."""
    return 2 if params["input_kind"] == "meshgrid" else params["input_depth"]


def network_input(params: dict[str, Any], shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """The fixed network input z, (1, D, H, W): U(0, input_scale) noise drawn from ``gen``, or the 2-channel
    meshgrid (x, y) in [0, 1]."""
    h, w = shape
    if params["input_kind"] == "meshgrid":
        ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        return torch.stack([xs, ys])[None]
    return torch.rand((1, params["input_depth"], h, w), generator=gen) * params["input_scale"]


class ReflectConv2d(nn.Conv2d):
    """``nn.Conv2d(..., padding_mode="reflect")`` whose padding keeps the input's dtype under CPU autocast.

    Same parameters and state_dict as nn.Conv2d, and the same numbers outside CPU autocast. Only the CPU bf16
    path changes: CPU autocast runs ``reflection_pad2d`` in fp32, so every padded convolution would cast its
    bf16 input to fp32, pad, and cast back to bf16 for the convolution (two full-size copies per layer; their
    measured cost is in docs/performance.md). Padding only copies values, so the convolution input is the same; the backward sums
    the border gradients in bf16 instead of fp32 (a rounding-level difference).
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode == "reflect" and input.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                input = F.pad(input, self._reversed_padding_repeated_twice, mode="reflect")
            return F.conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


def conv_bn_act(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    """Reflection-padded convolution, BatchNorm, LeakyReLU(0.2)."""
    return nn.Sequential(
        # A 1x1 convolution pads nothing; "zeros" (with padding 0) skips the copy that nn.Conv2d makes for a
        # zero-width reflection pad (docs/performance.md). Same parameters and numbers.
        ReflectConv2d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2,
                      padding_mode="reflect" if k > 1 else "zeros"),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


class Down(nn.Sequential):
    """d_i: stride-2 convolution (the downsampler), then a convolution at the new scale."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(conv_bn_act(c_in, c_out, k, stride=2), conv_bn_act(c_out, c_out, k))


class Up(nn.Sequential):
    """u_i: BatchNorm of [skip, upsampled deeper], convolution, then (``with_1x1``) a 1x1 convolution."""

    def __init__(self, c_in: int, c_out: int, k: int, with_1x1: bool = True):
        layers = [nn.BatchNorm2d(c_in), conv_bn_act(c_in, c_out, k)]
        if with_1x1:
            layers.append(conv_bn_act(c_out, c_out, 1))
        super().__init__(*layers)


def sliced_channels_last(y: torch.Tensor) -> bool:
    """A channels-last tensor whose channel slices are not dense (more than one channel and pixel)."""
    return y.dim() == 4 and y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()


def dense_channels_last(grad: torch.Tensor) -> torch.Tensor:
    """Gradient hook on the upsampled branch before the concatenation (CPU, channels-last only).

    cat's backward hands the upsample a channel slice of the channels-last gradient, which is neither contiguous
    nor channels-last, and the CPU upsample backward then takes a much slower path (measured in
    docs/performance.md). One dense channels-last copy first is cheaper. Same values.
    """
    return grad.contiguous(memory_format=torch.channels_last)


class Level(nn.Module):
    """One scale: skip branch beside (down -> deeper levels -> upsample), concatenated, then up."""

    def __init__(self, cfg: SkipConfig, i: int, c_in: int):
        super().__init__()
        n_skip = cfg.n_skip[i]
        self.skip = conv_bn_act(c_in, n_skip, cfg.k_skip) if n_skip else None
        self.down = Down(c_in, cfg.n_down[i], cfg.k_down)
        last = i == cfg.depth - 1
        self.deeper = None if last else Level(cfg, i + 1, cfg.n_down[i])
        c_deep = cfg.n_down[i] if last else cfg.n_up[i + 1]
        align = None if cfg.upsample == "nearest" else False
        self.upsample = nn.Upsample(scale_factor=2, mode=cfg.upsample, align_corners=align)
        self.up = Up(n_skip + c_deep, cfg.n_up[i], cfg.k_up, cfg.up_1x1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.deeper is not None:
            y = self.deeper(y)
        y = self.upsample(y)
        if self.skip is not None:
            if y.requires_grad and y.device.type == "cpu" and sliced_channels_last(y):
                y.register_hook(dense_channels_last)
            y = torch.cat([self.skip(x), y], dim=1)
        return self.up(y)


class SkipNet(nn.Module):
    """The full network: the nested levels, then a 1x1 convolution and a sigmoid."""

    def __init__(self, cfg: SkipConfig):
        super().__init__()
        if not (len(cfg.n_down) == len(cfg.n_up) == len(cfg.n_skip) > 0):
            raise ValueError("n_down, n_up and n_skip must have the same non-zero length")
        if cfg.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be nearest or bilinear, not {cfg.upsample!r}")
        self.cfg = cfg
        self.levels = Level(cfg, 0, cfg.in_channels)
        self.head = nn.Sequential(nn.Conv2d(cfg.n_up[0], cfg.out_channels, 1), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.levels(z))


def padded_size(height: int, width: int, depth: int, kernel: int = 3) -> tuple[int, int]:
    """Smallest size >= (height, width) that the network maps to itself.

    A multiple of ``2**depth`` whose deepest feature map is large enough for the reflection padding of the
    ``kernel``-sized convolutions there (padding must be smaller than the side): at least 2x2 for 3x3 kernels,
    3x3 for 5x5 kernels.
    """
    m, deepest = 2**depth, max(2, kernel // 2 + 1)
    return max(-(-height // m) * m, deepest * m), max(-(-width // m) * m, deepest * m)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
