"""The encoder-decoder "skip" network of Deep Image Prior (supplementary material, Fig. 21).

Reading the code next to the architecture figure: scale ``i`` has a *down* block ``d_i`` (stride-2 conv,
conv), a *skip* block ``s_i`` (1x1 conv) and an *up* block ``u_i`` (BatchNorm over the concatenation, conv,
1x1 conv). Every convolution is reflection padded and followed by BatchNorm and LeakyReLU(0.2); the output
is a 1x1 convolution and a sigmoid. Layer for layer this is the authors' ``models/skip.py`` with
``need1x1_up=True`` (same parameter count: 2,217,573 for the Table 1 network).

Any H x W works: :func:`padded_size` rounds up to a multiple of ``2**depth``; the fit feeds a z of that size
and crops the output back (the padded border is treated as unknown pixels, so it never enters the loss or
the metrics). Images whose sides are multiples of 32 (all of the paper's) are not padded at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
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

    @property
    def depth(self) -> int:
        return len(self.n_down)


def conv_bn_act(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    """Reflection-padded convolution, BatchNorm, LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2, padding_mode="reflect"),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


class Down(nn.Sequential):
    """d_i: stride-2 convolution (the downsampler), then a convolution at the new scale."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(conv_bn_act(c_in, c_out, k, stride=2), conv_bn_act(c_out, c_out, k))


class Up(nn.Sequential):
    """u_i: BatchNorm of [skip, upsampled deeper], convolution, 1x1 convolution."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(nn.BatchNorm2d(c_in), conv_bn_act(c_in, c_out, k), conv_bn_act(c_out, c_out, 1))


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
        self.up = Up(n_skip + c_deep, cfg.n_up[i], cfg.k_up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.deeper is not None:
            y = self.deeper(y)
        y = self.upsample(y)
        if self.skip is not None:
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


def padded_size(height: int, width: int, depth: int) -> tuple[int, int]:
    """Smallest size >= (height, width) that the network maps to itself.

    A multiple of ``2**depth``, and at least ``2**(depth + 1)`` so the deepest feature map is 2x2 or larger
    (reflection padding needs more than one pixel).
    """
    m = 2**depth
    return max(-(-height // m) * m, 2 * m), max(-(-width // m) * m, 2 * m)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
