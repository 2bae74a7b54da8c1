# Inputs: every file of the manifest (the images, and the authors' code) lands in data/raw/ only after its
# sha256 matched.


rule fetch:
    output:
        [f"data/raw/{rel}" for rel in expected_files(MANIFEST)],
    params:
        dip=DIP,
        manifest=config["manifest"],
        mirror=mirror_flag(),
    log:
        f"{OUT}/logs/fetch.log",
    localrule: True
    shell:
        "{params.dip} fetch --manifest {params.manifest} -o data/raw {params.mirror} > {log} 2>&1"
