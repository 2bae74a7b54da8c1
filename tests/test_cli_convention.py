"""One command-line convention (issue 20, point 10): -o/--output for every command that writes, old spellings as
hidden aliases, inputs named alike in fit and inpaint, defaults in every help, dip inpaint's reproduction options
in an "advanced" group, --presets-file, WxH sizes, dip gate; and the pipeline calls the new spellings."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from conftest import ROOT, dip
from dip.cli import build_parser
from dip.cliconv import Formatter
from dip.engine.baseline import parser as baseline_parser

WRITERS = ["fit", "inpaint", "mask", "fetch", "report", "figure7", "baseline"]


def _sub(name: str) -> argparse.ArgumentParser:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices[name]


@pytest.mark.parametrize("command", WRITERS)
def test_every_command_that_writes_names_it_with_o_output(command):
    r = dip(command, "--help")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^  -o OUTPUT, --output OUTPUT", r.stdout, flags=re.M), r.stdout
    assert not re.search(r"--out\b|--dest\b", r.stdout)  # the old spellings are not shown


def test_old_spellings_still_work_and_store_where_the_new_ones_do():
    p = build_parser()
    new = p.parse_args(["fit", "a.png", "m.png", "--preset", "table1", "-o", "out", "--presets-file", "p.yaml"])
    old = p.parse_args(["fit", "--image", "a.png", "--mask", "m.png", "--preset", "table1", "--out", "out",
                        "--presets", "p.yaml"])
    assert vars(new) == vars(old)
    assert (new.image, new.mask, new.output, new.presets) == (Path("a.png"), Path("m.png"), Path("out"), Path("p.yaml"))
    inpaint = p.parse_args(["inpaint", "a.png", "m.png", "-o", "o.png", "--presets", "p.yaml"])
    assert (inpaint.image, inpaint.mask, inpaint.presets) == (Path("a.png"), Path("m.png"), Path("p.yaml"))
    b = baseline_parser()  # dip baseline IMAGE MASK, like dip fit; --image/--mask/--out still work
    new = b.parse_args(["a.png", "m.png", "-o", "out", "--crop", "8"])
    old = b.parse_args(["--image", "a.png", "--mask", "m.png", "--out", "out", "--crop", "8"])
    assert vars(new) == vars(old) and (new.image, new.mask, new.output) == (Path("a.png"), Path("m.png"), Path("out"))
    assert "--image" not in b.format_help() and "--mask" not in b.format_help()  # hidden, as dip fit's


def test_an_input_given_both_ways_or_not_at_all_is_refused(tmp_path):
    r = dip("fit", "a.png", "--image", "b.png", "--preset", "table1", "-o", tmp_path / "o")
    assert r.returncode == 2 and "IMAGE given twice (as an argument and as --image)" in r.stderr
    r = dip("fit", "--preset", "table1", "-o", tmp_path / "o")
    assert r.returncode == 2 and "the following arguments are required: IMAGE" in r.stderr
    r = dip("baseline", "a.png", "m2.png", "--mask", "m.png", "-o", tmp_path / "o")
    assert r.returncode == 2 and "MASK given twice (as an argument and as --mask)" in r.stderr
    r = dip("baseline", "a.png", "-o", tmp_path / "o")
    assert r.returncode == 2 and "the following arguments are required: MASK" in r.stderr


@pytest.mark.parametrize("command, args", [
    ("report", ["--profile", "ci", "--fits", "f", "--config", "missing.yaml"]),
    ("figure7", ["--kate-fit", "k", "--barbara-fit", "b", "--kate-image", "k.png", "--barbara-image", "b.png",
                 "--profile", "ci"]),
])
def test_delegated_commands_take_out_as_a_hidden_alias(tmp_path, command, args):
    r = dip(command, *args)
    assert r.returncode == 2 and "required: -o/--output" in r.stderr
    r = dip(command, *args, "--out", tmp_path / "x.png")
    assert r.returncode == 2 and "required" not in r.stderr  # it got as far as reading its inputs


@pytest.mark.parametrize("command", ["fit", "inpaint", "mask"])
def test_every_option_with_a_default_shows_it_in_the_help(command):
    parser = _sub(command)
    formatter = Formatter(prog="dip")
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings or action.dest}: no help"
        d = action.default
        if d is not None and d is not False and d != [] and d != argparse.SUPPRESS:
            assert "default" in formatter._get_help_string(action), (command, action.option_strings)


@pytest.mark.parametrize("command, shown", [
    ("fit", "--seed SEED           seeds the network, its input z and the perturbation (default: 0)"),
    ("fetch", "(default: data/raw)"), ("report", "(default: config/config.yaml)"),
    ("describe", "(default: 512x512)"), ("inpaint", "--mask-convention {auto,white-missing,white-known}"),
])
def test_delegated_and_own_helps_show_defaults(command, shown):
    r = dip(command, "--help")
    assert r.returncode == 0 and " ".join(shown.split()) in " ".join(r.stdout.split()), r.stdout


def test_inpaint_help_puts_the_reproduction_options_in_an_advanced_group():
    r = dip("inpaint", "--help")
    main, advanced = r.stdout.split("\nadvanced (reproduction and tuning")
    for option in ("--crop-at", "--memory-format", "--cuda-graph", "--checkpoint-dir", "--presets-file", "--set",
                   "--deterministic", "--reg-noise-std"):
        assert f"\n  {option}" in advanced and f"\n  {option}" not in main, option
    for option in ("--preset", "--mask-convention", "--max-side", "--force", "--device", "--iterations"):
        assert f"\n  {option}" in main, option
    assert "default fp32" not in r.stdout and "bf16 on a CPU" in r.stdout  # what auto picks, not a wrong default


def test_sizes_are_width_by_height_in_describe():
    r = dip("describe", "--preset", "table1", "--size", "100x64")
    assert r.returncode == 0, r.stderr
    assert "input z: 32 channels of 128x64 (noise) (padded from 100x64)" in r.stdout
    assert re.search(r"d1 +\(1, 32, 64, 128\)", r.stdout)  # tensors stay (N, C, H, W)
    r = dip("describe", "--preset", "table1", "--size", "64")
    assert r.returncode == 2 and "--size: expected WxH (width x height)" in r.stderr


def test_compare_is_now_gate_and_the_old_name_still_runs(tmp_path):
    help_text = dip("--help").stdout
    assert re.search(r"^    gate ", help_text, flags=re.M) and not re.search(r"^    compare ", help_text, flags=re.M)
    for name in ("gate", "compare"):
        r = dip(name, "--metrics", tmp_path / "missing.csv", "--baseline", tmp_path / "b.csv", "--tolerance", "0.3")
        assert r.returncode == 2 and "missing.csv" in r.stderr, r.stderr
    assert dip("compare", "--help").stdout.startswith("usage: dip gate ")


def test_the_pipeline_calls_the_new_spellings():
    rules = "".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    make = (ROOT / "Makefile").read_text()
    for old in ("--out ", "--dest ", "fit --image", "baseline --image", "--presets "):
        assert old not in rules, old
    assert "baseline {input.image} {input.mask} " in rules
    assert "-m dip gate " in make and "dip compare" not in make and "dip.cli compare" not in make
    assert "fit {input.image} {input.mask} " in rules and "-o {params.out}" in rules
