#!/usr/bin/env bash
# Checks the CUDA path of `dip fit` on a GPU machine and prints timings at the paper's size (512x512).
#   DATA=<dir with table1/*.png fig7/*.png> bash tools/gpu/cuda_check.sh
# Needs only torch, numpy, scikit-image, pillow, pyyaml, tqdm (no snakemake): runs from the source tree.
set -euo pipefail
DATA=${DATA:-data/raw}
ITERS=${ITERS:-300}
W=$(mktemp -d)
export PYTHONPATH=$PWD:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
dip() { python3 -m dip "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
dip mask --bernoulli 0.5 --seed 0 --like "$DATA/table1/barbara.png" -o "$W/mask.png"
summary() { python3 - "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/metrics.json"))
print(f"  {m['precision']:>5} cl={m['channels_last']!s:5} graph={m.get('cuda_graph')!s:5} {m['seconds_per_iter']*1000:7.2f} ms/it  "
      f"psnr {m['psnr']:.3f}  eval {100*m['eval_fraction']:.2f}%  {m['device_name']}")
PY
}
if [ -z "${ONLY_RESUME:-}" ]; then
echo "== table1 preset, barbara 512x512, $ITERS iterations, per precision"
for p in fp32 tf32 bf16; do for g in off on; do
  dip fit --image "$DATA/table1/barbara.png" --mask "$W/mask.png" --preset table1 --iterations "$ITERS" \
      --device cuda --precision "$p" --cuda-graph $g --out "$W/b_${p}_$g" --no-progress 2>/dev/null >/dev/null
  summary "$W/b_${p}_$g"
done; done
echo "== fig7_text preset, kate 512x512 RGB, $ITERS iterations, fp32"
dip fit --image "$DATA/fig7/kate.png" --mask "$DATA/fig7/kate_mask.png" --preset fig7_text --iterations "$ITERS" \
    --device cuda --out "$W/k" --no-progress 2>/dev/null >/dev/null
summary "$W/k"
fi
echo "== determinism on CUDA (--deterministic), CUDA graph vs eager, and resume after SIGKILL (graph on)"
args=(--image "$DATA/table1/house.png" --mask "$W/mask_h.png" --preset table1 --iterations 300 --crop 128 --device cuda
      --deterministic --checkpoint-every 50 --no-progress)
dip mask --bernoulli 0.5 --seed 0 --like "$DATA/table1/house.png" -o "$W/mask_h.png" >/dev/null
dip fit "${args[@]}" --out "$W/d1" >/dev/null 2>&1
dip fit "${args[@]}" --out "$W/d2" >/dev/null 2>&1
dip fit "${args[@]}" --cuda-graph off --out "$W/d4" >/dev/null 2>&1
python3 -m dip fit "${args[@]}" --out "$W/d3" >/dev/null 2>&1 &
pid=$!
while [ ! -f "$W/d3.ckpt/checkpoint.pt" ]; do sleep 0.05; done
sleep 0.5; kill -9 $pid; wait $pid || true
dip fit "${args[@]}" --out "$W/d3" >/dev/null 2>&1
python3 - "$W" <<'PY'
import json, sys, hashlib
w = sys.argv[1]
h = {d: hashlib.sha256(open(f"{w}/{d}/output.png", "rb").read()).hexdigest()[:16] for d in ("d1", "d2", "d3", "d4")}
m = {d: json.load(open(f"{w}/{d}/metrics.json")) for d in h}
print("  output.png sha256:", h)
print("  psnr:", {d: m[d]["psnr"] for d in m}, "resumed_from d3:", m["d3"]["resumed_from"])
print("  same seed twice identical:", h["d1"] == h["d2"], "| resumed == uninterrupted:", h["d1"] == h["d3"],
      "| graph (d1) == eager (d4):", h["d1"] == h["d4"], m["d1"]["cuda_graph"], m["d4"]["cuda_graph"])
PY
rm -rf "$W"
