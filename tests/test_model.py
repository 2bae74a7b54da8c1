"""The skip network: the authors' parameter count and size handling."""

from __future__ import annotations

import pytest
import torch

from dip.core.network import SkipConfig, SkipNet, count_parameters, padded_size
from dip.data.presets import resolve


def _net(preset: str, out_channels: int = 1) -> SkipNet:
    p = resolve(preset)
    return SkipNet(SkipConfig(p["input_depth"], out_channels, p["n_down"], p["n_up"], p["n_skip"],
                              p["k_down"], p["k_up"], p["k_skip"], p["upsample"]))


def test_table1_network_has_the_authors_parameter_count():
    assert count_parameters(_net("table1")) == 2_217_573


def test_fig7_text_network_parameter_count():
    # n_skip = 128 at every scale: the skip convs and the wider up blocks add parameters (RGB output).
    net = _net("fig7_text", 3)
    assert count_parameters(net) > count_parameters(_net("table1"))
    assert net.levels.skip[0].out_channels == 128


@pytest.mark.parametrize("size", [(512, 512), (256, 256), (321, 479)])
def test_output_size_equals_input_size(size):
    net = SkipNet(SkipConfig(4, 1, [8] * 5, [8] * 5, [2] * 5))
    hp, wp = padded_size(*size, 5)
    assert hp % 32 == 0 and wp % 32 == 0 and hp - size[0] < 32 and wp - size[1] < 32
    with torch.no_grad():
        out = net(torch.rand(1, 4, hp, wp))
    assert out.shape == (1, 1, hp, wp)
    assert out[..., : size[0], : size[1]].shape[-2:] == size  # the fit crops back to the image
    assert 0 <= out.min() and out.max() <= 1  # sigmoid output


def test_paper_sizes_are_not_padded():
    assert padded_size(512, 512, 5) == (512, 512)
    assert padded_size(256, 256, 5) == (256, 256)


def test_skip_can_be_disabled_and_blocks_are_named():
    net = SkipNet(SkipConfig(4, 1, [8, 8], [8, 8], [0, 2]))
    assert net.levels.skip is None and net.levels.deeper.skip is not None
    assert {"down", "up", "upsample"} <= {n for n, _ in net.levels.named_children()}
    with torch.no_grad():
        assert net(torch.rand(1, 4, 16, 16)).shape == (1, 1, 16, 16)


def test_blocks_follow_the_supplementary_material():
    net = _net("table1")
    first = net.levels
    conv_down = first.down[0][0]
    assert conv_down.stride == (2, 2) and conv_down.padding_mode == "reflect"
    assert isinstance(first.down[0][2], torch.nn.LeakyReLU) and first.down[0][2].negative_slope == 0.2
    assert isinstance(first.up[0], torch.nn.BatchNorm2d) and first.up[0].num_features == 4 + 128
    assert first.up[2][0].kernel_size == (1, 1)  # the 1x1 conv after each up conv
    assert first.upsample.mode == "bilinear"
    assert isinstance(net.head[1], torch.nn.Sigmoid)
