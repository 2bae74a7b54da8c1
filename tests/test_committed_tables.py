"""The tables committed in the README and docs are what the documented commands make from the committed records.

- docs/paper-gpu-run/table1.md and the README's paper table: `dip report --profile paper --fits
  docs/paper-gpu-run/*/seed* --baselines docs/paper-gpu-run/baselines/*/*/seed*` on the GPU records (each fit's
  metrics.json and curve.csv) and the classical fill beside each (its metrics.json, made on a CPU from the same
  masks by benchmarks/classical_study.py).
- The README's quick table: the one in docs/reference-quick-run/table1.md, the report of that study.
"""

from __future__ import annotations

import re

from conftest import ROOT, dip


def table_after(text: str, heading: str) -> str:
    """The first Markdown table (its '| Image' line through its '| Average' line) after ``heading``."""
    rest = text[text.index(heading):]
    start = rest.index("| Image")
    end = rest.index("\n", rest.index("| Average", start))
    return rest[start:end]


def test_paper_table_is_the_report_of_the_gpu_records(tmp_path):
    fits = sorted((ROOT / "docs" / "paper-gpu-run").glob("*/seed*"))
    assert len(fits) >= 10 and all((f / "metrics.json").is_file() and (f / "curve.csv").is_file() for f in fits)
    baselines = sorted((ROOT / "docs" / "paper-gpu-run" / "baselines").glob("*/*/seed*"))
    assert len(baselines) == len(fits) and all((b / "metrics.json").is_file() for b in baselines)
    r = dip("report", "--config", ROOT / "config" / "config.yaml", "--profile", "paper", "--fits", *fits,
            "--baselines", *baselines, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    made = (tmp_path / "table1.md").read_text()
    assert made == (ROOT / "docs" / "paper-gpu-run" / "table1.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert table_after(readme, "### Real output: profile `paper`") == table_after(made, "# Table 1")


def test_quick_table_is_the_studys_report():
    readme = (ROOT / "README.md").read_text()
    study = (ROOT / "docs" / "reference-quick-run" / "table1.md").read_text()
    shown = table_after(readme, "### Real output: profile `quick`")
    assert shown == table_after(study, "# Table 1")
    assert re.search(r"\| barbara +\| +32\.22 \|", shown)  # the paper's column is there


def test_readme_is_a_users_guide_and_its_numbers_come_from_the_records():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    worth = readme[readme.index("## Is Deep Image Prior worth it?"):readme.index("### Real output: profile `paper`")]
    paper_average = table_after(readme, "### Real output: profile `paper`").splitlines()[-1]
    at_paper_scale = re.search(r"\*\*([+−-][\d.]+ dB \[[^\]]+\])\*\*", worth).group(1)
    assert at_paper_scale.replace(" dB", "") in paper_average  # the DIP − classical cell of the Average row
    at_quick_scale = re.search(r"nothing: (−[\d.]+ dB \[[^\]]+\])", worth).group(1)
    assert at_quick_scale in (ROOT / "docs" / "baselines.md").read_text()
    gpu_hours = re.search(r"\*\*([\d.]+ GPU-hours)\*\*", readme).group(1)
    assert f"**{gpu_hours}**" in (ROOT / "docs" / "cluster.md").read_text()  # made by dip.report.cost (test_cost)
