"""`dip describe`: a preset's skip network as the supplementary material draws it (blocks d_i, s_i, u_i), with
the shapes at a given image size and the parameter count."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from dip.cliconv import Parser, hidden_alias, parse_size
from dip.core.network import SkipConfig, SkipNet, count_parameters, input_channels
from dip.data.presets import resolve


def main(argv: list[str] | None = None) -> int:
    """`dip describe`."""
    parser = Parser(prog="dip describe", description="Print a preset's network: its blocks in "
                                     "execution order with their input and output shapes, the layers, and the "
                                     "parameter count.")
    parser.add_argument("--preset", required=True, help="a preset name in presets.yaml (or in --presets-file)")
    parser.add_argument("--presets-file", dest="presets", type=Path, metavar="FILE",
                        help="another presets file (default: the packaged presets.yaml)")
    hidden_alias(parser, "--presets", "presets", type=Path)
    parser.add_argument("--size", default="512x512", help="WxH (width x height) of the image for the shapes")
    parser.add_argument("--channels", type=int, default=1, help="image channels (1 gray, 3 RGB)")
    args = parser.parse_args(argv)
    p = resolve(args.preset, {}, args.presets)
    h, w = parse_size(args.size, "--size")
    in_ch = input_channels(p)
    cfg = SkipConfig.from_preset(p, args.channels)
    net = SkipNet(cfg)
    hp, wp = cfg.padded(h, w)
    rows: list[str] = []

    def hook(name: str) -> Callable:
        return lambda mod, inp, out: rows.append(f"  {name:<28} {str(tuple(inp[0].shape)):<22} -> {tuple(out.shape)}")

    labels = {"down": "d", "skip": "s", "up": "u", "upsample": "upsample"}
    for name, mod in net.named_modules():
        kind = name.split(".")[-1]
        if kind in labels:
            mod.register_forward_hook(hook(f"{labels[kind]}{name.count('deeper') + 1}"))
        elif kind == "head":
            mod.register_forward_hook(hook("output (1x1 conv, sigmoid)"))
    with torch.no_grad():
        net(torch.zeros(1, in_ch, hp, wp))
    print(f"preset {args.preset}: {p.get('description', '')}")
    padded = f" (padded from {w}x{h})" if (hp, wp) != (h, w) else ""
    print(f"input z: {in_ch} channels of {wp}x{hp} ({p['input_kind']}){padded}")
    print("blocks (execution order; nesting depth = scale):")
    print("\n".join(rows))
    print(net)
    print(f"parameters: {count_parameters(net):,}")
    return 0
