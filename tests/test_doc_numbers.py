"""The numbers of docs/baselines.md, docs/parity.md, docs/stopping.md, docs/photo.md and docs/paper-gpu-run/README.md
are what their committed records give (issue 20, point 5: every number in the docs from a committed record, and a
test keeps them equal). The printed rounding is the tolerance (:mod:`docnumbers`). Numbers without a committed
record (one-off timings, the ci run of docs/baselines.md, the inpaint_choice cases) are not checked here; each doc
names the command and the machine that made them.
"""

from __future__ import annotations

import math
import re
import statistics

import pandas as pd
import pytest
import yaml
from docnumbers import DOCS, doc, flat, metrics, number, numbers, printed, section, table

from conftest import ROOT

GPU = DOCS / "paper-gpu-run"
QUICK = DOCS / "reference-quick-run"
PAPER = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["paper"]


def plus_minus(cell: str, mean: float, std: float) -> bool:
    """``cell`` is "mean ± std" (or "mean" alone when one seed gave no std), each to its printed digits."""
    parts = cell.replace("*", "").split("±")
    return printed(parts[0], mean) and (len(parts) == 1 and math.isnan(std) or printed(parts[1], std))


def interval(cell: str, delta: float, low: float, high: float) -> bool:
    """``cell`` is "+d [low, high]" (or "+d" alone without an interval), each to its printed digits."""
    got = numbers(cell)
    want = [delta] if math.isnan(low) else [delta, low, high]
    return len(got) == len(want) and all(abs(g - w) <= 0.5 * 10 ** -2 + 1e-9 for g, w in zip(got, want))


@pytest.fixture
def study(monkeypatch):
    """benchmarks.classical_study, importable from the checkout (benchmarks/ is not installed)."""
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.classical_study as cs

    return cs


# ------------------------------------------------------------------------------------------- docs/baselines.md
def paper_comparison(cs):
    """benchmarks.classical_study's comparison of the GPU records with their committed fills (no fill rerun)."""
    from benchmarks.common import project_config
    from dip.report.results import config_order

    records = config_order(cs.records_from_folders(sorted(GPU.glob("*/seed*"))), project_config())
    fills = []
    for folder in sorted((GPU / "baselines").glob("*/*/seed*")):
        m = metrics(folder)
        fills.append({"task": m["tags"]["task"], "image": m["tags"]["image"], "seed": int(m["seed"]),
                      **{k: m[k] for k in ("psnr", "psnr_missing", "missing_fraction", "wall_seconds")}})
    return records, cs.compare(records, pd.DataFrame(fills))


def test_baselines_paper_scale_table_is_the_study_of_the_committed_records(study):
    records, (table_, overall) = paper_comparison(study)
    made = [line for line in study.markdown(table_, overall).splitlines() if line.startswith("| table1 |")
            or line.startswith("| fig7_text |")]
    text = doc("baselines.md")
    shown = [line for line in section(text, "## Paper scale").splitlines() if re.match(r"\| (table1|fig7_text) \|", line)]
    assert shown == made
    whole, missing = (overall[v] for v in ("psnr", "psnr_missing"))
    fmt = "{:+.2f} [{:+.2f}, {:+.2f}]"
    at_scale = section(text, "## Paper scale").replace("−", "-")
    for o in (whole, missing):
        assert f"**{fmt.format(o['delta'], o['ci_low'], o['ci_high'])} dB**" in at_scale
    readme = section(text, "## For the README").replace("−", "-")
    assert f"**{whole['delta']:+.2f} dB [{whole['ci_low']:+.2f}, {whole['ci_high']:+.2f}]**" in readme
    assert f"({missing['delta']:+.2f} dB [{missing['ci_low']:+.2f}, {missing['ci_high']:+.2f}]" in readme
    t1 = records[records["task"] == "table1"]
    assert f"{t1['image'].nunique()} Table 1 images, {len(t1)} fits" in readme
    delta = dict(zip(table_["image"], table_["delta"]))
    said = re.search(r"from ([+\d.]+) and ([+\d.]+) dB on barbara and montage to a tie on hill and man "
                     r"\(([-\d.]+) and ([-\d.]+) dB", readme)
    assert said and all(printed(said.group(i + 1), delta[name])
                        for i, name in enumerate(("barbara", "montage", "hill", "man"))), said


