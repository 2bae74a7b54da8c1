# Aggregation: metrics.csv, Table 1 (md + csv, the classical fill beside ours), curves, summary.json and the Figure 7
# montage (with the classical fill beside ours). The HTML report (`snakemake --report`) opens on
# workflow/report/workflow.rst, which shows table1.md and figure7.png itself.

import dip.report.landing  # the landing page's docutils pieces (Markdown include, embedded figure)


rule report:
    input:
        metrics=fit_files("metrics.json"),
        curves=fit_files("curve.csv"),
        reference=reference_files("metrics.json"),
        baselines=baseline_files("metrics.json"),
    output:
        metrics=report(f"{OUT}/metrics.csv", category="Tables", caption="../report/metrics.rst"),
        table_md=report(f"{OUT}/table1.md", category="Tables", caption="../report/table1_md.rst"),
        table_csv=report(f"{OUT}/table1.csv", category="Tables", caption="../report/table1.rst"),
        curves_png=report(f"{OUT}/curves.png", category="Figures", caption="../report/curves.rst"),
        curves_csv=f"{OUT}/curves.csv",
        summary=f"{OUT}/summary.json",
        # in the HTML report only when the authors' code ran beside ours (otherwise it has only its header)
        parity=report(f"{OUT}/parity.csv", category="Tables", caption="../report/parity.rst")
        if REFERENCE else f"{OUT}/parity.csv",
        classical=f"{OUT}/classical_metrics.csv",
    params:
        dip=DIP,
        fits=lambda wc, input: " ".join(str(Path(m).parent) for m in input.metrics),
        reference=lambda wc, input: " ".join(["--reference-fits", *(str(Path(m).parent) for m in input.reference)])
        if input.reference else "",
        baselines=lambda wc, input: " ".join(str(Path(m).parent) for m in input.baselines),
        profile=PROFILE,
        outdir=lambda wc, output: str(Path(output.metrics).parent),
    log:
        f"{OUT}/logs/report.log",
    localrule: True
    shell:
        "{params.dip} report --config config/config.yaml --profile {params.profile} --fits {params.fits} {params.reference}"
        " --baselines {params.baselines} -o {params.outdir} > {log} 2>&1"


rule figure7:
    input:
        unpack(fig7_inputs),
        kate_baseline=f"{baseline_dir('fig7_text', 'kate', min(SEEDS))}/metrics.json",
        barbara_baseline=f"{baseline_dir('table1', 'barbara', min(SEEDS))}/metrics.json",
    output:
        png=report(f"{OUT}/figure7.png", category="Figures", caption="../report/figure7.rst"),
        pdf=f"{OUT}/figure7.pdf",
    params:
        dip=DIP,
        paper=config["paper"]["table1_psnr"]["barbara"],
        profile=PROFILE,
        kate=lambda wc, input: str(Path(input.kate).parent),
        barbara=lambda wc, input: str(Path(input.barbara).parent),
        kate_baseline=lambda wc, input: str(Path(input.kate_baseline).parent),
        barbara_baseline=lambda wc, input: str(Path(input.barbara_baseline).parent),
    log:
        f"{OUT}/logs/figure7.log",
    localrule: True
    shell:
        "{params.dip} figure7 --kate-fit {params.kate} --barbara-fit {params.barbara} --kate-image {input.kate_image}"
        " --barbara-image {input.barbara_image} --paper-barbara {params.paper} --profile {params.profile}"
        " --kate-baseline {params.kate_baseline} --barbara-baseline {params.barbara_baseline}"
        " -o {output.png} > {log} 2>&1"
