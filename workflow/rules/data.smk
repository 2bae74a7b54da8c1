# Inputs: every image of the manifest lands in data/raw/ only after its sha256 matched.


rule fetch:
    output:
        [raw(ds, name) for ds, files in MANIFEST.items() for name in files],
    params:
        dip=DIP,
        manifest=config["manifest"],
        mirror=mirror_flag(),
    log:
        f"{OUT}/logs/fetch.log",
    localrule: True
    shell:
        "{params.dip} fetch --manifest {params.manifest} --dest data/raw {params.mirror} > {log} 2>&1"
