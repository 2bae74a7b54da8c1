"""The authors' hyperparameters, pinned: a change to src/dip/data/presets.yaml must fail here, not pass silently.

Every value below is copied from the authors' notebooks (DmitryUlyanov/deep-image-prior@042e0d4), as the data
mirror's README summarises them ("What the authors' notebooks do"):
- `inpainting.ipynb`, 'kate.png' branch (Figure 7 top): INPUT='noise', input_depth=32, LR=0.01,
  num_iter=6001, reg_noise_std=0.03, skip(num_channels_down=num_channels_up=num_channels_skip=[128]*5,
  filter_size_up=filter_size_down=3, filter_skip_size=1, upsample_mode='nearest'); show_every=50.
- `restoration.ipynb`, Barbara / Table 1 (50% of pixels missing): input_depth=32, LR=0.001, num_iter=11000,
  reg_noise_std=0.03, num_channels_down=num_channels_up=[128]*5, num_channels_skip=[4]*5, upsample 'bilinear'.
- Both: get_noise(..., var=1/10) is U(0, 0.1); the loop restores the last good state on a masked-PSNR drop of
  more than 5 dB between checks. max_backtracks=50 is this project's own bound (the notebooks loop forever).
- `inpainting.ipynb`, 'library.png' branch (Figure 8, NET_TYPE='skip_depth6'): INPUT='noise', input_depth=1,
  LR=0.01, num_iter=3001, reg_noise_std=0, skip(num_channels_down=num_channels_up=[16, 32, 64, 128, 128, 128],
  num_channels_skip=[0]*6, filter_size_up=3, filter_size_down=5, filter_skip_size=1, upsample_mode='nearest',
  need1x1_up=False). Its param_noise=True has no effect there (a local name is rebound), so it has no key.
- `inpainting.ipynb`, 'vase.png' branch (Figure 6): INPUT='meshgrid' (2 channels), LR=0.01, num_iter=5001,
  reg_noise_std=0.03, skip(num_channels_down=num_channels_up=[128]*5, num_channels_skip=[0]*5,
  filter_size_up=filter_size_down=3, filter_skip_size=1, upsample_mode='nearest').
- Beyond the final iterate: the output average's weight 0.99 is the authors' `denoising.ipynb` (exp_weight);
  the stopping rule's alpha 0.1 and patience 1000 are those of Wang et al.'s ES_EMV notebook
  (sun-umn/Early_Stopping_for_DIP).
"""

from __future__ import annotations

import pytest

from conftest import dip
from dip.data.presets import resolve

NET = {"input_kind": "noise", "input_depth": 32, "input_scale": 0.1, "n_down": [128] * 5, "n_up": [128] * 5,
       "k_down": 3, "k_up": 3, "k_skip": 1, "up_1x1": True, "eval_every": 50, "backtrack_db": 5.0, "max_backtracks": 50,
       "ema_weight": 0.99, "es_alpha": 0.1, "es_patience": 1000}
EXPECTED = {
    "table1": {**NET, "n_skip": [4] * 5, "upsample": "bilinear", "lr": 0.001, "iterations": 11000,
               "reg_noise_std": 0.03, "authors_notebook": "restoration"},
    "fig7_text": {**NET, "n_skip": [128] * 5, "upsample": "nearest", "lr": 0.01, "iterations": 6001,
                  "reg_noise_std": 0.03, "authors_notebook": "inpainting"},
    "large_holes": {**NET, "input_depth": 1, "n_down": [16, 32, 64, 128, 128, 128],
                    "n_up": [16, 32, 64, 128, 128, 128], "n_skip": [0] * 6, "k_down": 5, "up_1x1": False,
                    "upsample": "nearest", "lr": 0.01, "iterations": 3001, "reg_noise_std": 0.0,
                    "authors_notebook": "inpainting"},
    "large_holes_meshgrid": {**NET, "input_kind": "meshgrid", "input_depth": 2, "n_skip": [0] * 5,
                             "upsample": "nearest", "lr": 0.01, "iterations": 5001, "reg_noise_std": 0.03,
                             "authors_notebook": "inpainting"},
}
# The skip network's parameter count as `dip describe` prints it, for (preset, image channels).
PARAMETERS = {("table1", 1): 2_217_573, ("fig7_text", 3): 3_002_627, ("large_holes", 3): 2_996_467,
              ("large_holes_meshgrid", 3): 2_157_955}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_is_the_authors_values(name):
    got = resolve(name)
    assert set(got) == set(EXPECTED[name]) | {"description"}, "a preset key was added or removed"
    for key, value in EXPECTED[name].items():
        assert got[key] == value and type(got[key]) is type(value), (name, key, got[key], value)


