# The classical fill beside every fit: one `dip baseline` per (task, image, seed) on exactly the fit's inputs
# (fit_inputs: the same image and mask; crop_flags: the same crop), into results/<profile>/baselines/. Seconds on
# a CPU, no GPU in any profile; the report refuses a baseline whose mask is not its fit's (docs/baselines.md).


rule baseline:
    input:
        unpack(fit_inputs),
    output:
        metrics=f"{OUT}/baselines/{{task}}/{{image}}/seed{{seed}}/metrics.json",
        output=f"{OUT}/baselines/{{task}}/{{image}}/seed{{seed}}/output.png",
    params:
        dip=DIP,
        out=lambda wc, output: str(Path(output.metrics).parent),
        dataset=lookup(dpath="tasks/{task}/dataset", within=config),
        crop=lambda wc: crop_flags(wc.task),
        profile=PROFILE,
        manifest=config["manifest"],
    threads: 1
    resources:
        **baseline_resources(),
    log:
        f"{OUT}/logs/baseline/{{task}}_{{image}}_seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/baseline/{{task}}_{{image}}_seed{{seed}}.tsv"
    shell:
        "({params.dip} fetch --verify-only --manifest {params.manifest} -o data/raw --dataset {params.dataset}"
        " && {params.dip} baseline {input.image} {input.mask} {params.crop} --seed {wildcards.seed}"
        " -o {params.out} --tag profile={params.profile} --tag task={wildcards.task} --tag image={wildcards.image}"
        ") > {log} 2>&1"
