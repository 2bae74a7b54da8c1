"""Do the tests guard what they claim to?  Each mutant breaks one guarantee in a scratch clone of HEAD, and the
tests named for it must fail there (issue 24; docs/reliability.md, "What a hostile file can and cannot do").

    python tools/mutation_audit.py              # every mutant, then the unmutated clone: a table, exit 1 if any survives
    python tools/mutation_audit.py M2 M3        # some of them

Each mutant is one exact text replacement (it must match once, or the audit stops: the code moved and the
mutant needs updating). The same tests run on the unmutated clone first and must pass there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# spelled apart from their "(", so that the source scans of the tests do not take a mutant's text for a loader
LOAD, UNSAFE_YAML = "torch.load", "yaml.unsafe_load"
CHECKPOINT = "tests/test_checkpoints.py::test_a_checkpoint_that_would_run_code_is_refused_and_the_fit_starts_fresh"
MUTANTS = {  # name: (what it breaks, file, text, replacement, tests that must fail)
    "M1": ("a checkpoint loads with full pickle", "src/dip/engine/checkpoint.py",
           f'{LOAD}(self.path, map_location="cpu", weights_only=True)',
           f'{LOAD}(self.path, map_location="cpu", weights_only=False)',
           [CHECKPOINT, "tests/test_hostile_files.py"]),
    "M2": ("the EMA weight fixed at 0.9", "src/dip/core/averaging.py",
           "self.average.mul_(self.weight).add_(output.detach(), alpha=1.0 - self.weight)",
           "self.average.mul_(0.9).add_(output.detach(), alpha=0.1)",
           ["tests/test_stopping.py::test_output_average_uses_its_weight",
            "tests/test_stopping.py::test_output_ema_png_is_the_average_of_the_training_outputs_with_the_given_weight"]),
    "M3": ("the reference engine's backtracking also restores Adam's state", "src/dip/engine/authors.py",
           "            self.guard.check_perturbed(it, pm, self.net)\n",
           "            import copy\n"
           "            if self.guard.check_perturbed(it, pm, self.net):\n"
           "                self._adam = copy.deepcopy(self.optimizer.state_dict())\n"
           "            elif getattr(self, '_adam', None) is not None:\n"
           "                self.optimizer.load_state_dict(self._adam)\n",
           ["tests/test_authors.py::"
            "test_a_real_authors_fit_forced_to_backtrack_restores_parameters_and_adam_goes_on"]),
    "M4": ("presets read with an unsafe YAML loader", "src/dip/data/presets.py",
           "data = yaml.safe_load(text)", f"data = {UNSAFE_YAML}(text)",
           ["tests/test_reliability.py::test_yaml_is_loaded_safely_everywhere",
            "tests/test_reliability.py::test_bad_input_gets_one_line_exit_2_and_no_output"]),
}


def pytest(clone: Path, tests: list[str]) -> tuple[bool, str]:
    """Run ``tests`` in ``clone`` (its own src first on the path); (passed, the summary line)."""
    env = {**os.environ, "PYTHONPATH": f"{clone / 'src'}{os.pathsep}{clone}",
           "DIP_DATA_MIRROR": os.environ.get("DIP_DATA_MIRROR") or str(ROOT.parent / "shared" / "data")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *tests],
                       cwd=clone, env=env, capture_output=True, text=True)
    lines = [line for line in r.stdout.splitlines() if " passed" in line or " failed" in line]
    return r.returncode == 0, lines[-1] if lines else r.stdout[-300:] + r.stderr[-300:]


def main(argv: list[str]) -> int:
    names = argv or list(MUTANTS)
    unknown = [n for n in names if n not in MUTANTS]
    if unknown:
        print(f"mutation_audit: unknown mutant {', '.join(unknown)} (known: {', '.join(MUTANTS)})", file=sys.stderr)
        return 2
    survived = 0
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for name in names:
            what, rel, text, replacement, tests = MUTANTS[name]
            source = clone / rel
            original = source.read_text()
            if original.count(text) != 1:
                print(f"mutation_audit: {rel}: the text of {name} is not there exactly once (update the mutant)",
                      file=sys.stderr)
                return 2
            clean, clean_line = pytest(clone, tests)
            source.write_text(original.replace(text, replacement))
            try:
                caught, line = pytest(clone, tests)
                caught = not caught
            finally:
                source.write_text(original)
            survived += not (clean and caught)
            print(f"{name} {what}: unmutated {clean_line}; mutated {line} -> "
                  f"{'caught' if clean and caught else 'NOT CAUGHT' if clean else 'tests fail unmutated'}",
                  flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
