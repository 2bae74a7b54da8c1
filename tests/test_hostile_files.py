"""Files are data, never code: no loader in the project can run what a file says (docs/reliability.md, "What a
hostile file can and cannot do").

The behaviour is tested where each file kind is read (a planted checkpoint: test_checkpoints.py; YAML with
Python tags and YTE: test_reliability.py; a decompression-bomb image: test_reliability.py's bad inputs); this
file checks the source, so that a new loader that could run code fails here before it is ever reached.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

# what the project runs: the package, the workflow, the benchmarks and tools (tests only for torch.load)
RUNTIME = [*ROOT.glob("src/**/*.py"), ROOT / "Snakefile", *ROOT.glob("workflow/**/*.smk"),
           *ROOT.glob("benchmarks/**/*.py"), *ROOT.glob("benchmarks/**/*.sh"), *ROOT.glob("tools/**/*")]

CODE_FROM_FILES = {
    "a pickle loader": r"\bimport\s+(pickle|cPickle|_pickle|marshal|shelve|dill|joblib|cloudpickle)\b"
                       r"|\bfrom\s+(pickle|marshal|shelve|dill|joblib|cloudpickle)\s+import\b"
                       r"|\bpickle\.loads?\(|read_pickle\(|allow_pickle\s*=\s*True|torch\.jit\.load\(",
    "eval / exec of text": r"(?<![\w.])(eval|exec)\s*\(|^\s*eval\s",
    "a shell command line": r"shell\s*=\s*True|os\.system\(|os\.popen\(|\bcommands\.getoutput\(",
    "an import by name": r"exec_module\(|spec_from_file_location\(|import_module\(|__import__\(",
}
# The only imports by name, each of code that is not a file a person hands over: the authors' models package,
# imported only after every file matched its sha256 in the manifest (dip.engine.authors.load_models), and the
# `dip` subcommands delegated to modules named in a fixed table in the CLI (dip.cli.DELEGATED; dip.__version__).
IMPORTS_ALLOWED = {"src/dip/engine/authors.py", "src/dip/cli.py"}


def hits(pattern: str, files: list[Path]) -> list[str]:
    rx = re.compile(pattern)
    return [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files if f.is_file()
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1) if rx.search(line)]


def test_no_loader_runs_code_from_a_file():
    assert len(RUNTIME) > 40 and (ROOT / "Snakefile").is_file() and any(f.suffix == ".smk" for f in RUNTIME)
    assert any(f.suffix == ".sh" for f in RUNTIME) and any(f.parent.name == "gpu" for f in RUNTIME)
    found = {what: hits(pattern, RUNTIME) for what, pattern in CODE_FROM_FILES.items()}
    imports = found.pop("an import by name")
    assert {h.split(":")[0] for h in imports} <= IMPORTS_ALLOWED, imports
    assert found == {what: [] for what in found}


def test_every_torch_load_is_weights_only():
    files = RUNTIME + [f for f in ROOT.glob("tests/**/*.py") if f.name != Path(__file__).name]
    loads = hits(r"torch\.load\(", files)
    assert any(h.startswith("src/dip/engine/checkpoint.py") for h in loads)  # the checkpoint's, at least
    assert [h for h in loads if "weights_only=True" not in h] == []
