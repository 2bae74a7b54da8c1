# Aggregation: metrics.csv, Table 1 (md + csv), curves, summary.json and the Figure 7 montage.


rule report:
    input:
        metrics=fit_files("metrics.json"),
        curves=fit_files("curve.csv"),
        reference=reference_files("metrics.json"),
    output:
        metrics=report(f"{OUT}/metrics.csv", category="Tables", caption="../report/metrics.rst"),
        table_md=f"{OUT}/table1.md",
        table_csv=report(f"{OUT}/table1.csv", category="Tables", caption="../report/table1.rst"),
        curves_png=report(f"{OUT}/curves.png", category="Figures", caption="../report/curves.rst"),
        curves_csv=f"{OUT}/curves.csv",
        summary=f"{OUT}/summary.json",
        parity=report(f"{OUT}/parity.csv", category="Tables", caption="../report/parity.rst"),
    params:
        dip=DIP,
        fits=lambda wc, input: " ".join(str(Path(m).parent) for m in input.metrics),
        reference=lambda wc, input: " ".join(["--reference-fits", *(str(Path(m).parent) for m in input.reference)])
        if input.reference else "",
        profile=PROFILE,
        outdir=lambda wc, output: str(Path(output.metrics).parent),
    log:
        f"{OUT}/logs/report.log",
    localrule: True
    shell:
        "{params.dip} report --config config/config.yaml --profile {params.profile} --fits {params.fits} {params.reference} -o {params.outdir} > {log} 2>&1"


rule figure7:
    input:
        unpack(fig7_inputs),
    output:
        png=report(f"{OUT}/figure7.png", category="Figures", caption="../report/figure7.rst"),
        pdf=f"{OUT}/figure7.pdf",
    params:
        dip=DIP,
        paper=config["paper"]["table1_psnr"]["barbara"],
        profile=PROFILE,
        kate=lambda wc, input: str(Path(input.kate).parent),
        barbara=lambda wc, input: str(Path(input.barbara).parent),
    log:
        f"{OUT}/logs/figure7.log",
    localrule: True
    shell:
        "{params.dip} figure7 --kate-fit {params.kate} --barbara-fit {params.barbara} --kate-image {input.kate_image}"
        " --barbara-image {input.barbara_image} --paper-barbara {params.paper} --profile {params.profile}"
        " -o {output.png} > {log} 2>&1"
