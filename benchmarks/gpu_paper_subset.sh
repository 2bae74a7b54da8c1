#!/usr/bin/env bash
# Paper-profile fits on one GPU without Snakemake (for a GPU box that lacks it), run concurrently.
#   DATA=<dir with table1/ and fig7/> bash benchmarks/gpu_paper_subset.sh table1:barbara fig7_text:kate ...
# Each table1 fit uses the pipeline's seed-0 Bernoulli mask (dip mask --seed 0: the same file). Outputs go to
# $RUN/<image>/ (default .gpurun/); fits stop cleanly with a checkpoint at $LIMIT seconds.
set -u
export PYTHONPATH=$PWD:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
DATA=${DATA:-data/raw}; RUN=${RUN:-.gpurun}; LIMIT=${LIMIT:-560}; PRECISION=${PRECISION:-fp32}
mkdir -p "$RUN"
common=(--device cuda --precision "$PRECISION" --checkpoint-every 500 --no-progress --tag profile=paper --seed 0)
for job in "$@"; do
  task=${job%%:*}; image=${job#*:}
  if [ "$task" = table1 ]; then
    python3 -m dip.cli mask --bernoulli 0.5 --seed 0 --like "$DATA/table1/$image.png" -o "$RUN/${image}_seed0.png"
    inputs=(--image "$DATA/table1/$image.png" --mask "$RUN/${image}_seed0.png" --preset table1)
  else
    inputs=(--image "$DATA/fig7/$image.png" --mask "$DATA/fig7/${image}_mask.png" --preset fig7_text)
  fi
  timeout -s INT "$LIMIT" python3 -m dip.cli fit "${inputs[@]}" "${common[@]}" --tag task="$task" \
    --tag image="$image" --out "$RUN/$image" > "$RUN/$image.log" 2>&1 &
done
wait
for job in "$@"; do image=${job#*:}; echo "== $image"; tail -n 1 "$RUN/$image.log"; done