def test_baselines_paper_rows_are_the_config_and_the_seed0_fills():
    text = doc("baselines.md")
    rows = {r[""]: r for r in table(text, "| | barbara | boat |")}
    names = list(PAPER["table1_psnr"])
    heads = dict(zip(names, ["barbara", "boat", "house", "lena", "peppers", "C.man", "couple", "finger", "hill", "man",
                             "montage"]))
    for row, values in (("Papyan et al. (paper)", PAPER["papyan_psnr"]), ("DIP (paper)", PAPER["table1_psnr"])):
        assert all(printed(rows[row][heads[n]], values[n]) for n in names), row
        assert printed(rows[row]["mean"], statistics.mean(values.values())), row
    fills = {f.name: metrics(f / "seed0")["psnr"] for f in (GPU / "baselines" / "table1").glob("*")
             if (f / "seed0").is_dir()}
    assert len(fills) == 7
    ours = rows["biharmonic, our seed-0 masks"]
    assert all(printed(ours[heads[n]], psnr) for n, psnr in fills.items())
    opencv = {r["image"]: r["biharmonic"].strip("*") for r in table(text, "| image | biharmonic | Telea r=1")}
    assert all(opencv[n] == ours[heads[n]] for n in names)  # the same fills in both tables
    above = [n for n in names if number(ours[heads[n]]) > PAPER["papyan_psnr"][n]]
    assert len(above) == 9 and set(names) - set(above) == {"barbara", "peppers"}
    assert "On 9 of the 11 images (all but barbara and peppers)" in text


def test_baselines_seed0_fills_without_a_record_are_remade_from_the_mirror(tmp_path):
    """The seed-0 fills of the four images without a GPU record: the pipeline's mask (dip mask --bernoulli 0.5
    --seed 0) and dip baseline on the full image, remade here (seconds) and equal to the row as printed."""
    from conftest import MIRROR
    from dip.cli import main as dip_main
    from dip.engine.baseline import request, run_baseline

    if not (MIRROR / "table1" / "boat.png").is_file():
        pytest.skip(f"no data mirror at {MIRROR} (set DIP_DATA_MIRROR)")
    text = doc("baselines.md")
    ours = {r[""]: r for r in table(text, "| | barbara | boat |")}["biharmonic, our seed-0 masks"]
    heads = {"boat": "boat", "lena": "lena", "couple": "couple", "fingerprint": "finger"}
    assert not any((GPU / "baselines" / "table1" / name).exists() for name in heads)  # else the test above has them
    for name, head in heads.items():
        image, mask = MIRROR / "table1" / f"{name}.png", tmp_path / f"{name}_mask.png"
        assert dip_main(["mask", "--bernoulli", "0.5", "--seed", "0", "--like", str(image), "-o", str(mask)]) == 0
        m = run_baseline(request(image, mask, tmp_path / name), seed=0)
        assert printed(ours[head], m["psnr"]), (name, ours[head], m["psnr"])
    assert printed(ours["mean"], statistics.mean(number(ours[h]) for h in
                                                 ("barbara", "boat", "house", "lena", "peppers", "C.man", "couple",
                                                  "finger", "hill", "man", "montage")))


def test_baselines_quick_scale_dip_columns_are_the_studys_records():
    """The DIP side of the quick-scale table is the committed metrics.csv (the fills are not committed: the doc
    names the command that remakes them)."""
    df = pd.read_csv(QUICK / "metrics.csv")
    rows = table(section(doc("baselines.md"), "## Quick scale"), "| task | image | n (DIP/fill)")
    assert len(rows) == 12
    for r in rows:
        seeds = df[(df["task"] == r["task"]) & (df["image"] == r["image"])]["psnr"]
        assert r["n (DIP/fill)"].startswith(f"{len(seeds)}/")
        assert plus_minus(r["DIP"], seeds.mean(), seeds.std()), r


