"""Ours against the authors' code, over seeds: ``parity.csv`` and the section of ``table1.md`` that shows it.

The reference fits (``dip fit --engine authors``, :mod:`dip.engine.authors`) run on the same inputs, masks and seeds as
ours. Per task and image, the PSNR of our final output (side A) is compared with the authors' (side B) by
:func:`dip.report.stats.compare`: n, mean ± sample std of each side, delta = mean(ours) − mean(authors), its 95% Welch
interval and a verdict (indistinguishable / higher / lower). Two comparisons per image (column
``authors_output``):

``f(z)``
    the authors' network after the last step applied to z without the perturbation: what our ``output.png`` is,
    so like is compared with like;
``shown``
    what their notebook displays at the end (``restoration.ipynb``: f(z + σ·ε_last), the last perturbed input;
    ``inpainting.ipynb``: f(z)).

Overall (:func:`dip.report.stats.overall`): the mean of the per-image deltas with a t interval, images as the unit.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from dip.report import stats
from dip.report.table1 import fmt

KEYS = ("task", "image", "authors_output")
OUTPUTS = {"f(z)": "psnr", "shown": "psnr_shown"}  # authors_output -> the reference fits' column


def parity(ours: pd.DataFrame, reference: pd.DataFrame, cfg: dict[str, Any]) -> pd.DataFrame:
    """One row per (task, image, authors_output), in config order: :data:`KEYS` then ``stats.STAT_COLUMNS``."""
    a = ours[["task", "image", "seed", "psnr"]].assign(side="ours")
    frames = []
    for label, column in OUTPUTS.items():
        b = reference[["task", "image", "seed", column]].rename(columns={column: "psnr"}).assign(side="authors")
        both = pd.concat([a, b], ignore_index=True).dropna(subset=["psnr"])
        t = stats.compare(both, keys=("task", "image"), side="side", value="psnr", a="ours", b="authors")
        frames.append(t.assign(authors_output=label))
    table = pd.concat(frames, ignore_index=True)
    tasks = list(cfg["tasks"])
    position = {(t, im): (tasks.index(t), j) for t in tasks for j, im in enumerate(cfg["tasks"][t]["images"])}
    order = [(*position[(t, im)], list(OUTPUTS).index(o)) for t, im, o in zip(table["task"], table["image"],
                                                                              table["authors_output"])]
    table = table.iloc[sorted(range(len(table)), key=order.__getitem__)].reset_index(drop=True)
    return table[[*KEYS, *stats.STAT_COLUMNS]]


def overall(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per ``authors_output``: :func:`dip.report.stats.overall` over the images (both tasks together)."""
    return {label: stats.overall(table[table["authors_output"] == label]) for label in OUTPUTS}


def _interval(r: pd.Series) -> str:
    if math.isnan(r["ci_low"]):
        return fmt(r["delta"], "+.2f")
    return f"{r['delta']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"


def _overall_text(o: pd.Series) -> str:
    if math.isnan(o["ci_low"]):
        return f"{fmt(o['delta'], '+.2f')} ({o['verdict']})"
    return f"{o['delta']:+.2f} [{o['ci_low']:+.2f}, {o['ci_high']:+.2f}] over {o['groups']} images, {o['verdict']}"


def _pm(mean: float, std: float) -> str:
    return fmt(mean) if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def parity_markdown(table: pd.DataFrame, cfg: dict[str, Any]) -> str:
    """The table1.md section: Paper | Authors' code (f(z), and as shown) | Ours | Δ ours − authors [95% CI]."""
    paper = cfg["paper"]["table1_psnr"]
    fz = table[table["authors_output"] == "f(z)"].set_index(["task", "image"])
    shown = table[table["authors_output"] == "shown"].set_index(["task", "image"])
    rows = []
    for (task, image), r in fz.iterrows():
        s = shown.loc[(task, image)]
        rows.append({
            "Task": task, "Image": image, "Paper": fmt(float(paper[image])) if task == "table1" else "—",
            "Authors' code f(z)": _pm(r["mean_b"], r["std_b"]),
            "Authors' notebook output": _pm(s["mean_b"], s["std_b"]),
            "Ours": _pm(r["mean_a"], r["std_a"]),
            "n seeds (ours/authors)": f"{r['n_a']}/{r['n_b']}",
            "Δ ours − authors f(z) [95% CI]": _interval(r), "Verdict": r["verdict"],
            "Δ ours − notebook output [95% CI]": _interval(s),
        })
    total = {label: _overall_text(o.iloc[0]) for label, o in overall(table).items()}
    lines = [
        "", "## Ours vs the authors' code", "",
        "The authors' network (their `models` package at commit 042e0d4, fetched and verified) in a loop written "
        "after their notebooks (`dip fit --engine authors`, src/dip/engine/authors.py), on the same inputs, masks and "
        "seeds. **Authors' code f(z)**: their network after the last step on z without the perturbation, like "
        "our output. **Authors' notebook output**: what the notebook shows at the end (Table 1: f(z + σ·ε) of "
        "the last perturbed input, restoration.ipynb; kate: f(z), inpainting.ipynb). Δ = ours − authors, the "
        "difference of the means over seeds with its 95% Welch interval; `indistinguishable` when the interval "
        "contains 0.", "",
        f"- Overall Δ ours − authors f(z): {total['f(z)']} (t interval, images as the unit)",
        f"- Overall Δ ours − notebook output: {total['shown']}", "",
    ]
    show = pd.DataFrame(rows)
    align = ("left", "left", "right", "right", "right", "right", "right", "right", "left", "right")
    return "\n".join(lines) + show.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"


def parity_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Flat numbers for summary.json (`dvc metrics show`): the overall Δ ours − authors f(z) and its interval."""
    o = overall(table)["f(z)"].iloc[0]
    num = (lambda v: None if v is None or pd.isna(v) else round(float(v), 4))
    return {"parity_images": int(o["groups"]), "parity_mean_delta_vs_authors": num(o["delta"]),
            "parity_ci_low": num(o["ci_low"]), "parity_ci_high": num(o["ci_high"]), "parity_verdict": o["verdict"]}
