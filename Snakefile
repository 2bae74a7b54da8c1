# dip-repro: reproduce Deep Image Prior's Table 1 and Figure 7.
#   snakemake --cores all                         # default profile (quick)
#   snakemake --cores all --config profile=paper  # the paper's settings (GPU / cluster)
# See README.md. Rules are thin: each calls the `dip` command (src/dip/cli.py).

from snakemake.utils import min_version, validate

from dip.safeconfig import check_config_is_data

min_version("9.0")


# The config is data: refuse YTE templates (code Snakemake would run) and Python-object YAML tags first.
check_config_is_data("config/config.yaml")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output,
        rules.figure7.output,
    default_target: True
