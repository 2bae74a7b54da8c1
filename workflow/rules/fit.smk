# One mask per (image, seed) for the Bernoulli tasks, then one fit per (task, image, seed), and with
# `reference: true` one fit of the authors' code beside it (same inputs and masks) in results/<profile>/reference/.


rule mask:
    input:
        image=lambda wc: raw(mask_task(wc.image)["dataset"], wc.image),
    output:
        f"{OUT}/masks/{{image}}_seed{{seed}}.png",
    params:
        dip=DIP,
        drop=lambda wc: mask_task(wc.image)["drop"],
    log:
        f"{OUT}/logs/mask/{{image}}_seed{{seed}}.log",
    localrule: True
    shell:
        "{params.dip} mask --bernoulli {params.drop} --seed {wildcards.seed} --like {input.image} -o {output} --force > {log} 2>&1"


# A fit's log starts with `dip fit`'s line saying where it runs (device, precision, torch and CUDA versions): the
# data check before it writes to the log only when it fails (stderr). Resources: fit_resources() in common.smk.
rule fit:
    input:
        unpack(fit_inputs),
    output:
        metrics=f"{OUT}/fits/{{task}}/{{image}}/seed{{seed}}/metrics.json",
        output=f"{OUT}/fits/{{task}}/{{image}}/seed{{seed}}/output.png",
        observed=f"{OUT}/fits/{{task}}/{{image}}/seed{{seed}}/observed.png",
        curve=f"{OUT}/fits/{{task}}/{{image}}/seed{{seed}}/curve.csv",
    params:
        dip=DIP,
        out=lambda wc, output: str(Path(output.metrics).parent),
        dataset=lookup(dpath="tasks/{task}/dataset", within=config),
        preset=lookup(dpath="tasks/{task}/preset", within=config),
        overrides=lambda wc: override_flags(wc.task),
        crop=lambda wc: crop_flags(wc.task),
        precision=PROF["precision"],
        cuda_graph=cuda_graph_flag(),
        device=DEVICE,
        checkpoint_every=PROF["checkpoint_every"],
        profile=PROFILE,
        manifest=config["manifest"],
        engine="--engine ours",
    threads: PROF["threads"]
    resources:
        **fit_resources(),
    log:
        f"{OUT}/logs/fit/{{task}}_{{image}}_seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/fit/{{task}}_{{image}}_seed{{seed}}.tsv"
    shell:
        "({params.dip} fetch --verify-only --manifest {params.manifest} -o data/raw --dataset {params.dataset}"
        " > /dev/null && {params.dip} fit {input.image} {input.mask} --preset {params.preset} {params.overrides}"
        " {params.crop} --seed {wildcards.seed} --device {params.device} --precision {params.precision}"
        " --cuda-graph {params.cuda_graph} --threads {threads} --checkpoint-every {params.checkpoint_every} -o {params.out} {params.engine} --no-progress"
        " --tag profile={params.profile} --tag task={wildcards.task} --tag image={wildcards.image}) > {log} 2>&1"


# The authors' code on the same inputs: their network, a loop after their notebooks (dip.engine.authors), fp32, op by op.
use rule fit as reference_fit with:
    input:
        unpack(reference_inputs),
    output:
        metrics=f"{REF}/{{task}}/{{image}}/seed{{seed}}/metrics.json",
        output=f"{REF}/{{task}}/{{image}}/seed{{seed}}/output.png",
        shown=f"{REF}/{{task}}/{{image}}/seed{{seed}}/output_shown.png",
        curve=f"{REF}/{{task}}/{{image}}/seed{{seed}}/curve.csv",
    params:
        engine=f"--engine authors --authors-code {AUTHORS_CODE} --manifest {config['manifest']}",
        precision="fp32",
        cuda_graph="off",
    log:
        f"{OUT}/logs/reference/{{task}}_{{image}}_seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/reference/{{task}}_{{image}}_seed{{seed}}.tsv"