def skip_net_parameters(p: dict, channels: int) -> int:
    """Parameters of the authors' skip network counted by formula, layer by layer.

    Per scale i: skip = conv(k_skip) + BN (none when n_skip is 0); down = stride-2 conv(k_down) + BN +
    conv(k_down) + BN; up = BN over [skip, deeper] + conv(k_up) + BN, + conv(1x1) + BN when need1x1_up
    (up_1x1). Then a 1x1 output conv. The input has input_depth channels (2 for a meshgrid).
    A convolution has c_in*c_out*k*k weights and c_out biases; a BatchNorm 2*c (weight and bias).
    """
    def conv(c_in: int, c_out: int, k: int) -> int:
        return c_in * c_out * k * k + c_out

    nd, nu, ns = p["n_down"], p["n_up"], p["n_skip"]
    total, c_in = 0, 2 if p["input_kind"] == "meshgrid" else p["input_depth"]
    for i in range(len(nd)):
        if ns[i]:
            total += conv(c_in, ns[i], p["k_skip"]) + 2 * ns[i]
        total += conv(c_in, nd[i], p["k_down"]) + 2 * nd[i] + conv(nd[i], nd[i], p["k_down"]) + 2 * nd[i]
        c_cat = ns[i] + (nd[i] if i == len(nd) - 1 else nu[i + 1])
        total += 2 * c_cat + conv(c_cat, nu[i], p["k_up"]) + 2 * nu[i]
        if p["up_1x1"]:
            total += conv(nu[i], nu[i], 1) + 2 * nu[i]
        c_in = nd[i]
    return total + conv(nu[0], channels, 1)


@pytest.mark.parametrize("name, channels", sorted(PARAMETERS))
def test_network_parameter_count(name, channels):
    expected = PARAMETERS[(name, channels)]
    assert skip_net_parameters(EXPECTED[name], channels) == expected  # the formula agrees with the literal...
    r = dip("describe", "--preset", name, "--channels", channels, "--size", "64x64")
    assert r.returncode == 0, r.stderr
    assert f"parameters: {expected:,}" in r.stdout  # ...and so does the network the project builds


def test_cpu_presets_extend_their_full_preset_and_change_only_their_own_keys():
    for name, changed in (("table1_cpu", {"n_down", "n_up", "lr", "iterations", "description"}),
                          ("fig7_text_cpu", {"n_down", "n_up", "n_skip", "iterations", "description"}),
                          ("large_holes_cpu", {"iterations", "description"})):
        full, cpu = resolve(name.removesuffix("_cpu")), resolve(name)
        assert "extends" not in cpu and cpu.keys() == full.keys()
        assert {k for k in full if full[k] != cpu[k]} == changed, name
        assert cpu["iterations"] == 600


@pytest.mark.parametrize("presets, line", [
    ("a:\n  extends: nowhere\n", "dip: error: {f}: preset a: extends unknown preset 'nowhere'\n"),
    ("a:\n  extends: b\nb:\n  extends: a\n", "dip: error: {f}: preset a: extends forms a cycle (a -> b -> a)\n"),
])
def test_bad_extends_is_one_line_naming_the_file(tmp_path, presets, line):
    f = tmp_path / "p.yaml"
    f.write_text(presets)
    r = dip("describe", "--preset", "a", "--presets", f)
    assert r.returncode == 2 and r.stderr == line.format(f=f), r.stderr


def test_a_user_preset_may_extend_another(tmp_path):
    import yaml

    from dip.data.presets import load_presets
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({**load_presets(), "mine": {"extends": "table1_cpu", "iterations": 50}}))
    p = resolve("mine", path=f)
    assert p == {**resolve("table1_cpu"), "iterations": 50}
