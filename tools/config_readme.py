"""Write config/README.md from the descriptions in workflow/schemas/config.schema.yaml (the Snakemake catalog's
convention: the schema is the one source, the README is made from it).

    python tools/config_readme.py            # rewrite config/README.md
    python tools/config_readme.py --check    # exit 1 when config/README.md is not what the schema makes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
README = ROOT / "config" / "README.md"
HEAD = """# Configuration

`config/config.yaml` configures the pipeline: which profile runs, the tasks (what is fitted), the paper's numbers,
the regression gate and the profiles (how it is run). `config/datasets.yaml` is the data manifest (URL, sha256,
size of every input file). Snakemake validates `config/config.yaml` against
`workflow/schemas/config.schema.yaml` before anything runs; a value can be replaced on the command line with
`--config KEY=VALUE` (e.g. `--config profile=paper`).

This page is made from the schema's descriptions by `python tools/config_readme.py` (a test keeps it current).
`*` stands for any name (a task, a profile, an image).

| key | type | default | what |
|---|---|---|---|
"""


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    t = node.get("type", "")
    return " or ".join(t) if isinstance(t, list) else str(t)


def rows(node: dict[str, Any], path: str = "") -> list[str]:
    """One table row per described key, depth first, in the schema's order."""
    out = []
    if path and "description" in node:
        default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
        text = " ".join(str(node["description"]).split()).replace("|", "\\|")
        out.append(f"| `{path}` | {_type(node)} | {default} | {text} |")
    for key, child in (node.get("properties") or {}).items():
        out += rows(child, f"{path}.{key}" if path else key)
    for child in (node.get("patternProperties") or {}).values():
        out += rows(child, f"{path}.*")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out += rows(extra, f"{path}.*")
    return out


def render() -> str:
    return HEAD + "\n".join(rows(yaml.safe_load(SCHEMA.read_text()))) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that config/README.md is current")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not README.exists() or README.read_text() != text:
            print(f"{README.relative_to(ROOT)}: not what {SCHEMA.relative_to(ROOT)} makes; run "
                  "python tools/config_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(text)
    print(f"wrote {README.relative_to(ROOT)} ({text.count(chr(10)) - HEAD.count(chr(10))} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
