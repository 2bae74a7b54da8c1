# Shared definitions: the chosen profile, the fits it implies, and the `dip` command to call.
import shlex
import sys
from pathlib import Path

from dip.data.config import profile_of
from dip.report import cost
from dip.errors import DipError
from dip.engine.authors import DATASET as AUTHORS_DATASET
from dip.data.manifest import expected_files, load_manifest
from dip.data.presets import resolve

DIP = f"{sys.executable} -m dip"
PROFILE = str(config["profile"])
try:  # the project's one reading of a profile (dip.data.config), here on the config Snakemake validated
    PROF = profile_of(config, PROFILE)
except DipError as e:
    raise ValueError(f"config: {e.problem}; choose one with --config profile=NAME") from None
OUT = f"results/{PROFILE}"
REF = f"{OUT}/reference"  # the reference fits (the authors' code), with config `reference: true`
REFERENCE = bool(config["reference"])  # the schema's default is false
AUTHORS_CODE = f"data/raw/{AUTHORS_DATASET}"  # where dip fetch puts the authors' code
SEEDS = PROF["seeds"]
DEVICE = config["device"] or PROF["device"]  # `--config device=cpu` insists on a device for every fit
MANIFEST = load_manifest(config["manifest"])
for _task, _t in config["tasks"].items():
    _known = MANIFEST.get(_t["dataset"], {})
    for _name in _t["images"] + ([] if _t["mask"] == "bernoulli" else [_t["mask"]]):
        if _name not in _known:
            raise ValueError(
                f"config: tasks.{_task}: unknown image {_name!r} for dataset {_t['dataset']!r} "
                f"(known in {config['manifest']}: {', '.join(_known)})"
            )
    try:  # a typo in an override fails here, before anything runs
        resolve(_t["preset"], PROF["overrides"].get(_task, {}))
    except DipError as e:
        raise ValueError(f"config: profiles.{PROFILE}.overrides.{_task}: {e}") from None


wildcard_constraints:
    task="[A-Za-z0-9_]+",
    image="[A-Za-z0-9_]+",
    seed=r"\d+",


def crop_flags(task):
    """--crop (and --crop-at for tasks with a placed window) for reduced profiles; nothing for paper."""
    if not PROF["crop"]:
        return ""
    at = PROF["crop_at"].get(task)  # the schema's default is {}
    return f"--crop {PROF['crop']}" + (f" --crop-at {at[0]},{at[1]}" if at else "")


def fit_dir(task, image, seed):
    return f"{OUT}/fits/{task}/{image}/seed{seed}"


def all_fits():
    """(task, image, seed) for every fit of the profile."""
    return [
        (task, image, seed)
        for task, t in config["tasks"].items()
        for image in t["images"]
        for seed in SEEDS
    ]


def raw(dataset, name):
    return f"data/raw/{dataset}/{name}.png"


def override_flags(task):
    """`--set KEY=VALUE` for each override of this task in this profile (JSON values are YAML too)."""
    import json
    import shlex

    items = PROF["overrides"].get(task, {}).items()
    return " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in items)


def mirror_flag():
    m = config["data_mirror"]  # the schema's default is null
    return f"--mirror {shlex.quote(m)}" if m else ""  # else dip fetch reads $DIP_DATA_MIRROR, or downloads


def mask_task(image):
    """The Bernoulli task that uses this image (its dataset and drop rate)."""
    for t in config["tasks"].values():
        if t["mask"] == "bernoulli" and image in t["images"]:
            return t
    raise ValueError(f"no Bernoulli-mask task uses image {image!r}")


def fit_inputs(wc):
    t = config["tasks"][wc.task]
    mask = (
        f"{OUT}/masks/{wc.image}_seed{wc.seed}.png"
        if t["mask"] == "bernoulli"
        else raw(t["dataset"], t["mask"])
    )
    return {"image": raw(t["dataset"], wc.image), "mask": mask}


def cuda_graph_flag():
    """The profile's cuda_graph (auto, true or false in YAML) as the value of dip fit --cuda-graph."""
    value = PROF["cuda_graph"]  # the schema's default (auto) fills it in
    return value if value == "auto" else ("on" if value else "off")


def fit_minutes(task, image):
    """A fit's time limit (minutes): the profile's runtime_min, or computed from its measured seconds per
    iteration at this task and image size (dip.report.cost: iterations x rate x margin + start-up)."""
    try:
        return cost.limit_minutes(config, PROFILE, task, *cost.fit_size(config, PROFILE, MANIFEST, task, image))
    except DipError as e:
        raise ValueError(f"config: profiles.{PROFILE}.resources.{e}") from None


FIT_MINUTES = {(task, image): fit_minutes(task, image) for task, image, _ in all_fits()}  # errors before any job


def fit_resources():
    """Everything a fit asks the scheduler for, here rather than in the SLURM profile's default-resources, so
    that a site's default-resources (account, partition: docs/cluster.md) cannot replace it: CPUs (the rule's
    threads), memory, the time limit and, for GPU profiles, the GPUs."""
    r = PROF["resources"]
    res = {
        "cpus_per_task": lambda wildcards, threads: threads,  # sbatch --cpus-per-task
        "mem_mb": r["mem_mb"],  # sbatch --mem
        "runtime": lambda wildcards: FIT_MINUTES[(wildcards.task, wildcards.image)],  # sbatch -t (minutes)
    }
    if r["gpus"]:
        res["gpu"] = r["gpus"]  # the SLURM executor turns this into --gpus (see workflow/profiles/slurm)
    return res


def fit_files(name):
    return [f"{fit_dir(t, i, s)}/{name}" for t, i, s in all_fits()]


def reference_files(name):
    """The reference fits' files, or none when `reference` is off."""
    return [f"{REF}/{t}/{i}/seed{s}/{name}" for t, i, s in all_fits()] if REFERENCE else []


# The classical fill beside each fit (workflow/rules/baseline.smk)
def baseline_dir(task, image, seed):
    return f"{OUT}/baselines/{task}/{image}/seed{seed}"


def baseline_files(name):
    return [f"{baseline_dir(t, i, s)}/{name}" for t, i, s in all_fits()]


def baseline_resources():
    """Small: one core, the fit's memory but at most 2 GB (a 512x512 fill peaked at 0.27 GB here), 10 minutes."""
    return {"mem_mb": min(int(PROF["resources"]["mem_mb"]), 2000), "runtime": 10}


def reference_inputs(wc):
    """A reference fit's inputs: the fit's, and the authors' code it imports."""
    code = [f"data/raw/{rel}" for rel in expected_files(MANIFEST, [AUTHORS_DATASET])]
    return {**fit_inputs(wc), "code": code}


def fig7_inputs(wc):
    seed = min(SEEDS)
    return {
        "kate": f"{fit_dir('fig7_text', 'kate', seed)}/metrics.json",
        "barbara": f"{fit_dir('table1', 'barbara', seed)}/metrics.json",
        "kate_image": raw("fig7", "kate"),
        "barbara_image": raw("table1", "barbara"),
    }
