# dip-repro: reproduce Deep Image Prior's Table 1 and Figure 7.
#   snakemake --cores all                         # quick profile; workflow/profiles/default is read implicitly
#   snakemake --cores all --config profile=paper  # the paper's settings (GPU / cluster)
# See README.md. Rules, schemas, profiles and report captions live in workflow/ (the Snakemake catalog's layout);
# rules are thin: each calls the `dip` command (src/dip/cli.py). Paths are relative to the project root.

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from dip.data import schemas
from dip.data.safeconfig import check_config_is_data

min_version("9.0")


# The config is data: refuse YTE templates (code Snakemake would run) and Python-object YAML tags first.
check_config_is_data("config/config.yaml")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"  # the HTML report's landing page: the paper, the profile, Table 1, Figure 7


# `--config reference=true` arrives as the string 'true' (Snakemake reads only True/False as booleans) and DVC
# renders booleans as true/false: take those spellings for the boolean they mean, then let the schema decide.
if str(config.get("reference")).lower() in ("true", "false"):
    config["reference"] = str(config["reference"]).lower() == "true"


try:  # the schema also fills in its defaults (cuda_graph, crop_at, data_mirror, manifest)
    validate(config, "workflow/schemas/config.schema.yaml")
except WorkflowError as e:  # one line naming the key, instead of the whole schema and instance
    error = e.__context__  # the jsonschema ValidationError that validate() wrapped
    if not isinstance(error, schemas.ValidationError):
        raise
    where = schemas.path_of(error)
    raise ValueError(f"config/config.yaml: {where + ': ' if where else ''}{schemas.problem(error)}") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output,
        rules.figure7.output,
    default_target: True
