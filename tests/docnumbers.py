"""Reading the numbers that docs/*.md state, to check them against the committed records they come from.

A number printed with d decimals stands for any value within half a unit of its last digit: :func:`printed`
checks exactly that (the printed rounding is the tolerance). Tables are read from their Markdown text
(:func:`table`), sentences with regular expressions in the tests themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import ROOT

DOCS = ROOT / "docs"
NUMBER = re.compile(r"[+\-−]?\d+(?:,\d{3})*(?:\.\d+)?")


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def flat(text: str) -> str:
    """``text`` with every run of whitespace (line breaks too) as one space: sentences wrap anywhere."""
    return " ".join(text.split())


def section(text: str, heading: str, end: str | None = None) -> str:
    """The text from ``heading`` to the next heading of the same level (or to ``end``)."""
    start = text.index(heading)
    if end is not None:
        return text[start:text.index(end, start + len(heading))]
    level = heading.split(" ")[0]
    nxt = re.search(rf"^{re.escape(level)} ", text[start + len(heading):], flags=re.M)
    return text[start:start + len(heading) + nxt.start()] if nxt else text[start:]


def number(text: str) -> float:
    """The first number in ``text`` (Unicode minus and thousands commas understood)."""
    m = NUMBER.search(text)
    if m is None:
        raise AssertionError(f"no number in {text!r}")
    return float(m.group(0).replace("−", "-").replace(",", ""))


def decimals(text: str) -> int:
    m = NUMBER.search(text)
    assert m is not None, text
    return len(m.group(0).split(".")[1]) if "." in m.group(0) else 0


def printed(text: str, value: float, scale: float = 1.0) -> bool:
    """Whether the first number printed in ``text`` is ``value * scale`` rounded to the digits printed."""
    return abs(number(text) - value * scale) <= 0.5 * 10 ** -decimals(text) + 1e-9


def numbers(text: str) -> list[float]:
    return [float(m.replace("−", "-").replace(",", "")) for m in NUMBER.findall(text)]


def table(text: str, header: str) -> list[dict[str, str]]:
    """The Markdown table whose header line starts with ``header``: one dict per row, header cell -> cell."""
    lines = text[text.index(header):].splitlines()
    rows = []
    for line in lines:
        if not line.strip().startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    head, body = rows[0], [r for r in rows[1:] if not set("".join(r)) <= set(":- ")]
    assert all(len(r) == len(head) for r in body), f"ragged table under {header!r}"
    return [dict(zip(head, r)) for r in body]


def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())
