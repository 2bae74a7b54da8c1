"""The HTML report's landing page (workflow/report/workflow.rst): what it needs beyond plain reStructuredText.

Snakemake renders the workflow description with docutils. Two pieces come from here:

- :class:`Parser`, for ``.. include:: results/<profile>/table1.md`` with ``:parser: dip.report.landing``: it reads the
  Markdown that `dip report` writes (headings, paragraphs, bullets, `code`, **bold**, pipe tables) as
  reStructuredText, so the landing page shows Table 1 exactly as table1.md has it, verdicts included;
- the ``dip-figure`` directive (registered on import; workflow/rules/report.smk imports this module): a figure
  whose image is embedded as a data URI, so the single-file report shows it wherever it is opened.

:func:`check_report` (``python -m dip.report.landing``, run by ``make report-ci``) checks a built report's landing page.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import docutils.parsers.rst
from docutils.parsers.rst import directives
from docutils.parsers.rst.directives.images import Figure

from dip.errors import DipError

_INLINE = re.compile(r"(`[^`]+`|\*\*[^*]+\*\*)")
_SPECIAL = re.compile(r"([\\*`_|])")


def inline(text: str) -> str:
    """One line of Markdown prose as reStructuredText: `code` -> ``code``, **bold** kept, markup characters of
    reStructuredText elsewhere escaped; a backslash-space where a literal or bold touches a word (reST needs
    whitespace or punctuation around inline markup)."""
    parts = _INLINE.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(_SPECIAL.sub(r"\\\1", part))
            continue
        before, after = parts[i - 1][-1:], parts[i + 1][:1]
        body = f"``{part[1:-1]}``" if part.startswith("`") else part
        out.append(("\\ " if before.isalnum() else "") + body + ("\\ " if after.isalnum() else ""))
    return "".join(out)


def _cell(text: str) -> str:
    text = inline(text.strip())
    if not text:
        return "\\ "
    return "\\" + text if text[0] in "-+#=(" else text


def _table(rows: list[str]) -> list[str]:
    """A Markdown pipe table (header, alignment row, body) as a list-table."""
    cells = [[c for c in row.strip().strip("|").split("|")] for row in rows]
    header, body = cells[0], [r for r in cells[2:]]
    out = [".. list-table::", "   :header-rows: 1", "   :class: dip-table", ""]
    for row in [header, *body]:
        out += [f"   * - {_cell(row[0])}", *(f"     - {_cell(c)}" for c in row[1:])]
    return out + [""]


def markdown_to_rst(text: str) -> str:
    """The Markdown `dip report` writes, as reStructuredText. Headings become rubrics (no sections: the text is
    included inside a section of the landing page)."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out += ["", *_table(lines[i:j])]
            i = j
            continue
        if m := re.match(r"#+ (.*)", line):
            out += ["", f".. rubric:: {inline(m.group(1))}", ""]
        elif line.startswith("- "):
            out.append("- " + inline(line[2:]))
        else:
            out.append(inline(line))
        i += 1
    return "\n".join(out) + "\n"


class Parser(docutils.parsers.rst.Parser):
    """``.. include:: table1.md`` with ``:parser: dip.report.landing``: Markdown of `dip report`, parsed as reST."""

    supported = ("dip-markdown",)

    def parse(self, inputstring: str, document) -> None:
        super().parse(markdown_to_rst(inputstring), document)


class EmbeddedFigure(Figure):
    """``.. dip-figure:: path``: a figure whose image travels inside the HTML (a data URI), with a caption."""

    def run(self):
        path = Path(directives.uri(self.arguments[0]))
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError as e:
            raise self.error(f"dip-figure: cannot read {path}: {e.strerror}") from None
        self.options.setdefault("alt", path.name)
        self.arguments[0] = f"data:{mime};base64,{data}"
        return super().run()


directives.register_directive("dip-figure", EmbeddedFigure)


# ---------------------------------------------------------------- checking a built report (make report-ci, tests)
class _Page(HTMLParser):
    """The text, the tables (rows of cell texts), the images' sources and the figure captions of an HTML body."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.captions: list[str] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "p" and "caption" in (a.get("class") or "").split():
            self._caption = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "p" and self._caption is not None:
            self.captions.append(" ".join("".join(self._caption).split()))
            self._caption = None

    def handle_data(self, data):
        self.text.append(data)
        for part in (self._cell, self._caption):
            if part is not None:
                part.append(data)


def landing_html(report: str | Path) -> str:
    """The landing page's HTML inside a report that `snakemake --report` wrote (a JSON string in its script)."""
    m = re.search(r'var workflow_desc = ("(?:[^"\\]|\\.)*");', Path(report).read_text(encoding="utf-8"))
    if not m:
        raise DipError(report, "no workflow description (the Snakefile's `report:`) in this report")
    return json.loads(m.group(1))


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The pipe tables of a Markdown text as rows of cell texts (the alignment row left out)."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
                rows.append([" ".join(c.split()) for c in line.strip().strip("|").split("|")])
        elif rows:
            tables, rows = [*tables, rows], []
    return tables


def check_report(report: str | Path, table1_md: str | Path, cfg: dict[str, Any]) -> list[str]:
    """What the report's landing page lacks (empty: nothing): the paper, the profile and its comparability,
    Table 1 exactly as table1.md has it (verdicts included), Figure 7 embedded with a caption that quotes the
    paper's Barbara PSNR only for the paper profile, and the comparison with the authors' code only when it ran."""
    page = _Page()
    page.feed(landing_html(report))
    text = " ".join("".join(page.text).split())
    profile, paper = cfg["profile"], "Comparable with the paper."
    barbara = f"{float(cfg['paper']['table1_psnr']['barbara']):.2f} dB"
    wanted = {
        "the paper": "Deep Image Prior" in text and "arXiv:1711.10925" in text,
        f"the profile {profile}": f"Profile {profile} (" in text,
        "its comparability": (paper in text) == (profile == "paper") and ("Not comparable" in text) != (profile == "paper"),
        "Table 1 as in table1.md": page.tables == markdown_tables(Path(table1_md).read_text(encoding="utf-8")),
        "Figure 7, embedded": any(src.startswith("data:image/png;base64,") for src in page.images),
        "a Figure 7 caption fit for the profile": bool(page.captions) and all(
            (barbara in c) == (profile == "paper") for c in page.captions),
        "the comparison with the authors' code only when it ran": ("parity.csv" in text) == bool(cfg["reference"]),
    }
    return [what for what, ok in wanted.items() if not ok]


def main(argv: list[str] | None = None) -> int:
    """`python -m dip.report.landing REPORT --profile P [--reference]`: check a report's landing page (make report-ci)."""
    import argparse

    import yaml

    p = argparse.ArgumentParser(prog="python -m dip.report.landing", description=check_report.__doc__)
    p.add_argument("report", type=Path)
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    p.add_argument("--profile", required=True)
    p.add_argument("--reference", action="store_true", help="the run had reference: true")
    args = p.parse_args(argv)
    cfg = {**yaml.safe_load(args.config.read_text()), "profile": args.profile, "reference": args.reference}
    missing = check_report(args.report, Path("results", args.profile, "table1.md"), cfg)
    if missing:
        print(f"{args.report}: the landing page lacks {'; '.join(missing)}", file=sys.stderr)
        return 1
    print(f"{args.report}: the landing page shows the paper, profile {args.profile} and its comparability, "
          "Table 1 as in table1.md, and Figure 7")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except DipError as e:
        print(f"python -m dip.report.landing: error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