def test_baselines_quick_scale_table_is_the_study_remade_from_the_records_and_the_mirror(tmp_path):
    """The quick-scale fills are not committed (the fills of a third-party image); remade from the committed
    metrics.csv, the data mirror (sha256-checked against the records) and the pipeline's seeded masks, every
    column but the fill's seconds (a timing) is the doc's."""
    import subprocess
    import sys

    from conftest import MIRROR, checkout_env

    if not (MIRROR / "table1" / "barbara.png").is_file():
        pytest.skip(f"no data mirror at {MIRROR} (set DIP_DATA_MIRROR)")
    r = subprocess.run([sys.executable, "-m", "benchmarks.classical_study", "--profile", "quick", "--metrics-csv",
                        str(QUICK / "metrics.csv"), "--out", str(tmp_path / "fills"), "--masks", str(tmp_path / "masks"),
                        "--data", str(MIRROR)], cwd=ROOT, env=checkout_env(), capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    made = [line.rsplit("|", 2)[0] for line in r.stdout.splitlines() if re.match(r"\| (table1|fig7_text) \|", line)]
    part = section(doc("baselines.md"), "## Quick scale")
    shown = [line.rsplit("|", 2)[0] for line in part.splitlines() if re.match(r"\| (table1|fig7_text) \|", line)]
    assert len(made) == 12 and shown == made
    said = flat(part).replace("−", "-")
    for name in ("whole image", "missing pixels"):
        line = next(x for x in r.stdout.splitlines() if f"({name})" in x)
        value = re.search(r"DIP − fill (\S+ \[\S+ \S+\]) dB", line).group(1).replace("−", "-")
        assert f"**{value}" in said, (name, value)


# --------------------------------------------------------------------------------------------- docs/parity.md
def test_parity_table_is_parity_csv_and_the_config():
    csv = pd.read_csv(QUICK / "parity.csv")
    rows = table(doc("parity.md"), "| Task | Image | Paper |")
    assert len(rows) == 12
    for r in rows:
        pair = csv[(csv["task"] == r["Task"]) & (csv["image"] == r["Image"])].set_index("authors_output")
        f, shown = pair.loc["f(z)"], pair.loc["shown"]
        paper = PAPER["table1_psnr"].get(r["Image"]) if r["Task"] == "table1" else None
        assert (r["Paper"] == "—") if paper is None else printed(r["Paper"], paper), r
        assert plus_minus(r["Ours"], f["mean_a"], f["std_a"]), r
        assert plus_minus(r["Authors' code f(z)"], f["mean_b"], f["std_b"]), r
        assert plus_minus(r["Authors' notebook output"], shown["mean_b"], shown["std_b"]), r
        assert r["n seeds (ours/authors)"] == f"{f['n_a']}/{f['n_b']}"
        assert interval(r["Δ ours − authors f(z) [95% CI]"].replace("−", "-"), f["delta"], f["ci_low"], f["ci_high"])
        assert r["Verdict"] == f["verdict"]


def quick_sides() -> pd.DataFrame:
    ours = pd.read_csv(QUICK / "metrics.csv").assign(side="ours")
    authors = pd.read_csv(QUICK / "reference_metrics.csv").assign(side="authors")
    return pd.concat([ours, authors], ignore_index=True).rename(
        columns={"psnr": "final", "psnr_ema": "EMA", "psnr_best": "oracle"})


def test_parity_overall_and_its_robustness_rows_are_the_records():
    from dip.report import stats

    text = flat(doc("parity.md")).replace("−", "-")
    summary = pd.read_json(QUICK / "summary.json", typ="series")
    said = re.search(r"ours at the final iterate is \+([\d.]+) dB \[\+([\d.]+), \+([\d.]+)\]", text)
    assert said and all(printed(said.group(i + 1), summary[k]) for i, k in
                        enumerate(("parity_mean_delta_vs_authors", "parity_ci_low", "parity_ci_high")))
    rows = {r["reading of the same 72 fits"]: r for r in table(doc("parity.md"), "| reading of the same 72 fits")}
    d = quick_sides()
    for reading, name in (("final", "final iterate (parity.csv)"), ("EMA", "EMA of the outputs"),
                          ("oracle", "oracle (best evaluation)")):
        per_image = stats.compare(d, keys=("task", "image"), side="side", value=reading, a="ours", b="authors")
        o = stats.overall(per_image).iloc[0]
        r = rows[name]
        got = numbers(r["Δ ours − authors, mean over images [95% CI]"])
        assert [round(x, 3) for x in (o["delta"], o["ci_low"], o["ci_high"])] == got, (reading, got)
        assert r["verdict"] == o["verdict"]
        assert r["images with Δ > 0"] == f"{int((per_image['delta'] > 0).sum())} of {len(per_image)}"
    f = pd.read_csv(QUICK / "parity.csv").query("authors_output == 'f(z)'")
    assert f"{int((f['delta'] > 0).sum())} of {len(f)} deltas positive" in text
    assert printed(rows["final iterate (parity.csv)"]["Δ ours − authors, mean over images [95% CI]"],
                   summary["parity_mean_delta_vs_authors"])


def test_parity_notebook_gap_and_speed_are_the_records():
    from dip.report import stats

    text = flat(doc("parity.md"))
    csv = pd.read_csv(QUICK / "parity.csv")
    f = csv[(csv["authors_output"] == "f(z)") & (csv["task"] == "table1")].set_index("image")["mean_b"]
    s = csv[(csv["authors_output"] == "shown") & (csv["task"] == "table1")].set_index("image")["mean_b"]
    gap = f - s
    said = re.search(r"is ([\d.]+) dB below their own f\(z\) on average over the 11 Table 1 images \(([\d.]+)–([\d.]+) "
                     r"dB per image, (\w+) the most\)", text)
    assert said and printed(said.group(1), gap.mean()) and printed(said.group(2), gap.min())
    assert printed(said.group(3), gap.max()) and said.group(4) == gap.idxmax()
    o = stats.overall(csv[csv["authors_output"] == "shown"]).iloc[0]
    said = re.search(r"ours is ([\d.]+) dB \[([\d.]+), ([\d.]+)\] above the notebook's output \((\d+) images", text)
    assert said and [printed(said.group(i + 1), o[k]) for i, k in enumerate(("delta", "ci_low", "ci_high"))] == [True] * 3
    assert int(said.group(4)) == o["groups"]
    d = quick_sides()
    said = re.search(r"median ([\d.]+) s/it ours, ([\d.]+) s/it theirs", text)
    assert printed(said.group(1), d[d["side"] == "ours"]["seconds_per_iter"].median())
    assert printed(said.group(2), d[d["side"] == "authors"]["seconds_per_iter"].median())


# -------------------------------------------------------------------------------------------- docs/stopping.md
def test_stopping_study_table_is_the_benchmark_of_the_committed_metrics(tmp_path):
    import subprocess
    import sys

    from conftest import checkout_env

    r = subprocess.run([sys.executable, "-m", "benchmarks.stopping_study", str(QUICK / "metrics.csv")], cwd=ROOT,
                       env=checkout_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    made = [line.rstrip() for line in r.stdout.splitlines() if line.startswith("|")]
    text = doc("stopping.md")
    shown = [line.rstrip() for line in section(text, "## An earlier study: quick profile").splitlines()
             if line.startswith("|")]
    assert shown == made
    rows = {row["task/image"]: row for row in table(text, "| task/image ")}
    said = flat(section(text, "### What that earlier study said"))
    allfits = rows["all fits"]
    assert f"its mean iteration is {allfits['oracle_iter']} of 800" in said
    assert f"loses only {allfits['final_gap'].lstrip('-')} dB to the oracle" in said
    assert f"{allfits['ema_gap']} dB over the oracle on average" in said
    assert f"it fired in {allfits['fired'].replace('/', ' of ')} fits" in said and f"saved {allfits['saved']}" in said


def test_issue_22_study_tables_are_the_benchmark_of_the_committed_records():
    # docs/stopping.md's tables (a), (b), (c) are `python -m benchmarks.stopping_rules table` of the committed
    # records, and the reading quotes their numbers.
    import subprocess
    import sys

    from conftest import checkout_env

    text = doc("stopping.md")
    rows = {}
    for label, folder in (("**(a) Quick profile**", "docs/stopping-study/quick"),
                          ("**(b) Noisy observed pixels**", "docs/stopping-study/noisy"),
                          ("**(c) Paper records**", "docs/paper-gpu-run")):
        r = subprocess.run([sys.executable, "-m", "benchmarks.stopping_rules", "table", folder], cwd=ROOT,
                           env=checkout_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        made = [line.rstrip() for line in r.stdout.splitlines() if line.startswith("|")]
        after = text[text.index(label):].split("\n")
        first = next(i for i, line in enumerate(after) if line.startswith("|"))
        shown = [line.rstrip() for line in after[first:first + len(made) + 1] if line.startswith("|")]
        assert shown == made, label
        rows[label[3]] = {c[1].strip(): [x.strip() for x in c[1:-1]] for c in (line.split("|") for line in made[2:])}
    said = flat(section(text, "## Which ground-truth-free output"))
    gap = {k: {rule: row[3] for rule, row in v.items()} for k, v in rows.items()}
    assert f"`val_ema_end` is {gap['a']['val_ema_end'].replace(' [', ' dB [')} above the oracle in (a)" in said
    assert f"{gap['b']['val_ema_end'].replace(' [', ' dB [')} in (b)" in said
    assert f"{gap['a']['default'].replace(' [', ' dB [').replace('-', '−')} in (a)" in said.replace("-", "−")
    assert f"{gap['b']['default']} in (b)" in said
    assert rows["b"]["val_ema"][6] == "25/36" and rows["b"]["val_ema"][7] == "31%" and "saves 31%" in said
    assert rows["a"]["val_ema"][4] == "barbara -2.73" and "barbara (−2.73 dB to the oracle" in said


def test_stopping_names_which_gpu_records_have_the_ema_and_house_drift():
    fits = sorted(GPU.glob("*/seed*"))
    without = sorted(f"{f.parent.name} seed {f.name[4:]}" for f in fits if metrics(f).get("psnr_ema") is None)
    with_ema = sorted(f"{f.parent.name} seed {f.name[4:]}" for f in fits if metrics(f).get("psnr_ema") is not None)
    text = flat(doc("stopping.md"))
    said = re.search(r"The H100 records in docs/paper-gpu-run \(([^)]*)\) predate this code", text)
    assert said and sorted(said.group(1).split(", ")) == without
    said = re.search(r"the H200 ones \(([^)]*)\) have them", text)
    assert said and sorted(said.group(1).split(", ")) == with_ema
    above = sorted(f.parent.name for f in fits if (m := metrics(f)).get("psnr_ema") is not None and m["psnr_ema"] > m["psnr"])
    said = re.search(r"EMA above the final iterate on (\d) of those (\d) fits: ([^)]*)\)", text)
    assert said and (int(said.group(1)), int(said.group(2))) == (len(above), len(with_ema))
    assert said.group(3).split(", ") == above
    house = metrics(GPU / "house" / "seed0")
    said = re.search(r"House's final iterate drifted ([\d.]+) dB below its oracle: ([\d.]+) vs ([\d.]+) dB", text)
    assert said and printed(said.group(1), house["psnr_best"] - house["psnr"])
    assert printed(said.group(2), house["psnr"]) and printed(said.group(3), house["psnr_best"])


# ---------------------------------------------------------------------------------------------- docs/photo.md
def test_photo_gpu_row_is_derived_from_the_kate_record():
    from dip.inpaint.memory import fit_bytes

    kate, fill = metrics(GPU / "kate" / "seed0"), metrics(GPU / "baselines" / "fig7_text" / "kate" / "seed0")
    f = fill["missing_fraction"]
    mse, mse_known = 10 ** (-kate["psnr"] / 10), 10 ** (-kate["psnr_masked"] / 10)
    kept = -10 * math.log10(mse - (1 - f) * mse_known)  # the known pixels put back: only the missing ones err
    missing = -10 * math.log10((mse - (1 - f) * mse_known) / f)
    text = doc("photo.md")
    said = re.search(r"its `psnr` \(raw output, whole image, ([\d.]+) dB\) and `psnr_masked` \(known pixels, ([\d.]+) "
                     r"dB\) in `[^`]+` give, with ([\d.]+)% missing, ([\d.]+) dB whole image with the known pixels put "
                     r"back and ([\d.]+) dB over the missing pixels", flat(text))
    assert said, "the kate derivation sentence"
    for i, value in enumerate((kate["psnr"], kate["psnr_masked"], 100 * f, kept, missing)):
        assert printed(said.group(i + 1), value), (i, said.group(i + 1), value)
    row = next(r for r in table(text, "| run | device, load") if r["run"].startswith("paper-profile GPU fit"))
    assert row["iterations"] == str(kate["iterations"]) and printed(row["wall time"], kate["wall_seconds"])
    assert printed(row["PSNR, whole (known pixels kept)"], kept) and printed(row["PSNR, missing pixels only"], missing)
    assert f"raw output: {kate['psnr']:.2f} dB)" in row["PSNR, whole (known pixels kept)"]
    said = re.search(r"the biharmonic fill alone ([\d.]+) dB\*\* \(whole image [\d.]+ vs ([\d.]+);", flat(text))
    assert said and printed(said.group(1), fill["psnr_missing"]) and printed(said.group(2), fill["psnr"])
    from dip.data.presets import resolve

    for r in table(text, "| preset | size | measured | estimate"):
        n, _, c = (int(x) for x in r["size"].split("x"))
        est = fit_bytes(resolve(r["preset"], {}), c, n, n) / 2**20
        assert printed(r["estimate"], est), r  # the memory model's own estimate, as printed
        assert printed(r["estimate / measured"], number(r["estimate"]) / number(r["measured"])), r


# ---------------------------------------------------------------------------------- docs/paper-gpu-run/README.md
def test_paper_gpu_run_readme_machines_and_timings_are_the_records():
    text = doc("paper-gpu-run/README.md")
    fits = {(f.parent.name, int(f.name[4:])): metrics(f) for f in GPU.glob("*/seed*")}
    listed = set()
    for r in table(text, "| fits | machine | how"):
        names, seed = re.match(r"(.*) \(seed (\d)\)", r["fits"]).groups()
        model = re.search(r"H\d00", r["machine"]).group(0)
        for name in names.split(", "):
            listed.add((name, int(seed)))
            assert model in fits[(name, int(seed))]["device_name"], (name, r)
    assert listed == set(fits)
    timing = flat(section(text, "Timings (each fit's", end="## What is still missing"))
    alone = [fits[("hill", 0)], fits[("man", 0)]]
    pair = [fits[("house", 1)], fits[("peppers", 1)]]
    said = re.search(r"a 512x512 fit alone ([\d.]+) ms per iteration \(([\d.]+) s for 11000 iterations\), two "
                     r"256x256 fits at once ([\d.]+) ms each \(so ([\d.]+) ms per fit-iteration", timing)
    def mean(fits, key):  # the sentence speaks of "a fit": the mean of the fits it describes
        return statistics.mean(m[key] for m in fits)

    assert said and printed(said.group(1), mean(alone, "seconds_per_iter"), 1000)
    assert printed(said.group(2), mean(alone, "wall_seconds"))
    assert printed(said.group(3), mean(pair, "seconds_per_iter"), 1000)
    assert printed(said.group(4), mean(pair, "seconds_per_iter") / 2, 1000)
    h100 = [1000 * m["seconds_per_iter"] for m in fits.values() if "H100" in m["device_name"]]
    said = re.search(r"the H100 rows ran two or four fits at once \(([\d]+)-([\d]+) ms each", timing)
    assert said and printed(said.group(1), min(h100)) and printed(said.group(2), max(h100)), (min(h100), max(h100))


def test_paper_gpu_run_readme_calls_are_their_logs():
    text = flat(doc("paper-gpu-run/README.md"))
    logs = GPU / "logs-h200-2026-11-26"
    consoles = [(logs / call / "console.txt").read_text() for call in ("call1", "call2")]
    ran = [int(re.search(r"snakemake exit \d+ after (\d+) s", c).group(1)) for c in consoles]
    stated = [int(s) for s in re.findall(r"\| (\d+) s call \|", text)]
    assert len(stated) == 2 and all(r <= s <= r + 5 for r, s in zip(ran, stated)), (ran, stated)  # the call wraps Snakemake
    stopped = re.search(r"stopped by SIGINT at iteration (\d+)", (logs / "call1" / "snakemake.log").read_text()).group(1)
    assert f"(couple, iteration {stopped})" in text
    sizes = {m.group(1): m.group(2) for c in consoles
             for m in re.finditer(r"checkpoint brought back: results/paper/fits/table1/(\w+)/seed\d \((\d+)M\)", c)}
    assert f"Its checkpoint is {sizes['couple']} MB" in text
    assert f"a 256x256 checkpoint is {sizes['cameraman']} MB" in text and sizes["cameraman"] == sizes["montage"]


def test_stopping_512_photos_table_is_the_committed_choice_record():
    """docs/stopping.md's six photos at 512x512: every number is docs/inpaint-512/choice.csv's (the benchmark's
    own record), and the sentences that sum the table up agree with it."""
    import csv

    with open(DOCS / "inpaint-512" / "choice.csv", newline="") as f:
        record = {r["case"]: r for r in csv.DictReader(f)}
    text = doc("stopping.md")
    rows = table(text, "| case | missing | biharmonic | **default** |")
    assert len(rows) == len(record) == 6
    for row in rows:
        r = record[row["case"].split(" ")[0]]
        bih, default = float(r["biharmonic"]), float(r["default"])
        assert printed(row["missing"], float(r["missing_pct"])) and printed(row["biharmonic"], bih)
        assert printed(row["**default**"].strip("*"), default)
        assert printed(row["default − biharmonic"], default - bih) and default >= bih
        what = r["default_what"]
        if what.startswith("a blend of "):
            weight = float(what.split("a blend of ", 1)[1].split(" DIP")[0])
            assert printed(row["what the default wrote"], weight)
        else:  # DIP or the biharmonic fill alone
            assert row["what the default wrote"] == what.split(":", 1)[0]
        assert printed(row["time"], float(r["default_s"])) and row["first estimate"] == r["default_eta"]
        assert row["stopped"] == (r["default_stopped"] or "no")
    assert max(float(r["default_s"]) for r in record.values()) < 300  # "within 5 minutes on every photo"
