#!/usr/bin/env bash
# Paper-profile fits on a lent GPU machine through the pipeline itself (`snakemake --config profile=paper`),
# resumable across calls. The GPU box's python3 has torch but not Snakemake or jsonschema: they travel as wheels.
#
#   WHEELS=.whl DATA=.devdata LIMIT=540 OUT=<dir> bash tools/gpu/paper_pipeline.sh table1:boat:0 table1:lena:0
#
# - WHEELS: a folder of wheels installed with --no-deps into /tmp/site (skipped when Snakemake is importable);
#   tools/gpu/wheels.sh fetches them here.
# - DATA: the data mirror (table1/, fig7/, authors_code/ as in ../shared/data); `dip fetch` checks every hash.
# - GPU_SLOTS fits at a time (`--resources gpu=N`, default 1), in an order Snakemake picks.
# - At LIMIT seconds, or once a file $OUT/stop exists, every running `dip fit` gets SIGINT: it writes its
#   checkpoint and exits, and Snakemake (--retries 0) stops. Then $OUT/records.tar.gz holds each finished fit's
#   metrics.json and curve.csv, the logs and the machine's description, and each unfinished fit's checkpoint
#   comes back as $OUT/ckpt__<task>__<image>__<seed>.partNN pieces of 15 MiB (a call brings back 8 files of
#   16 MiB at most: a 512x512 paper checkpoint, 87 MB, does not fit; a 256x256 one, 60 MB, does).
# - RESUME: a folder of such pieces from an earlier call. They are joined into
#   results/<profile>/fits/<task>/<image>/seed<N>.ckpt/ first, so the same command continues those fits.
# - PROFILE (default paper); SNAKEMAKE_ARGS: more Snakemake arguments.
set -u
PROFILE=${PROFILE:-paper}; LIMIT=${LIMIT:-540}; GPU_SLOTS=${GPU_SLOTS:-1}; OUT=${OUT:-.gpurun-out}
DATA=${DATA:-.devdata}; WHEELS=${WHEELS:-.whl}; RESUME=${RESUME:-}
start=$(date +%s)
mkdir -p "$OUT"
mirror=$(cd "$DATA" && pwd) || exit 2
export PYTHONUNBUFFERED=1 DIP_DATA_MIRROR=$mirror
if ! python3 -c "import snakemake, jsonschema, png" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl || exit 2
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}

targets=()
for job in "$@"; do
  IFS=: read -r task image seed <<<"$job"
  targets+=("results/$PROFILE/fits/$task/$image/seed$seed/metrics.json")
done

if [ -n "$RESUME" ]; then  # join the pieces of earlier checkpoints
  for first in "$RESUME"/ckpt__*.part00; do
    [ -e "$first" ] || continue
    stem=${first%.part00}; rest=${stem##*/ckpt__}
    task=${rest%%__*}; rest=${rest#*__}; image=${rest%%__*}; seed=${rest#*__}
    dest="results/$PROFILE/fits/$task/$image/seed$seed.ckpt"
    mkdir -p "$dest" && cat "$stem".part* > "$dest/checkpoint.pt" && echo "[gpu] resuming $task/$image/seed$seed"
  done
fi

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, snakemake; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'cudnn', torch.backends.cudnn.version(), 'snakemake', snakemake.__version__)"; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

# The deadline: SIGINT to this run's fits (this session's: not other dip fits on the machine); they checkpoint and
# exit, and Snakemake, not signalled, then stops (--retries 0).
python3 -m snakemake --cores all --resources gpu="$GPU_SLOTS" --retries 0 --config profile="$PROFILE" \
  ${SNAKEMAKE_ARGS:-} -- "${targets[@]}" > "$OUT/snakemake.log" 2>&1 &
snakemake=$!
interrupted=0
while kill -0 "$snakemake" 2>/dev/null; do
  if [ "$interrupted" = 0 ] && { [ $(( $(date +%s) - start )) -ge "$LIMIT" ] || [ -e "$OUT/stop" ]; }; then
    echo "[gpu] deadline: interrupting the running fits"; pkill -INT -s 0 -f "[-]m dip fit"; interrupted=1
  fi
  sleep 2
done
wait "$snakemake"
echo "[gpu] snakemake exit $? after $(( $(date +%s) - start )) s"
while pgrep -s 0 -f "[-]m dip fit" >/dev/null; do sleep 1; done  # a fit of this run still checkpointing

# Records of the finished fits; pieces of the unfinished fits' checkpoints.
records=()
for job in "$@"; do
  IFS=: read -r task image seed <<<"$job"
  dir="results/$PROFILE/fits/$task/$image/seed$seed"
  if [ -e "$dir/metrics.json" ]; then
    records+=("$dir/metrics.json" "$dir/curve.csv"); echo "[gpu] done: $dir"
  elif [ -e "$dir.ckpt/checkpoint.pt" ]; then
    split -b 15M -d "$dir.ckpt/checkpoint.pt" "$OUT/ckpt__${task}__${image}__${seed}.part"
    echo "[gpu] unfinished, checkpoint brought back: $dir ($(du -h "$dir.ckpt/checkpoint.pt" | cut -f1))"
  else
    echo "[gpu] not started: $dir"
  fi
done
tar czf "$OUT/records.tar.gz" "${records[@]}" "results/$PROFILE/logs" "$OUT/machine.txt" "$OUT/snakemake.log" \
  2>/dev/null
ls -la "$OUT"
